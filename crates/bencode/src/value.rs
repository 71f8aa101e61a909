//! Bencoded values borrowed from their input, and canonical encoding.
//!
//! Decoding scans first ([`crate::value_end`]: no recursion, depth and length prefixes bounded), then builds the
//! value; the build recurses, but only as deep as the scan allowed ([`crate::MAX_DEPTH`]). Dictionary keys are kept
//! in input order, sorted or not, since peers and trackers in the wild send both; a key that appears twice is an
//! error, as lookups would otherwise depend on which copy wins. Encoding always writes keys sorted as raw byte
//! strings, as BEP 3 requires.

use crate::scan::{BencodeError, read_integer_value, read_string, value_end};

/// A bencoded value; strings and keys borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Entries in input order.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// Decodes the first value of `buf`; returns it and the bytes it took.
///
/// # Errors
///
/// Anything [`crate::value_end`] refuses, and a dictionary with the same key twice.
pub fn decode(buf: &[u8]) -> Result<(Value<'_>, usize), BencodeError> {
    let end = value_end(buf)?;
    let mut pos = 0;
    let value = build(buf, &mut pos)?;
    debug_assert_eq!(pos, end);
    Ok((value, end))
}

/// Decodes `buf`, which must hold exactly one value.
///
/// # Errors
///
/// As [`decode`], and [`BencodeError::TrailingData`] when bytes follow the value.
pub fn decode_exact(buf: &[u8]) -> Result<Value<'_>, BencodeError> {
    let (value, used) = decode(buf)?;
    if used != buf.len() {
        return Err(BencodeError::TrailingData(buf.len() - used));
    }
    Ok(value)
}

/// Builds the value at `*pos` of a buffer the scan accepted.
fn build<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Value<'a>, BencodeError> {
    let byte = *buf.get(*pos).ok_or(BencodeError::Truncated(*pos))?;
    match byte {
        b'i' => read_integer_value(buf, pos).map(Value::Int),
        b'0'..=b'9' => read_string(buf, pos).map(Value::Bytes),
        b'l' => {
            *pos += 1;
            let mut items = Vec::new();
            while buf.get(*pos) != Some(&b'e') {
                items.push(build(buf, pos)?);
            }
            *pos += 1;
            Ok(Value::List(items))
        }
        b'd' => {
            *pos += 1;
            let mut entries: Vec<(&[u8], Value<'a>)> = Vec::new();
            let mut starts = Vec::new();
            while buf.get(*pos) != Some(&b'e') {
                starts.push(*pos);
                let key = read_string(buf, pos)?;
                entries.push((key, build(buf, pos)?));
            }
            *pos += 1;
            // Sorting the keys finds repeats in O(n log n), where a search per key would let a dictionary of many
            // small keys cost quadratic time.
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by(|&a, &b| entries[a].0.cmp(entries[b].0));
            if let Some(pair) = order.windows(2).find(|pair| entries[pair[0]].0 == entries[pair[1]].0) {
                return Err(BencodeError::DuplicateKey(starts[pair[0].max(pair[1])]));
            }
            Ok(Value::Dict(entries))
        }
        _ => Err(BencodeError::UnexpectedByte { byte, offset: *pos }),
    }
}

impl<'a> Value<'a> {
    /// The value under `key`, if this is a dictionary holding it.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, value)| value),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        if let Value::Int(n) = self { Some(*n) } else { None }
    }

    #[must_use]
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        if let Value::Bytes(bytes) = self { Some(bytes) } else { None }
    }

    /// The string, if it is UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    #[must_use]
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        if let Value::List(items) = self { Some(items) } else { None }
    }

    #[must_use]
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        if let Value::Dict(entries) = self { Some(entries) } else { None }
    }

    /// Appends the canonical encoding: dictionary keys sorted as raw bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(bytes) => encode_bytes(bytes, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                let mut sorted: Vec<&(&[u8], Value<'_>)> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'd');
                for (key, value) in sorted {
                    encode_bytes(key, out);
                    value.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The canonical encoding as a new buffer.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Appends `<len>:<bytes>`.
pub fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}
