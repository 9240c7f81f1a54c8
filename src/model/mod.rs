//! The types every layer shares, parsed once at the edge: stories, theme
//! slugs and ids, languages, subscribers and their addresses, and the
//! problems reported about operator input. Nothing here reads a file, the
//! store or the network.

pub mod bounce;
pub mod colour;
pub mod language;
pub mod outcome;
pub mod problem;
pub mod source;
pub mod story;
pub mod subscriber;
pub mod text;

pub use bounce::{BounceKind, EditionBounces};
pub use language::{Lang, Language};
pub use outcome::{DeliveryState, JobOutcome};
pub use problem::{Problem, Problems, printable, printable_lines};
pub use source::SourceState;
pub use story::{BodySource, Story, StoryId, ThemeSlug};
pub use subscriber::{NewSubscriber, Status, Subscriber, SubscriberEmail, redact};
