//! BEP 41 options: the bytes a client may append after the fixed 98-byte announce request.
//!
//! Layout: a sequence of options, each starting with a type byte.
//! ```text
//! 0x0 EndOfOptions   1 byte, nothing follows; stop reading
//! 0x1 NOP            1 byte, nothing follows; skip
//! 0x2 URLData        type, u8 length, then `length` bytes of the tracker URL's path and query;
//!                    several URLData options are concatenated in order
//! other              type, u8 length, then `length` bytes (skipped: unknown to us)
//! ```
//! libtorrent sends the URL path this way (for example `/announce?passkey=…`). The tracker does
//! not need it, so reading is lenient: a truncated or malformed option just ends the iteration,
//! and the announce itself still parses. The raw bytes are kept as received so that a parsed
//! request writes back byte for byte.

/// Option type that ends the option list.
pub const OPTION_END: u8 = 0x0;
/// Option type with no body, used as padding.
pub const OPTION_NOP: u8 = 0x1;
/// Option type carrying a chunk of the announce URL's path and query.
pub const OPTION_URL_DATA: u8 = 0x2;

/// The BEP 41 option bytes trailing an announce request, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AnnounceOptions<'a> {
    bytes: &'a [u8],
}

impl<'a> AnnounceOptions<'a> {
    /// No options: what a client sends when it has no URL path to pass on.
    pub const EMPTY: AnnounceOptions<'static> = AnnounceOptions { bytes: &[] };

    /// Wraps raw option bytes, well-formed or not.
    #[must_use]
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The raw bytes after the fixed part of the announce request.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the request carried no bytes after its fixed part.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The `URLData` chunks in order; concatenated they give the URL path and query.
    ///
    /// Yields borrowed slices so that the tracker can look at the path without allocating.
    #[must_use]
    pub fn url_data(&self) -> UrlData<'a> {
        UrlData { rest: self.bytes }
    }

    /// Appends `url` (path and query, e.g. `b"/announce"`) as `URLData` options to `out`.
    ///
    /// An option's length is one byte, so longer URLs are split into 255-byte chunks, which
    /// BEP 41 says to concatenate. No `EndOfOptions` byte is written: the packet's end ends the list.
    pub fn encode_url_data(url: &[u8], out: &mut Vec<u8>) {
        for chunk in url.chunks(usize::from(u8::MAX)) {
            // `chunks(255)` never yields more than 255 bytes, so the conversion cannot fail.
            let len = u8::try_from(chunk.len()).unwrap_or(u8::MAX);
            out.push(OPTION_URL_DATA);
            out.push(len);
            out.extend_from_slice(chunk);
        }
    }
}

/// Iterator over the `URLData` chunks of [`AnnounceOptions`]; see [`AnnounceOptions::url_data`].
#[derive(Debug, Clone)]
pub struct UrlData<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for UrlData<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let (&kind, after_kind) = self.rest.split_first()?;
            match kind {
                OPTION_END => {
                    self.rest = &[];
                    return None;
                }
                OPTION_NOP => self.rest = after_kind,
                _ => {
                    // Every other type has a length byte; a missing or overlong one means the
                    // options are malformed, and we stop rather than guess.
                    let Some((&len, body)) = after_kind.split_first() else {
                        self.rest = &[];
                        return None;
                    };
                    let Some((data, after)) = body.split_at_checked(usize::from(len)) else {
                        self.rest = &[];
                        return None;
                    };
                    self.rest = after;
                    if kind == OPTION_URL_DATA {
                        return Some(data);
                    }
                }
            }
        }
    }
}
