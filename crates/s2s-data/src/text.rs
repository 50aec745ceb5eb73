//! Plain-text rules shared by every s2s command: how text files are read (a leading UTF-8
//! byte-order mark is not text) and how a hypothesis is written when one line must hold it.

use std::borrow::Cow;
use std::path::Path;

use crate::DataError;

/// The UTF-8 byte-order mark (U+FEFF) some editors put at the start of a file.
pub const BOM: char = '\u{feff}';

/// `text` without one leading byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// Reads a UTF-8 text file, dropping a leading byte-order mark: the one way s2s reads configs,
/// pair files and generate/eval inputs.
///
/// # Errors
/// [`DataError::Io`] naming `path` when it cannot be read or is not UTF-8.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match text.strip_prefix(BOM) {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// Whether `c` ends a line for some reader: `\n`, `\r`, vertical tab, form feed, NEL (U+0085),
/// the ASCII file/group/record separators (U+001C–U+001E), NEL (U+0085) and the Unicode line
/// and paragraph separators (U+2028, U+2029): everything Python's `str.splitlines` splits on.
pub fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{0B}'
            | '\u{0C}'
            | '\u{1C}'
            | '\u{1D}'
            | '\u{1E}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// `text` on one line: each run of line-break characters ([`is_line_break`]) becomes one space,
/// so output line i always belongs to input line i. Text without a line break is borrowed as
/// is. The JSON outputs keep the exact text instead.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.contains(is_line_break) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_break = false;
    for c in text.chars() {
        if is_line_break(c) {
            if !in_break {
                out.push(' ');
            }
            in_break = true;
        } else {
            out.push(c);
            in_break = false;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kind_of_line_break_becomes_one_space_per_run() {
        assert_eq!(one_line("a\nb"), "a b");
        assert_eq!(one_line("a\r\nb"), "a b");
        assert_eq!(one_line("a\r\n\n\rb\n"), "a b ");
        for c in [
            '\n', '\r', '\u{0B}', '\u{0C}', '\u{1C}', '\u{1D}', '\u{1E}', '\u{85}', '\u{2028}',
            '\u{2029}',
        ] {
            let text = format!("x{c}y{c}{c}z");
            assert_eq!(one_line(&text), "x y z", "{c:?}");
            assert_eq!(one_line(&text).lines().count(), 1);
        }
        assert!(matches!(
            one_line("no break\there"),
            Cow::Borrowed("no break\there")
        ));
        assert_eq!(one_line(""), "");
    }

    #[test]
    fn a_leading_bom_is_not_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.txt");
        std::fs::write(&path, "\u{feff}first\n\u{feff}second\n").unwrap();
        // only the leading mark goes; one inside the text is text
        assert_eq!(read_text(&path).unwrap(), "first\n\u{feff}second\n");
        assert_eq!(strip_bom("\u{feff}x"), "x");
        assert_eq!(strip_bom("x"), "x");
        let err = read_text(&dir.path().join("missing.txt")).unwrap_err();
        assert!(err.to_string().contains("missing.txt"), "{err}");
    }
}
