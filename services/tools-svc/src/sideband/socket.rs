//! The sideband socket: a reader task (fastwebsockets reads are not cancel-safe, so they never sit
//! in a `select!`) that hands text frames to the session loop, and a writer the loop owns.
//! Frames the protocol obliges us to send (pong, the close echo) go through the loop's writer.

use callway_ws::Ws;
use fastwebsockets::{
    FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError, WebSocketWrite,
};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::WriteHalf;
use tokio::sync::mpsc;

/// What the reader saw.
#[derive(Debug)]
pub enum Incoming {
    Text(String),
    /// The server closed the socket with a Close frame (the call ended).
    Closed(u16),
    /// The connection broke without a Close frame (a drop: attach again).
    Dropped,
    /// A frame the protocol obliges us to answer (pong to a ping).
    Obligated(OpCode, Vec<u8>),
}

pub struct Writer {
    inner: WebSocketWrite<WriteHalf<TokioIo<Upgraded>>>,
    closed: bool,
}

const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

impl Writer {
    pub async fn text(&mut self, text: String) -> Result<(), WebSocketError> {
        self.write(Frame::text(Payload::Owned(text.into_bytes())))
            .await
    }

    pub async fn obligated(&mut self, op: OpCode, payload: Vec<u8>) -> Result<(), WebSocketError> {
        if op == OpCode::Close {
            if self.closed {
                return Ok(());
            }
            self.closed = true;
        }
        self.write(Frame::new(true, op, None, Payload::Owned(payload)))
            .await
    }

    /// Our one Close frame (RFC 6455 §5.5.1: nothing is sent after it).
    pub async fn close(&mut self, code: u16, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let _ = self.write(Frame::close(code, reason.as_bytes())).await;
    }

    async fn write(&mut self, frame: Frame<'_>) -> Result<(), WebSocketError> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.inner.write_frame(frame)).await {
            Ok(r) => r,
            Err(_) => Err(WebSocketError::IoError(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "sideband write timed out",
            ))),
        }
    }
}

/// Splits the socket: a reader task feeding the returned channel, and the writer.
pub fn split(
    ws: Ws,
) -> (
    mpsc::Receiver<Incoming>,
    Writer,
    tokio::task::JoinHandle<()>,
) {
    let (rx, tx) = ws.split(tokio::io::split);
    let (in_tx, in_rx) = mpsc::channel::<Incoming>(256);
    let reader = tokio::spawn(async move {
        let mut rx = FragmentCollectorRead::new(rx);
        loop {
            let ob = in_tx.clone();
            let mut send = move |f: Frame<'_>| {
                let ob = ob.clone();
                let owned = Incoming::Obligated(f.opcode, f.payload.to_vec());
                async move {
                    ob.send(owned)
                        .await
                        .map_err(|e| WebSocketError::IoError(std::io::Error::other(e.to_string())))
                }
            };
            let next = match rx.read_frame(&mut send).await {
                Ok(frame) => match frame.opcode {
                    OpCode::Text => {
                        Incoming::Text(String::from_utf8_lossy(&frame.payload).into_owned())
                    }
                    OpCode::Close => {
                        let p = &frame.payload[..];
                        let code = if p.len() >= 2 {
                            u16::from_be_bytes([p[0], p[1]])
                        } else {
                            1005
                        };
                        let _ = in_tx.send(Incoming::Closed(code)).await;
                        return;
                    }
                    _ => continue,
                },
                Err(_) => {
                    let _ = in_tx.send(Incoming::Dropped).await;
                    return;
                }
            };
            if in_tx.send(next).await.is_err() {
                return;
            }
        }
    });
    (
        in_rx,
        Writer {
            inner: tx,
            closed: false,
        },
        reader,
    )
}
