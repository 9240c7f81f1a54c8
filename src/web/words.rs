//! The pages' own words in Swedish and English, one table per language,
//! and the choice of language for a request: `?lang=sv|en`, else the
//! browser's `Accept-Language`, else the site's language.
//!
//! Like the digest's words, no phrase holds a placeholder: a value (a
//! count, an address) is put next to a phrase by the template, inside its
//! escaping.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Serialize;

use super::AppState;
pub use crate::model::Lang;

/// The pages' words in `lang`.
pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Sv => &SV,
        Lang::En => &EN,
    }
}

/// The name of a digest language code in itself (`sv` → "Svenska").
pub fn language_name(code: &str) -> String {
    match Lang::parse(code) {
        Some(l) if l.code() == code => l.endonym().to_owned(),
        _ => code.to_owned(),
    }
}

/// The language of a page: an explicit `?lang=` wins, then the best of
/// Swedish and English in `Accept-Language` (by its q-values, in order on
/// a tie), then the site's language (English when that is neither).
pub fn choose(query: Option<&str>, headers: &HeaderMap, site: &str) -> Lang {
    query
        .and_then(Lang::parse)
        .or_else(|| accept_language(headers))
        .or_else(|| Lang::parse(site))
        .unwrap_or(Lang::En)
}

/// A request's page language, as an extractor: `explicit` when it came
/// from `?lang=` (links then carry it on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLang {
    pub lang: Lang,
    pub explicit: bool,
}

impl PageLang {
    /// For pages of one subscriber: their own language unless the visitor
    /// asked for one with `?lang=`.
    pub fn or_subscriber(self, language: &str) -> PageLang {
        match (self.explicit, Lang::parse(language)) {
            (false, Some(lang)) => PageLang {
                lang,
                explicit: false,
            },
            _ => self,
        }
    }

    /// A language named in a form field (the hidden `lang` of the sign-up
    /// form), which wins as `?lang=` would.
    pub fn or_field(self, field: Option<&str>) -> PageLang {
        match field.and_then(Lang::parse) {
            Some(lang) => PageLang {
                lang,
                explicit: true,
            },
            None => self,
        }
    }
}

impl FromRequestParts<AppState> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<PageLang, Self::Rejection> {
        let query = parts.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .map(|(_, v)| v.into_owned())
        });
        let explicit = query.as_deref().and_then(Lang::parse);
        Ok(PageLang {
            lang: choose(
                query.as_deref(),
                &parts.headers,
                state.config.site.language.as_str(),
            ),
            explicit: explicit.is_some(),
        })
    }
}

fn accept_language(headers: &HeaderMap) -> Option<Lang> {
    let value = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?;
    let mut best: Option<(f32, Lang)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::parse) else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// Every fixed phrase of the pages in one language.
#[derive(Debug, Serialize)]
pub struct Words {
    pub skip_link: &'static str,
    pub home: &'static str,
    pub archive: &'static str,
    /// Label of the language switch ("In English" on a Swedish page).
    pub other_language: &'static str,
    /// The header's link to the sign-up form, on every page.
    pub subscribe: &'static str,

    pub feeds_heading: &'static str,
    pub feeds_intro: &'static str,
    pub all_stories: &'static str,
    pub opml: &'static str,
    pub themes_heading: &'static str,
    pub theme_page: &'static str,
    pub latest_heading: &'static str,
    pub no_stories: &'static str,
    pub published: &'static str,
    pub theme_feeds: &'static str,
    pub theme_stories: &'static str,
    pub all_themes: &'static str,

    pub signup_heading: &'static str,
    pub signup_intro: &'static str,
    pub email_label: &'static str,
    pub email_hint: &'static str,
    pub themes_legend: &'static str,
    pub language_legend: &'static str,
    pub digest_label: &'static str,
    pub honeypot_label: &'static str,
    pub submit: &'static str,
    pub privacy: &'static str,
    pub signup_unavailable: &'static str,
    /// The sign-up box of the pages without the form (`signup_box.html`).
    pub signup_box_text: &'static str,
    pub signup_box_button: &'static str,

    pub errors_heading: &'static str,
    pub err_email: &'static str,
    pub err_themes: &'static str,
    pub err_theme_unknown: &'static str,
    pub err_language: &'static str,
    pub err_digest: &'static str,

    pub check_inbox_heading: &'static str,
    pub check_inbox_text: &'static str,
    pub check_inbox_spam: &'static str,

    pub csrf_heading: &'static str,
    pub csrf_text: &'static str,
    pub reload_form: &'static str,
    pub rate_heading: &'static str,
    pub rate_text: &'static str,
    /// Before the number of minutes…
    pub retry_in: &'static str,
    /// …after it.
    pub minutes: &'static str,
    pub unavailable_heading: &'static str,
    pub unavailable_text: &'static str,

    pub confirm_heading: &'static str,
    pub confirm_text: &'static str,
    pub confirm_button: &'static str,
    pub confirmed_heading: &'static str,
    pub confirmed_text: &'static str,
    pub preferences_link: &'static str,

    pub invalid_heading: &'static str,
    pub invalid_text: &'static str,
    pub signup_again: &'static str,

    pub leave_heading: &'static str,
    pub leave_intro: &'static str,
    pub leave_button: &'static str,
    pub leave_write_to: &'static str,
    pub leave_sent_heading: &'static str,
    pub leave_sent_text: &'static str,

    pub preferences_heading: &'static str,
    pub preferences_for: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub pending_note: &'static str,
    pub unsubscribed_note: &'static str,
    pub unsubscribe_link: &'static str,

    pub unsubscribe_heading: &'static str,
    pub unsubscribe_text: &'static str,
    pub unsubscribe_button: &'static str,
    pub unsubscribed_heading: &'static str,
    pub unsubscribed_text: &'static str,

    pub archive_heading: &'static str,
    pub archive_intro: &'static str,
    pub no_editions: &'static str,
    pub stories_count: &'static str,
    pub back_to_archive: &'static str,
    pub edition_empty: &'static str,
    pub edition_sent: &'static str,

    pub not_found_heading: &'static str,
    pub not_found_text: &'static str,
    pub error_heading: &'static str,
    pub error_text: &'static str,
    pub too_large_heading: &'static str,
    pub too_large_text: &'static str,
    pub bad_request_heading: &'static str,
    pub bad_request_text: &'static str,
}

static SV: Words = Words {
    skip_link: "Hoppa till innehållet",
    home: "Startsida",
    archive: "Arkiv",
    other_language: "In English",
    subscribe: "Prenumerera",

    feeds_heading: "Flöden",
    feeds_intro: "Följ alla berättelser, eller bara ett tema, i din flödesläsare.",
    all_stories: "Alla berättelser",
    opml: "Alla flöden som OPML (för import i en flödesläsare)",
    themes_heading: "Teman",
    theme_page: "Temats sida",
    latest_heading: "Senaste berättelserna",
    no_stories: "Inga berättelser ännu.",
    published: "Publicerad",
    theme_feeds: "Temats flöden",
    theme_stories: "Berättelser i temat",
    all_themes: "Alla teman",

    signup_heading: "Prenumerera på nyhetsbrevet",
    signup_intro: "Välj de teman du vill följa. Du får ett mejl med de nya berättelserna i just de temana. Först bekräftar du din adress via en länk som vi mejlar dig.",
    email_label: "E-postadress",
    email_hint: "Till exempel namn@exempel.se",
    themes_legend: "Teman",
    language_legend: "Nyhetsbrevets språk",
    digest_label: "Nyhetsbrev",
    honeypot_label: "Lämna det här fältet tomt",
    submit: "Prenumerera",
    privacy: "Vi använder din adress bara för nyhetsbrevet. Varje utskick har en länk för att avsluta prenumerationen.",
    signup_unavailable: "Det går inte att prenumerera via webbplatsen just nu.",
    signup_box_text: "Få de nya berättelserna i de teman du väljer i ett mejl, på svenska eller engelska.",
    signup_box_button: "Välj teman och prenumerera",

    errors_heading: "Formuläret behöver rättas:",
    err_email: "Skriv en giltig e-postadress, till exempel namn@exempel.se.",
    err_themes: "Välj minst ett tema.",
    err_theme_unknown: "Välj bland temana i listan.",
    err_language: "Välj ett av språken i listan.",
    err_digest: "Välj ett av nyhetsbreven i listan.",

    check_inbox_heading: "Kolla din inkorg",
    check_inbox_text: "Om adressen kan få nyhetsbrevet har vi skickat ett mejl med en länk för att bekräfta prenumerationen. Länken gäller i 7 dagar.",
    check_inbox_spam: "Hittar du inget mejl inom några minuter? Titta i skräpposten.",

    csrf_heading: "Formuläret har gått ut",
    csrf_text: "Av säkerhetsskäl gäller formuläret bara en stund och kräver att webbläsaren tillåter kakor för den här webbplatsen. Ladda om sidan och skicka formuläret igen.",
    reload_form: "Till formuläret",
    rate_heading: "För många försök",
    rate_text: "Vi har fått många anmälningar härifrån eller till den här adressen på kort tid.",
    retry_in: "Försök igen om",
    minutes: "minuter.",
    unavailable_heading: "Det går inte att prenumerera",
    unavailable_text: "Den här webbplatsen skickar inga nyhetsbrev just nu.",

    confirm_heading: "Bekräfta din prenumeration",
    confirm_text: "Tryck på knappen för att börja få nyhetsbrevet till",
    confirm_button: "Ja, bekräfta prenumerationen",
    confirmed_heading: "Tack! Din prenumeration är bekräftad",
    confirmed_text: "Nästa nyhetsbrev kommer till",
    preferences_link: "Ändra teman eller språk",

    invalid_heading: "Länken fungerar inte",
    invalid_text: "Länken är ogiltig eller har gått ut. Länkar för att bekräfta en prenumeration gäller i 7 dagar.",
    signup_again: "Prenumerera på nytt",

    leave_heading: "Avsluta prenumerationen med din e-postadress",
    leave_intro: "Skriv adressen som nyhetsbrevet kommer till, så skickar vi en länk dit som avslutar prenumerationen.",
    leave_button: "Skicka länken",
    leave_write_to: "Du kan också skriva till",
    leave_sent_heading: "Titta i din inkorg",
    leave_sent_text: "Om adressen får vårt nyhetsbrev är ett mejl med en länk för att avsluta prenumerationen på väg dit.",

    preferences_heading: "Dina val",
    preferences_for: "Nyhetsbrevet går till",
    save: "Spara",
    saved: "Dina val är sparade.",
    pending_note: "Du har inte bekräftat prenumerationen ännu: använd länken i bekräftelsemejlet.",
    unsubscribed_note: "Du prenumererar inte längre, så du får inga mejl. Dina val sparas ändå. Vill du börja igen kan du prenumerera via formuläret på startsidan.",
    unsubscribe_link: "Avsluta prenumerationen",

    unsubscribe_heading: "Avsluta prenumerationen",
    unsubscribe_text: "Tryck på knappen för att sluta få nyhetsbrevet till",
    unsubscribe_button: "Avsluta prenumerationen",
    unsubscribed_heading: "Du prenumererar inte längre",
    unsubscribed_text: "Du får inga fler nyhetsbrev från oss. Ångrar du dig kan du prenumerera igen på startsidan.",

    archive_heading: "Arkiv",
    archive_intro: "Alla utskick av nyhetsbreven, det senaste först.",
    no_editions: "Inga utskick ännu.",
    stories_count: "berättelser",
    back_to_archive: "Tillbaka till arkivet",
    edition_empty: "Det här utskicket har inga berättelser.",
    edition_sent: "Skickat",

    not_found_heading: "Sidan finns inte",
    not_found_text: "Vi hittar ingen sida med den adressen.",
    error_heading: "Något gick fel",
    error_text: "Ett fel uppstod hos oss. Försök igen om en stund.",
    too_large_heading: "För mycket data",
    too_large_text: "Formuläret innehöll mer än vi tar emot. Ladda om sidan och försök igen.",
    bad_request_heading: "Felaktig begäran",
    bad_request_text: "Vi kunde inte läsa det som skickades. Ladda om sidan och försök igen.",
};

static EN: Words = Words {
    skip_link: "Skip to content",
    home: "Home",
    archive: "Archive",
    other_language: "På svenska",
    subscribe: "Subscribe",

    feeds_heading: "Feeds",
    feeds_intro: "Follow every story, or one theme only, in your feed reader.",
    all_stories: "All stories",
    opml: "All feeds as OPML (to import into a feed reader)",
    themes_heading: "Themes",
    theme_page: "Theme page",
    latest_heading: "Latest stories",
    no_stories: "No stories yet.",
    published: "Published",
    theme_feeds: "Feeds of this theme",
    theme_stories: "Stories in this theme",
    all_themes: "All themes",

    signup_heading: "Subscribe to the newsletter",
    signup_intro: "Choose the themes you want to follow. You get an email with the new stories in those themes only. First you confirm your address through a link we email you.",
    email_label: "Email address",
    email_hint: "For example name@example.org",
    themes_legend: "Themes",
    language_legend: "Language of the newsletter",
    digest_label: "Newsletter",
    honeypot_label: "Leave this field empty",
    submit: "Subscribe",
    privacy: "We use your address for the newsletter only. Every email has a link to unsubscribe.",
    signup_unavailable: "Subscribing through the website is not possible at the moment.",
    signup_box_text: "Get the new stories in the themes you choose by email, in English or Swedish.",
    signup_box_button: "Choose themes and subscribe",

    errors_heading: "Please correct the form:",
    err_email: "Enter a valid email address, such as name@example.org.",
    err_themes: "Choose at least one theme.",
    err_theme_unknown: "Choose among the themes in the list.",
    err_language: "Choose one of the languages in the list.",
    err_digest: "Choose one of the newsletters in the list.",

    check_inbox_heading: "Check your inbox",
    check_inbox_text: "If the address can receive the newsletter, we have sent it an email with a link to confirm the subscription. The link is valid for 7 days.",
    check_inbox_spam: "No email within a few minutes? Look in your spam folder.",

    csrf_heading: "The form has expired",
    csrf_text: "For your security the form is valid for a while only, and needs the browser to allow cookies for this site. Reload the page and send the form again.",
    reload_form: "Back to the form",
    rate_heading: "Too many attempts",
    rate_text: "We have received many sign-ups from here or for this address in a short time.",
    retry_in: "Try again in",
    minutes: "minutes.",
    unavailable_heading: "Subscribing is not possible",
    unavailable_text: "This site does not send newsletters at the moment.",

    confirm_heading: "Confirm your subscription",
    confirm_text: "Press the button to start receiving the newsletter at",
    confirm_button: "Yes, confirm my subscription",
    confirmed_heading: "Thank you! Your subscription is confirmed",
    confirmed_text: "The next newsletter goes to",
    preferences_link: "Change themes or language",

    invalid_heading: "This link does not work",
    invalid_text: "The link is invalid or has expired. Links to confirm a subscription are valid for 7 days.",
    signup_again: "Subscribe again",

    leave_heading: "Unsubscribe with your email address",
    leave_intro: "Type the address the newsletter comes to, and we will send it a link that ends the subscription.",
    leave_button: "Send me the link",
    leave_write_to: "You can also write to",
    leave_sent_heading: "Check your inbox",
    leave_sent_text: "If the address gets our newsletter, an email with a link to unsubscribe is on its way to it.",

    preferences_heading: "Your choices",
    preferences_for: "The newsletter goes to",
    save: "Save",
    saved: "Your choices are saved.",
    pending_note: "You have not confirmed the subscription yet: use the link in the confirmation email.",
    unsubscribed_note: "You are unsubscribed, so you get no email. Your choices are saved all the same. To start again, subscribe with the form on the front page.",
    unsubscribe_link: "Unsubscribe",

    unsubscribe_heading: "Unsubscribe",
    unsubscribe_text: "Press the button to stop receiving the newsletter at",
    unsubscribe_button: "Unsubscribe",
    unsubscribed_heading: "You are unsubscribed",
    unsubscribed_text: "You will get no more newsletters from us. Changed your mind? You can subscribe again on the front page.",

    archive_heading: "Archive",
    archive_intro: "Every edition of the newsletters, newest first.",
    no_editions: "No editions yet.",
    stories_count: "stories",
    back_to_archive: "Back to the archive",
    edition_empty: "This edition holds no stories.",
    edition_sent: "Sent",

    not_found_heading: "Page not found",
    not_found_text: "There is no page at this address.",
    error_heading: "Something went wrong",
    error_text: "An error occurred on our side. Please try again in a moment.",
    too_large_heading: "Too much data",
    too_large_text: "The form held more than we accept. Reload the page and try again.",
    bad_request_heading: "Bad request",
    bad_request_text: "We could not read what was sent. Reload the page and try again.",
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn the_query_wins_then_accept_language_then_the_site() {
        let none = HeaderMap::new();
        assert_eq!(choose(Some("en"), &accept("sv"), "sv"), Lang::En);
        assert_eq!(choose(Some("xx"), &accept("en-GB"), "sv"), Lang::En);
        assert_eq!(
            choose(None, &accept("de, sv;q=0.5, en;q=0.8"), "sv"),
            Lang::En
        );
        assert_eq!(
            choose(None, &accept("sv-SE,sv;q=0.9,en;q=0.8"), "en"),
            Lang::Sv
        );
        assert_eq!(choose(None, &accept("de, fr"), "sv"), Lang::Sv);
        assert_eq!(choose(None, &accept("en;q=0"), "sv"), Lang::Sv);
        assert_eq!(choose(None, &none, "en"), Lang::En);
        assert_eq!(choose(None, &none, "fi"), Lang::En);
    }

    #[test]
    fn no_phrase_is_empty_or_holds_a_placeholder() {
        for lang in Lang::ALL {
            let serde_json::Value::Object(fields) = serde_json::to_value(words(lang)).unwrap()
            else {
                panic!("Words serializes as an object");
            };
            for (name, text) in fields {
                let text = text.as_str().unwrap();
                assert!(!text.is_empty(), "{name} is empty");
                assert!(!text.contains(['{', '}']), "{name}: {text}");
            }
        }
    }
}
