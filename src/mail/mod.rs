//! Email: building messages with their headers ([`message`]), sending
//! them ([`transport`]) and checking the transport ([`probe`]).

pub mod confirm;
pub mod leave;
mod mailer;
pub mod message;
mod pipelining;
pub mod probe;
pub mod rendered;
pub mod transport;

pub use mailer::Mailer;
