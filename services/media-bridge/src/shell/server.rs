//! The HTTP side: `GET /health` and `GET /media/telnyx?token=` (WebSocket upgrade), bounded
//! concurrency and graceful shutdown.
//!
//! Every socket must send its whole request head within `Tuning::header_timeout`, and one
//! address may hold only a few sockets whose head is not complete yet (half_open.rs); one
//! request per connection (no keep-alive), and no request bodies.
//!
//! Before a media socket is upgraded, in this order, nothing consumed until the end: the one-time
//! token looked up without consuming it (unknown → 403), context loaded, stream secret checked
//! (→ 403, the token still valid for the real Telnyx socket), AMD verdict read, a call slot
//! taken (503, token still valid), and only then the token redeemed (already used → 403). So a
//! flood of bogus upgrades never holds a call slot and never burns a real call's token. Only
//! then is the OpenAI connect started — in the background, so the upgrade answers at once and
//! Telnyx frames are handled while the session warms up.

use crate::shell::auth;
use crate::shell::call::{self, CallStart};
use crate::shell::half_open::HalfOpenGuard;
use crate::shell::io_threads::IoThreads;
use crate::shell::state::BridgeState;
use crate::shell::telemetry;
use bytes::Bytes;
use callway_core::call_context::{CallContext, CallRef};
use callway_core::metrics::AdmissionRefusal;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::Instrument;

type Resp = Response<Full<Bytes>>;

fn plain(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// Serves until `shutdown` resolves, then drains: the listener stays open so that health
/// checks see the drain (`/health` answers 503, so an orchestrator's readiness turns false
/// while a TCP liveness check still passes) and new media streams are answered 503; running
/// calls go on for `Tuning::drain_deadline`, then the rest are cut (5 s more at most).
pub async fn run(listener: TcpListener, state: BridgeState, shutdown: impl Future<Output = ()>) {
    let io = match IoThreads::start() {
        Ok(io) => Arc::new(io),
        Err(e) => {
            tracing::error!(error = %e, "no I/O threads: not serving");
            return;
        }
    };
    let mut conns = JoinSet::new();
    serve_until(&listener, &state, &io, &mut conns, shutdown).await;
    let s = &state.0;
    s.shutting_down.store(true, Ordering::Relaxed);
    let active = state.active_calls();
    tracing::info!(active, "shutting down: waiting for calls to finish");
    let all = s.tuning.max_calls as u32;
    let drained = async {
        if tokio::time::timeout(s.tuning.drain_deadline, s.calls.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                active = state.active_calls(),
                "drain deadline passed: cutting calls"
            );
            let _ = s.hard_stop.send(true);
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), s.calls.acquire_many(all))
                    .await;
        }
    };
    serve_until(&listener, &state, &io, &mut conns, drained).await;
    drop(listener);
    conns.abort_all();
}

/// Accepts connections until `until` resolves.
async fn serve_until(
    listener: &TcpListener,
    state: &BridgeState,
    io: &Arc<IoThreads>,
    conns: &mut JoinSet<()>,
    until: impl Future<Output = ()>,
) {
    callway_ws::accept_until(listener, conns, until, |stream, peer| {
        // Over the limit: closed before reading a byte (a refused socket costs nothing; a
        // counted one at most the header timeout).
        let Some(guard) = state.0.half_open.try_enter(peer.ip()) else {
            tracing::debug!("too many half-open sockets: connection closed");
            return None;
        };
        // Served on an I/O thread, registered with its driver there.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepted socket not movable: closed");
                return None;
            }
        };
        let state = state.clone();
        let task = io.spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve_connection(stream, state, guard).await,
                Err(e) => tracing::warn!(error = %e, "accepted socket not registered: closed"),
            }
        });
        // Aborting the connection (end of the drain) aborts its task on the I/O thread.
        Some(async move {
            let abort = task.abort_handle();
            let _on_abort = AbortOnDrop(abort);
            let _ = task.await;
        })
    })
    .await;
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection: a single request (every answer but a 101 says `Connection: close`: Telnyx
/// opens one socket per stream and a health check is one request), its head within the header
/// timeout. (hyper's `keep_alive(false)` would also shut an upgraded socket.)
async fn serve_connection(stream: TcpStream, state: BridgeState, guard: HalfOpenGuard) {
    let header_timeout = state.0.tuning.header_timeout;
    // Given back as soon as the head is parsed (the service is only called then).
    let guard = Arc::new(Mutex::new(Some(guard)));
    let svc = service_fn(move |req| {
        if let Ok(mut g) = guard.lock() {
            g.take();
        }
        handle(req, state.clone())
    });
    callway_ws::serve_http1(stream, svc, Some(header_timeout)).await;
}

async fn handle(req: Request<Incoming>, state: BridgeState) -> Result<Resp, Infallible> {
    // Neither route takes a body; one that trickles in must not hold the socket.
    let mut resp = if announces_body(&req) {
        plain(StatusCode::BAD_REQUEST, "no request body expected\n")
    } else {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => health(&state).await,
            (&Method::GET, "/media/telnyx") => media(req, state).await,
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    Ok(resp)
}

/// A `Content-Length` other than 0, or any `Transfer-Encoding`.
fn announces_body(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    h.contains_key(hyper::header::TRANSFER_ENCODING)
        || h.get(hyper::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

async fn health(state: &BridgeState) -> Resp {
    let s = &state.0;
    let store_ok = tokio::time::timeout(s.tuning.store_timeout, s.contexts.ping())
        .await
        .unwrap_or(false);
    let ok = store_ok && !state.shutting_down();
    let body = serde_json::json!({
        "service": "media-bridge",
        "version": env!("CARGO_PKG_VERSION"),
        "status": if ok { "ok" } else { "degraded" },
        "context_store": s.contexts.kind(),
        "redis": store_ok,
        "active_calls": state.active_calls(),
        "max_calls": s.tuning.max_calls,
        // Sockets still sending their request head (a slowloris shows here).
        "half_open": s.half_open.total(),
    });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if !ok {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    r
}

/// What the pre-upgrade checks decided. Nothing is consumed yet: the token is still valid.
enum Admit {
    Call(Box<CallContext>, CallRef, bool),
    /// Our token, but no context: accept and hang up politely (fail_closed.rs).
    FailClosed(CallRef),
}

impl Admit {
    fn call_ref(&self) -> &CallRef {
        match self {
            Admit::Call(_, r, _) | Admit::FailClosed(r) => r,
        }
    }
}

fn forbidden() -> Resp {
    plain(StatusCode::FORBIDDEN, "forbidden\n")
}

fn store_unavailable() -> Resp {
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "context store unavailable\n",
    )
}

async fn media(mut req: Request<Incoming>, state: BridgeState) -> Resp {
    if !callway_ws::server::is_upgrade_request(&req) {
        return plain(StatusCode::BAD_REQUEST, "WebSocket upgrade expected\n");
    }
    let m = callway_core::metrics::get();
    if state.shutting_down() {
        m.admission_refused(AdmissionRefusal::Draining);
        return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    let Some(token) = auth::query_token(req.uri().query()).map(str::to_owned) else {
        tracing::warn!("media socket without a stream token: refused");
        m.admission_refused(AdmissionRefusal::Token);
        return forbidden();
    };
    // Admission logs go without the call span: its parent (the web trace) is only known once
    // the context is loaded, and tracing-opentelemetry ignores a parent set after first entry.
    let admit = match admit(&req, &token, &state).await {
        Ok(a) => a,
        Err(resp) => {
            if resp.status() == StatusCode::FORBIDDEN {
                m.admission_refused(AdmissionRefusal::Token);
            }
            return resp;
        }
    };
    // Only a socket that passed every check may take a call slot; refused for capacity, its
    // token stays valid (Telnyx, or a retry, can still use it).
    let Ok(permit) = state.0.calls.clone().try_acquire_owned() else {
        tracing::warn!("call limit reached: media socket refused");
        m.admission_refused(AdmissionRefusal::Full);
        return plain(StatusCode::SERVICE_UNAVAILABLE, "busy\n");
    };
    // Now the token is used up, atomically: of two sockets that passed the checks with the
    // same token, one gets the call.
    let t = state.0.tuning.store_timeout;
    match tokio::time::timeout(t, state.0.contexts.redeem_stream_token(&token)).await {
        Ok(Ok(Some(r))) if &r == admit.call_ref() => {}
        Ok(Ok(_)) => {
            tracing::warn!("stream token used meanwhile: refused");
            m.admission_refused(AdmissionRefusal::Token);
            return forbidden();
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "stream token not redeemed");
            return store_unavailable();
        }
        Err(_) => return store_unavailable(),
    }
    let span = telemetry::call_span();
    match &admit {
        Admit::Call(ctx, call_ref, _) => {
            callway_core::telemetry::set_remote_parent(&span, ctx.traceparent.as_deref());
            span.record("call_ref", call_ref.as_str());
        }
        Admit::FailClosed(call_ref) => {
            span.record("call_ref", call_ref.as_str());
        }
    }
    let (resp, upgraded) = match callway_ws::accept(&mut req) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(parent: &span, error = %e, "bad upgrade");
            return plain(StatusCode::BAD_REQUEST, "bad WebSocket upgrade\n");
        }
    };
    // The 101 is tiny; a peer that does not let it through holds a call slot, so not for long.
    let upgrade_limit = state.0.tuning.header_timeout;
    let upgraded = async move {
        let ready = upgraded.ready(call::MAX_TELNYX_MESSAGE);
        match tokio::time::timeout(upgrade_limit, ready).await {
            Ok(Ok(ws)) => Some(ws),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "upgrade did not complete");
                None
            }
            Err(_) => {
                tracing::warn!("upgrade not completed in time");
                None
            }
        }
    };
    let (parts, _) = resp.into_parts();
    match admit {
        Admit::Call(ctx, call_ref, machine) => {
            // Pre-warm: the OpenAI connect runs while the 101 goes out and Telnyx starts.
            let openai = (!machine).then(|| {
                let ep = state.0.openai.clone();
                tokio::spawn(async move { ep.connect().await })
            });
            let start = CallStart {
                call_ref,
                ctx: *ctx,
                openai,
            };
            tokio::spawn(
                async move {
                    let _permit = permit;
                    match upgraded.await {
                        Some(ws) => {
                            let active = &callway_core::metrics::get().bridge_calls_active;
                            active.add(1, &[]);
                            call::run(state, ws, start, tracing::Span::current()).await;
                            active.add(-1, &[]);
                        }
                        None => {
                            if let Some(o) = start.openai {
                                o.abort();
                            }
                        }
                    }
                }
                .instrument(span),
            );
        }
        Admit::FailClosed(call_ref) => {
            tokio::spawn(
                async move {
                    let _permit = permit;
                    if let Some(ws) = upgraded.await {
                        crate::shell::fail_closed::run(state, ws, call_ref).await;
                    }
                }
                .instrument(span),
            );
        }
    }
    Response::from_parts(parts, Full::new(Bytes::new()))
}

/// Every check that needs no call slot; consumes nothing.
async fn admit(req: &Request<Incoming>, token: &str, state: &BridgeState) -> Result<Admit, Resp> {
    let s = &state.0;
    let t = s.tuning.store_timeout;
    let call_ref = match tokio::time::timeout(t, s.contexts.peek_stream_token(token)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => {
            tracing::warn!("unknown or reused stream token: refused");
            return Err(forbidden());
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "stream token not read");
            return Err(store_unavailable());
        }
        Err(_) => return Err(store_unavailable()),
    };
    let ctx = match tokio::time::timeout(t, s.contexts.load(&call_ref)).await {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return Ok(Admit::FailClosed(call_ref)),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "call context not loaded");
            return Err(store_unavailable());
        }
        Err(_) => return Err(store_unavailable()),
    };
    let presented = req
        .headers()
        .get(auth::AUTH_HEADER)
        .and_then(|v| v.to_str().ok());
    if !auth::secret_matches(presented, &ctx.stream_secret) {
        // The token is not consumed: whoever this is, the real Telnyx socket can still come.
        tracing::warn!("wrong or missing stream auth token: refused");
        return Err(forbidden());
    }
    let machine = matches!(
        tokio::time::timeout(t, s.contexts.amd(&call_ref)).await,
        Ok(Ok(Some(callway_core::call_context::AmdVerdict::Machine)))
    );
    Ok(Admit::Call(Box::new(ctx), call_ref, machine))
}
