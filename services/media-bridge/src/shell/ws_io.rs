//! WebSocket plumbing shared by both sides: a reader task per socket that turns frames into
//! events on a channel (fastwebsockets reads are not cancel-safe, so they never sit in a
//! `select!`), and a writer the call loop awaits directly so frames leave in output order.
//!
//! Exactly one Close frame leaves each socket, and nothing after it (RFC 6455 §5.5.1): the writer
//! remembers that it sent one. Whoever closes first — our [`WsHandle::close`], or the reader
//! echoing the peer's Close — sends it; the other finds it done. (fastwebsockets' own auto-close
//! echo is off: it would answer the peer's echo of our Close with a second one.)

use crate::shell::error::BridgeError;
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, WebSocket, WebSocketWrite};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{BufWriter, WriteHalf};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

/// Both our sockets (server-side Telnyx, client-side OpenAI, TLS or not) end up as a hyper
/// upgraded stream, so one type serves both.
pub type Ws = WebSocket<TokioIo<Upgraded>>;
type Write = WebSocketWrite<BufWriter<WriteHalf<TokioIo<Upgraded>>>>;
/// Room for a burst of frames (a 20 ms media frame is ~300 bytes of JSON).
const WRITE_BUFFER: usize = 16 * 1024;

/// A peer that stops reading must not stall the call forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After our close frame, how long the peer has to echo it.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub enum WsEvent {
    Text(String),
    Closed { code: Option<u16>, reason: String },
}

/// The write half and whether our Close frame has gone (or been attempted) on it.
struct WriteState {
    ws: Write,
    close_sent: bool,
}

/// The write half, shared with the reader only for the protocol's obligatory replies (pong,
/// close echo).
#[derive(Clone)]
pub struct WsWriter(Arc<Mutex<WriteState>>);

impl WsWriter {
    /// Writes and flushes one frame.
    pub async fn send_text(&self, text: String) -> Result<(), BridgeError> {
        self.queue_text(text).await?;
        self.flush().await
    }

    /// Writes a frame into the buffer; it leaves on the next [`WsWriter::flush`] (or earlier
    /// when the buffer fills).
    pub async fn queue_text(&self, text: String) -> Result<(), BridgeError> {
        let frame = Frame::text(Payload::Owned(text.into_bytes()));
        let write = async {
            let mut w = self.0.lock().await;
            if w.close_sent {
                return Err(fastwebsockets::WebSocketError::ConnectionClosed);
            }
            w.ws.write_frame(frame).await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(r) => r.map_err(BridgeError::from),
            Err(_) => Err(BridgeError::Timeout("WebSocket write")),
        }
    }

    /// Pushes buffered frames to the socket (and through TLS, which buffers records too).
    pub async fn flush(&self) -> Result<(), BridgeError> {
        let flush = async { self.0.lock().await.ws.flush().await };
        match tokio::time::timeout(WRITE_TIMEOUT, flush).await {
            Ok(r) => r.map_err(BridgeError::from),
            Err(_) => Err(BridgeError::Timeout("WebSocket flush")),
        }
    }

    /// Sends our Close frame unless one was already sent. Best effort: the peer may already be
    /// gone.
    pub async fn close(&self, code: u16) {
        self.close_with(Frame::close(code, b"")).await;
    }

    /// The one place a Close frame is written.
    async fn close_with(&self, frame: Frame<'_>) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut w = self.0.lock().await;
            if w.close_sent {
                return Ok(());
            }
            // Marked before the write: a Close that fails half-way is not retried either.
            w.close_sent = true;
            w.ws.write_frame(frame).await?;
            w.ws.flush().await
        })
        .await;
    }

    /// A pong for the peer's ping, unless we have closed.
    async fn pong(&self, payload: Vec<u8>) -> Result<(), fastwebsockets::WebSocketError> {
        let mut w = self.0.lock().await;
        if w.close_sent {
            return Ok(());
        }
        w.ws.write_frame(Frame::pong(Payload::Owned(payload)))
            .await?;
        w.ws.flush().await
    }
}

/// A socket being served: its writer and the task reading it.
pub struct WsHandle {
    pub writer: WsWriter,
    reader: Option<JoinHandle<()>>,
    closing: Arc<AtomicBool>,
}

impl WsHandle {
    /// Sends a close frame, then lets the reader consume what the peer still sends until its
    /// close echo (bounded), without feeding the call loop. Dropping both halves at once would
    /// reset the connection while the peer is still writing, and the close would be lost.
    pub async fn close(mut self, code: u16) {
        self.closing.store(true, Ordering::Relaxed);
        self.writer.close(code).await;
        if let Some(reader) = self.reader.take() {
            let abort = reader.abort_handle();
            tokio::spawn(async move {
                if tokio::time::timeout(CLOSE_LINGER, reader).await.is_err() {
                    abort.abort();
                }
            });
        }
    }
}

impl Drop for WsHandle {
    fn drop(&mut self) {
        if let Some(r) = &self.reader {
            r.abort();
        }
    }
}

/// Splits `ws`, spawns its reader (events go to `events`), returns the writer.
pub fn spawn(mut ws: Ws, max_message: usize, events: mpsc::Sender<WsEvent>) -> WsHandle {
    ws.set_max_message_size(max_message);
    ws.set_auto_pong(true);
    // Close frames are answered by read_loop through the writer, which sends at most one.
    ws.set_auto_close(false);
    let (rx, tx) = ws.split(|s| {
        let (r, w) = tokio::io::split(s);
        (r, BufWriter::with_capacity(WRITE_BUFFER, w))
    });
    let writer = WsWriter(Arc::new(Mutex::new(WriteState {
        ws: tx,
        close_sent: false,
    })));
    let closing = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_loop(
        FragmentCollectorRead::new(rx),
        writer.clone(),
        events,
        closing.clone(),
    ));
    WsHandle {
        writer,
        reader: Some(reader),
        closing,
    }
}

async fn read_loop(
    mut rx: FragmentCollectorRead<tokio::io::ReadHalf<TokioIo<Upgraded>>>,
    writer: WsWriter,
    events: mpsc::Sender<WsEvent>,
    closing: Arc<AtomicBool>,
) {
    loop {
        // Only pongs come through here (auto-close is off).
        let w = writer.clone();
        let mut obligated = move |f: Frame<'_>| {
            let (w, data) = (w.clone(), f.payload.to_vec());
            async move { w.pong(data).await }
        };
        let event = match rx.read_frame(&mut obligated).await {
            Ok(frame) => match frame.opcode {
                OpCode::Text => WsEvent::Text(String::from_utf8_lossy(&frame.payload).into_owned()),
                OpCode::Close => {
                    let p = &frame.payload[..];
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    let reason = p
                        .get(2..)
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                        .into_owned();
                    // The answer to the peer's Close (RFC 6455 §5.5.1), unless ours went first.
                    writer.close_with(close_reply(p.len(), code)).await;
                    let _ = events.send(WsEvent::Closed { code, reason }).await;
                    return;
                }
                // Neither protocol uses binary frames: ignored (lib.rs).
                _ => continue,
            },
            Err(e) => {
                // Said once, with why (an I/O error or EOF: the write simply fails, or reaches a
                // peer that has stopped sending).
                writer.close(error_close_code(&e)).await;
                let _ = events
                    .send(WsEvent::Closed {
                        code: None,
                        reason: e.to_string(),
                    })
                    .await;
                return;
            }
        };
        if closing.load(Ordering::Relaxed) {
            continue;
        }
        // The call loop is gone (the call ended): keep reading until the peer's close so the
        // connection ends cleanly; the handle's drop or close bounds this.
        if events.send(event).await.is_err() {
            closing.store(true, Ordering::Relaxed);
        }
    }
}

/// Our answer to the peer's Close (payload `len` bytes, status `code`): the code echoed
/// (RFC 6455 §5.5.1), 1000 when it sent none, 1002 for a one-byte payload or a code that may
/// not be sent (§7.4).
fn close_reply(len: usize, code: Option<u16>) -> Frame<'static> {
    let reply = match code {
        _ if len == 1 => 1002,
        None => 1000,
        Some(c @ (1000..=1003 | 1007..=1014 | 3000..=4999)) => c,
        Some(_) => 1002,
    };
    Frame::close(reply, b"")
}

/// The status we close with when reading failed: 1007 bad UTF-8, 1009 too big, 1002 any other
/// protocol violation, 1011 for I/O errors and EOF (nobody may be listening any more).
fn error_close_code(e: &fastwebsockets::WebSocketError) -> u16 {
    use fastwebsockets::WebSocketError as E;
    match e {
        E::InvalidUTF8 => 1007,
        E::FrameTooLarge => 1009,
        E::IoError(_) | E::UnexpectedEOF | E::ConnectionClosed | E::SendError(_) => 1011,
        _ => 1002,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_echoes_a_sendable_code_only() {
        let code = |f: Frame<'_>| u16::from_be_bytes([f.payload[0], f.payload[1]]);
        assert_eq!(code(close_reply(2, Some(1000))), 1000);
        assert_eq!(code(close_reply(5, Some(1001))), 1001);
        assert_eq!(code(close_reply(2, Some(1011))), 1011);
        assert_eq!(code(close_reply(2, Some(4000))), 4000);
        assert_eq!(code(close_reply(0, None)), 1000);
        assert_eq!(code(close_reply(1, None)), 1002);
        assert_eq!(code(close_reply(2, Some(1005))), 1002);
        assert_eq!(code(close_reply(2, Some(1006))), 1002);
        assert_eq!(code(close_reply(2, Some(999))), 1002);
        assert_eq!(code(close_reply(2, Some(2500))), 1002);
    }
}
