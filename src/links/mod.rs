//! The signed links in emails (confirm, preferences, unsubscribe): the
//! token format ([`tokens`], pure) and the site's key ring that signs and
//! verifies them, kept in the store ([`keys`]).

pub mod keys;
pub mod tokens;
