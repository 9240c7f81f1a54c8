//! The digest email's own words, in Swedish and English: the fixed phrases
//! the templates put around the stories, and the month and date formats.
//!
//! The phrases hold no placeholders: a sentence such as "You receive this
//! email because you subscribed to {digest} at {site}" is cut into pieces
//! here and put together in the template, so an operator who edits the
//! template can reorder it, and no value is ever substituted into a phrase
//! outside the template's escaping.

use crate::model::Lang;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use serde::Serialize;

/// Every fixed phrase of the digest email in one language.
#[derive(Debug, Serialize)]
pub struct Words {
    /// Under the digest's title: what this email is.
    pub heading: &'static str,
    /// The link under each story.
    pub read_more: &'static str,
    /// Before a story's date.
    pub published: &'static str,
    /// The link at the end of each theme's stories to the theme's page.
    pub in_theme: &'static str,
    /// One new story ("1 new story"), in the preheader.
    pub new_story: &'static str,
    /// More than one ("3 new stories"), in the preheader.
    pub new_stories: &'static str,
    /// "You receive this email because you subscribed to" … {digest}
    pub why_subscribed: &'static str,
    /// … "at" {site} …
    pub why_at: &'static str,
    /// … "and chose these themes:" {themes}.
    pub why_themes: &'static str,
    /// Link to the preferences page.
    pub manage: &'static str,
    /// Link to unsubscribe.
    pub unsubscribe: &'static str,
    /// Link to the edition's page on the site.
    pub view_online: &'static str,
    /// Alt text of a story image that has none (stories normally default
    /// it to their title).
    pub image_alt_fallback: &'static str,
    /// The link to the edition's page, at the top.
    pub view_in_browser: &'static str,
    /// Before the sign-up link: for a reader who got it from someone else.
    pub forwarded: &'static str,
    /// The sign-up link.
    pub subscribe: &'static str,
    /// {n} "more in" {theme}: when a theme has more than the email shows.
    pub more_in: &'static str,
    /// {n} "min read".
    pub minutes_read: &'static str,
    /// "By" {authors}.
    pub by: &'static str,
    /// Between the last two authors.
    pub and: &'static str,
    /// On the edition's web page: above the sign-up button.
    pub web_signup: &'static str,
}

static SV: Words = Words {
    heading: "Nya berättelser i de teman du har valt",
    read_more: "Läs mer",
    published: "Publicerad",
    in_theme: "Fler berättelser i temat",
    new_story: "ny berättelse",
    new_stories: "nya berättelser",
    why_subscribed: "Du får det här mejlet eftersom du prenumererar på",
    why_at: "från",
    why_themes: "och har valt de här temana:",
    manage: "Ändra dina teman eller ditt språk",
    unsubscribe: "Avsluta prenumerationen",
    view_online: "Läs det här utskicket på webben",
    image_alt_fallback: "Bild till berättelsen",
    view_in_browser: "Visa i webbläsaren",
    forwarded: "Har någon skickat det här vidare till dig?",
    subscribe: "Prenumerera här",
    more_in: "fler i",
    minutes_read: "min läsning",
    by: "Av",
    and: "och",
    web_signup: "Vill du få nästa utskick i din inkorg?",
};

static EN: Words = Words {
    heading: "New stories in the themes you chose",
    read_more: "Read more",
    published: "Published",
    in_theme: "More stories in this theme",
    new_story: "new story",
    new_stories: "new stories",
    why_subscribed: "You receive this email because you subscribed to",
    why_at: "at",
    why_themes: "and chose these themes:",
    manage: "Change your themes or language",
    unsubscribe: "Unsubscribe",
    view_online: "Read this edition on the web",
    image_alt_fallback: "Image for the story",
    view_in_browser: "View in browser",
    forwarded: "Forwarded to you?",
    subscribe: "Subscribe here",
    more_in: "more in",
    minutes_read: "min read",
    by: "By",
    and: "and",
    web_signup: "Want the next edition in your inbox?",
};

const MONTHS_SV: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The words for text in `language` (see [`Lang::of`]).
pub fn words(language: &str) -> &'static Words {
    match Lang::of(language) {
        Lang::Sv => &SV,
        Lang::En => &EN,
    }
}

fn month_name(language: &str, month0: u32) -> &'static str {
    let months = match Lang::of(language) {
        Lang::Sv => &MONTHS_SV,
        Lang::En => &MONTHS_EN,
    };
    months[month0 as usize % 12]
}

/// The month an edition covers: "november 2026" in Swedish (month names are
/// lower case there), "November 2026" in English.
pub fn period(language: &str, start: NaiveDate) -> String {
    format!("{} {}", month_name(language, start.month0()), start.year())
}

/// A window shorter than this is named by its days ("23–29 november
/// 2026"), a longer one by its months.
const DAYS_NAMED_BY_DAY: i64 = 20;
/// A month the window only touches (fewer days than this at either end)
/// is left out of its name: a monthly edition sent by hand on 2 December
/// covers November.
const DAYS_THAT_NAME_A_MONTH: i64 = 7;

/// The name of the period from the day `first` to the day `last` (both
/// included, in the site's time zone): a short window by its days
/// ("23–29 november 2026", "28 November – 4 December 2026"), a longer one
/// by the months it mostly covers ("november 2026", "oktober–december
/// 2026", "December 2026 – January 2027").
pub fn period_between(language: &str, first: NaiveDate, last: NaiveDate) -> String {
    let (first, last) = (first.min(last), first.max(last));
    let month = |d: NaiveDate| month_name(language, d.month0());
    if (last - first).num_days() + 1 < DAYS_NAMED_BY_DAY {
        return if first == last {
            format!("{} {} {}", last.day(), month(last), last.year())
        } else if (first.year(), first.month()) == (last.year(), last.month()) {
            format!(
                "{}–{} {} {}",
                first.day(),
                last.day(),
                month(last),
                last.year()
            )
        } else if first.year() == last.year() {
            format!(
                "{} {} – {} {} {}",
                first.day(),
                month(first),
                last.day(),
                month(last),
                last.year()
            )
        } else {
            format!(
                "{} {} {} – {} {} {}",
                first.day(),
                month(first),
                first.year(),
                last.day(),
                month(last),
                last.year()
            )
        };
    }
    let (from, to) = named_months(first, last);
    if (from.year(), from.month()) == (to.year(), to.month()) {
        period(language, from)
    } else if from.year() == to.year() {
        format!("{}–{} {}", month(from), month(to), to.year())
    } else {
        format!("{} – {}", period(language, from), period(language, to))
    }
}

/// The first days of the first and last months a period from `first` to
/// `last` is named after: the months it covers less one it only touches at
/// either end; for a short period, the month of its last day twice.
pub fn named_months(first: NaiveDate, last: NaiveDate) -> (NaiveDate, NaiveDate) {
    let (first, last) = (first.min(last), first.max(last));
    let month_of = |d: NaiveDate| d.with_day(1).expect("day 1 exists");
    if (last - first).num_days() + 1 < DAYS_NAMED_BY_DAY {
        return (month_of(last), month_of(last));
    }
    let (mut from, mut to) = (month_of(first), month_of(last));
    if from != to && (next_month(from) - first).num_days() < DAYS_THAT_NAME_A_MONTH {
        from = next_month(from);
    }
    if from != to && i64::from(last.day()) < DAYS_THAT_NAME_A_MONTH {
        to = month_of(to.pred_opt().expect("a day before"));
    }
    (from, to)
}

fn next_month(first_of_month: NaiveDate) -> NaiveDate {
    (first_of_month + chrono::Days::new(31))
        .with_day(1)
        .expect("day 1 exists")
}

/// A day as readers write it: "14 mars 2024", "14 March 2024". The time is
/// read in its own zone, so pass it already in the site's time zone.
pub fn date<Tz: TimeZone>(language: &str, at: DateTime<Tz>) -> String {
    let day = at.date_naive();
    format!(
        "{} {} {}",
        day.day(),
        month_name(language, day.month0()),
        day.year()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_for_sv_english_for_the_rest() {
        assert_eq!(words("sv").unsubscribe, "Avsluta prenumerationen");
        assert_eq!(words("sv-FI").read_more, "Läs mer");
        assert_eq!(words("en").unsubscribe, "Unsubscribe");
        assert_eq!(words("de").heading, "New stories in the themes you chose");
        assert_eq!(words("svenska").read_more, "Read more");
    }

    #[test]
    fn no_phrase_carries_a_placeholder() {
        for w in [words("sv"), words("en")] {
            let serde_json::Value::Object(fields) = serde_json::to_value(w).unwrap() else {
                panic!("Words serializes as an object");
            };
            for (name, text) in fields {
                let text = text.as_str().unwrap();
                assert!(!text.is_empty(), "{name} is empty");
                assert!(!text.contains(['{', '}']), "{name}: {text}");
            }
        }
    }

    #[test]
    fn periods_name_the_month_in_each_language() {
        let nov = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        assert_eq!(period("sv", nov), "november 2026");
        assert_eq!(period("en", nov), "November 2026");
        let may = NaiveDate::from_ymd_opt(2025, 5, 31).unwrap();
        assert_eq!(period("sv", may), "maj 2025");
        assert_eq!(period("en", may), "May 2025");
        let all: Vec<String> = (1..=12)
            .map(|m| period("sv", NaiveDate::from_ymd_opt(2024, m, 1).unwrap()))
            .collect();
        assert_eq!(all[0], "januari 2024");
        assert_eq!(all[11], "december 2024");
    }

    #[test]
    fn a_period_is_named_by_the_months_or_days_it_covers() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // A monthly edition, sent on schedule or by hand a day late.
        assert_eq!(
            period_between("sv", d(2026, 11, 1), d(2026, 11, 30)),
            "november 2026"
        );
        assert_eq!(
            period_between("sv", d(2026, 11, 1), d(2026, 12, 2)),
            "november 2026"
        );
        assert_eq!(
            period_between("en", d(2026, 10, 31), d(2026, 12, 1)),
            "November 2026"
        );
        // Mid-month to mid-month, a quarter, a year's turn.
        assert_eq!(
            period_between("sv", d(2026, 11, 15), d(2026, 12, 14)),
            "november–december 2026"
        );
        assert_eq!(
            period_between("en", d(2026, 10, 1), d(2026, 12, 31)),
            "October–December 2026"
        );
        assert_eq!(
            period_between("en", d(2026, 12, 10), d(2027, 1, 20)),
            "December 2026 – January 2027"
        );
        // Weeks and single days.
        assert_eq!(
            period_between("sv", d(2026, 11, 23), d(2026, 11, 29)),
            "23–29 november 2026"
        );
        assert_eq!(
            period_between("en", d(2026, 11, 28), d(2026, 12, 4)),
            "28 November – 4 December 2026"
        );
        assert_eq!(
            period_between("sv", d(2026, 12, 28), d(2027, 1, 3)),
            "28 december 2026 – 3 januari 2027"
        );
        assert_eq!(
            period_between("en", d(2026, 12, 2), d(2026, 12, 2)),
            "2 December 2026"
        );
        // Given the wrong way round, the same.
        assert_eq!(
            period_between("sv", d(2026, 11, 29), d(2026, 11, 23)),
            "23–29 november 2026"
        );
    }

    #[test]
    fn dates_are_read_in_their_time_zone() {
        let tz: chrono_tz::Tz = "Europe/Stockholm".parse().unwrap();
        let at = tz.with_ymd_and_hms(2024, 3, 14, 9, 30, 0).unwrap();
        assert_eq!(date("sv", at), "14 mars 2024");
        assert_eq!(date("en", at), "14 March 2024");
        // 23:30 UTC on 31 December is already the new year in Stockholm.
        let utc = chrono::Utc
            .with_ymd_and_hms(2024, 12, 31, 23, 30, 0)
            .unwrap();
        assert_eq!(date("sv", utc.with_timezone(&tz)), "1 januari 2025");
        assert_eq!(date("en", utc), "31 December 2024");
    }
}
