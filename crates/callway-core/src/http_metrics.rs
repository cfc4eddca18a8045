//! `http.server.request.duration` for every actix service: method, route *pattern* (never the
//! raw path, which can carry ids), status. Wrapped outermost so refusals by the other middleware
//! (a body deadline, a 413) are counted too.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use opentelemetry::KeyValue;
use std::time::Instant;

/// The route label: the matched pattern, or `unmatched` (a 404 is not a route).
fn route(req: &actix_web::HttpRequest) -> String {
    req.match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// The method label, limited to the standard ones (anything else is `_OTHER`, as the semantic
/// conventions say).
fn method(m: &actix_web::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "_OTHER",
    }
}

pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method(req.method());
    // Not a clone of the request: routing needs it unshared. The route is read off the
    // response's request, after routing.
    let res = next.call(req).await;
    let (status, route) = match &res {
        Ok(r) => (r.status().as_u16(), route(r.request())),
        Err(e) => (
            e.as_response_error().status_code().as_u16(),
            "unmatched".to_owned(),
        ),
    };
    crate::metrics::get().http_duration.record(
        started.elapsed().as_secs_f64(),
        &[
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ],
    );
    res
}
