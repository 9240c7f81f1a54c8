//! Email: building messages with their headers ([`message`]).

pub mod confirm;
pub mod leave;
pub mod message;
pub mod transport;

/// 128 random bits in hex: the unique part of a Message-ID.
pub fn unique_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}
