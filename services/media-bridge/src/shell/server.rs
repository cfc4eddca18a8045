//! The HTTP side: `GET /health` and `GET /media/telnyx?token=` (WebSocket upgrade), bounded
//! concurrency and graceful shutdown.
//!
//! Before a media socket is upgraded: capacity (503 without burning the token), one-time token
//! redeemed (unknown/reused → 403), context loaded, stream secret checked (→ 403), AMD verdict
//! read. Only then is the OpenAI connect started — in the background, so the upgrade answers
//! at once and Telnyx frames are handled while the session warms up.

use crate::shell::auth;
use crate::shell::call::{self, CallStart};
use crate::shell::state::BridgeState;
use crate::shell::telemetry;
use bytes::Bytes;
use callway_core::call_context::{CallContext, CallRef};
use fastwebsockets::upgrade;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

type Resp = Response<Full<Bytes>>;

fn plain(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// Serves until `shutdown` resolves, then stops accepting and lets calls finish within
/// `Tuning::drain_deadline` before cutting the rest.
pub async fn run(listener: TcpListener, state: BridgeState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| handle(req, state.clone()));
                        let conn = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .with_upgrades();
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "HTTP connection");
                        }
                    });
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let s = &state.0;
    s.shutting_down.store(true, Ordering::Relaxed);
    let active = state.active_calls();
    tracing::info!(active, "shutting down: waiting for calls to finish");
    let all = s.tuning.max_calls as u32;
    if tokio::time::timeout(s.tuning.drain_deadline, s.calls.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            active = state.active_calls(),
            "drain deadline passed: cutting calls"
        );
        let _ = s.hard_stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.calls.acquire_many(all))
            .await;
    }
    conns.abort_all();
}

async fn handle(req: Request<Incoming>, state: BridgeState) -> Result<Resp, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/health") => health(&state).await,
        (&Method::GET, "/media/telnyx") => media(req, state).await,
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    })
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

/// What the pre-upgrade checks decided.
enum Admit {
    Call(Box<CallContext>, CallRef, bool),
    /// Our token, but no context: accept and hang up politely (fail_closed.rs).
    FailClosed(CallRef),
}

async fn media(mut req: Request<Incoming>, state: BridgeState) -> Resp {
    if !upgrade::is_upgrade_request(&req) {
        return plain(StatusCode::BAD_REQUEST, "WebSocket upgrade expected\n");
    }
    if state.shutting_down() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    // Capacity first: a refused socket must not burn its one-time token.
    let Ok(permit) = state.0.calls.clone().try_acquire_owned() else {
        tracing::warn!("call limit reached: media socket refused");
        return plain(StatusCode::SERVICE_UNAVAILABLE, "busy\n");
    };
    // Admission logs go without the call span: its parent (the web trace) is only known once
    // the context is loaded, and tracing-opentelemetry ignores a parent set after first entry.
    let admit = match admit(&req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
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
    let (resp, upgraded) = match upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(parent: &span, error = %e, "bad upgrade");
            return plain(StatusCode::BAD_REQUEST, "bad WebSocket upgrade\n");
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
                        Ok(ws) => call::run(state, ws, start, tracing::Span::current()).await,
                        Err(e) => tracing::warn!(error = %e, "upgrade did not complete"),
                    }
                }
                .instrument(span),
            );
        }
        Admit::FailClosed(call_ref) => {
            tokio::spawn(
                async move {
                    let _permit = permit;
                    if let Ok(ws) = upgraded.await {
                        crate::shell::fail_closed::run(state, ws, call_ref).await;
                    }
                }
                .instrument(span),
            );
        }
    }
    Response::from_parts(parts, Full::new(Bytes::new()))
}

async fn admit(req: &Request<Incoming>, state: &BridgeState) -> Result<Admit, Resp> {
    let s = &state.0;
    let t = s.tuning.store_timeout;
    let unavailable = || {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "context store unavailable\n",
        )
    };
    let Some(token) = auth::query_token(req.uri().query()) else {
        tracing::warn!("media socket without a stream token: refused");
        return Err(plain(StatusCode::FORBIDDEN, "forbidden\n"));
    };
    let call_ref = match tokio::time::timeout(t, s.contexts.redeem_stream_token(token)).await {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => {
            tracing::warn!("unknown or reused stream token: refused");
            return Err(plain(StatusCode::FORBIDDEN, "forbidden\n"));
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "stream token not redeemed");
            return Err(unavailable());
        }
        Err(_) => return Err(unavailable()),
    };
    let ctx = match tokio::time::timeout(t, s.contexts.load(&call_ref)).await {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return Ok(Admit::FailClosed(call_ref)),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "call context not loaded");
            return Err(unavailable());
        }
        Err(_) => return Err(unavailable()),
    };
    let presented = req
        .headers()
        .get(auth::AUTH_HEADER)
        .and_then(|v| v.to_str().ok());
    if !auth::secret_matches(presented, &ctx.stream_secret) {
        tracing::warn!("wrong or missing stream auth token: refused");
        return Err(plain(StatusCode::FORBIDDEN, "forbidden\n"));
    }
    let machine = matches!(
        tokio::time::timeout(t, s.contexts.flag(&call_ref, "amd")).await,
        Ok(Ok(Some(v))) if v == "machine"
    );
    Ok(Admit::Call(Box::new(ctx), call_ref, machine))
}
