//! The periodic digest: what each subscriber gets ([`compose`]), one
//! reader's email ([`email`]) with the editor's note ([`note`]), rendered from tera templates ([`render`], [`words`], with the parts
//! shared by every subscriber of an audience made once in [`segments`]),
//! and the ledger worker that delivers an edition ([`delivery`]). Editions
//! themselves are frozen in the store (`store::editions`).

pub mod compose;
pub mod delivery;
pub mod email;
pub mod note;
pub mod pieces;
pub mod render;
pub mod segments;
pub mod words;
