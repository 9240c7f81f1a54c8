//! Command handlers of the binary, one module per command group.

pub mod check_smtp;
pub mod db;
pub mod digest;
pub mod key;
pub mod run;
pub mod status;
pub mod subscribers;
