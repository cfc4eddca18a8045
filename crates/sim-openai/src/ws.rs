//! `GET /v1/realtime` WebSocket sessions: hyper 1 for the upgrade, then one task owns the
//! socket (`callway_ws::WsConn`) with the session's engine, timers and shutdown in one `select!`.

use crate::client_secrets::{check_ephemeral, expired_body, EphemeralCheck};
use crate::engine::{Engine, Output};
use crate::errors::{self, error_event, FieldError};
use crate::http::{bearer, error_response, has_beta_header, Resp};
use crate::recording::{SessionHandle, SessionRecord, TransportKind};
use crate::session_config::{is_known_model, SessionConfig, SessionType};
use crate::state::Shared;
use bytes::Bytes;
use callway_ws::{close_reply, Event, ServerConn, UpgradeError, WriteError};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATH: &str = "/v1/realtime";

/// Largest client message read: fastwebsockets' default, which the simulator had before.
pub(crate) const MAX_MESSAGE: usize = 64 << 20;

/// How the socket's session starts.
enum Start {
    Session(Box<SessionConfig>),
    /// Refuse after the upgrade with this error event, then close.
    Refuse(FieldError, u16),
}

pub(crate) fn query_params(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.replace("%2E", ".").replace("%2e", "."))
        })
        .collect()
}

pub(crate) fn subprotocols(req: &Request<Incoming>) -> Vec<String> {
    req.headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(',').map(|s| s.trim().to_string()))
        .collect()
}

pub(crate) fn upgrade(mut req: Request<Incoming>, shared: &Arc<Shared>) -> Resp {
    let params = query_params(&req);
    // A `call_id` attaches a sideband to a WebRTC call: its own rules (standard key only, the
    // call must be live), checked before anything else. `model` is ignored then (the call has
    // one already).
    if let Some((_, call_id)) = params.iter().find(|(k, _)| k == "call_id") {
        let call_id = call_id.clone();
        return crate::sideband::upgrade(req, shared, &call_id);
    }
    let protos = subprotocols(&req);
    let key = bearer(&req).or_else(|| {
        protos.iter().find_map(|p| {
            p.strip_prefix("openai-insecure-api-key.")
                .map(str::to_string)
        })
    });
    let unauthorized = |shared: &Shared, body: Value| {
        error_response(shared, &Method::GET, PATH, StatusCode::UNAUTHORIZED, body)
    };
    let from_secret = match key.as_deref() {
        Some(k) if k == shared.api_key => None,
        Some(k) if k.starts_with("ek_") => match check_ephemeral(shared, k) {
            EphemeralCheck::Valid(s) => Some(*s),
            EphemeralCheck::Expired => return unauthorized(shared, expired_body()),
            EphemeralCheck::Unknown => {
                return unauthorized(shared, errors::invalid_api_key(Some(k)))
            }
        },
        other => return unauthorized(shared, errors::invalid_api_key(other)),
    };
    if !callway_ws::server::is_upgrade_request(&req) {
        let body = errors::rest_error(
            "This endpoint expects a WebSocket upgrade request.",
            "invalid_request_error",
            None,
            None,
        );
        return error_response(shared, &Method::GET, PATH, StatusCode::BAD_REQUEST, body);
    }
    let beta = has_beta_header(&req) || protos.iter().any(|p| p.starts_with("openai-beta."));
    let selectors: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| k == "model" || k == "call_id" || k == "intent")
        .collect();
    let start = if beta {
        Start::Refuse(errors::beta_disabled(), 4000)
    } else if selectors.len() > 1 {
        Start::Refuse(
            FieldError::new(
                "invalid_request_error",
                "Specify exactly one of 'model', 'call_id' or 'intent'.",
                None,
            ),
            1008,
        )
    } else {
        match (
            selectors.first().map(|(k, v)| (k.as_str(), v.as_str())),
            from_secret,
        ) {
            (Some(("model", m)), _) if !is_known_model(m) => {
                Start::Refuse(errors::invalid_model(m, Some("model")), 1008)
            }
            (Some(("model", m)), Some(mut s)) => {
                s.model = m.to_string();
                Start::Session(Box::new(s))
            }
            (Some(("model", m)), None) => {
                let mut s = SessionConfig::new_default(SessionType::Realtime);
                s.model = m.to_string();
                Start::Session(Box::new(s))
            }
            (Some(("intent", "transcription")), s) => {
                Start::Session(Box::new(s.unwrap_or_else(|| {
                    SessionConfig::new_default(SessionType::Transcription)
                })))
            }
            (Some(("intent", other)), _) => Start::Refuse(
                crate::validate::invalid_value("intent", other, &["transcription"]),
                1008,
            ),
            (_, Some(s)) => Start::Session(Box::new(s)),
            (_, None) => Start::Refuse(crate::validate::missing("model"), 1008),
        }
    };
    let (resp, pending) = match callway_ws::accept(&mut req) {
        Ok(x) => x,
        Err(UpgradeError::Invalid(e) | UpgradeError::Incomplete(e)) => {
            let body = errors::rest_error(
                &format!("Bad WebSocket upgrade: {e}"),
                "invalid_request_error",
                None,
                None,
            );
            return error_response(shared, &Method::GET, PATH, StatusCode::BAD_REQUEST, body);
        }
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Ok(conn) = pending.ready(MAX_MESSAGE).await {
            if let Err(e) = run(conn, start, shared).await {
                tracing::debug!("websocket session ended: {e}");
            }
        }
    });
    let (parts, _) = resp.into_parts();
    let mut resp = Resp::from_parts(parts, Full::new(Bytes::new()));
    if protos.iter().any(|p| p == "realtime") {
        resp.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("realtime"),
        );
    }
    resp
}

/// The code a client's close is recorded with: its own; 1005 for a Close without one; 1006 when
/// the connection ended without a valid Close (EOF, I/O or protocol error, a one-byte Close
/// payload, or a code no endpoint may send, which failed the connection before too).
pub(crate) fn client_close_code(code: Option<u16>, by_peer: bool) -> u16 {
    match (by_peer, code) {
        (true, Some(c)) if close_reply(2, Some(c)) == c => c,
        (true, None) => 1005,
        _ => 1006,
    }
}

/// What the engine's output asks of the socket beyond sending events.
enum End {
    /// The `ws_fail_after_events` knob: drop the socket without a close frame.
    Drop,
    Close(u16, String),
}

async fn run(mut conn: ServerConn, start: Start, shared: Arc<Shared>) -> Result<(), WriteError> {
    let session = match start {
        Start::Refuse(err, code) => {
            let ev = error_event(&err, None);
            conn.queue_text(ev.to_string().as_bytes())?;
            conn.close_with_reason(code, &err.message).await;
            return Ok(());
        }
        Start::Session(s) => *s,
    };
    let record = shared.recorder.add_session(SessionRecord::new(
        &session.id,
        TransportKind::WebSocket,
        None,
        session.to_json(),
    ));
    let client_record = record.clone();
    let mut engine = Engine::new(
        session,
        TransportKind::WebSocket,
        24_000,
        shared.ws_scenario(),
        shared.opts,
        record,
    );
    let started = Instant::now();
    let drop_at = shared
        .ws_fail_after
        .map(|d| tokio::time::Instant::now() + d);
    let drop_sleep = async {
        match drop_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(drop_sleep);
    let fail_after = shared.ws_fail_after_events;
    let mut sent_events = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut shutdown = shared.shutdown.clone();
    loop {
        if let Some(end) = pump(&mut engine, &mut conn, &mut sent_events, fail_after)? {
            return finish(conn, end, &client_record).await;
        }
        conn.flush().await?;
        tokio::select! {
            () = conn.readable() => {}
            _ = tick.tick() => {
                engine.tick(started.elapsed());
                continue;
            }
            // Dropped without a close frame.
            _ = &mut drop_sleep => return Ok(()),
            _ = shutdown.changed() => {
                conn.close_with_reason(1001, "server shutting down").await;
                return Ok(());
            }
        }
        while let Some(ev) = conn.next_event() {
            let text = match ev {
                Event::Text(t) => std::borrow::Cow::Borrowed(t),
                // Handed to the engine as text, which refuses it as it would bad JSON.
                Event::Binary(b) => String::from_utf8_lossy(b),
                Event::Closed { code, by_peer, .. } => {
                    let code = client_close_code(code, by_peer);
                    client_record.update(|r| r.client_closed_with = Some(code));
                    // Our answer to the client's Close (queued by `next_event`) goes out.
                    return conn.flush().await;
                }
            };
            engine.handle_client_text(&text, started.elapsed());
            // Drained per message: nothing the client sends after a close or a dropping
            // point reaches the engine, as when messages were handled one per turn.
            if let Some(end) = pump(&mut engine, &mut conn, &mut sent_events, fail_after)? {
                return finish(conn, end, &client_record).await;
            }
        }
    }
}

/// Queues the engine's events; stops at a close or at the event the drop knob counts to.
fn pump(
    engine: &mut Engine,
    conn: &mut ServerConn,
    sent: &mut usize,
    fail_after: Option<usize>,
) -> Result<Option<End>, WriteError> {
    for out in engine.take_output() {
        match out {
            Output::Event(ev) => {
                conn.queue_text(ev.to_string().as_bytes())?;
                *sent += 1;
                if fail_after.is_some_and(|n| *sent >= n) {
                    return Ok(Some(End::Drop));
                }
            }
            Output::Close { code, reason } => return Ok(Some(End::Close(code, reason))),
            Output::Audio(_) | Output::ClearAudio => {}
        }
    }
    Ok(None)
}

async fn finish(mut conn: ServerConn, end: End, record: &SessionHandle) -> Result<(), WriteError> {
    match end {
        // The events queued so far leave; then the socket is dropped, no close frame.
        End::Drop => conn.flush().await,
        End::Close(code, reason) => {
            conn.flush().await?;
            conn.close_with_reason(code, &reason).await;
            // RFC 6455 §7.1.1: the server closes TCP once the client's Close arrived.
            // Dropping the socket at once, with the client's frames still unread, would send
            // a reset that can destroy our Close before the client reads it.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    conn.readable().await;
                    while let Some(ev) = conn.next_event() {
                        if let Event::Closed { code, by_peer, .. } = ev {
                            let code = client_close_code(code, by_peer);
                            record.update(|r| r.client_closed_with = Some(code));
                            return;
                        }
                    }
                }
            })
            .await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_close_code;

    #[test]
    fn records_client_close_codes_as_before() {
        assert_eq!(client_close_code(Some(1000), true), 1000);
        assert_eq!(client_close_code(Some(4000), true), 4000);
        // A Close without a code; then a connection that just ended.
        assert_eq!(client_close_code(None, true), 1005);
        assert_eq!(client_close_code(None, false), 1006);
        // Codes no endpoint may send failed the connection.
        assert_eq!(client_close_code(Some(1006), true), 1006);
        assert_eq!(client_close_code(Some(999), true), 1006);
    }
}
