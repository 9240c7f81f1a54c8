//! Command handlers of the binary, one module per command group.

pub mod subscribers;
