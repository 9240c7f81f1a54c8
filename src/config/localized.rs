//! [`Localized`]: a text of config.toml given in several languages (theme
//! and digest titles, descriptions, subjects).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::model::Language;

/// Text in several languages: `{ sv = "…", en = "…" }`, or one string for
/// all languages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Localized(BTreeMap<String, String>);

impl Localized {
    /// The text in `language`, else the first one there is (by language
    /// code), else the empty string.
    pub fn get(&self, language: &str) -> &str {
        self.0
            .get(language)
            .or_else(|| self.0.get(""))
            .or_else(|| self.0.values().next())
            .map_or("", String::as_str)
    }

    pub fn has(&self, language: &str) -> bool {
        self.0.contains_key(language) || self.0.contains_key("")
    }

    /// The languages given explicitly (not the one-string-for-all form).
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str).filter(|k| !k.is_empty())
    }

    /// The same texts, each changed by `f`.
    pub fn map(&self, f: impl Fn(&str) -> String) -> Localized {
        Localized(self.0.iter().map(|(k, v)| (k.clone(), f(v))).collect())
    }
}

impl<'de> Deserialize<'de> for Localized {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Localized;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or a table of strings by language such as { sv = \"…\", en = \"…\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Localized, E> {
                Ok(Localized(BTreeMap::from([(
                    String::new(),
                    crate::model::text::clean_line(s),
                )])))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Localized, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    Language::parse(&k).map_err(de::Error::custom)?;
                    out.insert(k, crate::model::text::clean_line(&v));
                }
                Ok(Localized(out))
            }
        }
        d.deserialize_any(V)
    }
}
