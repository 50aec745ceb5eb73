//! The Porter stemmer as NLTK 3.9.1's `PorterStemmer()` runs it by default, which is the
//! stemmer rouge-score 0.1.2 uses with `use_stemmer=True`.
//!
//! Our own Rust port of `nltk/stem/porter.py` from NLTK 3.9.1 (Apache-2.0,
//! <https://github.com/nltk/nltk/blob/3.9.1/nltk/stem/porter.py>) in its default mode,
//! `NLTK_EXTENSIONS`. That mode is neither Porter's 1980 paper nor Snowball's "porter" or
//! "english" stemmers (what the `rust-stemmers` crate implements), so their stems differ on
//! common words: NLTK stems `generously` to `gener`, `dying` to `die` and `sky` to `sky`.
//! NLTK's additions to the paper, all reproduced here:
//!
//! - a pool of irregular forms (`skies` → `sky`, `dying` → `die`, `news` → `news`,
//!   `innings` → `inning`, `proceed`/`exceed`/`succeed` unchanged, …), looked up *before*
//!   lowercasing, so `SKIES` is not irregular and stems to `ski`;
//! - words of at most two characters are only lowercased;
//! - step 1a: `-ies` of a 4-letter word becomes `-ie` (`dies` → `die`, `flies` → `fli`);
//! - step 1b: `-ied` becomes `-ie` in a 4-letter word and `-i` otherwise, before the other
//!   rules; condition *o also holds for a 2-letter vowel–consonant stem;
//! - step 1c: `y` → `i` only after a consonant that is not the word's first letter
//!   (`happy` → `happi`, `enjoy` and `sky` unchanged);
//! - step 2: `-alli` → `-al` is tried first and step 2 re-run on the result; `-bli` → `-ble`
//!   instead of `-abli` → `-able`; extra rules `-fulli` → `-ful` and `-logi` → `-log`, whose
//!   measure counts the `l` (so `geologi` → `geolog`).
//!
//! The steps work on characters (Unicode scalar values), as Python's `str` indexing does, so
//! any string stems as NLTK stems it; rouge-score only ever passes lowercase `[a-z0-9]+` words
//! longer than three characters.

/// A word being stemmed: lowercase characters.
type Word = Vec<char>;

/// A rule's condition, evaluated on the stem left once the suffix is removed.
type Condition = fn(&[char]) -> bool;

/// The stem of `word` as NLTK 3.9.1's `PorterStemmer().stem(word)` computes it.
///
/// The word is lowercased first (`str::to_lowercase`, Python's `str.lower()` up to Unicode
/// version differences).
///
/// ```
/// use s2s_eval::porter_stem;
///
/// assert_eq!(porter_stem("generously"), "gener");
/// assert_eq!(porter_stem("relational"), "relat");
/// assert_eq!(porter_stem("skies"), "sky");
/// assert_eq!(porter_stem("SKIES"), "ski");
/// assert_eq!(porter_stem("happy"), "happi");
/// ```
pub fn porter_stem(word: &str) -> String {
    // NLTK checks the pool with the word as given, before lowercasing it.
    if let Some(stem) = irregular_form(word) {
        return stem.to_string();
    }
    let lower = word.to_lowercase();
    // NLTK tests the length of the word as given, in characters.
    if word.chars().count() <= 2 {
        return lower;
    }
    let mut stem: Word = lower.chars().collect();
    step1a(&mut stem);
    step1b(&mut stem);
    step1c(&mut stem);
    step2(&mut stem);
    step3(&mut stem);
    step4(&mut stem);
    step5a(&mut stem);
    step5b(&mut stem);
    stem.into_iter().collect()
}

/// NLTK's table of irregular forms ("errors actually drawn to Martin Porter's attention over
/// a 20 year period"), inverted: form → stem.
fn irregular_form(word: &str) -> Option<&'static str> {
    Some(match word {
        "sky" | "skies" => "sky",
        "dying" => "die",
        "lying" => "lie",
        "tying" => "tie",
        "news" => "news",
        "innings" | "inning" => "inning",
        "outings" | "outing" => "outing",
        "cannings" | "canning" => "canning",
        "howe" => "howe",
        "proceed" => "proceed",
        "exceed" => "exceed",
        "succeed" => "succeed",
        _ => return None,
    })
}

/// Whether each letter of `word` is a consonant in Porter's sense: not a, e, i, o, u, and not
/// a `y` that follows a consonant (a leading `y` is a consonant).
fn consonants(word: &[char]) -> impl Iterator<Item = bool> + '_ {
    let mut previous_is_consonant = false;
    word.iter().enumerate().map(move |(i, &c)| {
        let is_consonant = match c {
            'a' | 'e' | 'i' | 'o' | 'u' => false,
            'y' => i == 0 || !previous_is_consonant,
            _ => true,
        };
        previous_is_consonant = is_consonant;
        is_consonant
    })
}

fn is_consonant(word: &[char], i: usize) -> bool {
    consonants(&word[..=i]).last().unwrap_or(false)
}

/// Porter's measure m of `[C](VC){m}[V]`: how many vowel→consonant transitions `word` has.
fn measure(word: &[char]) -> usize {
    let mut previous_is_vowel = false;
    let mut m = 0;
    for is_consonant in consonants(word) {
        if is_consonant && previous_is_vowel {
            m += 1;
        }
        previous_is_vowel = !is_consonant;
    }
    m
}

fn positive_measure(stem: &[char]) -> bool {
    measure(stem) > 0
}

fn measure_above_1(stem: &[char]) -> bool {
    measure(stem) > 1
}

fn always(_: &[char]) -> bool {
    true
}

/// Condition *v*: the stem contains a vowel.
fn contains_vowel(word: &[char]) -> bool {
    consonants(word).any(|is_consonant| !is_consonant)
}

/// Condition *d: the word ends with a double consonant.
fn ends_double_consonant(word: &[char]) -> bool {
    let n = word.len();
    n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1)
}

/// Condition *o: the word ends consonant–vowel–consonant and the last is not w, x or y; NLTK
/// also accepts a two-letter word vowel–consonant.
fn ends_cvc(word: &[char]) -> bool {
    let n = word.len();
    let cvc = n >= 3
        && is_consonant(word, n - 3)
        && !is_consonant(word, n - 2)
        && is_consonant(word, n - 1)
        && !matches!(word[n - 1], 'w' | 'x' | 'y');
    cvc || (n == 2 && !is_consonant(word, 0) && is_consonant(word, 1))
}

fn ends_with(word: &[char], suffix: &str) -> bool {
    let n = suffix.chars().count();
    word.len() >= n && word[word.len() - n..].iter().copied().eq(suffix.chars())
}

/// Replaces the last `suffix_len` characters of `word` by `replacement`.
fn replace_suffix(word: &mut Word, suffix_len: usize, replacement: &str) {
    word.truncate(word.len() - suffix_len);
    word.extend(replacement.chars());
}

/// NLTK's `_apply_rule_list`: the first rule whose suffix the word ends with decides. If its
/// condition holds on what precedes the suffix, the suffix is replaced; either way no later
/// rule is tried.
fn apply_first_rule(word: &mut Word, rules: &[(&str, &str, Condition)]) {
    for &(suffix, replacement, condition) in rules {
        if ends_with(word, suffix) {
            let suffix_len = suffix.chars().count();
            if condition(&word[..word.len() - suffix_len]) {
                replace_suffix(word, suffix_len, replacement);
            }
            return;
        }
    }
}

/// Step 1a: plurals (`caresses` → `caress`, `ponies` → `poni`, `cats` → `cat`).
fn step1a(word: &mut Word) {
    if word.len() == 4 && ends_with(word, "ies") {
        replace_suffix(word, 3, "ie");
        return;
    }
    apply_first_rule(
        word,
        &[
            ("sses", "ss", always),
            ("ies", "i", always),
            ("ss", "ss", always),
            ("s", "", always),
        ],
    );
}

/// Step 1b: `-eed`, `-ed`, `-ing` (`agreed` → `agree`, `plastered` → `plaster`,
/// `hopping` → `hop`, `filing` → `file`).
fn step1b(word: &mut Word) {
    if ends_with(word, "ied") {
        let replacement = if word.len() == 4 { "ie" } else { "i" };
        replace_suffix(word, 3, replacement);
        return;
    }
    if ends_with(word, "eed") {
        if positive_measure(&word[..word.len() - 3]) {
            replace_suffix(word, 3, "ee");
        }
        return;
    }
    for suffix in ["ed", "ing"] {
        if ends_with(word, suffix) && contains_vowel(&word[..word.len() - suffix.len()]) {
            word.truncate(word.len() - suffix.len());
            tidy_after_ed_or_ing(word);
            return;
        }
    }
}

/// Step 1b's second part, on what `-ed` or `-ing` left: restore an `e` the suffix ate, or
/// undouble a final consonant.
fn tidy_after_ed_or_ing(stem: &mut Word) {
    if ends_with(stem, "at") || ends_with(stem, "bl") || ends_with(stem, "iz") {
        stem.push('e');
        return;
    }
    let n = stem.len();
    if ends_double_consonant(stem) {
        if !matches!(stem[n - 1], 'l' | 's' | 'z') {
            stem.pop();
        }
        return;
    }
    // NLTK writes the double-consonant rule with the suffix "*d" and, when the stem does not
    // end with a double consonant, also tries "*d" as a literal suffix: `xa*d` becomes `xad`.
    // Unreachable from rouge-score's tokens; kept so that any string stems as in NLTK.
    if ends_with(stem, "*d") {
        replace_suffix(stem, 2, "d");
        return;
    }
    if measure(stem) == 1 && ends_cvc(stem) {
        stem.push('e');
    }
}

/// Step 1c: `y` → `i` after a consonant that is not the first letter (`happy` → `happi`).
fn step1c(word: &mut Word) {
    apply_first_rule(
        word,
        &[("y", "i", |stem| {
            stem.len() > 1 && is_consonant(stem, stem.len() - 1)
        })],
    );
}

/// Step 2: double suffixes to single ones (`relational` → `relate`,
/// `hopefulness` → `hopeful`).
fn step2(word: &mut Word) {
    if ends_with(word, "alli") && positive_measure(&word[..word.len() - 4]) {
        replace_suffix(word, 4, "al");
        step2(word);
        return;
    }
    apply_first_rule(
        word,
        &[
            ("ational", "ate", positive_measure),
            ("tional", "tion", positive_measure),
            ("enci", "ence", positive_measure),
            ("anci", "ance", positive_measure),
            ("izer", "ize", positive_measure),
            ("bli", "ble", positive_measure),
            ("alli", "al", positive_measure),
            ("entli", "ent", positive_measure),
            ("eli", "e", positive_measure),
            ("ousli", "ous", positive_measure),
            ("ization", "ize", positive_measure),
            ("ation", "ate", positive_measure),
            ("ator", "ate", positive_measure),
            ("alism", "al", positive_measure),
            ("iveness", "ive", positive_measure),
            ("fulness", "ful", positive_measure),
            ("ousness", "ous", positive_measure),
            ("aliti", "al", positive_measure),
            ("iviti", "ive", positive_measure),
            ("biliti", "ble", positive_measure),
            ("fulli", "ful", positive_measure),
            // NLTK measures the stem with the `l` of `logi`, so that `geo-`, `theo-` count.
            ("logi", "log", |stem| {
                positive_measure(&[stem, &['l']].concat())
            }),
        ],
    );
}

/// Step 3: `-icate`, `-ative`, `-alize`, `-iciti`, `-ical`, `-ful`, `-ness`.
fn step3(word: &mut Word) {
    apply_first_rule(
        word,
        &[
            ("icate", "ic", positive_measure),
            ("ative", "", positive_measure),
            ("alize", "al", positive_measure),
            ("iciti", "ic", positive_measure),
            ("ical", "ic", positive_measure),
            ("ful", "", positive_measure),
            ("ness", "", positive_measure),
        ],
    );
}

/// Step 4: drops a last suffix from stems of measure > 1 (`adjustment` → `adjust`).
fn step4(word: &mut Word) {
    apply_first_rule(
        word,
        &[
            ("al", "", measure_above_1),
            ("ance", "", measure_above_1),
            ("ence", "", measure_above_1),
            ("er", "", measure_above_1),
            ("ic", "", measure_above_1),
            ("able", "", measure_above_1),
            ("ible", "", measure_above_1),
            ("ant", "", measure_above_1),
            ("ement", "", measure_above_1),
            ("ment", "", measure_above_1),
            ("ent", "", measure_above_1),
            ("ion", "", |stem| {
                measure_above_1(stem) && matches!(stem.last(), Some('s' | 't'))
            }),
            ("ou", "", measure_above_1),
            ("ism", "", measure_above_1),
            ("ate", "", measure_above_1),
            ("iti", "", measure_above_1),
            ("ous", "", measure_above_1),
            ("ive", "", measure_above_1),
            ("ize", "", measure_above_1),
        ],
    );
}

/// Step 5a: a final `e` goes when m > 1, or m = 1 and the stem does not end cvc
/// (`probate` → `probat`, `cease` → `ceas`, `rate` unchanged). Both conditions are tried,
/// which is why NLTK does not write it as a rule list.
fn step5a(word: &mut Word) {
    if ends_with(word, "e") {
        let stem = &word[..word.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            word.pop();
        }
    }
}

/// Step 5b: `-ll` → `-l` when the word without its last `l` has m > 1 (`controll` → `control`).
fn step5b(word: &mut Word) {
    apply_first_rule(
        word,
        &[("ll", "l", |stem| measure_above_1(&[stem, &['l']].concat()))],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Word {
        s.chars().collect()
    }

    #[test]
    fn measure_follows_the_paper_examples() {
        for word in ["tr", "ee", "tree", "y", "by"] {
            assert_eq!(measure(&chars(word)), 0, "{word}");
        }
        for word in ["trouble", "oats", "trees", "ivy"] {
            assert_eq!(measure(&chars(word)), 1, "{word}");
        }
        for word in ["troubles", "private", "oaten", "orrery"] {
            assert_eq!(measure(&chars(word)), 2, "{word}");
        }
    }

    #[test]
    fn y_is_a_consonant_only_after_a_vowel_or_first() {
        // toy: t, o, y -> c v c; syzygy: s y z y g y -> c v c v c v.
        let flags: Vec<bool> = consonants(&chars("syzygy")).collect();
        assert_eq!(flags, [true, false, true, false, true, false]);
        assert!(is_consonant(&chars("toy"), 2));
        assert!(is_consonant(&chars("yes"), 0));
        assert!(!is_consonant(&chars("yyy"), 1));
        assert!(is_consonant(&chars("yyy"), 2));
    }

    #[test]
    fn stems_the_papers_examples_and_nltks_special_cases() {
        for (word, stem) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "tie"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("enjoy", "enjoy"),
            ("relational", "relat"),
            ("generously", "gener"),
            ("dying", "die"),
            ("lying", "lie"),
            ("news", "news"),
            ("innings", "inning"),
            ("proceed", "proceed"),
            ("exceed", "exceed"),
            ("proceeding", "proceed"),
            ("spied", "spi"),
            ("died", "die"),
            ("flies", "fli"),
            ("is", "is"),
            ("IS", "is"),
            ("DYING", "dy"),
            ("xa*ding", "xad"),
            ("1990s", "1990"),
        ] {
            assert_eq!(porter_stem(word), stem, "{word}");
        }
    }
}
