//! Test helpers: start a simulator, a raw HTTP/1.1 client, a WebSocket client, test signals.
#![allow(dead_code)]

pub mod rtc_client;

use bytes::Bytes;
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sim_openai::{OpenAiSim, Scenario, SimConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const KEY: &str = "sk-test-standard-key-0123456789";

pub fn config(scenario: Scenario) -> SimConfig {
    let mut cfg = SimConfig::new(KEY, "127.0.0.1:0".parse().expect("addr"));
    cfg.scenario = scenario;
    cfg.generation_speed = 8.0;
    cfg
}

pub async fn start(scenario: Scenario) -> OpenAiSim {
    OpenAiSim::start(config(scenario))
        .await
        .expect("simulator starts")
}

#[derive(Debug)]
pub struct HttpResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole answer.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write body");
    let mut raw = vec![];
    s.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[p + 2 + n + 2..];
    }
    out
}

pub async fn post_json(addr: SocketAddr, path: &str, key: Option<&str>, body: &Value) -> HttpResp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![("Content-Type", "application/json")];
    if let Some(a) = auth.as_deref() {
        h.push(("Authorization", a));
    }
    http(addr, "POST", path, &h, body.to_string().as_bytes()).await
}

/// Mints an `ek_` with this session.
pub async fn mint(sim: &OpenAiSim, session: Value) -> String {
    let r = post_json(
        sim.addr(),
        "/v1/realtime/client_secrets",
        Some(KEY),
        &json!({ "session": session }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["value"].as_str().expect("value").to_string()
}

struct SpawnExecutor;
impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

pub type Ws = FragmentCollector<TokioIo<hyper::upgrade::Upgraded>>;

/// Opens a WebSocket; `Err(status)` when the handshake is refused.
pub async fn ws_connect(
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut b = Request::builder()
        .method("GET")
        .uri(path_and_query)
        .header("Host", addr.to_string())
        .header("Upgrade", "websocket")
        .header("Connection", "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
    let (ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, req, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(FragmentCollector::new(ws))
}

pub async fn ws_open(sim: &OpenAiSim) -> Ws {
    let auth = format!("Bearer {KEY}");
    ws_connect(
        sim.addr(),
        "/v1/realtime?model=gpt-realtime",
        &[("Authorization", &auth)],
    )
    .await
    .expect("ws opens")
}

pub async fn send(ws: &mut Ws, ev: Value) {
    ws.write_frame(Frame::text(Payload::Owned(ev.to_string().into_bytes())))
        .await
        .expect("send");
}

/// What the server sent next.
#[derive(Debug)]
pub enum Got {
    Event(Value),
    Closed(u16, String),
    /// The socket ended without a close frame, or errored.
    Dropped,
    Timeout,
}

pub async fn next(ws: &mut Ws, within: Duration) -> Got {
    match tokio::time::timeout(within, ws.read_frame()).await {
        Err(_) => Got::Timeout,
        Ok(Err(_)) => Got::Dropped,
        Ok(Ok(f)) => match f.opcode {
            OpCode::Text => {
                Got::Event(serde_json::from_slice(&f.payload).expect("server sends JSON"))
            }
            OpCode::Close => {
                let p = f.payload.to_vec();
                let code = if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    0
                };
                Got::Closed(
                    code,
                    String::from_utf8_lossy(p.get(2..).unwrap_or(&[])).into_owned(),
                )
            }
            _ => Got::Dropped,
        },
    }
}

/// Reads events until one of type `ty`; returns it and everything before it.
pub async fn until(ws: &mut Ws, ty: &str) -> (Value, Vec<Value>) {
    let mut seen = vec![];
    loop {
        match next(ws, Duration::from_secs(10)).await {
            Got::Event(ev) if ev["type"] == ty => return (ev, seen),
            Got::Event(ev) => seen.push(ev),
            other => panic!("waiting for {ty}, got {other:?}; seen {:?}", types(&seen)),
        }
    }
}

pub fn types(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// 20 ms mu-law frames: `tone_ms` of a 300 Hz tone at about -15 dBFS (amplitude 8000), then `silence_ms` of silence.
pub fn pcmu_frames(tone_ms: usize, silence_ms: usize) -> Vec<Vec<u8>> {
    let mut pcm: Vec<i16> = (0..tone_ms * 8)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * 300.0 / 8000.0).sin() * 8000.0) as i16)
        .collect();
    pcm.extend(std::iter::repeat_n(0i16, silence_ms * 8));
    callway_audio::mulaw::encode(&pcm)
        .chunks(160)
        .map(|c| c.to_vec())
        .collect()
}

pub async fn append_pcmu(ws: &mut Ws, frames: &[Vec<u8>]) {
    use base64::Engine as _;
    for f in frames {
        let audio = base64::engine::general_purpose::STANDARD.encode(f);
        send(
            ws,
            json!({"type": "input_audio_buffer.append", "audio": audio}),
        )
        .await;
    }
}

pub fn save_lead_tool() -> Value {
    json!({"type": "function", "name": "save_lead", "description": "Save the visitor as a lead.",
           "parameters": {"type": "object", "properties": {"first_name": {"type": "string"}, "last_name": {"type": "string"},
           "phone": {"type": "string"}, "consent": {"type": "boolean"}}, "required": ["first_name", "phone", "consent"]}})
}

/// A `multipart/form-data` body: `(name, content type or none, content)` per part.
pub fn multipart_body(boundary: &str, parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, ctype, content) in parts {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n"
        ));
        if let Some(ct) = ctype {
            out.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        out.push_str(&format!("\r\n{content}\r\n"));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

/// `POST /v1/realtime/calls` as multipart/form-data (the unified interface).
pub async fn post_call_form(
    addr: SocketAddr,
    key: Option<&str>,
    parts: &[(&str, Option<&str>, &str)],
) -> HttpResp {
    let boundary = "----callway-test-boundary-7MA4YWxkTrZu0gW";
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![("Content-Type", ctype.as_str())];
    if let Some(a) = auth.as_deref() {
        h.push(("Authorization", a));
    }
    http(
        addr,
        "POST",
        "/v1/realtime/calls",
        &h,
        &multipart_body(boundary, parts),
    )
    .await
}

/// A WebRTC call created with the unified interface (standard key, multipart `sdp` and, when
/// given, `session`), its answer applied to a fresh client: `(client, rtc_… id)`.
pub async fn call_with_form(
    sim: &OpenAiSim,
    session: Option<&Value>,
) -> (rtc_client::Client, String) {
    let (mut client, offer, pending) = rtc_client::Client::offer().await;
    let session_text = session.map(|s| s.to_string());
    let mut parts = vec![("sdp", Some("application/sdp"), offer.as_str())];
    if let Some(s) = session_text.as_deref() {
        parts.push(("session", Some("application/json"), s));
    }
    let r = post_call_form(sim.addr(), Some(KEY), &parts).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    let location = r.header("location").expect("Location").to_string();
    let call_id = location
        .strip_prefix("/v1/realtime/calls/")
        .expect("Location is /v1/realtime/calls/{id}")
        .to_string();
    assert!(call_id.starts_with("rtc_"), "{call_id}");
    client.accept(pending, &r.text());
    (client, call_id)
}

/// Attaches a sideband with the standard key.
pub async fn attach(sim: &OpenAiSim, call_id: &str) -> Result<Ws, String> {
    let auth = format!("Bearer {KEY}");
    ws_connect(
        sim.addr(),
        &format!("/v1/realtime?call_id={call_id}"),
        &[("Authorization", &auth)],
    )
    .await
}
