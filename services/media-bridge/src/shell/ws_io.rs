//! WebSocket plumbing shared by both sides: a reader task per socket that turns frames into
//! events on a channel (fastwebsockets reads are not cancel-safe, so they never sit in a
//! `select!`), and a writer the call loop awaits directly so frames leave in output order.

use crate::shell::error::BridgeError;
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, WebSocket, WebSocketWrite};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::WriteHalf;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

/// Both our sockets (server-side Telnyx, client-side OpenAI, TLS or not) end up as a hyper
/// upgraded stream, so one type serves both.
pub type Ws = WebSocket<TokioIo<Upgraded>>;
type Write = WebSocketWrite<WriteHalf<TokioIo<Upgraded>>>;

/// A peer that stops reading must not stall the call forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

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
    pub async fn send_text(&self, text: String) -> Result<(), BridgeError> {
        let frame = Frame::text(Payload::Owned(text.into_bytes()));
        match tokio::time::timeout(WRITE_TIMEOUT, async { self.0.lock().await.write_frame(frame).await }).await {
            Ok(r) => r.map_err(BridgeError::from),
            Err(_) => Err(BridgeError::Timeout("WebSocket write")),
        }
    }

    /// Best effort: the peer may already be gone.
    pub async fn close(&self, code: u16) {
        let frame = Frame::close(code, b"");
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            self.0.lock().await.write_frame(frame).await
        })
        .await;
    }
}

/// A socket being served: its writer and the task reading it.
pub struct WsHandle {
    pub writer: WsWriter,
    reader: JoinHandle<()>,
}

impl Drop for WsHandle {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Splits `ws`, spawns its reader (events go to `events`), returns the writer.
pub fn spawn(mut ws: Ws, max_message: usize, events: mpsc::Sender<WsEvent>) -> WsHandle {
    ws.set_max_message_size(max_message);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    let (rx, tx) = ws.split(tokio::io::split);
    let writer = WsWriter(Arc::new(Mutex::new(tx)));
    let reader = tokio::spawn(read_loop(FragmentCollectorRead::new(rx), writer.clone(), events));
    WsHandle { writer, reader }
}

async fn read_loop(
    mut rx: FragmentCollectorRead<tokio::io::ReadHalf<TokioIo<Upgraded>>>,
    writer: WsWriter,
    events: mpsc::Sender<WsEvent>,
) {
    loop {
        let w = writer.clone();
        let mut obligated = move |f: Frame<'_>| {
            let (w, op, data) = (w.clone(), f.opcode, f.payload.to_vec());
            async move {
                let frame = Frame::new(true, op, None, Payload::Owned(data));
                w.0.lock().await.write_frame(frame).await
            }
        };
        let event = match rx.read_frame(&mut obligated).await {
            Ok(frame) => match frame.opcode {
                OpCode::Text => WsEvent::Text(String::from_utf8_lossy(&frame.payload).into_owned()),
                OpCode::Close => {
                    let p = &frame.payload[..];
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    let reason = p.get(2..).map(String::from_utf8_lossy).unwrap_or_default().into_owned();
                    let _ = events.send(WsEvent::Closed { code, reason }).await;
                    return;
                }
                // Neither protocol uses binary frames: ignored (lib.rs).
                _ => continue,
            },
            Err(e) => {
                let _ = events
                    .send(WsEvent::Closed { code: None, reason: e.to_string() })
                    .await;
                return;
            }
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}
