//! The metrics every service emits, one place for their names, units and labels (the contract the
//! ops files are checked against: `scripts/ops/metrics_contract.py`). Names and units follow
//! OpenTelemetry's semantic conventions (`http.server.request.duration` in seconds; our own under
//! `callway.`, counts with a `{unit}` annotation). Label values are closed enums here: nothing a
//! peer or a visitor chose (no number, no id, no raw path) can become a label.
//!
//! Instruments come from the global meter provider that `telemetry::init` installs (OTLP/HTTP
//! beside the traces); without one they are no-ops, so tests and tools pay nothing.

use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use opentelemetry::KeyValue;
use std::sync::OnceLock;

/// Every instrument, built once from the global meter.
pub struct Metrics {
    pub http_duration: Histogram<f64>,
    pub sessions_started: Counter<u64>,
    pub sessions_active: UpDownCounter<i64>,
    sessions_refused: Counter<u64>,
    pub leads_saved: Counter<u64>,
    leads_refused: Counter<u64>,
    pub callbacks_requested: Counter<u64>,
    callbacks_refused: Counter<u64>,
    pub callbacks_dialled: Counter<u64>,
    pub callbacks_dial_failed: Counter<u64>,
    pub callbacks_answered: Counter<u64>,
    callbacks_ended: Counter<u64>,
    webhooks_received: Counter<u64>,
    pub bridge_calls_active: UpDownCounter<i64>,
    bridge_admission_refused: Counter<u64>,
    frame_added_latency: Histogram<f64>,
    pub voice_to_voice: Histogram<f64>,
    upstream_errors: Counter<u64>,
}

/// Latency buckets in seconds, from 0.5 ms (a frame through the bridge) to 10 s (a slow turn).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The instruments (built on first use, from the provider installed by then).
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(&opentelemetry::global::meter("callway")))
}

impl Metrics {
    fn new(m: &Meter) -> Self {
        let counter = |name: &'static str, unit: &'static str, description: &'static str| {
            m.u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build()
        };
        let seconds = |name: &'static str, description: &'static str| {
            m.f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build()
        };
        Metrics {
            http_duration: seconds(
                "http.server.request.duration",
                "Duration of HTTP server requests.",
            ),
            sessions_started: counter(
                "callway.web.sessions.started",
                "{session}",
                "Web voice sessions opened.",
            ),
            sessions_active: m
                .i64_up_down_counter("callway.web.sessions.active")
                .with_unit("{session}")
                .with_description("Web voice sessions whose sideband this instance holds.")
                .build(),
            sessions_refused: counter(
                "callway.web.sessions.refused",
                "{session}",
                "Web voice sessions refused, by reason.",
            ),
            leads_saved: counter("callway.leads.saved", "{lead}", "Leads saved."),
            leads_refused: counter(
                "callway.leads.refused",
                "{lead}",
                "Lead saves refused, by error code.",
            ),
            callbacks_requested: counter(
                "callway.callbacks.requested",
                "{call}",
                "Callbacks the agent asked for.",
            ),
            callbacks_refused: counter(
                "callway.callbacks.refused",
                "{call}",
                "Callbacks refused, by reason.",
            ),
            callbacks_dialled: counter(
                "callway.callbacks.dialled",
                "{call}",
                "Callbacks Telnyx placed.",
            ),
            callbacks_dial_failed: counter(
                "callway.callbacks.dial_failed",
                "{call}",
                "Dials Telnyx refused, or whose placement was never confirmed.",
            ),
            callbacks_answered: counter(
                "callway.callbacks.answered",
                "{call}",
                "Callbacks answered.",
            ),
            callbacks_ended: counter(
                "callway.callbacks.ended",
                "{call}",
                "Callbacks ended, by outcome.",
            ),
            webhooks_received: counter(
                "callway.webhooks.received",
                "{webhook}",
                "Telnyx webhooks received, verified or refused.",
            ),
            bridge_calls_active: m
                .i64_up_down_counter("callway.bridge.calls.active")
                .with_unit("{call}")
                .with_description("Phone calls this bridge instance carries.")
                .build(),
            bridge_admission_refused: counter(
                "callway.bridge.admission.refused",
                "{call}",
                "Media stream upgrades the bridge refused, by reason.",
            ),
            frame_added_latency: seconds(
                "callway.bridge.frame.added_latency",
                "Time a frame spends in the bridge, from read to written.",
            ),
            voice_to_voice: seconds(
                "callway.bridge.voice_to_voice.latency",
                "End of the callee's speech to the agent's first audio.",
            ),
            upstream_errors: counter(
                "callway.upstream.errors",
                "{error}",
                "Errors from OpenAI and Telnyx, by kind.",
            ),
        }
    }

    pub fn session_refused(&self, reason: SessionRefusal) {
        self.sessions_refused
            .add(1, &[KeyValue::new("reason", reason.as_str())]);
    }

    /// `code` is one of the service's stable error codes (a closed list).
    pub fn lead_refused(&self, code: &'static str) {
        self.leads_refused.add(1, &[KeyValue::new("code", code)]);
    }

    pub fn callback_refused(&self, reason: CallbackRefusal) {
        self.callbacks_refused
            .add(1, &[KeyValue::new("reason", reason.as_str())]);
    }

    pub fn callback_ended(&self, outcome: crate::lead::CallbackStatus) {
        self.callbacks_ended
            .add(1, &[KeyValue::new("outcome", outcome.as_str())]);
    }

    /// `refusal`: `None` when the signature was verified.
    pub fn webhook_received(&self, refusal: Option<&'static str>) {
        let attrs = match refusal {
            None => [
                KeyValue::new("result", "verified"),
                KeyValue::new("reason", ""),
            ],
            Some(r) => [
                KeyValue::new("result", "refused"),
                KeyValue::new("reason", r),
            ],
        };
        self.webhooks_received.add(1, &attrs);
    }

    pub fn admission_refused(&self, reason: AdmissionRefusal) {
        self.bridge_admission_refused
            .add(1, &[KeyValue::new("reason", reason.as_str())]);
    }

    pub fn frame_latency(&self, direction: Direction, seconds: f64) {
        self.frame_added_latency
            .record(seconds, &[KeyValue::new("direction", direction.as_str())]);
    }

    /// `kind` is a short fixed word (`timeout`, `http_5xx`, `refused`, ...), never a message.
    pub fn upstream_error(&self, peer: Peer, kind: &'static str) {
        self.upstream_errors.add(
            1,
            &[
                KeyValue::new("peer", peer.as_str()),
                KeyValue::new("kind", kind),
            ],
        );
    }
}

macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }
    };
}

label_enum!(
    /// Why a web session was refused.
    SessionRefusal { Busy => "busy", RateLimited => "rate_limited", Upstream => "upstream", Invalid => "invalid", Unavailable => "unavailable" }
);
label_enum!(
    /// Why a callback was refused.
    CallbackRefusal { Cooldown => "cooldown", AlreadyRequested => "already_requested", RateLimited => "rate_limited", DailyCap => "daily_cap", Unavailable => "unavailable", Invalid => "invalid" }
);
label_enum!(
    /// Why the bridge refused a media stream.
    AdmissionRefusal { Full => "full", Token => "token", Draining => "draining" }
);
label_enum!(
    /// Which way a frame crosses the bridge.
    Direction { ToOpenAi => "to_openai", ToTelnyx => "to_telnyx" }
);
label_enum!(
    /// The upstream a failure came from.
    Peer { OpenAi => "openai", Telnyx => "telnyx" }
);
