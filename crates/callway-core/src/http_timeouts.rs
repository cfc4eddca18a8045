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
use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse};
use futures_util::Stream;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
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

/// Where a request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Reading,
    Complete,
    TimedOut,
}

/// Shared by the body stream and the middleware (one worker thread: no locks needed).
struct Shared {
    state: Cell<BodyState>,
    /// The connection's payload, kept by the stream when it is dropped unfinished. Held until
    /// the answer is sent, it makes actix close the connection after the answer instead of
    /// draining (reading to the end, however slowly it comes) a dropped chunked body.
    unread: RefCell<Option<Payload>>,
}

/// A response body that also holds the unread request body (see [`Shared::unread`]) until
/// it has been sent: actix decides between closing and draining once the answer is written.
pub struct KeepUnread<B> {
    body: Pin<Box<B>>,
    /// Never read: held only so that it is dropped with the body.
    _unread: Option<Payload>,
}

impl<B: MessageBody> MessageBody for KeepUnread<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().body.as_mut().poll_next(cx)
    }
}

/// What [`body_deadline`]'s middleware returns for a request.
pub type Deadlined<B> = Pin<
    Box<dyn Future<Output = Result<ServiceResponse<KeepUnread<EitherBody<B>>>, actix_web::Error>>>,
>;

/// Middleware (`App::wrap(from_fn(...))`): the request body must arrive within `limit`.
///
/// The body stream fails with a timeout once the deadline passes; the response is then replaced
/// by 408 and the connection closed. A response sent while the body is still unread also closes
/// the connection, so a body that trickles in is never waited for after the answer.
pub fn body_deadline<B: MessageBody + 'static>(
    limit: Duration,
) -> impl Fn(ServiceRequest, Next<B>) -> Deadlined<B> + Clone {
    move |mut req: ServiceRequest, next: Next<B>| {
        Box::pin(async move {
            let shared = Rc::new(Shared {
                state: Cell::new(BodyState::Reading),
                unread: RefCell::new(None),
            });
            let stream = DeadlineStream {
                inner: Some(req.take_payload()),
                sleep: Box::pin(tokio::time::sleep(limit)),
                shared: shared.clone(),
            };
            req.set_payload(Payload::Stream {
                payload: Box::pin(stream),
            });
            let announced = announces_body(req.request());
            let res = next.call(req).await?;
            let keep = |res: ServiceResponse<EitherBody<B>>, unread| {
                res.map_body(|_, body| KeepUnread {
                    body: Box::pin(body),
                    _unread: unread,
                })
            };
            let mut res = match shared.state.get() {
                BodyState::Complete => return Ok(keep(res.map_into_left_body(), None)),
                // Answered without reading a body it had no use for (or there was none).
                BodyState::Reading if !announced => {
                    return Ok(keep(res.map_into_left_body(), None))
                }
                BodyState::Reading => res.map_into_left_body(),
                BodyState::TimedOut => {
                    tracing::warn!("request body not received in time: 408");
                    let body = ApiErrorBody::new(
                        "request_timeout",
                        "La requête est arrivée trop lentement.",
                    );
                    let timeout = HttpResponse::build(StatusCode::REQUEST_TIMEOUT).json(body);
                    res.into_response(timeout).map_into_right_body()
                }
            };
            // The body was not read to its end: no keep-alive on this connection. (actix writes
            // the Connection header from the head's connection type; one set by hand is dropped.)
            res.response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            let unread = shared.unread.borrow_mut().take();
            Ok(keep(res, unread))
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
    /// `None` once handed to [`Shared::unread`].
    inner: Option<Payload>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    shared: Rc<Shared>,
}

impl Stream for DeadlineStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.shared.state.get() {
            BodyState::Complete => return Poll::Ready(None),
            BodyState::TimedOut => return Poll::Ready(Some(Err(timed_out()))),
            BodyState::Reading => {}
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Some(Err(timed_out())));
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(None) => {
                self.shared.state.set(BodyState::Complete);
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.shared.state.set(BodyState::TimedOut);
                    Poll::Ready(Some(Err(timed_out())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Drop for DeadlineStream {
    fn drop(&mut self) {
        if self.shared.state.get() != BodyState::Complete {
            *self.shared.unread.borrow_mut() = self.inner.take();
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
