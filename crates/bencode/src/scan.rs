//! Structural check of a bencoded document, and the byte span of its top-level `info` value.
//!
//! serde_bencode recurses once per nesting level and trusts length prefixes, so a file of 100,000 `l`
//! bytes would overflow the stack and `99999999999:` would ask for a huge buffer. This scanner walks the
//! document without recursion first, refusing such input with the offset where it went wrong. It also
//! records where the `info` value starts and ends, because the info-hash is the SHA-1 of those bytes
//! exactly as they stand in the file (BEP 3), never of a re-encoding.

use std::ops::Range;

/// Deepest nesting of lists and dictionaries accepted. Real torrents nest about 5 deep (a multi-file
/// `info` holds a list of dicts holding a list of strings); libtorrent stops at 100.
pub const MAX_DEPTH: usize = 64;

/// Why a document is not acceptable bencode. Offsets count bytes from the start of the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    #[error("the data ends in the middle of a value (at byte {0})")]
    Truncated(usize),
    #[error("unexpected byte {byte:#04x} at byte {offset}")]
    UnexpectedByte { byte: u8, offset: usize },
    #[error("string at byte {offset} claims {len} bytes but only {left} remain")]
    StringTooLong { offset: usize, len: u64, left: usize },
    #[error("bad integer at byte {0} (empty, `-0`, or not a 64-bit number)")]
    BadInteger(usize),
    #[error("nesting deeper than {MAX_DEPTH} levels at byte {0}")]
    TooDeep(usize),
    #[error("dictionary key at byte {0} is not a string")]
    KeyNotString(usize),
    #[error("the top level is not a dictionary")]
    NotADictionary,
    #[error("{0} bytes of trailing data after the top-level dictionary")]
    TrailingData(usize),
    #[error("the top-level dictionary has more than one `info` key")]
    DuplicateInfo,
    #[error("a dictionary has the key at byte {0} twice")]
    DuplicateKey(usize),
}

/// What the scan learned about a well-formed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Byte range of the value stored under the top-level `info` key, if there is one.
    pub info_span: Option<Range<usize>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    List,
    /// `want_key` is true when the next item must be a key (or the closing `e`).
    Dict {
        want_key: bool,
    },
}

/// Checks that `buf` is exactly one bencoded dictionary, nested at most [`MAX_DEPTH`] deep, whose
/// strings fit in the buffer and whose integers fit in an `i64`. Leading zeros in integers and lengths
/// are tolerated (some creators write them, and the info-hash covers the raw bytes anyway); `-0` is not.
pub fn scan(buf: &[u8]) -> Result<Scanned, BencodeError> {
    if buf.first() != Some(&b'd') {
        return Err(BencodeError::NotADictionary);
    }
    let (end, info_span) = walk(buf)?;
    if end != buf.len() {
        return Err(BencodeError::TrailingData(buf.len() - end));
    }
    Ok(Scanned { info_span })
}

/// Checks the first value of `buf` as [`scan`] does (any kind of value), and returns where it ends: messages such
/// as BEP 9's `data` carry raw bytes after their dictionary.
///
/// # Errors
///
/// As [`scan`], except that the value may be of any kind and anything may follow it.
pub fn value_end(buf: &[u8]) -> Result<usize, BencodeError> {
    walk(buf).map(|(end, _)| end)
}

/// The scan itself: the end of the first value, and the span of `info` if that value is a dictionary holding one.
fn walk(buf: &[u8]) -> Result<(usize, Option<Range<usize>>), BencodeError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    let mut info_key_pending = false;
    let mut info_start: Option<usize> = None;
    let mut info_span: Option<Range<usize>> = None;

    loop {
        let byte = *buf.get(pos).ok_or(BencodeError::Truncated(pos))?;
        let top = stack.last().copied();

        if byte == b'e' {
            match top {
                None | Some(Frame::Dict { want_key: false }) => {
                    return Err(BencodeError::UnexpectedByte { byte, offset: pos });
                }
                Some(_) => {
                    stack.pop();
                    pos += 1;
                }
            }
        } else if top == Some(Frame::Dict { want_key: true }) {
            if !byte.is_ascii_digit() {
                return Err(BencodeError::KeyNotString(pos));
            }
            let key = read_string(buf, &mut pos)?;
            if stack.len() == 1 && key == b"info" {
                if info_start.is_some() {
                    return Err(BencodeError::DuplicateInfo);
                }
                info_key_pending = true;
            }
            if let Some(Frame::Dict { want_key }) = stack.last_mut() {
                *want_key = false;
            }
            continue;
        } else {
            if info_key_pending && stack.len() == 1 {
                info_start = Some(pos);
                info_key_pending = false;
            }
            match byte {
                b'i' => {
                    read_integer_value(buf, &mut pos)?;
                }
                b'0'..=b'9' => {
                    read_string(buf, &mut pos)?;
                }
                b'l' | b'd' => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(BencodeError::TooDeep(pos));
                    }
                    stack.push(if byte == b'l' { Frame::List } else { Frame::Dict { want_key: true } });
                    pos += 1;
                    continue;
                }
                _ => return Err(BencodeError::UnexpectedByte { byte, offset: pos }),
            }
        }

        // A value (scalar, or a container just closed) ended at `pos`.
        match stack.last_mut() {
            None => return Ok((pos, info_span)),
            Some(Frame::Dict { want_key }) => *want_key = true,
            Some(Frame::List) => {}
        }
        if stack.len() == 1
            && let Some(start) = info_start
            && info_span.is_none()
        {
            info_span = Some(start..pos);
        }
    }
}

/// Reads `<len>:<bytes>` at `*pos`, advancing past it.
pub(crate) fn read_string<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], BencodeError> {
    let start = *pos;
    let mut len: u64 = 0;
    let mut i = start;
    loop {
        let byte = *buf.get(i).ok_or(BencodeError::Truncated(i))?;
        match byte {
            b'0'..=b'9' => {
                // Saturate rather than overflow: any length past the buffer is refused below anyway.
                len = len.saturating_mul(10).saturating_add(u64::from(byte - b'0'));
                i += 1;
            }
            b':' if i > start => break,
            _ => return Err(BencodeError::UnexpectedByte { byte, offset: i }),
        }
    }
    let body = i + 1;
    let left = buf.len() - body;
    if len > left as u64 {
        return Err(BencodeError::StringTooLong { offset: start, len, left });
    }
    // `len <= left`, so it fits in usize.
    let end = body + len as usize;
    *pos = end;
    Ok(&buf[body..end])
}

/// Reads `i<digits>e` at `*pos`, advancing past it.
pub(crate) fn read_integer_value(buf: &[u8], pos: &mut usize) -> Result<i64, BencodeError> {
    let start = *pos;
    let mut i = start + 1;
    let negative = buf.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let digits_start = i;
    let mut value: i64 = 0;
    loop {
        let byte = *buf.get(i).ok_or(BencodeError::Truncated(i))?;
        match byte {
            b'0'..=b'9' => {
                let digit = i64::from(byte - b'0');
                value = value
                    .checked_mul(10)
                    .and_then(|v| if negative { v.checked_sub(digit) } else { v.checked_add(digit) })
                    .ok_or(BencodeError::BadInteger(start))?;
                i += 1;
            }
            b'e' => break,
            _ => return Err(BencodeError::UnexpectedByte { byte, offset: i }),
        }
    }
    if i == digits_start || (negative && value == 0) {
        return Err(BencodeError::BadInteger(start));
    }
    *pos = i + 1;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::{BencodeError, MAX_DEPTH, scan, value_end};

    fn info_of(doc: &[u8]) -> Option<&[u8]> {
        let scanned = scan(doc).expect("valid document");
        scanned.info_span.map(|span| &doc[span])
    }

    #[test]
    fn finds_the_raw_info_span_whatever_its_position_and_form() {
        assert_eq!(info_of(b"d4:infod1:ai1eee"), Some(&b"d1:ai1ee"[..]));
        assert_eq!(info_of(b"d1:zi0e4:infod1:bi03ee1:a0:e"), Some(&b"d1:bi03ee"[..]));
        assert_eq!(info_of(b"d8:announce3:url4:info3:abce"), Some(&b"3:abc"[..]));
        assert_eq!(info_of(b"d4:infoi7ee"), Some(&b"i7e"[..]));
        assert_eq!(info_of(b"d1:ad4:infoi1eee"), None, "only a top-level info counts");
        assert_eq!(info_of(b"de"), None);
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let mut doc = b"d1:a".to_vec();
        doc.extend(std::iter::repeat_n(b'l', 100_000));
        assert!(matches!(scan(&doc), Err(BencodeError::TooDeep(_))));

        let mut ok = b"d1:a".to_vec();
        ok.extend(std::iter::repeat_n(b'l', MAX_DEPTH - 1));
        ok.extend(std::iter::repeat_n(b'e', MAX_DEPTH));
        assert!(scan(&ok).is_ok());
    }

    #[test]
    fn length_prefixes_past_the_end_are_refused() {
        assert_eq!(
            scan(b"d1:a99999999999:xe"),
            Err(BencodeError::StringTooLong { offset: 4, len: 99_999_999_999, left: 2 })
        );
        assert!(matches!(scan(b"d1:a99999999999999999999999999:e"), Err(BencodeError::StringTooLong { .. })));
    }

    #[test]
    fn integers_must_be_numbers_that_fit() {
        assert_eq!(scan(b"d1:ai-0ee"), Err(BencodeError::BadInteger(4)));
        assert_eq!(scan(b"d1:aiee"), Err(BencodeError::BadInteger(4)));
        assert_eq!(scan(b"d1:ai-ee"), Err(BencodeError::BadInteger(4)));
        assert_eq!(scan(b"d1:ai99999999999999999999ee"), Err(BencodeError::BadInteger(4)));
        assert!(scan(b"d1:ai-9223372036854775808ee").is_ok());
        assert!(scan(b"d1:ai03ee").is_ok(), "leading zeros are tolerated");
        assert!(matches!(scan(b"d1:ai1.5ee"), Err(BencodeError::UnexpectedByte { byte: b'.', .. })));
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert_eq!(scan(b""), Err(BencodeError::NotADictionary));
        assert_eq!(scan(b"l1:ae"), Err(BencodeError::NotADictionary));
        assert_eq!(scan(b"d"), Err(BencodeError::Truncated(1)));
        assert_eq!(scan(b"d1:a"), Err(BencodeError::Truncated(4)));
        assert_eq!(scan(b"d1:ai1e"), Err(BencodeError::Truncated(7)));
        assert_eq!(scan(b"di1ei2ee"), Err(BencodeError::KeyNotString(1)));
        assert!(matches!(scan(b"d1:ae"), Err(BencodeError::UnexpectedByte { byte: b'e', offset: 4 })));
        assert_eq!(scan(b"dexx"), Err(BencodeError::TrailingData(2)));
        assert_eq!(scan(b"d4:infoi1e4:infoi2ee"), Err(BencodeError::DuplicateInfo));
        assert!(matches!(scan(b"d1:ax"), Err(BencodeError::UnexpectedByte { .. })));
    }

    #[test]
    fn value_end_finds_the_first_value_of_any_kind_and_allows_what_follows() {
        assert_eq!(value_end(b"i42e"), Ok(4));
        assert_eq!(value_end(b"d8:msg_typei1e5:piecei0eeRAW BYTES"), Ok(25));
        assert_eq!(value_end(b"4:spamXYZ"), Ok(6));
        assert_eq!(value_end(b"l1:ad1:bi1eeeZ"), Ok(13));
        assert_eq!(value_end(b""), Err(BencodeError::Truncated(0)));
        assert!(matches!(value_end(b"e"), Err(BencodeError::UnexpectedByte { .. })));
    }

    #[test]
    fn no_input_makes_it_panic() {
        let seeds: [&[u8]; 4] = [b"d4:infod6:lengthi5e4:name1:ae", b"d1:al1:bd1:ci1eeee", b"d3:abc", b"di"];
        for seed in seeds {
            for cut in 0..=seed.len() {
                let _ = scan(&seed[..cut]);
            }
        }
        for byte in 0..=255u8 {
            let _ = scan(&[b'd', byte, byte, byte]);
        }
    }
}
