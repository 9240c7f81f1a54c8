//! A subscriber's choices as a visitor sends them (form or JSON): read,
//! checked against the config field by field, and shown again as the
//! form's checkboxes, radios and select. Also the work a valid sign-up
//! starts, done in a task of its own so that the answer, and its timing,
//! never depend on whether the address was known.

use anyhow::{Context as _, Result};
use chrono::Utc;
use serde::Serialize;

use super::AppState;
use super::words::{Lang, Words, language_name};
use crate::config::Config;
use crate::model::ThemeSlug;
use crate::model::{NewSubscriber, Status, SubscriberEmail};
use crate::subscribers::parse_language;

/// The longest value of any one field we look at; longer ones are invalid.
const MAX_FIELD: usize = 320;

/// What a visitor sent, as typed.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub email: String,
    pub themes: Vec<String>,
    pub language: String,
    pub digest: String,
    /// The honeypot: people leave it empty.
    pub website: String,
}

/// What is wrong with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Email,
    NoTheme,
    UnknownTheme,
    Language,
    Digest,
}

impl Problem {
    /// The field's name in the form and in JSON.
    pub fn field(self) -> &'static str {
        match self {
            Problem::Email => "email",
            Problem::NoTheme | Problem::UnknownTheme => "themes",
            Problem::Language => "language",
            Problem::Digest => "digest",
        }
    }

    /// The message for people, in the page's language.
    pub fn message(self, words: &'static Words) -> &'static str {
        match self {
            Problem::Email => words.err_email,
            Problem::NoTheme => words.err_themes,
            Problem::UnknownTheme => words.err_theme_unknown,
            Problem::Language => words.err_language,
            Problem::Digest => words.err_digest,
        }
    }
}

/// A problem with the detail for API clients (in English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub problem: Problem,
    pub detail: String,
}

/// The parts of a subscription a visitor chooses (sign-up or preferences).
#[derive(Debug, Clone)]
pub struct Chosen {
    pub themes: Vec<ThemeSlug>,
    pub language: crate::model::Language,
    pub digest: String,
}

/// Checks themes, language and digest; every problem is reported.
pub fn check_choices(config: &Config, input: &Input) -> Result<Chosen, Vec<FieldError>> {
    let mut errors = Vec::new();
    let err = |problem, detail: String| FieldError { problem, detail };
    let digest = match input.digest.trim() {
        "" => config.digest(None),
        id => config.digest(Some(id)),
    };
    if digest.is_none() {
        let known: Vec<&str> = config.digests.iter().map(|d| d.id.as_str()).collect();
        errors.push(err(
            Problem::Digest,
            format!("unknown digest; expected one of: {}", known.join(", ")),
        ));
    }
    let mut themes: Vec<ThemeSlug> = Vec::new();
    let mut unknown = false;
    for name in input
        .themes
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        match ThemeSlug::parse(name)
            .ok()
            .filter(|s| name.len() <= MAX_FIELD && config.theme(s).is_some())
        {
            Some(slug) if !themes.contains(&slug) => themes.push(slug),
            Some(_) => {}
            None => unknown = true,
        }
    }
    if unknown {
        let known: Vec<&str> = config.themes.iter().map(|t| t.slug.as_str()).collect();
        errors.push(err(
            Problem::UnknownTheme,
            format!("unknown theme; expected some of: {}", known.join(", ")),
        ));
    } else if themes.is_empty() {
        errors.push(err(Problem::NoTheme, "choose at least one theme".into()));
    }
    let language = digest.map(|d| parse_language(config, d, &input.language));
    let language = match language {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            // The parser's message quotes the value; this one does not.
            let detail = e
                .split_once("; ")
                .map_or(e.as_str(), |(_, why)| why)
                .to_owned();
            errors.push(err(
                Problem::Language,
                format!("unknown language; {detail}"),
            ));
            None
        }
        None => None,
    };
    match (digest, language) {
        (Some(d), Some(language)) if errors.is_empty() => Ok(Chosen {
            themes,
            language,
            digest: d.id.clone(),
        }),
        _ => Err(errors),
    }
}

/// Checks a whole sign-up; every problem is reported.
pub fn check(config: &Config, input: &Input) -> Result<NewSubscriber, Vec<FieldError>> {
    let email = if input.email.len() > MAX_FIELD {
        Err("longer than 254 characters".to_owned())
    } else {
        SubscriberEmail::parse(&input.email)
    };
    let choices = check_choices(config, input);
    match (email, choices) {
        (Ok(email), Ok(c)) => Ok(NewSubscriber {
            email,
            status: Status::Pending,
            themes: c.themes,
            language: c.language,
            digest: c.digest,
            consent_source: "web".into(),
        }),
        (email, choices) => {
            let mut errors = Vec::new();
            if let Err(e) = email {
                errors.push(FieldError {
                    problem: Problem::Email,
                    detail: e,
                });
            }
            if let Err(more) = choices {
                errors.extend(more);
            }
            Err(errors)
        }
    }
}

/// Reads a JSON body: `{ "email", "themes": [..], "language", "digest",
/// "website" }`; `themes` may also be one string of slugs separated by
/// commas. A field of the wrong type is a field error.
pub fn from_json(value: &serde_json::Value) -> Result<Input, Vec<FieldError>> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError {
            problem: Problem::Email,
            detail: "expected a JSON object with email, themes, language and digest".into(),
        }]);
    };
    let mut errors = Vec::new();
    let mut text = |name: &str, problem| match object.get(name) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => {
            errors.push(FieldError {
                problem,
                detail: format!("`{name}` must be a string"),
            });
            String::new()
        }
    };
    let email = text("email", Problem::Email);
    let language = text("language", Problem::Language);
    let digest = text("digest", Problem::Digest);
    let website = match object.get("website") {
        Some(serde_json::Value::String(s)) => s.clone(),
        None | Some(serde_json::Value::Null) => String::new(),
        // Anything but empty is a bot's answer.
        Some(other) => other.to_string(),
    };
    let themes = match object.get("themes") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => s.split([',', ';']).map(str::to_owned).collect(),
        Some(serde_json::Value::Array(items)) => {
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect();
            strings.unwrap_or_else(|| {
                errors.push(FieldError {
                    problem: Problem::UnknownTheme,
                    detail: "`themes` must be an array of theme slugs".into(),
                });
                Vec::new()
            })
        }
        Some(_) => {
            errors.push(FieldError {
                problem: Problem::UnknownTheme,
                detail: "`themes` must be an array of theme slugs".into(),
            });
            Vec::new()
        }
    };
    if errors.is_empty() {
        Ok(Input {
            email,
            themes,
            language,
            digest,
            website,
        })
    } else {
        Err(errors)
    }
}

/// One theme checkbox.
#[derive(Debug, Serialize)]
pub struct ThemeChoice {
    pub slug: String,
    pub id: String,
    pub title: String,
    pub description: String,
    pub checked: bool,
}

/// One language radio.
#[derive(Debug, Serialize)]
pub struct LanguageChoice {
    pub code: String,
    pub id: String,
    pub name: String,
    pub checked: bool,
}

/// One digest option.
#[derive(Debug, Serialize)]
pub struct DigestChoice {
    pub id: String,
    pub title: String,
    pub selected: bool,
}

/// The choices of a form, as its inputs show them.
#[derive(Debug, Serialize)]
pub struct Choices {
    pub themes: Vec<ThemeChoice>,
    pub languages: Vec<LanguageChoice>,
    /// Shown as a select when there are several.
    pub digests: Vec<DigestChoice>,
    /// The digest's id for a hidden input when there is only one.
    pub single_digest: Option<String>,
}

impl Choices {
    /// The inputs for `lang`'s page, with `themes`, `language` and
    /// `digest` chosen (values not offered are simply not checked).
    pub fn new(
        config: &Config,
        lang: Lang,
        themes: &[&str],
        language: &str,
        digest: &str,
    ) -> Choices {
        let code = lang.code();
        let mut languages: Vec<String> = Vec::new();
        for d in &config.digests {
            for l in d.languages(config.site.language.as_str()) {
                if !languages.contains(&l) {
                    languages.push(l);
                }
            }
        }
        // The site's language first.
        let site = config.site.language.as_str();
        languages.sort_by_key(|l| l != site);
        // The page's language, else the site's, when nothing was chosen.
        let language = if languages.iter().any(|l| l == language) {
            language.to_owned()
        } else if languages.iter().any(|l| l == code) {
            code.to_owned()
        } else {
            config.site.language.as_str().to_owned()
        };
        let digest = config
            .digest(Some(digest))
            .or_else(|| config.digest(None))
            .map(|d| d.id.clone())
            .unwrap_or_default();
        Choices {
            themes: config
                .themes
                .iter()
                .map(|t| ThemeChoice {
                    slug: t.slug.to_string(),
                    id: format!("theme-{}", t.slug),
                    title: t.title.get(code).to_owned(),
                    description: t.description.get(code).to_owned(),
                    checked: themes.contains(&t.slug.as_str()),
                })
                .collect(),
            languages: languages
                .iter()
                .map(|l| LanguageChoice {
                    code: l.clone(),
                    id: format!("language-{l}"),
                    name: language_name(l),
                    checked: *l == language,
                })
                .collect(),
            digests: config
                .digests
                .iter()
                .map(|d| DigestChoice {
                    id: d.id.clone(),
                    title: d.title.get(code).to_owned(),
                    selected: d.id == digest,
                })
                .collect(),
            single_digest: (config.digests.len() == 1).then(|| digest.clone()),
        }
    }
}

/// The error message of each field, for the form.
#[derive(Debug, Default, Serialize)]
pub struct FieldMessages {
    pub email: Option<&'static str>,
    pub themes: Option<&'static str>,
    pub language: Option<&'static str>,
    pub digest: Option<&'static str>,
    /// In form order, for the summary at the top.
    pub list: Vec<Summary>,
}

/// One line of the error summary, linking to its field.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub target: &'static str,
    pub message: &'static str,
}

impl FieldMessages {
    pub fn new(errors: &[FieldError], words: &'static Words) -> FieldMessages {
        let mut m = FieldMessages::default();
        let first = |p: &[Problem]| {
            errors
                .iter()
                .find(|e| p.contains(&e.problem))
                .map(|e| e.problem.message(words))
        };
        m.email = first(&[Problem::Email]);
        m.themes = first(&[Problem::NoTheme, Problem::UnknownTheme]);
        m.language = first(&[Problem::Language]);
        m.digest = first(&[Problem::Digest]);
        for (message, target) in [
            (m.email, "email"),
            (m.themes, "themes"),
            (m.language, "language"),
            (m.digest, "digest"),
        ] {
            if let Some(message) = message {
                m.list.push(Summary { target, message });
            }
        }
        m
    }
}

/// Builds, and throws away, the confirmation email `person` would get,
/// before the visitor is told to check their inbox: a template that
/// cannot render makes the sign-up fail where they see it (503) instead
/// of answering success and sending nothing. Done for every sign-up,
/// known address or not, so the answer's timing tells nothing.
pub fn confirmation_builds(shared: &AppState, person: &NewSubscriber) -> Result<()> {
    let mailer = shared
        .mailer
        .as_ref()
        .context("confirmation emails need [mail] in config.toml")?;
    let signer = shared.keys.signer();
    crate::mail::confirm::for_subscriber(&shared.config, mailer, person, 0, &signer, Utc::now())
        .map(drop)
}

/// Stores a valid sign-up and, when one is owed, sends the confirmation
/// email — in a task of its own, never awaited by the request. Failures
/// are logged (with the subscriber's id, never the address).
pub fn start(shared: AppState, person: NewSubscriber) {
    let tasks = shared.background.clone();
    tasks.spawn(async move {
        if let Err(e) = store_and_confirm(&shared, &person).await {
            let error = crate::model::redact(&format!("{e:#}"), person.email.as_str());
            tracing::error!(%error, "sign-up failed");
        }
    });
}

async fn store_and_confirm(shared: &AppState, person: &NewSubscriber) -> Result<()> {
    let now = Utc::now();
    let outcome = shared.store.signup(person, now).await?;
    tracing::info!(subscriber = outcome.id(), outcome = ?outcome, "sign-up");
    if !outcome.needs_confirmation() {
        return Ok(());
    }
    let mailer = shared
        .mailer
        .as_ref()
        .context("confirmation emails need [mail] in config.toml")?;
    let signer = shared.keys.signer();
    let reply =
        crate::mail::confirm::send(&shared.config, mailer, person, outcome.id(), &signer, now)
            .await?;
    tracing::info!(subscriber = outcome.id(), %reply, "confirmation email sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(email: &str, themes: &[&str], language: &str, digest: &str) -> Input {
        Input {
            email: email.into(),
            themes: themes.iter().map(|t| (*t).to_owned()).collect(),
            language: language.into(),
            digest: digest.into(),
            website: String::new(),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let site = crate::fixtures::site("");
        let config = &site.config;
        let ok = check(
            config,
            &input(" Ann@Example.ORG ", &["lokal-demokrati"], "en", ""),
        );
        let ok = ok.unwrap();
        assert_eq!(ok.email.as_str(), "Ann@example.org");
        assert_eq!(ok.language.as_str(), "en");
        assert_eq!(ok.digest, "monthly");
        assert_eq!(ok.status, Status::Pending);
        let problems = |i: Input| -> Vec<Problem> {
            check(config, &i)
                .unwrap_err()
                .iter()
                .map(|e| e.problem)
                .collect()
        };
        assert_eq!(
            problems(input("nope", &[], "de", "")),
            [Problem::Email, Problem::NoTheme, Problem::Language]
        );
        assert_eq!(
            problems(input(
                "a@example.org",
                &["lokal-demokrati", "nope"],
                "sv",
                ""
            )),
            [Problem::UnknownTheme]
        );
        assert_eq!(
            problems(input("a@example.org", &["lokal-demokrati"], "sv", "weekly")),
            [Problem::Digest]
        );
    }

    #[test]
    fn json_fields_of_the_wrong_type_are_field_errors() {
        let v = serde_json::json!({"email": 5, "themes": [1], "language": "sv"});
        let problems: Vec<Problem> = from_json(&v)
            .unwrap_err()
            .iter()
            .map(|e| e.problem)
            .collect();
        assert_eq!(problems, [Problem::Email, Problem::UnknownTheme]);
        let v = serde_json::json!({"email": "a@example.org", "themes": "x,y"});
        assert_eq!(from_json(&v).unwrap().themes, ["x", "y"]);
        assert!(from_json(&serde_json::json!([1])).is_err());
    }
}
