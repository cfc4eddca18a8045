//! How long a client may take to send a request, for every actix service (the media bridge has
//! its own hyper server and applies `header` itself).
//!
//! actix bounds the first request head (`client_request_timeout`, answered 408) and idle
//! keep-alive, but not the body: a client that sends its head and then trickles the body holds
//! the connection (and a worker's attention) for as long as it likes. [`body_deadline`] puts a
//! deadline on the body stream; when it passes, the request gets 408 and the connection is
//! closed, whatever the handler made of the truncated body.

use crate::api_error::ApiErrorBody;
use crate::Settings;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderValue, CONNECTION};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse};
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// After a response that closes the connection, how long the client has to read it before the
/// socket is dropped anyway (actix's `client_disconnect_timeout`).
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The request read limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// The whole request head (`CALLWAY_HTTP_HEADER_TIMEOUT_MS`).
    pub header: Duration,
    /// The whole body, counted from when the head was read (`CALLWAY_HTTP_BODY_TIMEOUT_MS`).
    pub body: Duration,
    /// See [`DISCONNECT_TIMEOUT`].
    pub disconnect: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(15),
            disconnect: DISCONNECT_TIMEOUT,
        }
    }
}

impl HttpTimeouts {
    /// From the settings; zero would mean "no limit" to actix, so each value is at least 100 ms.
    pub fn from_settings(settings: &Settings) -> Self {
        let ms = |v: u64| Duration::from_millis(v.max(100));
        HttpTimeouts {
            header: ms(settings.callway_http_header_timeout_ms),
            body: ms(settings.callway_http_body_timeout_ms),
            disconnect: DISCONNECT_TIMEOUT,
        }
    }
}

/// Where a request body stands, shared by the stream and the middleware.
const READING: u8 = 0;
const COMPLETE: u8 = 1;
const TIMED_OUT: u8 = 2;

/// Middleware (`App::wrap(from_fn(...))`): the request body must arrive within `limit`.
///
/// The body stream fails with a timeout once the deadline passes; the response is then replaced
/// by 408 with `Connection: close`. A response sent while the body is still unread also closes
/// the connection, so a body that trickles in is never waited for after the answer.
pub fn body_deadline<B: MessageBody + 'static>(
    limit: Duration,
) -> impl Fn(
    ServiceRequest,
    Next<B>,
) -> Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>>>
       + Clone {
    move |mut req: ServiceRequest, next: Next<B>| {
        Box::pin(async move {
            let state = Arc::new(AtomicU8::new(READING));
            let inner = req.take_payload();
            let stream = DeadlineStream {
                inner,
                sleep: Box::pin(tokio::time::sleep(limit)),
                state: state.clone(),
            };
            req.set_payload(Payload::Stream {
                payload: Box::pin(stream),
            });
            let mut res = next.call(req).await?;
            match state.load(Ordering::Acquire) {
                TIMED_OUT => {
                    tracing::warn!("request body not received in time: 408");
                    let body = ApiErrorBody::new(
                        "request_timeout",
                        "La requête est arrivée trop lentement.",
                    );
                    let timeout = HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
                        .insert_header((CONNECTION, "close"))
                        .json(body);
                    Ok(res.into_response(timeout).map_into_right_body())
                }
                COMPLETE => Ok(res.map_into_left_body()),
                _ => {
                    // Answered before the body was read (or with no body at all, which the
                    // stream only learns when polled): close only if a body was announced.
                    if announces_body(res.request()) {
                        res.response_mut()
                            .headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    Ok(res.map_into_left_body())
                }
            }
        })
    }
}

/// A `Content-Length` other than 0, or any `Transfer-Encoding`.
fn announces_body(req: &actix_web::HttpRequest) -> bool {
    let h = req.headers();
    h.contains_key(actix_web::http::header::TRANSFER_ENCODING)
        || h.get(actix_web::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

struct DeadlineStream {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    state: Arc<AtomicU8>,
}

impl Stream for DeadlineStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.state.load(Ordering::Acquire) {
            COMPLETE => return Poll::Ready(None),
            TIMED_OUT => return Poll::Ready(Some(Err(timed_out()))),
            _ => {}
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(None) => {
                self.state.store(COMPLETE, Ordering::Release);
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.state.store(TIMED_OUT, Ordering::Release);
                    Poll::Ready(Some(Err(timed_out())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "request body deadline passed",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_give_the_limits_and_never_zero() {
        let env = |pairs: &[(&str, &str)]| {
            let v: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Settings::from_sources(None, v).unwrap()
        };
        assert_eq!(
            HttpTimeouts::from_settings(&env(&[])),
            HttpTimeouts::default()
        );
        let t = HttpTimeouts::from_settings(&env(&[
            ("CALLWAY_HTTP_HEADER_TIMEOUT_MS", "0"),
            ("CALLWAY_HTTP_BODY_TIMEOUT_MS", "2500"),
        ]));
        assert_eq!(t.header, Duration::from_millis(100));
        assert_eq!(t.body, Duration::from_millis(2500));
    }
}
