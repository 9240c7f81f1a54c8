//! Email: building messages with their headers ([`message`]).

pub mod confirm;
pub mod message;
pub mod transport;
