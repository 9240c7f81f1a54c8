//! Email: building messages with their headers ([`message`]).

pub mod message;
