//! Tracing for a call: the `bridge.call` span continues the web leg's trace (traceparent kept in
//! the call context), one `bridge.turn` span per phone turn, and the core's logs and metrics.
//! Nothing here ever records phone numbers, tokens, secrets or audio.

use crate::core::{LogLevel, Metric};
use tracing::field::Empty;
use tracing::Span;

/// The call span, before the context (and so the parent trace) is known.
pub fn call_span() -> Span {
    tracing::info_span!(
        "bridge.call",
        call_ref = Empty,
        "callway.first_agent_audio_ms" = Empty,
        "callway.hangup_reason" = Empty,
        "callway.end" = Empty,
        "callway.barge_ins" = Empty,
    )
}

/// Per-call metric bookkeeping.
#[derive(Default)]
pub struct CallMetrics {
    barge_ins: u64,
}

impl CallMetrics {
    pub fn record(&mut self, call: &Span, m: Metric) {
        match m {
            Metric::TurnLatency {
                response_id,
                latency,
            } => {
                let ms = millis(latency);
                callway_core::metrics::get()
                    .voice_to_voice
                    .record(latency.as_secs_f64(), &[]);
                let turn = tracing::info_span!(parent: call, "bridge.turn",
                    "callway.voice_to_voice_ms" = ms, response_id = %response_id);
                turn.in_scope(|| tracing::debug!(voice_to_voice_ms = ms, "turn answered"));
            }
            Metric::FirstAgentAudio { latency } => {
                let ms = millis(latency);
                call.record("callway.first_agent_audio_ms", ms);
                tracing::info!(parent: call, first_agent_audio_ms = ms, "first agent audio");
            }
            Metric::BargeIn {
                item_id,
                played_ms,
                sent_ms,
            } => {
                self.barge_ins += 1;
                call.record("callway.barge_ins", self.barge_ins as i64);
                tracing::info!(parent: call, item_id = %item_id, played_ms = played_ms as i64, sent_ms = sent_ms as i64, "barge-in");
            }
        }
    }
}

/// Milliseconds as i64: tracing-opentelemetry exports u64 values as strings, i64 as numbers.
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The core's log lines never carry secrets or audio (io.rs); pass them through.
pub fn log(level: LogLevel, message: &str) {
    match level {
        LogLevel::Debug => tracing::debug!("{message}"),
        LogLevel::Info => tracing::info!("{message}"),
        LogLevel::Warn => tracing::warn!("{message}"),
        LogLevel::Error => tracing::error!("{message}"),
    }
}

/// `callway.bridge.calls.limit`: the configured `MEDIA_BRIDGE_MAX_CALLS`, observed at each
/// export (registered once per process; kept alive here).
pub fn register_call_limit(max_calls: usize) {
    static GAUGE: std::sync::OnceLock<opentelemetry::metrics::ObservableGauge<u64>> =
        std::sync::OnceLock::new();
    GAUGE.get_or_init(|| {
        opentelemetry::global::meter("callway")
            .u64_observable_gauge("callway.bridge.calls.limit")
            .with_unit("{call}")
            .with_description("Most phone calls this bridge instance takes.")
            .with_callback(move |o| o.observe(max_calls as u64, &[]))
            .build()
    });
}
