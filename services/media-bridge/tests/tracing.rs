//! The call span continues the web leg's trace and carries the latency attributes.

mod common;

use common::*;
use media_bridge::Tuning;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use sim_openai::Trigger;
use sim_telnyx::Callee;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_span_is_a_child_of_the_web_trace_with_turn_latencies() {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("media_bridge=debug"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let steps = vec![
        say(Trigger::SessionStart, "Bonjour Marie."),
        sim_openai::Step {
            on: Trigger::UserTurn,
            expect_transcript: None,
            say: Some("Au revoir !".into()),
            say_wav: None,
            call: Some(end_call()),
        },
    ];
    let h = Harness::start(scenario(steps, 30), |_| {}, Tuning::default()).await;
    let callee = Callee::Human {
        speech_wav: callee_wav(1_500, 1_000, 0),
        hang_up_after: None,
    };
    let call = h.call("+33612345675", callee, "Marie", "résumé").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = exporter.get_finished_spans().unwrap();
        if spans.iter().any(|s| s.name == "bridge.call") {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no bridge.call span"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let attr = |s: &opentelemetry_sdk::trace::SpanData, k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.clone())
    };
    let web_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let call_span = spans.iter().find(|s| s.name == "bridge.call").unwrap();
    assert_eq!(call_span.span_context.trace_id().to_string(), web_trace);
    assert_eq!(call_span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(
        attr(call_span, "call_ref"),
        Some(Value::from(call.call_ref.as_str().to_owned()))
    );
    assert_eq!(
        attr(call_span, "callway.hangup_reason"),
        Some(Value::from("agent_ended"))
    );
    assert!(matches!(
        attr(call_span, "callway.first_agent_audio_ms"),
        Some(Value::I64(ms)) if ms >= 0
    ));
    let turn = spans
        .iter()
        .find(|s| s.name == "bridge.turn")
        .expect("a bridge.turn span");
    assert_eq!(turn.span_context.trace_id().to_string(), web_trace);
    assert_eq!(turn.parent_span_id, call_span.span_context.span_id());
    assert!(matches!(
        attr(turn, "callway.voice_to_voice_ms"),
        Some(Value::I64(ms)) if ms > 0
    ));
    // Nothing secret in any attribute.
    for s in &spans {
        for kv in &s.attributes {
            let v = kv.value.to_string();
            assert!(
                !v.contains("ss_") && !v.contains("st_") && !v.contains("+336"),
                "{kv:?}"
            );
        }
    }
    h.shutdown().await;
}
