//! One simulated Telnyx media stream: the upgrade with the token and stream secret, then
//! `connected`, `start`, a tagged 20 ms `media` frame every 20 ms, marks echoed as played, and
//! `stop` at the end. Lighter than sim-telnyx (no REST, webhooks or recording), same frames.

use crate::stats::{arrived, lock, string_field, tag, untag, CallTimes};
use base64::Engine as _;
use bytes::Bytes;
use fastwebsockets::{handshake, FragmentCollectorRead, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::Request;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::task::spawn(fut);
    }
}

fn text(s: String) -> Frame<'static> {
    Frame::text(Payload::Owned(s.into_bytes()))
}

pub async fn run(
    bridge: SocketAddr,
    token: String,
    secret: String,
    call: u32,
    calls: Arc<Vec<CallTimes>>,
    length: Duration,
) -> anyhow::Result<()> {
    let times = calls
        .get(call as usize)
        .ok_or_else(|| anyhow::anyhow!("no call {call}"))?;
    let tcp = TcpStream::connect(bridge).await?;
    tcp.set_nodelay(true)?;
    let req = Request::builder()
        .method("GET")
        .uri(format!("/media/telnyx?token={token}"))
        .header("host", bridge.to_string())
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", handshake::generate_key())
        .header("sec-websocket-version", "13")
        .header("x-telnyx-streaming-auth-token", secret)
        .body(Empty::<Bytes>::new())?;
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        handshake::client(&SpawnExecutor, req, tcp),
    )
    .await??;
    let (rx, mut tx) = ws.split(tokio::io::split);
    // Marks to echo, from the reader to the writer.
    let (mark_tx, mut mark_rx) = mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn({
        let calls = calls.clone();
        async move {
            let times = &calls[call as usize];
            let mut rx = FragmentCollectorRead::new(rx);
            let mut ignore = |_f: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
            while let Ok(f) = rx.read_frame(&mut ignore).await {
                if f.opcode != OpCode::Text {
                    if f.opcode == OpCode::Close {
                        return;
                    }
                    continue;
                }
                // A substring scan, not a JSON parse: the drivers must cost the bench little.
                let Ok(frame) = std::str::from_utf8(&f.payload) else {
                    continue;
                };
                if frame.contains("\"event\":\"media\"") {
                    let Some(p) = string_field(frame, "payload").and_then(|p| B64.decode(p).ok())
                    else {
                        continue;
                    };
                    let mut first = lock(&times.first_audio);
                    if first.is_none() {
                        *first = lock(&times.started_at).map(|t| t.elapsed());
                    }
                    drop(first);
                    if let Some((_, seq)) = untag(&p) {
                        arrived(&times.outbound_sent, &times.outbound_us, seq);
                    }
                } else if frame.contains("\"event\":\"mark\"") {
                    if let Some(name) = string_field(frame, "name") {
                        let _ = mark_tx.send(name.to_owned());
                    }
                }
            }
        }
    });
    let stream_id = format!("bench-stream-{call}");
    tx.write_frame(text(r#"{"event":"connected","version":"1.0.0"}"#.into()))
        .await?;
    let start = serde_json::json!({
        "event": "start", "sequence_number": "1", "stream_id": stream_id,
        "start": {"user_id": "u", "call_control_id": format!("v3:bench-{call}"), "call_session_id": "s",
                  "from": "+33100000001", "to": "+33600000000", "client_state": "",
                  "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}
    });
    *lock(&times.started_at) = Some(Instant::now());
    tx.write_frame(text(start.to_string())).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let end = tokio::time::Instant::now() + length;
    let mut seq = 0u32;
    let mut voice = [0xA5u8; 160];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if tokio::time::Instant::now() >= end { break; }
                voice[..8].copy_from_slice(&tag(call, seq));
                let f = format!(
                    r#"{{"event":"media","sequence_number":"{}","stream_id":"{stream_id}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":"{}"}}}}"#,
                    seq + 2, seq + 1, seq * 20, B64.encode(voice)
                );
                lock(&times.inbound_sent).insert(seq, Instant::now());
                seq += 1;
                tx.write_frame(text(f)).await?;
            }
            Some(name) = mark_rx.recv() => {
                let f = serde_json::json!({"event": "mark", "sequence_number": "0", "stream_id": stream_id, "mark": {"name": name}});
                tx.write_frame(text(f.to_string())).await?;
            }
        }
    }
    let stop = serde_json::json!({"event": "stop", "sequence_number": "0", "stream_id": stream_id,
        "stop": {"user_id": "u", "call_control_id": format!("v3:bench-{call}")}});
    tx.write_frame(text(stop.to_string())).await?;
    tx.write_frame(Frame::close(1000, b"")).await?;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while !reader.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    reader.abort();
    Ok(())
}
