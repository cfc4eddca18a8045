//! WebSocket plumbing shared by both sides: a reader task per socket that turns frames into
//! events on a channel (fastwebsockets reads are not cancel-safe, so they never sit in a
//! `select!`), and a writer the call loop awaits directly so frames leave in output order.

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

/// The write half, shared with the reader only for the protocol's obligatory replies (pong,
/// close echo).
#[derive(Clone)]
pub struct WsWriter(Arc<Mutex<Write>>);

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
        let write = async { self.0.lock().await.write_frame(frame).await };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(r) => r.map_err(BridgeError::from),
            Err(_) => Err(BridgeError::Timeout("WebSocket write")),
        }
    }

    /// Pushes buffered frames to the socket (and through TLS, which buffers records too).
    pub async fn flush(&self) -> Result<(), BridgeError> {
        let flush = async { self.0.lock().await.flush().await };
        match tokio::time::timeout(WRITE_TIMEOUT, flush).await {
            Ok(r) => r.map_err(BridgeError::from),
            Err(_) => Err(BridgeError::Timeout("WebSocket flush")),
        }
    }

    /// Best effort: the peer may already be gone.
    pub async fn close(&self, code: u16) {
        let frame = Frame::close(code, b"");
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut w = self.0.lock().await;
            w.write_frame(frame).await?;
            w.flush().await
        })
        .await;
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
    ws.set_auto_close(true);
    let (rx, tx) = ws.split(|s| {
        let (r, w) = tokio::io::split(s);
        (r, BufWriter::with_capacity(WRITE_BUFFER, w))
    });
    let writer = WsWriter(Arc::new(Mutex::new(tx)));
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
        let w = writer.clone();
        let mut obligated = move |f: Frame<'_>| {
            let (w, op, data) = (w.clone(), f.opcode, f.payload.to_vec());
            async move {
                let frame = Frame::new(true, op, None, Payload::Owned(data));
                let mut w = w.0.lock().await;
                w.write_frame(frame).await?;
                w.flush().await
            }
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
                    let _ = events.send(WsEvent::Closed { code, reason }).await;
                    return;
                }
                // Neither protocol uses binary frames: ignored (lib.rs).
                _ => continue,
            },
            Err(e) => {
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
