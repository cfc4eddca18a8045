//! A tap on the bridge's WebSockets: a TCP relay between the bridge and a peer (a simulator)
//! that reads every WebSocket frame the bridge sends after the upgrade, so a test can check
//! that each socket ends with exactly one Close frame from us and nothing after it
//! (RFC 6455 §5.5.1), whoever closed first.
//!
//! The relay keeps listening to the bridge after the peer hung up (it only half-closes toward
//! the bridge), so a Close sent after the peer has gone is still seen: the simulators drop the
//! TCP connection right after the closing handshake, as servers do.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Which end of the tapped connections is the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bridge {
    /// The tap stands in front of the bridge (Telnyx → tap → bridge).
    IsUpstream,
    /// The tap stands in front of the peer (bridge → tap → OpenAI).
    IsClient,
}

/// What one tapped connection carried from the bridge.
#[derive(Debug, Clone, Default)]
pub struct TapConn {
    /// The upstream answered 101 Switching Protocols.
    pub upgraded: bool,
    /// Frames the bridge sent after the upgrade, all kinds.
    pub frames: usize,
    pub close_frames: usize,
    /// Status codes of the bridge's Close frames, in order.
    pub close_codes: Vec<u16>,
    /// Frames (of any kind) the bridge sent after its first Close.
    pub frames_after_close: usize,
    /// The bridge closed its side of the TCP connection.
    pub finished: bool,
}

pub struct WsTap {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<Arc<Mutex<TapConn>>>>>,
    task: JoinHandle<()>,
}

impl WsTap {
    pub async fn start(upstream: SocketAddr, bridge: Bridge) -> WsTap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("tap bind");
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<Arc<Mutex<TapConn>>>>> = Arc::default();
        let all = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rec = Arc::new(Mutex::new(TapConn::default()));
                all.lock().unwrap().push(rec.clone());
                tokio::spawn(relay(client, upstream, bridge, rec));
            }
        });
        WsTap { addr, conns, task }
    }

    pub fn connections(&self) -> Vec<TapConn> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }

    /// Waits (bounded) until the bridge has closed every tapped connection, then returns them.
    pub async fn finished(&self, limit: Duration) -> Vec<TapConn> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let conns = self.connections();
            if conns.iter().all(|c| c.finished) {
                return conns;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("the bridge still holds tapped connections open: {conns:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WsTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, bridge: Bridge, rec: Arc<Mutex<TapConn>>) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        rec.lock().unwrap().finished = true;
        return;
    };
    let _ = up.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (ur, uw) = up.into_split();
    let (bridge_r, bridge_w, peer_r, peer_w) = match bridge {
        Bridge::IsUpstream => (ur, uw, cr, cw),
        Bridge::IsClient => (cr, cw, ur, uw),
    };
    // The peer's bytes go through untouched; when the peer is the upstream, its response head
    // says whether the connection was upgraded.
    let peer_rec = (bridge == Bridge::IsClient).then(|| rec.clone());
    let to_bridge = tokio::spawn(pump_from_peer(peer_r, bridge_w, peer_rec));
    pump_from_bridge(bridge_r, peer_w, &rec, bridge == Bridge::IsUpstream).await;
    to_bridge.abort();
    rec.lock().unwrap().finished = true;
}

async fn pump_from_peer(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    response_of: Option<Arc<Mutex<TapConn>>>,
) {
    let mut head = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(rec) = &response_of {
            if head.len() < 64 {
                head.extend_from_slice(&buf[..n]);
                if head.starts_with(b"HTTP/1.1 101") {
                    rec.lock().unwrap().upgraded = true;
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Half-close toward the bridge: it sees EOF but may still send (and we still read).
    let _ = to.shutdown().await;
}

async fn pump_from_bridge(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    rec: &Arc<Mutex<TapConn>>,
    bridge_answers: bool,
) {
    let mut parser = FrameParser::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut peer_gone = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        parser.feed(&buf[..n], &mut rec.lock().unwrap(), bridge_answers);
        if !peer_gone && to.write_all(&buf[..n]).await.is_err() {
            peer_gone = true;
        }
    }
    let _ = to.shutdown().await;
}

/// HTTP head, then WebSocket frames (RFC 6455 §5.2), fed in arbitrary pieces.
#[derive(Default)]
struct FrameParser {
    buf: Vec<u8>,
    head_done: bool,
}

impl FrameParser {
    fn feed(&mut self, bytes: &[u8], rec: &mut TapConn, is_response: bool) {
        self.buf.extend_from_slice(bytes);
        if !self.head_done {
            let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            if is_response && self.buf.starts_with(b"HTTP/1.1 101") {
                rec.upgraded = true;
            }
            self.buf.drain(..end + 4);
            self.head_done = true;
        }
        while let Some((opcode, payload, used)) = self.next_frame() {
            self.buf.drain(..used);
            if rec.close_frames > 0 {
                rec.frames_after_close += 1;
            }
            rec.frames += 1;
            if opcode == 0x8 {
                rec.close_frames += 1;
                if payload.len() >= 2 {
                    rec.close_codes
                        .push(u16::from_be_bytes([payload[0], payload[1]]));
                }
            }
        }
    }

    /// (opcode, unmasked payload, bytes used) of the first complete frame.
    fn next_frame(&self) -> Option<(u8, Vec<u8>, usize)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7f {
            126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
            127 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(b.get(2..10)?);
                (u64::from_be_bytes(l) as usize, 10)
            }
            n => (n as usize, 2),
        };
        let mask = if masked {
            let m = [
                *b.get(at)?,
                *b.get(at + 1)?,
                *b.get(at + 2)?,
                *b.get(at + 3)?,
            ];
            at += 4;
            Some(m)
        } else {
            None
        };
        let payload = b.get(at..at + len)?;
        let payload = match mask {
            Some(m) => payload
                .iter()
                .enumerate()
                .map(|(i, x)| x ^ m[i % 4])
                .collect(),
            None => payload.to_vec(),
        };
        Some((opcode, payload, at + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames_split_anywhere() {
        let mut bytes = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        bytes.extend([0x81, 0x02, b'h', b'i']); // text "hi"
        bytes.extend([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2]); // masked Close 1000
        bytes.extend([0x88, 0x02, 0x03, 0xe9]); // a second Close 1001
        let mut rec = TapConn::default();
        let mut p = FrameParser::default();
        for chunk in bytes.chunks(3) {
            p.feed(chunk, &mut rec, true);
        }
        assert!(rec.upgraded);
        assert_eq!(rec.frames, 3);
        assert_eq!(rec.close_frames, 2);
        assert_eq!(rec.close_codes, [1000, 1001]);
        assert_eq!(rec.frames_after_close, 1);
    }
}
