//! Languages: [`Language`], the tag a story, a digest or a subscriber is
//! in (any BCP 47 tag), and [`Lang`], the language of tidings' own words
//! (Swedish or English) that goes with it. Which words a tag gets is
//! decided here and nowhere else ([`Lang::of`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A language tag such as `sv`, `en` or `pt-BR` (BCP 47, checked loosely:
/// a 2–3 letter primary subtag and optional alphanumeric subtags).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.split('-');
        let primary = parts.next().unwrap_or_default();
        let ok = (2..=3).contains(&primary.len())
            && primary.bytes().all(|b| b.is_ascii_lowercase())
            && parts.all(|p| {
                (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if ok {
            Ok(Language(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a language tag: expected a lowercase code such as `sv` or `en`"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Language {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Language::parse(&s)
    }
}

impl From<Language> for String {
    fn from(s: Language) -> String {
        s.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A language tidings' own words are written in: the pages, the emails'
/// fixed words, dates and periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Sv,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Sv, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// `sv`, `sv-FI`, `en`, `en-GB`… (any letter case, `-` or `_`);
    /// anything else is not one of ours.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The words for text in `tag`: Swedish for Swedish, English for
    /// everything else.
    pub fn of(tag: &str) -> Lang {
        Lang::parse(tag).unwrap_or(Lang::En)
    }

    /// The language's name in itself, for language choices.
    pub fn endonym(self) -> &'static str {
        match self {
            Lang::Sv => "Svenska",
            Lang::En => "English",
        }
    }
}

impl From<&Language> for Lang {
    fn from(language: &Language) -> Lang {
        Lang::of(language.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_tags_get_swedish_words_and_every_other_english() {
        for (tag, lang) in [
            ("sv", Lang::Sv),
            ("sv-FI", Lang::Sv),
            ("SV_se", Lang::Sv),
            ("en", Lang::En),
            ("en-GB", Lang::En),
            ("de", Lang::En),
            ("", Lang::En),
        ] {
            assert_eq!(Lang::of(tag), lang, "{tag}");
        }
        assert_eq!(Lang::parse("de"), None);
        assert_eq!(Lang::from(&Language::parse("sv").unwrap()), Lang::Sv);
    }
}
