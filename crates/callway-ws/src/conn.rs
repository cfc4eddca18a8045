//! [`WsConn`]: one WebSocket owned by one task. Reads are cancel-safe (they only append to the
//! decoder's buffer), so a task can wait on several sockets, timers and channels in one
//! `select!`; writes are queued into one buffer and leave together on [`WsConn::flush`], under a
//! timeout so a peer that stops reading cannot stall the task forever.
//!
//! Exactly one Close frame leaves a socket, and nothing after it (RFC 6455 §5.5.1): whoever
//! closes first — our [`WsConn::close`], or the answer to the peer's Close — sends it; the other
//! finds it done.

use crate::frame::{Decoder, Encoder, Message, Role};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a write (or flush) may take before the peer counts as gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long our Close frame itself may take to leave.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("our Close frame has been sent: nothing may follow it")]
    Closed,
    #[error("write timed out")]
    Timeout,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What reading gave: a message to handle, or the end of the conversation.
#[derive(Debug)]
pub enum Event<'a> {
    Text(&'a str),
    /// Neither Telnyx's media stream nor OpenAI Realtime uses binary messages; a server that
    /// refuses them (as Telnyx does) sees them here.
    Binary(&'a [u8]),
    /// The peer's Close (answered already), EOF, an I/O error or a protocol error (our Close,
    /// with the matching status, already sent). Nothing more comes from this socket.
    /// `by_peer`: a well-formed Close frame arrived (`code` and `reason` are the peer's);
    /// otherwise the connection broke and `reason` says how.
    Closed {
        code: Option<u16>,
        reason: String,
        by_peer: bool,
    },
}

pub struct WsConn<S> {
    io: S,
    dec: Decoder,
    enc: Encoder,
    out: Vec<u8>,
    close_sent: bool,
    /// The socket has said its last word (peer Close, EOF, error): reads stop.
    finished: bool,
    /// A Close from the peer, or why reading ended, waiting to be reported.
    ended: Option<(Option<u16>, String, bool)>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsConn<S> {
    /// `io` is an upgraded socket (server: the upgrade was answered 101; client: the handshake
    /// is done). Messages larger than `max_message` close the socket with 1009.
    pub fn new(io: S, role: Role, max_message: usize) -> Self {
        WsConn {
            io,
            dec: Decoder::new(role, max_message),
            enc: Encoder::new(role),
            out: Vec::with_capacity(1024),
            close_sent: false,
            finished: false,
            ended: None,
        }
    }

    /// Waits for bytes from the peer. Cancel-safe: dropped before it resolves, nothing is lost.
    /// Pending forever once the socket has finished (so a `select!` branch can stay armed).
    pub async fn readable(&mut self) {
        if self.finished {
            return std::future::pending().await;
        }
        match self.io.read_buf(self.dec.read_buffer()).await {
            Ok(0) => self.broke("connection closed without a Close frame".into(), 1011),
            Ok(_) => {}
            Err(e) => self.broke(format!("read: {e}"), 1011),
        }
    }

    /// Records why the conversation ended; our Close (with `status`) is queued unless sent.
    fn end(&mut self, ended: (Option<u16>, String, bool), status: u16) {
        self.finished = true;
        self.queue_close(status);
        self.ended = Some(ended);
    }

    /// The connection broke (EOF, I/O or protocol error) rather than closed.
    fn broke(&mut self, why: String, status: u16) {
        self.end((None, why, false), status);
    }

    /// The next event from what has been read, if any: text messages, then at most one
    /// [`Event::Closed`]. Pings are answered and pongs ignored here. Whatever this queues
    /// (a pong, the Close answer) leaves on the next [`WsConn::flush`].
    pub fn next_event(&mut self) -> Option<Event<'_>> {
        if let Some((code, reason, by_peer)) = self.ended.take() {
            return Some(Event::Closed {
                code,
                reason,
                by_peer,
            });
        }
        if self.finished {
            return None;
        }
        // One pass, the message borrowed from the decoder while only the other fields change
        // (the pong goes into `out` as the ping is read).
        let (enc, out, close_sent) = (&mut self.enc, &mut self.out, self.close_sent);
        let read = self.dec.next_message(|ping| {
            if !close_sent {
                enc.pong(out, ping);
            }
        });
        let (code, reason, by_peer, status) = match read {
            Ok(None) => return None,
            Ok(Some(Message::Text(t))) => return Some(Event::Text(t)),
            Ok(Some(Message::Binary(b))) => return Some(Event::Binary(b)),
            // A one-byte Close payload is itself a protocol error (§5.5.1).
            Ok(Some(Message::Close { payload_len: 1, .. })) => (
                None,
                "Close frame with a one-byte payload".into(),
                false,
                1002,
            ),
            Ok(Some(Message::Close {
                code,
                reason,
                payload_len,
            })) => (
                code,
                reason.to_owned(),
                true,
                close_reply(payload_len, code),
            ),
            Err(e) => (None, e.to_string(), false, e.close_code()),
        };
        self.finished = true;
        if !self.close_sent {
            self.close_sent = true;
            self.enc.close(&mut self.out, status);
        }
        Some(Event::Closed {
            code,
            reason,
            by_peer,
        })
    }

    /// Whether the socket has said its last word and that was reported: nothing more will be
    /// read ([`WsConn::readable`] would wait forever).
    pub fn is_finished(&self) -> bool {
        self.finished && self.ended.is_none()
    }

    /// Queues a text frame (it leaves on the next [`WsConn::flush`]).
    pub fn queue_text(&mut self, text: &[u8]) -> Result<(), WriteError> {
        if self.close_sent {
            return Err(WriteError::Closed);
        }
        self.enc.text(&mut self.out, text);
        Ok(())
    }

    /// Queues a binary frame (for servers that must show what a peer does with one).
    pub fn queue_binary(&mut self, data: &[u8]) -> Result<(), WriteError> {
        if self.close_sent {
            return Err(WriteError::Closed);
        }
        self.enc.binary(&mut self.out, data);
        Ok(())
    }

    /// Queues a ping (≤ 125 bytes of payload are sent).
    pub fn queue_ping(&mut self, data: &[u8]) -> Result<(), WriteError> {
        if self.close_sent {
            return Err(WriteError::Closed);
        }
        self.enc.ping(&mut self.out, data);
        Ok(())
    }

    /// Whether frames are waiting for [`WsConn::flush`].
    pub fn has_queued(&self) -> bool {
        !self.out.is_empty()
    }

    /// Writes what is queued, in one go, within [`WRITE_TIMEOUT`].
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        self.flush_within(WRITE_TIMEOUT).await
    }

    async fn flush_within(&mut self, limit: Duration) -> Result<(), WriteError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let write = async {
            self.io.write_all(&self.out).await?;
            // TLS buffers records: push them out too.
            self.io.flush().await
        };
        let r = match tokio::time::timeout(limit, write).await {
            Ok(r) => r.map_err(WriteError::from),
            Err(_) => Err(WriteError::Timeout),
        };
        // Written or not, those bytes are settled: a failed socket is not written again.
        self.out.clear();
        // A large frame (the session set-up) grew the buffer: its memory goes back, so a call
        // holds only what its steady traffic needs.
        if self.out.capacity() > 8 * 1024 {
            self.out = Vec::with_capacity(1024);
        }
        r
    }

    fn queue_close(&mut self, code: u16) {
        if !self.close_sent {
            // Marked before the write: a Close that fails half-way is not retried either.
            self.close_sent = true;
            self.enc.close(&mut self.out, code);
        }
    }

    /// Sends our Close (with whatever was queued before it) unless one was sent. Best effort,
    /// bounded: the peer may already be gone.
    pub async fn close(&mut self, code: u16) {
        self.queue_close(code);
        let _ = self.flush_within(CLOSE_WRITE_TIMEOUT).await;
    }

    /// Like [`WsConn::close`], with a reason (≤ 123 bytes are sent).
    pub async fn close_with_reason(&mut self, code: u16, reason: &str) {
        if !self.close_sent {
            self.close_sent = true;
            self.enc.close_with_reason(&mut self.out, code, reason);
        }
        let _ = self.flush_within(CLOSE_WRITE_TIMEOUT).await;
    }

    /// Our Close, then reading (and ignoring) until the peer's Close or EOF, at most `linger`:
    /// dropping the socket while the peer still writes would reset it and lose our Close.
    pub async fn close_and_linger(mut self, code: u16, linger: Duration) {
        self.close(code).await;
        let _ = tokio::time::timeout(linger, async {
            loop {
                if self.finished {
                    break;
                }
                self.readable().await;
                while let Some(ev) = self.next_event() {
                    if matches!(ev, Event::Closed { .. }) {
                        break;
                    }
                }
            }
        })
        .await;
    }
}

/// Our answer to the peer's Close (payload `len` bytes, status `code`): the code echoed
/// (RFC 6455 §5.5.1), 1000 when it sent none, 1002 for a one-byte payload or a code that may
/// not be sent (§7.4).
pub fn close_reply(len: usize, code: Option<u16>) -> u16 {
    match code {
        _ if len == 1 => 1002,
        None => 1000,
        Some(c @ (1000..=1003 | 1007..=1014 | 3000..=4999)) => c,
        Some(_) => 1002,
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
