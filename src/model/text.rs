//! Text as every input is cleaned: characters that XML (and so every
//! feed) does not allow removed, one-line fields folded to one line.

/// Removes characters XML 1.0 does not allow (C0 controls other than tab,
/// line feed and carriage return, U+FFFE and U+FFFF) and the C1 controls
/// that validators flag. Borrows when there is nothing to remove.
pub fn strip_illegal_chars(s: &str) -> std::borrow::Cow<'_, str> {
    fn illegal(c: char) -> bool {
        matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}')
    }
    // The same test on the UTF-8 bytes, which is several times faster than
    // decoding characters: the C0 controls and DEL are single bytes, the
    // C1 controls are C2 80..C2 9F, and U+FFFE, U+FFFF are EF BF BE/BF.
    let b = s.as_bytes();
    let exact = |from: usize, to: usize| {
        (from..to).any(|i| match b[i] {
            0..=8 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F => true,
            0xC2 => matches!(b.get(i + 1), Some(0x80..=0x9F)),
            0xEF => b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)),
            _ => false,
        })
    };
    // First a coarse test, 64 bytes at a time and without branches (the
    // compiler makes it SIMD): any byte that may start something illegal.
    // Only a block that has one is looked at closely; most text has none.
    let suspect = |c: u8| {
        (c < 0x20 && c != b'\t' && c != b'\n' && c != b'\r')
            | (c == 0x7F)
            | (c == 0xC2)
            | (c == 0xEF)
    };
    let any = b.chunks(64).enumerate().any(|(n, block)| {
        block.iter().fold(false, |acc, &c| acc | suspect(c)) && exact(n * 64, n * 64 + block.len())
    });
    if any {
        std::borrow::Cow::Owned(s.chars().filter(|&c| !illegal(c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Plain text for a one-line field (title, summary, author): illegal
/// characters removed and runs of whitespace folded to one space.
pub fn clean_line(s: &str) -> String {
    strip_illegal_chars(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
