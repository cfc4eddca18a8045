//! The production topology, natively: Caddy (the real Caddyfile) in front of two instances of each
//! service binary, with PostgreSQL + the PostgREST-compatible server, Redis and the OpenAI and
//! Telnyx simulators. A visitor goes through the whole journey in Chromium on Caddy's one port;
//! then the phone leg must have happened end to end, and every instance must have served.
//!
//! Needs the service binaries in `$CALLWAY_BIN_DIR` (scripts/test builds them).

#[path = "support/topology.rs"]
mod topology;
#[path = "support/trace_checks.rs"]
mod trace_checks;

use callway_core::lead::{CallbackStatus, LeadId};
use callway_core::lead_store::{LeadStore, SupabaseConfig, SupabaseLeadStore};
use callway_core::secret::Secret;
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

fn fast_web_scenario() -> sim_openai::Scenario {
    let mut s = serde_json::to_value(sim_openai::Scenario::default_sandbox()).unwrap();
    // Shorter lines keep the journey under a minute; the protocol is the same.
    s["ms_per_char"] = 25.into();
    sim_openai::Scenario::from_json(&s.to_string()).unwrap()
}

/// Sends cheap requests through Caddy until every instance of `bin` has served one (Caddy's
/// round robin gives each its turn), so a service the journey calls once is still checked.
async fn top_up(
    t: &topology::Topology,
    bin: &str,
    send: impl Fn() -> reqwest::RequestBuilder,
) -> Vec<(String, Vec<String>)> {
    for _ in 0..6 {
        if t.instances_of(bin).iter().all(|i| !i.requests().is_empty()) {
            break;
        }
        let _ = send().send().await;
    }
    t.instances_of(bin)
        .iter()
        .map(|i| (i.name(), i.requests()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_through_caddy_reaches_every_instance_and_the_callback_completes() {
    let started = Instant::now();
    // Every process exports its spans here: the journey must be one trace across them all.
    let otlp = callway_testkit::otlp::OtlpReceiver::start().await;
    let t = topology::start(topology::Options {
        web_scenario: fast_web_scenario(),
        otel_endpoint: Some(otlp.endpoint.clone()),
        ..Default::default()
    })
    .await
    .expect("topology");
    let up_after = started.elapsed();

    // The visitor, on Caddy's port only. The page follows the phone leg to its end.
    let seen = topology::browser_journey(&t.url, Some(60_000))
        .await
        .expect("browser journey");
    let diag = || format!("browser: {seen:#}\n{}", t.logs());
    assert!(seen["error"].is_null(), "{}", diag());
    assert_eq!(
        seen["problems"],
        serde_json::json!([]),
        "no console error (CSP included) or failed request\n{}",
        diag()
    );
    assert!(
        seen["maxRemoteLevel"].as_f64().unwrap_or(0.0) > 0.01,
        "the agent's audio plays in the page\n{}",
        diag()
    );
    assert!(
        seen["phoneLeg"]
            .as_str()
            .unwrap_or_default()
            .contains("+33 6•• •• •• 78"),
        "{}",
        diag()
    );
    assert!(
        seen["closedCleanly"].as_bool().unwrap_or(false),
        "{}",
        diag()
    );

    // The phone leg: dialled, answered, (streamed,) hung up, as Telnyx saw it.
    let rec = t
        .telnyx
        .wait_for(
            |r| r.webhooks.iter().any(|w| w.event_type == "call.hangup"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("no hang-up: {e}\n{}", diag()));
    assert_eq!(rec.dials.len(), 1, "{}", diag());
    assert_eq!(
        rec.dials[0].body.as_ref().unwrap()["to"],
        topology::CALLEE,
        "{}",
        diag()
    );
    // Telnyx is told to stream to Caddy's public address, not to an instance.
    let stream_url = rec.dials[0].body.as_ref().unwrap()["stream_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        stream_url.starts_with(&format!(
            "{}/media/telnyx?",
            t.url.replace("http://", "ws://")
        )),
        "stream_url {stream_url:?} goes through Caddy"
    );
    let call = rec.last_call_control_id().expect("a call");
    let events = rec.events_for(&call);
    assert!(
        events.iter().any(|e| e == "call.answered"),
        "{events:?}\n{}",
        diag()
    );
    // Every webhook went through Caddy to a webhook-svc instance and was acknowledged (2xx).
    assert!(
        rec.webhooks.iter().all(|w| w.acknowledged()),
        "unacknowledged webhooks: {:#?}\n{}",
        rec.webhooks
            .iter()
            .filter(|w| !w.acknowledged())
            .map(|w| (&w.event_type, w.status, &w.error))
            .collect::<Vec<_>>(),
        diag()
    );
    let stream = rec.stream_for(&call);

    // The lead in PostgreSQL (through PostgREST) carries the callback's outcome.
    let openai = t.openai_web.recorded();
    let outputs: Vec<Value> = openai
        .sessions
        .iter()
        .flat_map(|s| s.tool_outputs.iter())
        .map(|(_, o)| serde_json::from_str(o).unwrap())
        .collect();
    let lead_id = outputs
        .iter()
        .find_map(|o| o["lead_id"].as_str())
        .unwrap_or_else(|| panic!("save_lead output\n{}", diag()));
    let store = LeadStore::Supabase(
        SupabaseLeadStore::new(SupabaseConfig {
            rest_url: t.api.rest_url(),
            service_key: Secret::new(t.api.service_role_key()),
            timeout: Duration::from_secs(3),
        })
        .unwrap(),
    );
    // The hang-up webhook writes the outcome; give it a moment after Telnyx recorded the send.
    let mut lead = None;
    for _ in 0..50 {
        lead = store.get(LeadId::parse(lead_id).unwrap()).await.unwrap();
        if lead.as_ref().is_some_and(|l| {
            !matches!(
                l.callback_status,
                CallbackStatus::Pending
                    | CallbackStatus::Dialing
                    | CallbackStatus::Ringing
                    | CallbackStatus::Answered
            )
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lead = lead.expect("lead row");
    assert_eq!(lead.phone.as_e164(), topology::CALLEE);

    let stream = stream.unwrap_or_else(|| panic!("no media stream\n{}", diag()));
    assert!(
        stream.connected_at_ms.is_some() && stream.media_frames_sent > 0,
        "the callee's audio reached media-bridge through Caddy: {stream:#?}\n{}",
        diag()
    );
    assert!(
        stream.app_media_messages > 0,
        "the phone agent's audio came back: {stream:#?}\n{}",
        diag()
    );
    assert!(
        !t.openai_phone.recorded().sessions.is_empty(),
        "media-bridge opened a phone agent session\n{}",
        diag()
    );
    assert_eq!(
        lead.callback_status,
        CallbackStatus::Completed,
        "{}",
        diag()
    );

    // The call context is gone from Redis once the call ended.
    let mut left = vec![];
    for _ in 0..30 {
        left = topology::redis_keys(&t.redis, "callway:ctx:*").unwrap();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "call context left in Redis: {left:?}");

    // One trace for the whole journey, across the four services (before the top-ups below add
    // token requests of their own).
    let spans = otlp
        .wait_until(Duration::from_secs(20), trace_checks::journey_complete)
        .await;
    let summary = trace_checks::assert_one_trace_per_journey(&spans);
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.service.as_str()).collect();
    for service in ["token-svc", "tools-svc", "webhook-svc", "media-bridge"] {
        assert!(
            services.contains(service),
            "no spans from {service}: {services:?}"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "journey trace (OTLP receiver): {summary}"
    );

    // Every instance served: tools and webhooks through the journey itself (several requests
    // each); token-svc and media-bridge see one request per visit, so top them up.
    let http = reqwest::Client::new();
    let token = top_up(&t, "token-svc", || {
        // Not an SDP offer: refused (415) before anything is spent, but served by an instance.
        http.post(format!("{}/api/realtime/session", t.url))
            .header("content-type", "text/plain")
            .body("hello")
    })
    .await;
    let media = top_up(&t, "media-bridge", || {
        // An upgrade with an unknown token: refused, but served by an instance.
        http.get(format!("{}/media/telnyx?token=unknown", t.url))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    })
    .await;
    for (name, requests) in token.iter().chain(media.iter()) {
        assert!(
            !requests.is_empty(),
            "{name} served nothing through Caddy\n{}",
            diag()
        );
    }
    for bin in ["tools-svc", "webhook-svc"] {
        for i in t.instances_of(bin) {
            assert!(
                !i.requests().is_empty(),
                "{} served nothing during the visit (round robin)\n{}",
                i.name(),
                diag()
            );
        }
    }
    let tools: Vec<String> = t
        .instances_of("tools-svc")
        .iter()
        .flat_map(|i| i.requests())
        .collect();
    // The page only reads the phone leg's timeline; the tools ran on a sideband, never on a
    // request from the page.
    assert!(
        tools.iter().any(|r| r.starts_with("GET /api/calls/")),
        "{tools:?}"
    );
    assert!(
        !tools.iter().any(|r| r.contains("/api/tools/")),
        "{tools:?}"
    );

    let served: Vec<String> = t
        .instances
        .iter()
        .map(|i| format!("{} {}", i.name(), i.requests().len()))
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "requests per instance through Caddy: {}",
        served.join(", ")
    );
    let _ = writeln!(
        std::io::stderr(),
        "topology test: {:.1?} in total ({:.1?} to start PostgreSQL, PostgREST, Redis, simulators, \
         {} service processes and Caddy)",
        started.elapsed(),
        up_after,
        t.instances.len()
    );
}
