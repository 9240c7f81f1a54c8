//! Email: building messages with their headers ([`message`]).

pub mod message;
pub mod transport;
