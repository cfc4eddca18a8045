//! RFC 6455 framing, sans-IO: bytes from a socket in, whole messages out; messages in, bytes for
//! a socket out. No I/O and no clock here, so it is tested with real frames split anywhere.
//!
//! Why not fastwebsockets' reader: a call reads two sockets from one task, so a read must be
//! cancellable at any point (`select!`) without losing half a frame. Here a read only appends to
//! [`Decoder`]'s buffer (tokio's `read_buf` is cancel-safe) and frames are parsed from it once
//! whole, unmasked in place and handed out borrowed: a 20 ms media frame is never copied between
//! the socket buffer and the core.

use bytes::{Buf, BytesMut};

/// Which end of the connection we are: a server reads masked frames and writes plain ones; a
/// client the reverse (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// A message read whole, borrowed from the decoder until its next call. Pings go to the
/// caller's `on_ping` as they are read and pongs are dropped: neither ends a read.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    /// `code` is `None` for an empty payload; `payload_len` 1 is a protocol error the caller
    /// answers with 1002 (§5.5.1).
    Close {
        code: Option<u16>,
        reason: &'a str,
        payload_len: usize,
    },
}

/// Why a peer's bytes are not a WebSocket conversation; each maps to the status we close with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("reserved bits set")]
    ReservedBits,
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    #[error("control frame fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("frame masking does not match the peer's role")]
    Masking,
    #[error("continuation without a message, or a new message inside a fragmented one")]
    Fragmentation,
    #[error("message larger than the limit")]
    TooBig,
    #[error("text message is not UTF-8")]
    InvalidUtf8,
}

impl ProtocolError {
    /// The close status for this error (RFC 6455 §7.4.1): 1007 bad UTF-8, 1009 too big, 1002
    /// for any other protocol violation.
    pub fn close_code(self) -> u16 {
        match self {
            ProtocolError::InvalidUtf8 => 1007,
            ProtocolError::TooBig => 1009,
            _ => 1002,
        }
    }
}

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// A header parsed from the front of the buffer.
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

/// Frames in, messages out.
pub struct Decoder {
    role: Role,
    max_message: usize,
    buf: BytesMut,
    /// Bytes at the front of `buf` that the message handed out last still borrows; dropped at
    /// the next call.
    consumed: usize,
    /// A fragmented message being assembled: its opcode and the payload so far.
    fragments: Option<(u8, Vec<u8>)>,
    /// The last assembled message (borrowed by the caller until the next call).
    assembled: Vec<u8>,
}

/// Room made before each socket read; a 20 ms media frame is ~300 bytes.
const READ_RESERVE: usize = 2048;

impl Decoder {
    pub fn new(role: Role, max_message: usize) -> Self {
        Decoder {
            role,
            max_message,
            buf: BytesMut::with_capacity(READ_RESERVE),
            consumed: 0,
            fragments: None,
            assembled: Vec::new(),
        }
    }

    /// The buffer a socket read appends to, with room made for it.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        self.release();
        if self.buf.capacity() - self.buf.len() < READ_RESERVE / 4 {
            self.buf.reserve(READ_RESERVE);
        }
        &mut self.buf
    }

    /// Whether bytes of an unfinished frame or message are waiting.
    pub fn has_partial(&self) -> bool {
        self.buf.len() > self.consumed || self.fragments.is_some()
    }

    fn release(&mut self) {
        if self.consumed > 0 {
            self.buf.advance(self.consumed);
            self.consumed = 0;
        }
        if !self.assembled.is_empty() {
            self.assembled = Vec::new();
        }
        // A long message grew the buffer: give the memory back once it is drained.
        if self.buf.is_empty() && self.buf.capacity() > 2 * READ_RESERVE {
            self.buf = BytesMut::with_capacity(READ_RESERVE);
        }
    }

    /// The next whole message in the buffer, if one is there; each ping read on the way is
    /// handed to `on_ping` (its payload, for the pong). After an error the connection must be
    /// closed with [`ProtocolError::close_code`]; the decoder is not usable further.
    pub fn next_message(
        &mut self,
        mut on_ping: impl FnMut(&[u8]),
    ) -> Result<Option<Message<'_>>, ProtocolError> {
        self.release();
        // Decided first, borrowed after: where the message's bytes are.
        let (opcode, range) = loop {
            let Some(h) = self.parse_header()? else {
                return Ok(None);
            };
            let total = h.header_len + h.payload_len;
            if self.buf.len() < total {
                return Ok(None);
            }
            if let Some(mask) = h.mask {
                apply_mask(&mut self.buf[h.header_len..total], mask);
            }
            match h.opcode {
                OP_PING => {
                    on_ping(&self.buf[h.header_len..total]);
                    self.buf.advance(total);
                }
                OP_PONG => self.buf.advance(total),
                OP_CLOSE => {
                    self.consumed = total;
                    break (h.opcode, Some(h.header_len..total));
                }
                OP_TEXT | OP_BINARY if self.fragments.is_some() => {
                    return Err(ProtocolError::Fragmentation);
                }
                OP_TEXT | OP_BINARY if h.fin => {
                    self.consumed = total;
                    break (h.opcode, Some(h.header_len..total));
                }
                OP_TEXT | OP_BINARY => {
                    let mut v = Vec::with_capacity(h.payload_len);
                    v.extend_from_slice(&self.buf[h.header_len..total]);
                    self.fragments = Some((h.opcode, v));
                    self.buf.advance(total);
                }
                _ => {
                    // OP_CONT (parse_header refused every other opcode).
                    let Some((_, so_far)) = self.fragments.as_mut() else {
                        return Err(ProtocolError::Fragmentation);
                    };
                    if so_far.len() + h.payload_len > self.max_message {
                        return Err(ProtocolError::TooBig);
                    }
                    so_far.extend_from_slice(&self.buf[h.header_len..total]);
                    self.buf.advance(total);
                    if h.fin {
                        let (opcode, whole) = self.fragments.take().unwrap_or_default();
                        self.assembled = whole;
                        break (opcode, None);
                    }
                }
            }
        };
        let bytes = match range {
            Some(r) => &self.buf[r],
            None => &self.assembled[..],
        };
        match opcode {
            OP_TEXT => std::str::from_utf8(bytes)
                .map(|t| Some(Message::Text(t)))
                .map_err(|_| ProtocolError::InvalidUtf8),
            OP_BINARY => Ok(Some(Message::Binary(bytes))),
            _ => Ok(Some(close(bytes))),
        }
    }

    fn parse_header(&self) -> Result<Option<Header>, ProtocolError> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        if rsv != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        if !matches!(
            opcode,
            OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(ProtocolError::UnknownOpcode(opcode));
        }
        let masked = b[1] & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return Err(ProtocolError::Masking);
        }
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        if opcode >= OP_CLOSE && (!fin || len > 125) {
            return Err(ProtocolError::BadControlFrame);
        }
        // Checked before the payload arrives, so a lying length cannot make us buffer it.
        if len > self.max_message as u64 {
            return Err(ProtocolError::TooBig);
        }
        let mask = if masked {
            if b.len() < at + 4 {
                return Ok(None);
            }
            let m = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            header_len: at,
            payload_len: len as usize,
        }))
    }
}

/// A Close frame's payload: status code (if any) and reason.
fn close(payload: &[u8]) -> Message<'_> {
    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
    let reason = payload
        .get(2..)
        .and_then(|r| std::str::from_utf8(r).ok())
        .unwrap_or("");
    Message::Close {
        code,
        reason,
        payload_len: payload.len(),
    }
}

/// XORs `data` with the 4-byte key, eight bytes at a time.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let key = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ key).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Masking keys for a client's frames: unpredictable (RFC 6455 §5.3), drawn from the system's
/// CSPRNG a batch at a time so a frame costs no system call.
pub struct MaskKeys {
    rng: ring::rand::SystemRandom,
    pool: [u8; 1024],
    next: usize,
}

impl Default for MaskKeys {
    fn default() -> Self {
        MaskKeys {
            rng: ring::rand::SystemRandom::new(),
            pool: [0; 1024],
            next: 1024,
        }
    }
}

impl MaskKeys {
    fn take(&mut self) -> [u8; 4] {
        use ring::rand::SecureRandom;
        if self.next + 4 > self.pool.len() {
            // ring's SystemRandom fails only when the OS has no randomness at all; a zero key
            // then still frames correctly (masking is against proxy cache poisoning, not
            // confidentiality), so the write is not refused.
            if self.rng.fill(&mut self.pool).is_err() {
                self.pool = [0; 1024];
            }
            self.next = 0;
        }
        let k = [
            self.pool[self.next],
            self.pool[self.next + 1],
            self.pool[self.next + 2],
            self.pool[self.next + 3],
        ];
        self.next += 4;
        k
    }
}

/// Messages in, bytes out (appended to a caller's buffer, so a burst leaves in one write).
pub struct Encoder {
    role: Role,
    keys: Option<Box<MaskKeys>>,
}

impl Encoder {
    pub fn new(role: Role) -> Self {
        Encoder {
            role,
            keys: (role == Role::Client).then(Box::default),
        }
    }

    pub fn text(&mut self, out: &mut Vec<u8>, payload: &[u8]) {
        self.frame(out, OP_TEXT, payload);
    }

    pub fn pong(&mut self, out: &mut Vec<u8>, payload: &[u8]) {
        self.frame(out, OP_PONG, &payload[..payload.len().min(125)]);
    }

    pub fn ping(&mut self, out: &mut Vec<u8>, payload: &[u8]) {
        self.frame(out, OP_PING, &payload[..payload.len().min(125)]);
    }

    pub fn binary(&mut self, out: &mut Vec<u8>, payload: &[u8]) {
        self.frame(out, OP_BINARY, payload);
    }

    /// A Close frame with `code` and an empty reason.
    pub fn close(&mut self, out: &mut Vec<u8>, code: u16) {
        self.close_with_reason(out, code, "");
    }

    /// A Close frame with `code` and `reason` (cut, at a character boundary, to fit the 125
    /// bytes a control frame may carry).
    pub fn close_with_reason(&mut self, out: &mut Vec<u8>, code: u16, reason: &str) {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = [0u8; 125];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
        self.frame(out, OP_CLOSE, &payload[..2 + end]);
    }

    fn frame(&mut self, out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
        let mask_bit = if self.role == Role::Client { 0x80 } else { 0 };
        out.push(0x80 | opcode);
        match payload.len() {
            n @ 0..=125 => out.push(mask_bit | n as u8),
            n @ 126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match self.keys.as_mut() {
            Some(keys) => {
                let key = keys.take();
                out.extend_from_slice(&key);
                let start = out.len();
                out.extend_from_slice(payload);
                apply_mask(&mut out[start..], key);
            }
            None => out.extend_from_slice(payload),
        }
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
