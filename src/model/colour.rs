//! Colours as the pages (and the emails) use the site's accent: sRGB
//! values, their relative luminance and contrast ratio (WCAG 2), and the
//! readable colours derived from one accent — the text to put on it, and
//! the shade of it that links may use on a light or a dark background.

use std::fmt;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// White, the light pages' background.
pub const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
/// The near-black of text on a light accent.
pub const NEAR_BLACK: Rgb = Rgb(0x11, 0x11, 0x11);
const BLACK: Rgb = Rgb(0, 0, 0);

/// WCAG 2's minimum contrast for body text (AA).
pub const TEXT_CONTRAST: f64 = 4.5;

impl Rgb {
    /// `#rrggbb` or `#rgb` (any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Rgb> {
        let hex = s.trim().strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).ok();
        match hex.len() {
            6 => {
                let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
                Some(Rgb(byte(0)?, byte(2)?, byte(4)?))
            }
            3 => Some(Rgb(digit(0)? * 17, digit(1)? * 17, digit(2)? * 17)),
            _ => None,
        }
    }

    /// Relative luminance (WCAG 2), 0 for black to 1 for white.
    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0) + 0.7152 * channel(self.1) + 0.0722 * channel(self.2)
    }

    /// The contrast ratio of two colours, 1 to 21.
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }

    /// This colour moved `t` (0 to 1) of the way towards `to`.
    fn mix(self, to: Rgb, t: f64) -> Rgb {
        let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(m(self.0, to.0), m(self.1, to.1), m(self.2, to.2))
    }

    /// The text colour to write on this one: white on a dark colour,
    /// near-black on a light one, and for a mid-tone where neither reaches
    /// 4.5:1 the better of white and black (one of which always does).
    pub fn text_on(self) -> Rgb {
        let (white, near_black) = (self.contrast(WHITE), self.contrast(NEAR_BLACK));
        if white >= near_black && white >= TEXT_CONTRAST {
            WHITE
        } else if near_black >= TEXT_CONTRAST {
            NEAR_BLACK
        } else if white >= self.contrast(BLACK) {
            WHITE
        } else {
            BLACK
        }
    }

    /// This colour, or the nearest shade of it (towards black on a light
    /// background, towards white on a dark one) that reads as text on
    /// every one of `backgrounds` at `min` contrast or more.
    pub fn readable_on(self, backgrounds: &[Rgb], min: f64) -> Rgb {
        let light = backgrounds.iter().map(|b| b.luminance()).sum::<f64>()
            / backgrounds.len().max(1) as f64
            > 0.18;
        let towards = if light { BLACK } else { WHITE };
        (0..=20)
            .map(|step| self.mix(towards, f64::from(step) / 20.0))
            .find(|c| backgrounds.iter().all(|b| c.contrast(*b) >= min))
            .unwrap_or(towards)
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_prints_six_digits() {
        assert_eq!(Rgb::parse("#1D5C8F"), Some(Rgb(0x1d, 0x5c, 0x8f)));
        assert_eq!(Rgb::parse("#abc"), Some(Rgb(0xaa, 0xbb, 0xcc)));
        assert_eq!(Rgb::parse("#abc").unwrap().to_string(), "#aabbcc");
        for bad in ["1d5c8f", "#12345", "#12345g", "red", "#+1+2+3"] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn contrast_follows_wcag() {
        assert!((WHITE.contrast(BLACK) - 21.0).abs() < 1e-9);
        assert!((WHITE.contrast(WHITE) - 1.0).abs() < 1e-9);
        // The default accent on white: about 7:1.
        let accent = Rgb::parse("#1d5c8f").unwrap();
        assert!((6.9..7.2).contains(&accent.contrast(WHITE)));
    }

    #[test]
    fn text_on_an_accent_is_always_readable() {
        assert_eq!(Rgb::parse("#1d5c8f").unwrap().text_on(), WHITE);
        assert_eq!(Rgb::parse("#ffcc00").unwrap().text_on(), NEAR_BLACK);
        // Every grey, the hardest case, reaches 4.5:1 one way or the other.
        for v in 0..=255u8 {
            let c = Rgb(v, v, v);
            assert!(c.contrast(c.text_on()) >= TEXT_CONTRAST, "{c}");
        }
    }

    #[test]
    fn links_take_a_readable_shade_of_the_accent() {
        let soft = Rgb(0xf3, 0xf5, 0xf7);
        let dark = Rgb(0x16, 0x16, 0x16);
        let accent = Rgb::parse("#1d5c8f").unwrap();
        assert_eq!(accent.readable_on(&[WHITE, soft], TEXT_CONTRAST), accent);
        let yellow = Rgb::parse("#ffcc00").unwrap();
        let link = yellow.readable_on(&[WHITE, soft], TEXT_CONTRAST);
        assert_ne!(link, yellow);
        assert!(link.contrast(soft) >= TEXT_CONTRAST);
        let night = accent.readable_on(&[dark], TEXT_CONTRAST);
        assert!(night.contrast(dark) >= TEXT_CONTRAST);
        assert!(night.luminance() > accent.luminance());
    }
}
