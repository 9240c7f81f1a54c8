//! An email's rendered parts and the two steps every email of tidings
//! takes on its way from a template to a message: a subject made one
//! header line, and CSS inlined for mail clients.

use crate::model::colour::{Rgb, TEXT_CONTRAST, WHITE};
use anyhow::Result;

/// The email's parts, ready for [`super::message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line: no CR, LF or other control characters.
    pub subject: String,
    /// With CSS inlined.
    pub html: String,
    pub text: String,
}

/// Control characters (CR and LF among them) become spaces and runs of
/// white space one space: whatever the config or a period holds, a header
/// made of this never breaks into a second line.
pub fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Moves the `<style>` rules into `style` attributes, which is what most
/// mail clients read; `@media` rules (dark mode, narrow screens) cannot be
/// inlined and stay in a `<style>` in `<head>`.
pub fn inline_css(html: &str) -> Result<String> {
    css_inline::CSSInliner::options()
        .keep_style_tags(false)
        .keep_at_rules(true)
        .keep_link_tags(false)
        .load_remote_stylesheets(false)
        .build()
        .inline(html)
        .map_err(anyhow::Error::new)
}

/// Renders a notice — an email of its own kind, one at a time, such as
/// the confirmation of a sign-up — from its HTML and text templates (read
/// at each call, so an edited template takes effect at once) and `vars`.
pub fn notice(
    config: &crate::config::Config,
    (html, text): (&str, &str),
    subject: String,
    vars: &impl serde::Serialize,
) -> Result<Rendered> {
    let templates = crate::templates::Templates::load(config, &[html, text])?;
    let context = tera::Context::from_serialize(vars).map_err(anyhow::Error::new)?;
    let html = inline_css(&templates.render(html, &context)?)?;
    let text = templates.render(text, &context)?;
    Ok(Rendered {
        subject,
        html,
        text,
    })
}

/// The colour of text on a button of `accent` (`#rrggbb`): white or near
/// black, whichever reads better ([`Rgb::text_on`]).
pub fn text_on(accent: &str) -> String {
    Rgb::parse(accent).map_or_else(|| "#ffffff".to_owned(), |c| c.text_on().to_string())
}

/// `accent` as a link colour on a white page: itself, or the nearest
/// darker shade that reaches WCAG's 4.5:1 ([`Rgb::readable_on`]).
pub fn link_on_white(accent: &str) -> String {
    Rgb::parse(accent).map_or_else(
        || accent.to_owned(),
        |c| c.readable_on(&[WHITE], TEXT_CONTRAST).to_string(),
    )
}
