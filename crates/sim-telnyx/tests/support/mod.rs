//! Test doubles for "the app": a webhook receiver that verifies signatures with ring on its own,
//! and a WebSocket server that hands each accepted media stream to the test.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use fastwebsockets::{upgrade, FragmentCollector, Frame, OpCode, Payload, WebSocket};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sim_telnyx::{SimConfig, TelnyxSim, Timing};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub const KEY: &str = "KEY0123456789ABCDEF_test";
pub const CONN: &str = "1684641123236054244";
pub const FROM: &str = "+33100000001";
pub const TO: &str = "+33612345678";

pub async fn start_sim(webhook_url: &str) -> TelnyxSim {
    let mut cfg = SimConfig::new(KEY, CONN, vec![FROM.to_string()], webhook_url);
    cfg.timing = Timing::fast();
    TelnyxSim::start(cfg).await.expect("sim starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// POSTs JSON text with an optional Bearer key; returns status and parsed body.
pub async fn post(sim: &TelnyxSim, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = http()
        .post(format!("{}{path}", sim.base_url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let resp = req.send().await.expect("sim answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn dial(sim: &TelnyxSim, body: Value) -> (u16, Value) {
    post(sim, "/v2/calls", Some(KEY), &body.to_string()).await
}

pub async fn action(sim: &TelnyxSim, ccid: &str, cmd: &str, body: Value) -> (u16, Value) {
    post(
        sim,
        &format!("/v2/calls/{ccid}/actions/{cmd}"),
        Some(KEY),
        &body.to_string(),
    )
    .await
}

pub fn dial_body(extra: Value) -> Value {
    let mut b = serde_json::json!({"connection_id": CONN, "to": TO, "from": FROM});
    if let (Some(o), Value::Object(e)) = (b.as_object_mut(), extra) {
        o.extend(e);
    }
    b
}

/// Error codes of a Telnyx error body.
pub fn codes(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn pointers(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["source"]["pointer"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One webhook as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Hook {
    pub body: Bytes,
    pub json: Value,
    pub timestamp: String,
    pub signature: String,
    pub valid_signature: bool,
    pub fresh: bool,
    pub answered: u16,
}

impl Hook {
    pub fn event_type(&self) -> &str {
        self.json["data"]["event_type"].as_str().unwrap_or("")
    }
    pub fn id(&self) -> &str {
        self.json["data"]["id"].as_str().unwrap_or("")
    }
    pub fn payload(&self) -> &Value {
        &self.json["data"]["payload"]
    }
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

/// A webhook endpoint that behaves like a careful app: it verifies the Ed25519 signature over
/// `timestamp|raw body` with ring and refuses (401) bad or stale (> 300 s) deliveries. Planned
/// statuses (e.g. 500s) can be queued for genuine deliveries.
#[derive(Clone)]
pub struct WebhookReceiver {
    pub url: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    plan: Arc<Mutex<VecDeque<u16>>>,
    public_key: Arc<Mutex<Vec<u8>>>,
    changed: watch::Sender<usize>,
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/api/telnyx/webhooks",
            listener.local_addr().expect("addr")
        );
        let rx = WebhookReceiver {
            url,
            hooks: Arc::default(),
            plan: Arc::default(),
            public_key: Arc::default(),
            changed: watch::channel(0).0,
        };
        let me = rx.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let me = me.clone();
                        async move { Ok::<_, Infallible>(me.on_request(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        rx
    }

    /// The portal public key (base64) to verify with.
    pub fn trust(&self, public_key_b64: &str) {
        *self.public_key.lock().unwrap() = STANDARD.decode(public_key_b64).expect("key is base64");
    }

    /// Answer the next genuine deliveries with these statuses.
    pub fn plan(&self, statuses: &[u16]) {
        self.plan.lock().unwrap().extend(statuses);
    }

    async fn on_request(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let headers = req.headers().clone();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let header = |h: &str| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let timestamp = header("telnyx-timestamp");
        let signature = header("telnyx-signature-ed25519");
        let valid_signature = self.verify(&timestamp, &body, &signature);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (now - t).abs() <= 300);
        let answered = if valid_signature && fresh {
            self.plan.lock().unwrap().pop_front().unwrap_or(200)
        } else {
            401
        };
        let hook = Hook {
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            body,
            timestamp,
            signature,
            valid_signature,
            fresh,
            answered,
        };
        self.hooks.lock().unwrap().push(hook);
        self.changed.send_modify(|n| *n += 1);
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")));
        *resp.status_mut() = StatusCode::from_u16(answered).unwrap_or(StatusCode::OK);
        resp
    }

    fn verify(&self, timestamp: &str, body: &[u8], signature: &str) -> bool {
        let key = self.public_key.lock().unwrap().clone();
        let Ok(sig) = STANDARD.decode(signature) else {
            return false;
        };
        let mut msg = timestamp.as_bytes().to_vec();
        msg.push(b'|');
        msg.extend_from_slice(body);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
            .verify(&msg, &sig)
            .is_ok()
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }

    /// Event types the app accepted (valid, fresh, 2xx), in arrival order.
    pub fn accepted_types(&self) -> Vec<String> {
        self.hooks()
            .iter()
            .filter(|h| h.accepted())
            .map(|h| h.event_type().to_string())
            .collect()
    }

    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&[Hook]) -> bool,
    ) -> Vec<Hook> {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let hooks = self.hooks();
            if pred(&hooks) {
                return hooks;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let seen: Vec<(String, u16)> = hooks
                    .iter()
                    .map(|h| (h.event_type().to_string(), h.answered))
                    .collect();
                panic!("timed out waiting for {what}; received {seen:?}");
            }
        }
    }

    pub async fn wait_for_event(&self, event_type: &str, timeout: Duration) -> Vec<Hook> {
        self.wait_until(event_type, timeout, |h| {
            h.iter()
                .any(|h| h.accepted() && h.event_type() == event_type)
        })
        .await
    }
}

pub type AppSocket = FragmentCollector<TokioIo<Upgraded>>;

/// A media WebSocket server standing in for the app's bridge. It refuses upgrades whose
/// `x-telnyx-streaming-auth-token` differs from `expected_token` (401), and hands accepted
/// sockets to the test with the request headers and URI.
pub struct AppWsServer {
    pub url: String,
    accepted: mpsc::UnboundedReceiver<(HeaderMap, String, AppSocket)>,
}

impl AppWsServer {
    pub async fn start(expected_token: Option<&str>) -> AppWsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/telnyx/media", listener.local_addr().expect("addr"));
        let (tx, accepted) = mpsc::unbounded_channel();
        let expected = expected_token.map(str::to_owned);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                let expected = expected.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |mut req: Request<Incoming>| {
                        let tx = tx.clone();
                        let expected = expected.clone();
                        async move {
                            let token = req
                                .headers()
                                .get(sim_telnyx::STREAM_AUTH_HEADER)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            if expected.is_some() && token != expected {
                                let mut r = Response::new(Empty::<Bytes>::new());
                                *r.status_mut() = StatusCode::UNAUTHORIZED;
                                return Ok::<_, Infallible>(r);
                            }
                            let headers = req.headers().clone();
                            let uri = req.uri().to_string();
                            let Ok((resp, fut)) = upgrade::upgrade(&mut req) else {
                                let mut r = Response::new(Empty::<Bytes>::new());
                                *r.status_mut() = StatusCode::BAD_REQUEST;
                                return Ok(r);
                            };
                            tokio::spawn(async move {
                                if let Ok(ws) = fut.await {
                                    let _ = tx.send((headers, uri, FragmentCollector::new(ws)));
                                }
                            });
                            Ok(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        AppWsServer { url, accepted }
    }

    pub async fn accept(&mut self, timeout: Duration) -> (HeaderMap, String, AppSocket) {
        tokio::time::timeout(timeout, self.accepted.recv())
            .await
            .expect("a stream connects in time")
            .expect("server alive")
    }
}

/// Reads the next text frame as JSON (None when the socket closes).
pub async fn next_json(ws: &mut AppSocket, timeout: Duration) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(timeout, ws.read_frame())
            .await
            .expect("a frame in time")
            .ok()?;
        match frame.opcode {
            OpCode::Text => return serde_json::from_slice(&frame.payload).ok(),
            OpCode::Close => return None,
            _ => continue,
        }
    }
}

/// Reads frames until one whose `event` is `event`; returns it with the `media` frames skipped.
pub async fn next_event(ws: &mut AppSocket, event: &str, timeout: Duration) -> (Value, Vec<Value>) {
    let deadline = Instant::now() + timeout;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = next_json(ws, left)
            .await
            .unwrap_or_else(|| panic!("socket closed before '{event}'"));
        if v["event"] == event {
            return (v, skipped);
        }
        skipped.push(v);
    }
}

pub async fn send_text(ws: &mut AppSocket, text: &str) {
    ws.write_frame(Frame::text(Payload::Owned(text.as_bytes().to_vec())))
        .await
        .expect("write");
}

pub async fn send_binary(ws: &mut AppSocket, data: &[u8]) {
    ws.write_frame(Frame::binary(Payload::Owned(data.to_vec())))
        .await
        .expect("write");
}

pub fn media_frame(pcmu: &[u8]) -> String {
    serde_json::json!({"event": "media", "media": {"payload": STANDARD.encode(pcmu)}}).to_string()
}

pub fn _unused(_: WebSocket<TokioIo<Upgraded>>) {}
