//! An OTLP/HTTP receiver (`POST /v1/traces` and `/v1/metrics`, protobuf) that records every span
//! and metric data point it is sent, so a test can assert the spans a journey produced, how they
//! link, and the metrics it counted. It decodes with the same
//! protobuf definitions the exporter encodes with; nothing is faked on the sending side.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// One received span, ids in lower-case hex (`parent_span_id` empty for a root span).
#[derive(Debug, Clone)]
pub struct RecordedSpan {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
}

/// One received metric data point (cumulative, as the SDK exports by default): for a counter or
/// gauge its value, for a histogram its count (`value`) and sum.
#[derive(Debug, Clone)]
pub struct RecordedPoint {
    pub service: String,
    pub name: String,
    pub unit: String,
    /// `sum` (counter, up-down counter), `gauge` or `histogram`.
    pub kind: &'static str,
    pub monotonic: bool,
    pub attributes: BTreeMap<String, String>,
    pub value: f64,
    pub sum: f64,
}

#[derive(Default)]
struct Sink {
    spans: Vec<RecordedSpan>,
    points: Vec<RecordedPoint>,
}

pub struct OtlpReceiver {
    /// Base URL to give as `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`).
    pub endpoint: String,
    sink: Arc<Mutex<Sink>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
        let received = Arc::new(Mutex::new(Sink::default()));
        let sink = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let sink = sink.clone();
                        async move { Ok::<_, std::convert::Infallible>(receive(req, &sink).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(sock);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            sink: received,
            task,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<RecordedSpan> {
        self.sink
            .lock()
            .map(|s| s.spans.clone())
            .unwrap_or_default()
    }

    /// Every metric data point received so far, in arrival order.
    pub fn points(&self) -> Vec<RecordedPoint> {
        self.sink
            .lock()
            .map(|s| s.points.clone())
            .unwrap_or_default()
    }

    /// The latest value of the series `name` of `service` whose attributes include `labels`,
    /// summed over the series that match (cumulative points: the latest export holds the total).
    pub fn latest(&self, service: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let points = self.points();
        let mut latest: BTreeMap<String, f64> = BTreeMap::new();
        for p in points.iter().filter(|p| {
            p.service == service
                && p.name == name
                && labels
                    .iter()
                    .all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
        }) {
            latest.insert(format!("{:?}", p.attributes), p.value);
        }
        (!latest.is_empty()).then(|| latest.values().sum())
    }

    /// Waits until `done` holds for the received spans (exporters batch: spans arrive late).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[RecordedSpan]) -> bool,
    ) -> Vec<RecordedSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(req: Request<Incoming>, sink: &Mutex<Sink>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if req.method() != hyper::Method::POST
        || !["/v1/traces", "/v1/metrics"].contains(&path.as_str())
    {
        return reply(StatusCode::NOT_FOUND);
    }
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return reply(StatusCode::BAD_REQUEST);
    };
    if path == "/v1/metrics" {
        return receive_metrics(body, sink);
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return reply(StatusCode::BAD_REQUEST);
    };
    let mut out = Vec::new();
    for rs in export.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| attributes(&r.attributes).remove("service.name"))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(RecordedSpan {
                    service: service.clone(),
                    name: s.name,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    attributes: attributes(&s.attributes),
                });
            }
        }
    }
    if let Ok(mut sink) = sink.lock() {
        sink.spans.extend(out);
    }
    reply(StatusCode::OK)
}

fn receive_metrics(body: Bytes, sink: &Mutex<Sink>) -> Response<Full<Bytes>> {
    let Ok(export) = ExportMetricsServiceRequest::decode(body) else {
        return reply(StatusCode::BAD_REQUEST);
    };
    let mut out = Vec::new();
    for rm in export.resource_metrics {
        let service = rm
            .resource
            .as_ref()
            .and_then(|r| attributes(&r.attributes).remove("service.name"))
            .unwrap_or_default();
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let point = |kind, monotonic, attrs: &[KeyValue], value, sum| RecordedPoint {
                    service: service.clone(),
                    name: m.name.clone(),
                    unit: m.unit.clone(),
                    kind,
                    monotonic,
                    attributes: attributes(attrs),
                    value,
                    sum,
                };
                let number = |v: &Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsDouble(d)) => *d,
                    Some(number_data_point::Value::AsInt(i)) => *i as f64,
                    None => 0.0,
                };
                match &m.data {
                    Some(Data::Sum(s)) => out.extend(s.data_points.iter().map(|p| {
                        point("sum", s.is_monotonic, &p.attributes, number(&p.value), 0.0)
                    })),
                    Some(Data::Gauge(g)) => out.extend(
                        g.data_points
                            .iter()
                            .map(|p| point("gauge", false, &p.attributes, number(&p.value), 0.0)),
                    ),
                    Some(Data::Histogram(h)) => out.extend(h.data_points.iter().map(|p| {
                        point(
                            "histogram",
                            false,
                            &p.attributes,
                            p.count as f64,
                            p.sum.unwrap_or(0.0),
                        )
                    })),
                    _ => {}
                }
            }
        }
    }
    if let Ok(mut sink) = sink.lock() {
        sink.points.extend(out);
    }
    reply(StatusCode::OK)
}

fn reply(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
