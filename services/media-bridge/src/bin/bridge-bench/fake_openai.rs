//! A minimal OpenAI Realtime WebSocket peer for the bench: `session.created`, `session.updated`,
//! and on `response.create` one endless response of 20 ms `audio/pcmu` deltas, each tagged with
//! `(call, seq)`. It timestamps the caller audio it receives. (sim-openai does far more per
//! session — VAD, synthesis, recording — and would dominate the measurement at 1000 calls.)

use crate::stats::{arrived, lock, string_field, tag, untag, CallTimes};
use base64::Engine as _;
use bytes::Bytes;
use fastwebsockets::{upgrade, FragmentCollectorRead, Frame, OpCode, Payload};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
pub const KEY: &str = "sk-bench";

/// Serves on a free loopback port; with `tls`, every connection is TLS first (as
/// `api.openai.com` is).
pub async fn start(
    calls: Arc<Vec<CallTimes>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let (calls, tls) = (calls.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        if let Ok(s) = tls.accept(stream).await {
                            serve(TokioIo::new(s), calls).await;
                        }
                    }
                    None => serve(TokioIo::new(stream), calls).await,
                }
            });
        }
    });
    Ok(addr)
}

async fn serve<I>(io: I, calls: Arc<Vec<CallTimes>>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| accept(req, calls.clone()));
    let _ = http1::Builder::new()
        .serve_connection(io, svc)
        .with_upgrades()
        .await;
}

async fn accept(
    mut req: Request<hyper::body::Incoming>,
    calls: Arc<Vec<CallTimes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"));
    // The bridge checks its model at start-up (`GET /v1/models/{id}`, OpenAI's `Model`).
    if authorized && req.uri().path().starts_with("/v1/models/") {
        let id = req
            .uri()
            .path()
            .trim_start_matches("/v1/models/")
            .to_owned();
        let body = serde_json::json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "openai"});
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        r.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(r);
    }
    if !authorized || req.uri().path() != "/v1/realtime" {
        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(r);
    }
    let Ok((resp, fut)) = upgrade::upgrade(&mut req) else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(r);
    };
    tokio::spawn(async move {
        if let Ok(ws) = fut.await {
            session(ws, calls).await;
        }
    });
    let (parts, _) = resp.into_parts();
    Ok(Response::from_parts(parts, Full::new(Bytes::new())))
}

fn text(s: String) -> Frame<'static> {
    Frame::text(Payload::Owned(s.into_bytes()))
}

async fn session(
    ws: fastwebsockets::WebSocket<TokioIo<hyper::upgrade::Upgraded>>,
    calls: Arc<Vec<CallTimes>>,
) {
    let (rx, mut tx) = ws.split(tokio::io::split);
    let (in_tx, mut in_rx) = mpsc::channel::<String>(256);
    tokio::spawn(async move {
        let mut rx = FragmentCollectorRead::new(rx);
        let mut ignore = |_f: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
        while let Ok(f) = rx.read_frame(&mut ignore).await {
            match f.opcode {
                OpCode::Text => {
                    let msg = String::from_utf8_lossy(&f.payload).into_owned();
                    if in_tx.send(msg).await.is_err() {
                        return;
                    }
                }
                OpCode::Close => return,
                _ => {}
            }
        }
    });
    if tx
        .write_frame(text(r#"{"type":"session.created","session":{}}"#.into()))
        .await
        .is_err()
    {
        return;
    }
    let mut call: Option<u32> = None;
    let mut speaking = false;
    let mut seq = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            msg = in_rx.recv() => {
                let Some(m) = msg else { return };
                if m.contains("\"input_audio_buffer.append\"") {
                    inbound(&m, &calls);
                } else if m.contains("\"session.update\"") {
                    // The bench names each callee "bench-call-N", hence in the instructions.
                    call = m.split("bench-call-").nth(1).and_then(|r| {
                        r.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
                    });
                    let ok = r#"{"type":"session.updated","session":{}}"#.to_owned();
                    if tx.write_frame(text(ok)).await.is_err() { return; }
                } else if m.contains("\"response.create\"") {
                    speaking = true;
                    let ev = r#"{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}"#;
                    if tx.write_frame(text(ev.into())).await.is_err() { return; }
                    seq = 0;
                    // The first delta goes out at once (pick-up latency), then every 20 ms.
                    if let Some(c) = call {
                        if send_delta(&mut tx, &calls, c, &mut seq).await.is_err() { return; }
                    }
                }
            }
            _ = tick.tick(), if speaking => {
                if let Some(c) = call {
                    if send_delta(&mut tx, &calls, c, &mut seq).await.is_err() { return; }
                }
            }
        }
    }
}

async fn send_delta<W: tokio::io::AsyncWrite + Unpin>(
    tx: &mut fastwebsockets::WebSocketWrite<W>,
    calls: &[CallTimes],
    call: u32,
    seq: &mut u32,
) -> Result<(), fastwebsockets::WebSocketError> {
    let Some(times) = calls.get(call as usize) else {
        return Ok(());
    };
    let mut audio = [0x9Cu8; 160]; // a mid-level μ-law value: clearly not silence
    audio[..8].copy_from_slice(&tag(call, *seq));
    let ev = format!(
        r#"{{"type":"response.output_audio.delta","event_id":"e{s}","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"{}"}}"#,
        B64.encode(audio),
        s = *seq
    );
    lock(&times.outbound_sent).insert(*seq, Instant::now());
    *seq += 1;
    tx.write_frame(text(ev)).await
}

fn inbound(m: &str, calls: &[CallTimes]) {
    let Some(audio) = string_field(m, "audio").and_then(|a| B64.decode(a).ok()) else {
        return;
    };
    // One append may carry several 20 ms frames when the bridge batches: each is tagged.
    for frame in audio.chunks(160) {
        if let Some((call, seq)) = untag(frame) {
            if let Some(t) = calls.get(call as usize) {
                arrived(&t.inbound_sent, &t.inbound_us, seq);
            }
        }
    }
}
