//! Email: building messages with their headers ([`message`]), sending
//! them ([`transport`]) and checking the transport ([`probe`]).

pub mod confirm;
pub mod leave;
pub mod message;
pub mod probe;
pub mod transport;
