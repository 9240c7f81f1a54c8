//! The periodic digest: editions frozen from new stories ([`edition`]),
//! what each subscriber gets ([`compose`]), and the email rendered from
//! tera templates ([`render`], [`words`]).

pub mod compose;
pub mod render;
pub mod segments;
pub mod words;
