//! Choosing a torrent's files by pattern (`--only`): globs on the path inside the torrent, `/`-separated. `*`
//! matches any run of characters within one path component, `**` any run across components (slashes included),
//! `?` one character other than `/`, and `[abc]`, `[a-z]`, `[!abc]` one character of (or not of) a set. A pattern
//! without a `/` is matched against the file's name alone, wherever the file is (`*.mkv`), as rsync and
//! .gitignore do; one with a `/` against the whole path (`Season 1/*`).

/// How much a file is wanted: not at all (not created, not downloaded), or at one of three priorities; a piece
/// takes the highest of its files', and a piece of a higher priority is always started first (libtorrent's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    Skip,
    Low,
    #[default]
    Normal,
    High,
}

impl Priority {
    /// As the picker counts: 0 for [`Priority::Skip`], up to 3 for [`Priority::High`].
    #[must_use]
    pub fn level(self) -> u8 {
        match self {
            Priority::Skip => 0,
            Priority::Low => crate::picker::LOW,
            Priority::Normal => crate::picker::NORMAL,
            Priority::High => crate::picker::HIGH,
        }
    }

    fn of_level(level: u8) -> Priority {
        match level {
            0 => Priority::Skip,
            1 => Priority::Low,
            2 => Priority::Normal,
            _ => Priority::High,
        }
    }
}

/// A file's priority that threads read and write without a lock.
#[derive(Debug)]
pub(crate) struct AtomicPriority(std::sync::atomic::AtomicU8);

impl AtomicPriority {
    pub(crate) fn new(priority: Priority) -> AtomicPriority {
        AtomicPriority(std::sync::atomic::AtomicU8::new(priority.level()))
    }

    pub(crate) fn get(&self) -> Priority {
        Priority::of_level(self.0.load(std::sync::atomic::Ordering::Acquire))
    }

    pub(crate) fn set(&self, priority: Priority) {
        self.0.store(priority.level(), std::sync::atomic::Ordering::Release);
    }
}

/// One `--only` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePattern {
    text: String,
    /// Matched against the file's name alone.
    name_only: bool,
}

impl FilePattern {
    /// # Errors
    ///
    /// An empty pattern, or a `[` without its `]`, with the reason.
    pub fn parse(text: &str) -> Result<FilePattern, String> {
        if text.is_empty() {
            return Err("an empty pattern matches no file".into());
        }
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        while at < chars.len() {
            if chars[at] == '[' {
                at = class_end(&chars, at).ok_or_else(|| format!("{text:?}: a `[` has no `]`"))?;
            }
            at += 1;
        }
        let text = text.trim_start_matches('/').to_owned();
        Ok(FilePattern { name_only: !text.contains('/'), text })
    }

    /// Whether the file at `path` (inside the torrent, `/`-separated) is chosen.
    #[must_use]
    pub fn matches(&self, path: &str) -> bool {
        let subject = if self.name_only { path.rsplit('/').next().unwrap_or(path) } else { path };
        let pattern: Vec<char> = self.text.chars().collect();
        let subject: Vec<char> = subject.chars().collect();
        glob(&pattern, &subject)
    }
}

/// Each of `paths` at normal priority when a pattern chooses it, else skipped; the first pattern that chooses no
/// file at all is an error (the caller names it).
///
/// # Errors
///
/// A pattern that matches none of `paths`.
pub fn priorities_by<'p>(patterns: &'p [FilePattern], paths: &[String]) -> Result<Vec<Priority>, &'p FilePattern> {
    if let Some(unused) = patterns.iter().find(|pattern| !paths.iter().any(|path| pattern.matches(path))) {
        return Err(unused);
    }
    let chosen = |path: &String| patterns.iter().any(|pattern| pattern.matches(path));
    Ok(paths.iter().map(|path| if chosen(path) { Priority::Normal } else { Priority::Skip }).collect())
}

impl std::fmt::Display for FilePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Where the class opening at `open` closes (a `]` right after `[` or `[!` is a member, not the end).
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut at = open + 1;
    if chars.get(at) == Some(&'!') {
        at += 1;
    }
    if chars.get(at) == Some(&']') {
        at += 1;
    }
    (at..chars.len()).find(|&i| chars[i] == ']')
}

/// Whether `c` is in the class `chars[open..=close]`.
fn in_class(chars: &[char], open: usize, close: usize, c: char) -> bool {
    let mut at = open + 1;
    let negated = chars.get(at) == Some(&'!');
    if negated {
        at += 1;
    }
    let mut found = false;
    let mut first = true;
    while at < close && (first || chars[at] != ']') {
        first = false;
        if at + 2 < close && chars[at + 1] == '-' {
            found |= (chars[at]..=chars[at + 2]).contains(&c);
            at += 3;
        } else {
            found |= chars[at] == c;
            at += 1;
        }
    }
    found != negated
}

/// Iterative glob match with backtracking to the last star (one for `*`, one for `**`): O(pattern × subject) at
/// worst, never exponential.
fn glob(pattern: &[char], subject: &[char]) -> bool {
    let (mut p, mut s) = (0, 0);
    // The last `*` (pattern position after it, subject position it matched up to) and whether it was `**`.
    let mut star: Option<(usize, usize, bool)> = None;
    while s < subject.len() {
        if p < pattern.len() && pattern[p] == '*' {
            let double = pattern.get(p + 1) == Some(&'*');
            p += if double { 2 } else { 1 };
            star = Some((p, s, double));
            continue;
        }
        let step = match pattern.get(p) {
            Some('?') => (subject[s] != '/').then_some(1),
            Some('[') => match class_end(pattern, p) {
                Some(close) if subject[s] != '/' && in_class(pattern, p, close, subject[s]) => Some(close + 1 - p),
                _ => None,
            },
            Some(&c) => (c == subject[s]).then_some(1),
            None => None,
        };
        if let Some(width) = step {
            p += width;
            s += 1;
            continue;
        }
        // Give the last star one more character, if it may take it.
        match star {
            Some((after, taken, double)) if double || subject[taken] != '/' => {
                star = Some((after, taken + 1, double));
                p = after;
                s = taken + 1;
            }
            _ => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(pattern: &str, path: &str) -> bool {
        FilePattern::parse(pattern).expect("a valid pattern").matches(path)
    }

    #[test]
    fn golden_matches() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.mkv", "Season 1/e01.mkv", true),
            ("*.mkv", "e01.mkv", true),
            ("*.mkv", "Season 1/e01.srt", false),
            ("e0?.mkv", "Season 1/e01.mkv", true),
            ("e0?.mkv", "Season 1/e10.mkv", false),
            ("Season 1/*", "Season 1/e01.mkv", true),
            ("Season 1/*", "Season 1/extras/making-of.mkv", false),
            ("Season 1/**", "Season 1/extras/making-of.mkv", true),
            ("**/extras/*", "Season 1/extras/making-of.mkv", true),
            ("/Season 1/*", "Season 1/e01.mkv", true),
            ("*", "anything at all", true),
            ("e[0-1][!2]*", "e01.mkv", true),
            ("e[0-1][!2]*", "e02.mkv", false),
            ("e[]]x", "e]x", true),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("a/**b", "a/x/y/b", true),
            ("a**b", "a/b", false),
            ("readme", "README", false),
            ("", "x", false),
        ];
        for &(pattern, path, expected) in cases {
            let got = FilePattern::parse(pattern).is_ok_and(|pattern| pattern.matches(path));
            assert_eq!(got, expected, "{pattern:?} on {path:?}");
        }
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        assert!(FilePattern::parse("").expect_err("empty").contains("empty"));
        assert!(FilePattern::parse("e[01.mkv").expect_err("open class").contains("no `]`"));
    }

    #[test]
    fn a_pathological_pattern_ends() {
        // Backtracking to the last star only: a naive recursive matcher would take ages on this.
        assert!(!chosen("*a*a*a*a*a*a*a*a*a*a*b", &"a".repeat(4096)));
        assert!(chosen("x/**a**a**a**a**b", &format!("x/{}b", "a/".repeat(2048))));
    }

    #[test]
    fn every_file_no_pattern_chooses_is_skipped_and_an_unused_pattern_is_named() {
        let paths: Vec<String> = ["a/one.mkv", "a/one.srt", "b/two.mkv"].iter().map(|p| (*p).to_owned()).collect();
        let patterns = [FilePattern::parse("*.mkv").expect("valid")];
        assert_eq!(priorities_by(&patterns, &paths), Ok(vec![Priority::Normal, Priority::Skip, Priority::Normal]));
        let patterns = [FilePattern::parse("*.mkv").expect("valid"), FilePattern::parse("*.nfo").expect("valid")];
        assert_eq!(priorities_by(&patterns, &paths).map_err(ToString::to_string), Err("*.nfo".to_owned()));
    }
}
