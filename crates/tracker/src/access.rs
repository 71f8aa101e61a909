//! Access lists (opentracker's `-w`/`-b` files, aquatic's `access_list`): which info-hashes the tracker answers.
//!
//! A list file holds one hex info-hash a line: 40 digits for a v1 SHA-1, or 64 for a v2 SHA-256, of which the
//! first 20 bytes count, since v2 clients announce the truncated hash (BEP 52). Either case; `#` starts a comment,
//! blank lines are skipped and whitespace around a hash is ignored. Pure: the caller reads the file
//! ([`crate::access_file`] watches it) and hands the bytes to [`AccessList::parse`].
//!
//! The check runs for every announce and every scraped hash, on every worker: [`Access::permits`] is one match
//! and, with a list, one hash-set lookup.

use std::collections::HashSet;

/// The reply, over UDP (BEP 15 error) and HTTP (`failure reason`), to an announce for a refused info-hash.
pub const NOT_ALLOWED: &str = "info-hash is not allowed";

/// Hex digits of a v1 info-hash (SHA-1).
const V1_DIGITS: usize = 40;
/// Hex digits of a v2 info-hash (SHA-256), announced truncated to 20 bytes.
const V2_DIGITS: usize = 64;

/// The info-hashes of one list file.
#[derive(Debug, Clone, Default)]
pub struct AccessList {
    hashes: HashSet<[u8; 20], ahash::RandomState>,
}

impl AccessList {
    /// Parses a list file's bytes (see the module doc). The first bad line is the error, so that a typo never
    /// leaves a hash silently refused or served.
    pub fn parse(text: &[u8]) -> Result<AccessList, AccessListError> {
        let mut hashes = HashSet::with_hasher(ahash::RandomState::new());
        for (index, raw) in text.split(|&byte| byte == b'\n').enumerate() {
            let line = index + 1;
            let uncommented = raw.iter().position(|&byte| byte == b'#').map_or(raw, |at| &raw[..at]);
            let digits = uncommented.trim_ascii();
            if digits.is_empty() {
                continue;
            }
            let indent = uncommented.len() - uncommented.trim_ascii_start().len();
            if let Some(at) = digits.iter().position(|byte| !byte.is_ascii_hexdigit()) {
                let problem = LineProblem::NotHex { column: indent + at + 1, byte: digits[at] };
                return Err(AccessListError { line, problem });
            }
            if digits.len() != V1_DIGITS && digits.len() != V2_DIGITS {
                return Err(AccessListError { line, problem: LineProblem::BadLength(digits.len()) });
            }
            let mut hash = [0u8; 20];
            for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
                *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
            }
            hashes.insert(hash);
        }
        Ok(AccessList { hashes })
    }

    pub fn contains(&self, info_hash: &[u8; 20]) -> bool {
        self.hashes.contains(info_hash)
    }

    /// Distinct info-hashes (a v2 hash counts as its first 20 bytes).
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// The value of an ASCII hex digit; the caller has checked it is one.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Which info-hashes the tracker answers, on top of what it serves anyway (open mode or named torrents).
#[derive(Debug, Clone, Default)]
pub enum Access {
    /// No list: every hash the mode serves.
    #[default]
    Everyone,
    /// `--allow`: only these (and, with named torrents and no --open, only those of them that are named).
    Allow(AccessList),
    /// `--deny`: every hash but these.
    Deny(AccessList),
}

impl Access {
    /// Whether announces and scrapes for `info_hash` get an answer.
    #[inline]
    pub fn permits(&self, info_hash: &[u8; 20]) -> bool {
        match self {
            Access::Everyone => true,
            Access::Allow(list) => list.contains(info_hash),
            Access::Deny(list) => !list.contains(info_hash),
        }
    }

    /// The list's hash count, for logs; `None` without a list.
    pub fn listed(&self) -> Option<usize> {
        match self {
            Access::Everyone => None,
            Access::Allow(list) | Access::Deny(list) => Some(list.len()),
        }
    }
}

/// A line of a list file that is not an info-hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct AccessListError {
    /// 1-based.
    pub line: usize,
    pub problem: LineProblem,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// Hex, but not 40 or 64 digits.
    #[error("{0} hex digits, expected 40 (a v1 info-hash) or 64 (a v2 info-hash)")]
    BadLength(usize),
    /// A byte that is not a hex digit, at this 1-based column (in bytes).
    #[error("{} at column {column} is not a hex digit", shown(*byte))]
    NotHex { column: usize, byte: u8 },
}

/// A byte as a person can read it: the character if printable ASCII, else its hex escape.
fn shown(byte: u8) -> String {
    if byte.is_ascii_graphic() { format!("'{}'", char::from(byte)) } else { format!("byte 0x{byte:02x}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "0123456789abcdef0123456789ABCDEF01234567";
    const V2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn hash(hex: &str) -> [u8; 20] {
        let mut hash = [0u8; 20];
        for (at, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * at..2 * at + 2], 16).expect("hex");
        }
        hash
    }

    fn error(text: &str) -> String {
        AccessList::parse(text.as_bytes()).map(|list| list.len()).expect_err("a bad line").to_string()
    }

    #[test]
    fn reads_v1_and_v2_hashes_in_either_case_around_comments_and_blank_lines() {
        let text = format!(
            "# torrents of the week\n\n{V1}\n  {}  \t\r\n{V2} # a v2 torrent\n\n   # indented comment\n{}",
            V1.to_lowercase(),
            V2.to_uppercase()
        );
        let list = AccessList::parse(text.as_bytes()).expect("a good list");
        // The v1 hash twice (mixed case and lower case) and the v2 hash twice (lower and upper) are two hashes.
        assert_eq!(list.len(), 2);
        assert!(list.contains(&hash(V1)));
        assert!(list.contains(&hash(&V2[..40])), "a v2 hash is matched by its first 20 bytes");
        assert!(!list.contains(&hash(&V2[24..])));
        let only_v1 = AccessList::parse(V1.as_bytes()).expect("one hash");
        let expected = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23,
            0x45, 0x67,
        ];
        assert!(only_v1.contains(&expected), "the digits, two to a byte, high nibble first");
    }

    #[test]
    fn an_empty_file_or_only_comments_is_an_empty_list() {
        for text in ["", "\n\n", "# nothing yet\n", "   \r\n"] {
            let list = AccessList::parse(text.as_bytes()).expect("empty is fine");
            assert!(list.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn a_hash_of_the_wrong_length_is_an_error_naming_its_line() {
        let text = format!("{V1}\n# fine so far\n{}\n{V1}\n", &V1[..39]);
        assert_eq!(error(&text), "line 3: 39 hex digits, expected 40 (a v1 info-hash) or 64 (a v2 info-hash)");
        assert_eq!(
            AccessList::parse(format!("{V1}0\n").as_bytes()).map(|list| list.len()),
            Err(AccessListError { line: 1, problem: LineProblem::BadLength(41) })
        );
        assert_eq!(error(&format!("\n\n\n\n{V2}00")), format!("line 5: {}", LineProblem::BadLength(66)));
        assert_eq!(error("ab\n"), format!("line 1: {}", LineProblem::BadLength(2)));
    }

    #[test]
    fn a_character_that_is_not_hex_is_an_error_naming_line_and_column() {
        let bad = format!("{}g{}", &V1[..10], &V1[11..]);
        assert_eq!(error(&format!("{V1}\n{bad}\n")), "line 2: 'g' at column 11 is not a hex digit");
        // Columns count from the start of the line, indentation included.
        assert_eq!(error(&format!("\n\n  {bad}")), "line 3: 'g' at column 13 is not a hex digit");
        // Two hashes on one line: the space between them is the problem.
        assert_eq!(error(&format!("{V1} {V1}")), "line 1: byte 0x20 at column 41 is not a hex digit");
        assert_eq!(error("magnet:?xt=urn:btih:00"), "line 1: 'm' at column 1 is not a hex digit");
        let not_utf8 = AccessList::parse(b"\xff\xfe").map(|list| list.len());
        assert_eq!(not_utf8, Err(AccessListError { line: 1, problem: LineProblem::NotHex { column: 1, byte: 0xff } }));
        assert_eq!(error("0x0123"), "line 1: 'x' at column 2 is not a hex digit");
    }

    #[test]
    fn allow_serves_only_the_list_and_deny_everything_but_it() {
        let list = AccessList::parse(V1.as_bytes()).expect("list");
        let (listed, other) = (hash(V1), [0xee; 20]);
        assert!(Access::Everyone.permits(&listed) && Access::Everyone.permits(&other));
        let allow = Access::Allow(list.clone());
        assert!(allow.permits(&listed) && !allow.permits(&other));
        let deny = Access::Deny(list);
        assert!(!deny.permits(&listed) && deny.permits(&other));
        assert_eq!((Access::Everyone.listed(), allow.listed(), deny.listed()), (None, Some(1), Some(1)));
    }

    #[test]
    fn hex_values_match_the_standard_parse() {
        for digit in (b'0'..=b'9').chain(b'a'..=b'f').chain(b'A'..=b'F') {
            let expected = u8::from_str_radix(std::str::from_utf8(&[digit]).expect("ascii"), 16).expect("hex");
            assert_eq!(hex_value(digit), expected, "{}", char::from(digit));
        }
    }
}
