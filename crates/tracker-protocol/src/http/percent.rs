//! Byte-wise percent-encoding (RFC 3986 section 2) and the `key=value&…` split of a raw query string.
//!
//! Written here rather than taken from `percent-encoding`: BEP 3 needs exactly two small loops over bytes, and
//! the decoder must report a malformed `%` escape (that crate passes it through as text), never produce text,
//! and fill a fixed 20-byte array without allocating.

/// Appends `bytes` with the unreserved characters (`A-Z a-z 0-9 - . _ ~`) kept and every other byte written as
/// `%XX` with uppercase hex, as libtorrent and Transmission send binary fields.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// A `%` escape that is not followed by two hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadEscape;

/// Percent-decodes `raw`, handing each byte to `sink`. Either case of hex digit is accepted; `+` stays `+`.
pub(crate) fn decode_each(raw: &[u8], mut sink: impl FnMut(u8)) -> Result<(), BadEscape> {
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let Some((&[high, low], tail)) = tail.split_first_chunk::<2>() else {
                return Err(BadEscape);
            };
            sink(hex_value(high).ok_or(BadEscape)? << 4 | hex_value(low).ok_or(BadEscape)?);
            rest = tail;
        } else {
            sink(byte);
            rest = tail;
        }
    }
    Ok(())
}

/// Percent-decodes `raw` into a new buffer.
pub(crate) fn decode(raw: &[u8]) -> Result<Vec<u8>, BadEscape> {
    let mut out = Vec::with_capacity(raw.len());
    decode_each(raw, |byte| out.push(byte))?;
    Ok(out)
}

/// Percent-decodes `raw` into exactly `N` bytes; `Err(Ok(len))` says how many it decoded to instead.
pub(crate) fn decode_array<const N: usize>(raw: &[u8]) -> Result<[u8; N], Result<usize, BadEscape>> {
    let mut out = [0; N];
    let mut len = 0;
    decode_each(raw, |byte| {
        if let Some(slot) = out.get_mut(len) {
            *slot = byte;
        }
        len += 1;
    })
    .map_err(Err)?;
    if len == N { Ok(out) } else { Err(Ok(len)) }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

/// The `(key, value)` pairs of a raw query string, neither decoded. Empty segments (`a=1&&b=2`) are skipped; a
/// segment without `=` is a key with an empty value.
pub(crate) fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query.split(|&byte| byte == b'&').filter(|segment| !segment.is_empty()).map(|segment| {
        match segment.iter().position(|&byte| byte == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &[][..]),
        }
    })
}
