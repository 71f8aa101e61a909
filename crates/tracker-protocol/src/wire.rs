//! Big-endian field reading shared by the request and response parsers.
//!
//! Every read is bounds-checked through `split_first_chunk`, so a short packet turns into a
//! [`Short`] value instead of a panic; callers map it onto their own `TooShort` error variant.

/// A read ran off the end of the packet: the message needed `needed` bytes, the packet had `got`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    pub(crate) needed: usize,
    pub(crate) got: usize,
}

/// A cursor that reads fixed-size big-endian fields from the front of a packet.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// Length of the whole packet, reported in [`Short`].
    got: usize,
    /// Minimum length of the message being read, reported in [`Short`] so the error says
    /// how long the packet should have been rather than which field ran out.
    needed: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`, a message that must be at least `needed` bytes long.
    pub(crate) fn new(bytes: &'a [u8], needed: usize) -> Self {
        Self { rest: bytes, got: bytes.len(), needed }
    }

    /// Raises the minimum length once the action field has told us which message this is.
    pub(crate) fn require(&mut self, needed: usize) {
        self.needed = needed;
    }

    /// Takes the next `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(Short { needed: self.needed, got: self.got });
        };
        self.rest = tail;
        Ok(*head)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Short> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Short> {
        self.array().map(i32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Short> {
        self.array().map(u64::from_be_bytes)
    }

    /// Everything not read yet: BEP 41 options, info-hashes, peers or an error message.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.rest
    }
}
