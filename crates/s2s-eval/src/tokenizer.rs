//! sacrebleu's `13a` tokeniser (mteval-v13a.pl as used by WMT) and Python's whitespace rules.
//!
//! Mirrors `sacrebleu/tokenizers/tokenizer_13a.py` and `tokenizer_re.py` of sacrebleu 2.6.0.
//! The four regular expressions there are simple enough to be written as character scans with
//! exactly the left-to-right, non-overlapping semantics of Python's `re.sub`, which keeps this
//! crate free of a regex dependency.

/// Whether Python's `str.isspace()` is true for `c`.
///
/// This is the set `str.split()` and `str.rstrip()` use. It is Rust's
/// [`char::is_whitespace`] plus the ASCII separators U+001C..=U+001F, which Python counts
/// as whitespace and Unicode does not.
pub fn is_python_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Python's `s.split()` (no arguments): runs of whitespace separate words, and leading or
/// trailing whitespace yields no empty words.
pub fn python_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_python_whitespace)
        .filter(|word| !word.is_empty())
}

/// Python's `s.rstrip()` (no arguments).
pub fn python_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_python_whitespace)
}

/// Tokenises one segment exactly as sacrebleu's `Tokenizer13a` does; tokens are joined by
/// single spaces.
///
/// This is the tokeniser call alone. BLEU additionally applies Python's `rstrip()` to each
/// segment first (see [`crate::BleuStats::add`]).
pub fn tokenize_13a(line: &str) -> String {
    // Language-independent part of mteval-v13a.
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        // Order matters: "&amp;lt;" becomes "&lt;", not "<", exactly as in sacrebleu.
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {line} ").chars().collect();
    let chars = pad_symbols(&chars);
    let chars = split_pairs(
        &chars,
        |a, b| !is_digit(a) && is_period_or_comma(b),
        |a, b| [a, ' ', b, ' '],
    );
    let chars = split_pairs(
        &chars,
        |a, b| is_period_or_comma(a) && !is_digit(b),
        |a, b| [' ', a, ' ', b],
    );
    let chars = split_pairs(
        &chars,
        |a, b| is_digit(a) && b == '-',
        |a, b| [a, ' ', b, ' '],
    );
    let line: String = chars.into_iter().collect();
    python_split(&line).collect::<Vec<_>>().join(" ")
}

/// `[0-9]` in a Python `str` pattern: ASCII digits only.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn is_period_or_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// `re.sub(r'([\{-\~\[-\` -\&\(-\+\:-\@\/])', r' \1 ', line)`: every ASCII symbol except
/// `'`, `,`, `-` and `.` (and the space itself) gets a space on each side.
fn pad_symbols(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() * 2);
    for &c in chars {
        if matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/') {
            out.extend([' ', c, ' ']);
        } else {
            out.push(c);
        }
    }
    out
}

/// `re.sub` for a two-character pattern `(X)(Y)`: scans left to right and, after a match,
/// resumes behind both characters, so matches never overlap.
fn split_pairs(
    chars: &[char],
    is_match: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char) -> [char; 4],
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() + chars.len() / 2);
    let mut i = 0;
    while i < chars.len() {
        match chars.get(i + 1) {
            Some(&next) if is_match(chars[i], next) => {
                out.extend(replace(chars[i], next));
                i += 2;
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_ascii_separators() {
        assert!(is_python_whitespace('\u{1c}'));
        assert!(is_python_whitespace('\u{1f}'));
        assert!(is_python_whitespace('\u{a0}'));
        assert!(is_python_whitespace('\u{3000}'));
        assert!(!is_python_whitespace('\u{200b}'));
        assert!(!is_python_whitespace('\u{1b}'));
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            let python = c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
            assert_eq!(is_python_whitespace(c), python, "{:#x}", c as u32);
        }
    }

    #[test]
    fn split_and_rstrip_follow_python() {
        let words: Vec<&str> = python_split("  a\u{a0}b\tc\u{1c}d  ").collect();
        assert_eq!(words, ["a", "b", "c", "d"]);
        assert_eq!(python_split(" \u{2028} ").count(), 0);
        assert_eq!(python_rstrip("x \u{1d}\u{3000}\n"), "x");
    }

    #[test]
    fn tokenizes_like_13a() {
        assert_eq!(tokenize_13a("Hello, world."), "Hello , world .");
        assert_eq!(tokenize_13a("1,000.5 and 3.14."), "1,000.5 and 3.14 .");
        assert_eq!(tokenize_13a("5-3 a-b"), "5 - 3 a-b");
        assert_eq!(tokenize_13a("&quot;hi&quot; &amp;lt;"), "\" hi \" <");
        assert_eq!(tokenize_13a("it's (ok)"), "it's ( ok )");
        assert_eq!(tokenize_13a(""), "");
    }
}
