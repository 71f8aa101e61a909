//! The BEP 14 announce, read and written: an HTTP-like request in one UDP datagram.
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n
//! Port: 6881\r\n
//! Infohash: 0123456789abcdef0123456789abcdef01234567\r\n
//! cookie: 5c1e6a2\r\n
//! \r\n
//! \r\n
//! ```
//!
//! Reading is as lenient as libtorrent's (header names in any case, lines ending in LF alone, unknown headers
//! ignored, an `Infohash` that is not 40 hex digits skipped rather than fatal) and as strict as safety needs: the
//! datagram is capped, the headers must end with an empty line, the port must be a plain decimal 1..=65535, at
//! most [`MAX_INFO_HASHES`] info-hashes are kept. Nothing here panics on any input.

use std::net::SocketAddr;

/// Longest datagram read (an Ethernet frame's payload); longer ones are refused unread.
pub const MAX_DATAGRAM_LEN: usize = 1500;
/// Longest announce written: BEP 14 asks for at most 1400 bytes, against fragmentation.
pub const MAX_ANNOUNCE_LEN: usize = 1400;
/// Info-hashes kept from one announce; later ones are skipped. Written announces carry at most this many.
pub const MAX_INFO_HASHES: usize = 16;

/// One announce: "a peer listening on TCP `port` (at the datagram's source IP) takes part in these torrents".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce<'a> {
    /// The announcer's TCP port, 1..=65535.
    pub port: u16,
    /// Distinct, non-zero, in the order sent; between 1 and [`MAX_INFO_HASHES`].
    pub info_hashes: Vec<[u8; 20]>,
    /// The sender's token, if any, by which it recognises its own announces (trimmed; never empty).
    pub cookie: Option<&'a str>,
}

/// Why a datagram is not an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the datagram is longer than {MAX_DATAGRAM_LEN} bytes")]
    TooLong,
    #[error("a header line is not UTF-8")]
    NotText,
    #[error("not a BT-SEARCH request")]
    NotBtSearch,
    #[error("a header line has no colon")]
    BadHeaderLine,
    #[error("the headers do not end with an empty line")]
    Unterminated,
    #[error("no Port header")]
    MissingPort,
    #[error("more than one Port header")]
    DuplicatePort,
    #[error("the Port header is not a number from 1 to 65535")]
    BadPort,
    #[error("no usable Infohash header")]
    NoInfoHash,
}

/// Why an announce cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("port 0")]
    ZeroPort,
    #[error("no info-hash, or more than {MAX_INFO_HASHES}")]
    InfoHashCount,
    #[error("the cookie is empty, has surrounding spaces or a line break")]
    BadCookie,
    #[error("the announce would be longer than {MAX_ANNOUNCE_LEN} bytes")]
    TooLong,
}

impl<'a> Announce<'a> {
    /// Reads one datagram. Info-hashes past [`MAX_INFO_HASHES`], repeated ones, all-zero ones and values that
    /// are not 40 hex digits are skipped; at least one usable info-hash must remain.
    ///
    /// # Errors
    ///
    /// See [`ParseError`].
    pub fn parse(datagram: &'a [u8]) -> Result<Announce<'a>, ParseError> {
        if datagram.len() > MAX_DATAGRAM_LEN {
            return Err(ParseError::TooLong);
        }
        // Lines end in LF, CRLF or (the last) nothing; an unended last line does not end the headers.
        let mut lines = datagram.split_inclusive(|&byte| byte == b'\n').map(|line| {
            let ended = line.ends_with(b"\n");
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            (line.strip_suffix(b"\r").unwrap_or(line), ended)
        });
        let (request, _) = lines.next().unwrap_or_default();
        let method = request.split(|&byte| byte == b' ').next().unwrap_or_default();
        if !method.eq_ignore_ascii_case(b"BT-SEARCH") {
            return Err(ParseError::NotBtSearch);
        }
        let mut port = None;
        let mut info_hashes: Vec<[u8; 20]> = Vec::new();
        let mut cookie = None;
        let mut terminated = false;
        for (line, ended) in lines {
            if line.is_empty() && ended {
                terminated = true;
                break;
            }
            let line = std::str::from_utf8(line).map_err(|_| ParseError::NotText)?;
            let (name, value) = line.split_once(':').ok_or(ParseError::BadHeaderLine)?;
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("port") {
                if port.is_some() {
                    return Err(ParseError::DuplicatePort);
                }
                port = Some(parse_port(value).ok_or(ParseError::BadPort)?);
            } else if name.eq_ignore_ascii_case("infohash") {
                if info_hashes.len() < MAX_INFO_HASHES
                    && let Some(hash) = parse_info_hash(value)
                    && !info_hashes.contains(&hash)
                {
                    info_hashes.push(hash);
                }
            } else if name.eq_ignore_ascii_case("cookie") && cookie.is_none() && !value.is_empty() {
                cookie = Some(value);
            }
        }
        if !terminated {
            return Err(ParseError::Unterminated);
        }
        let port = port.ok_or(ParseError::MissingPort)?;
        if info_hashes.is_empty() {
            return Err(ParseError::NoInfoHash);
        }
        Ok(Announce { port, info_hashes, cookie })
    }

    /// Writes the announce as libtorrent does, for the multicast `group` (its `Host` header), with CRLF line ends
    /// and lower-case hex.
    ///
    /// # Errors
    ///
    /// See [`EncodeError`].
    pub fn encode(&self, group: SocketAddr) -> Result<Vec<u8>, EncodeError> {
        use std::fmt::Write as _;
        if self.port == 0 {
            return Err(EncodeError::ZeroPort);
        }
        if self.info_hashes.is_empty() || self.info_hashes.len() > MAX_INFO_HASHES {
            return Err(EncodeError::InfoHashCount);
        }
        if let Some(cookie) = self.cookie
            && (cookie.is_empty() || cookie.trim() != cookie || cookie.contains(['\r', '\n']))
        {
            return Err(EncodeError::BadCookie);
        }
        let mut text = format!("BT-SEARCH * HTTP/1.1\r\nHost: {group}\r\nPort: {}\r\n", self.port);
        for hash in &self.info_hashes {
            let _ = write!(text, "Infohash: {}\r\n", hex(hash));
        }
        if let Some(cookie) = self.cookie {
            let _ = write!(text, "cookie: {cookie}\r\n");
        }
        text.push_str("\r\n\r\n");
        if text.len() > MAX_ANNOUNCE_LEN {
            return Err(EncodeError::TooLong);
        }
        Ok(text.into_bytes())
    }
}

/// A plain decimal 1..=65535: digits only (no sign, no spaces), at most five of them.
fn parse_port(value: &str) -> Option<u16> {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|&port| port != 0)
}

/// Exactly 40 hex digits, either case, not all zero.
fn parse_info_hash(value: &str) -> Option<[u8; 20]> {
    let digits = value.as_bytes();
    if digits.len() != 40 {
        return None;
    }
    let mut hash = [0u8; 20];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    (hash != [0; 20]).then_some(hash)
}

fn hex_digit(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

fn hex(bytes: &[u8; 20]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(40), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}
