//! Logs, traces and metrics. JSON log lines on stdout, every line passed through the phone-number
//! scrubber; spans and metrics (`crate::metrics`) exported over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`/v1/traces`, `/v1/metrics`, every 10 s).
//!
//! The OTLP exporter uses the blocking HTTP client: the batch processor runs on its own OS thread
//! without a Tokio reactor, where the async client panics and export silently stops.

use crate::mask::mask_phone_numbers;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::{self, Write};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Flushes spans on drop. Keep it alive for the life of the process.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl TelemetryGuard {
    /// Exports the metrics gathered so far now (tests; a draining process).
    pub fn flush_metrics(&self) {
        if let Some(m) = &self.meters {
            let _ = m.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
        if let Some(m) = self.meters.take() {
            let _ = m.shutdown();
        }
    }
}

/// How often metrics are exported.
const METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Installs the global subscriber. Safe to call more than once (later calls only build a guard),
/// so tests and the all-in-one launcher can share a process.
pub fn init(
    service: &'static str,
    otlp_endpoint: Option<&str>,
    filter: Option<&str>,
) -> TelemetryGuard {
    // Every service calls this first thing, before any TLS client (the OTLP exporter included)
    // is built.
    crate::install_crypto_provider();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let filter = EnvFilter::try_new(filter.unwrap_or("info,h2=warn,hyper=warn,reqwest=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_writer(MaskingStdout);
    let provider = otlp_endpoint.and_then(|endpoint| match build_provider(service, endpoint) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("OTLP exporter disabled: {e}");
            None
        }
    });
    // No busy/idle timing per span: it reads the clock on every poll of an instrumented future
    // (each audio frame of a call), and nobody looks at those attributes.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracked_inactivity(false)
            .with_tracer(p.tracer(service))
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    let mut meters = None;
    if installed {
        if let Some(p) = &provider {
            opentelemetry::global::set_tracer_provider(p.clone());
        }
        meters = otlp_endpoint.and_then(|endpoint| match build_meters(service, endpoint) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("OTLP metrics exporter disabled: {e}");
                None
            }
        });
        if let Some(m) = &meters {
            opentelemetry::global::set_meter_provider(m.clone());
        }
    }
    TelemetryGuard { provider, meters }
}

fn resource(service: &'static str) -> opentelemetry_sdk::Resource {
    // One instance id per process: scaled copies of a service must not overwrite each other's
    // series (Kubernetes sets its own through OTEL_RESOURCE_ATTRIBUTES, read by the builder).
    let from_env =
        std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.instance.id="));
    let builder = opentelemetry_sdk::Resource::builder().with_service_name(service);
    if from_env {
        builder.build()
    } else {
        builder
            .with_attribute(opentelemetry::KeyValue::new(
                "service.instance.id",
                crate::call_context::random_id(""),
            ))
            .build()
    }
}

fn build_meters(service: &'static str, endpoint: &str) -> Result<SdkMeterProvider, String> {
    use opentelemetry_otlp::WithExportConfig;
    let url = format!("{}/v1/metrics", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())?;
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter)
        .with_interval(METRICS_INTERVAL)
        .build();
    Ok(SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource(service))
        .build())
}

fn build_provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig;
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())?;
    let resource = resource(service);
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(crate::trace_mask::MaskingExporter(exporter))
        .with_resource(resource)
        .build())
}

/// The current span's W3C `traceparent`, to carry the trace across a hop we make ourselves
/// (Redis call context, outgoing HTTP).
pub fn current_traceparent() -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove("traceparent")
}

/// Makes `span` a child of a remote parent given as a W3C `traceparent` (kept in the Redis call
/// context, echoed by the page), so hops that carry no trace header of their own — Telnyx
/// webhooks, the media stream — join the journey's trace. Call before the span is entered.
/// An absent or malformed value leaves the span where it is.
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let Some(tp) = traceparent else { return };
    let carrier = std::collections::HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Stdout writer that scrubs phone numbers from each formatted line.
#[derive(Clone, Copy)]
pub struct MaskingStdout;

impl<'a> MakeWriter<'a> for MaskingStdout {
    type Writer = MaskingWriter<io::Stdout>;
    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter::new(io::stdout())
    }
}

/// Buffers one event's bytes and writes them masked when dropped (the fmt layer makes one writer
/// per event).
pub struct MaskingWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> MaskingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(256),
        }
    }
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let masked = mask_phone_numbers(&text);
        self.inner.write_all(masked.as_bytes())?;
        self.buf.clear();
        self.inner.flush()
    }
}

impl<W: Write> Drop for MaskingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_with_a_number_is_written_masked() {
        let mut out = Vec::new();
        {
            let mut w = MaskingWriter::new(&mut out);
            w.write_all(b"{\"msg\":\"dialing +33612345678\"}\n")
                .unwrap();
        }
        let line = String::from_utf8(out).unwrap();
        assert!(!line.contains("12345"), "{line}");
        assert!(line.contains("dialing +336"), "{line}");
    }
}
