//! One trace per journey, and its metrics: the web session request starts it and stores it with the web call; the
//! server's sideband continues it, so both tools hang under it; `trigger_call` stores its own
//! context in the call context, and the dial, the Telnyx webhooks and the media bridge pick it up
//! from there. Spans are exported over OTLP/HTTP to a receiver this test runs, and asserted with
//! their parent links; the metrics of the same journey (OTLP `/v1/metrics` to the same receiver)
//! are asserted by name, unit and value, with no personal data or id in any label. The all-in-one launcher runs with the OpenAI simulator as OpenAI (so the
//! test can play the visitor on a second sideband), simulated Telnyx, embedded lead store.

#[path = "support/metrics_checks.rs"]
mod metrics_checks;
#[path = "support/trace_checks.rs"]
mod trace_checks;
#[path = "support/web_driver.rs"]
mod web_driver;

use callway_core::Settings;
use callway_testkit::otlp::OtlpReceiver;
use callway_testkit::sdp::Peer;
use serde_json::Value;
use std::time::Duration;

const KEY: &str = "sk-trace-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_journey_is_one_trace_from_the_session_to_hang_up() {
    callway_testkit::install_crypto_provider();
    let receiver = OtlpReceiver::start().await;
    let _telemetry =
        callway_core::telemetry::init("callway", Some(&receiver.endpoint), Some("info"));
    let mut cfg = sim_openai::SimConfig::new(KEY, "127.0.0.1:0".parse().unwrap());
    cfg.scenario = web_driver::web_scenario("Marie");
    let openai = sim_openai::OpenAiSim::start(cfg).await.unwrap();
    openai.set_websocket_scenario(Some(callway::sandbox_phone::scenario()));
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("OPENAI_API_KEY".to_owned(), KEY.to_owned()),
        ("OPENAI_BASE_URL".to_owned(), openai.base_url()),
        (
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
    ];
    let settings = Settings::from_sources(None, env).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = callway::site::start(settings, listener)
        .await
        .expect("site");
    let server = site.server.handle();
    tokio::spawn(site.server);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = |p: &str| format!("{}/{p}", site.url);

    let (peer, offer) = Peer::offer();
    let session: Value = http
        .post(url("api/realtime/session"))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let traceparent = session["traceparent"]
        .as_str()
        .expect("the session answer carries the journey's trace context")
        .to_owned();
    let _page = peer.connect(session["sdp"].as_str().unwrap());
    let bearer = format!("Bearer {}", session["session_token"].as_str().unwrap());
    let call = web_driver::until("the web call", Duration::from_secs(5), || {
        openai.recorded().calls.first().map(|c| c.call_id.clone())
    })
    .await;
    web_driver::until("the server's sideband", Duration::from_secs(5), || {
        (!openai.recorded().sidebands_of(&call).is_empty()).then_some(())
    })
    .await;
    web_driver::visitor_says(
        &openai.base_url(),
        KEY,
        &call,
        "Oui, rappelez-moi au 06 12 34 56 78.",
    )
    .await;

    // The hand-off, then the sandbox callee answers, talks with the agent, and hangs up.
    let mut status = Value::Null;
    for _ in 0..300 {
        status = http
            .get(url("api/realtime/session"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["reason"] == "handoff" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call_id = status["call_id"].as_str().expect("a hand-off").to_owned();
    let mut timeline = Value::Null;
    for _ in 0..300 {
        timeline = http
            .get(url(&format!("api/calls/{call_id}/events")))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if timeline["ended"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(timeline["ended"], true, "the call ends: {timeline:#}");

    let spans = receiver
        .wait_until(Duration::from_secs(20), trace_checks::journey_complete)
        .await;
    let summary = trace_checks::assert_one_trace_per_journey(&spans);
    let start = spans
        .iter()
        .find(|s| s.name == "web.session_create")
        .unwrap();
    assert_eq!(
        &traceparent[3..35],
        start.trace_id,
        "the page is given the session request's own trace"
    );
    eprintln!("journey trace: {summary}");
    let outcome = timeline["events"]
        .as_array()
        .and_then(|e| e.iter().rev().find(|e| e["kind"] == "ended"))
        .and_then(|e| e["text"].as_str())
        .expect("the final event names the outcome")
        .to_owned();
    _telemetry.flush_metrics();
    metrics_checks::assert_journey_metrics(&receiver, &outcome).await;
    server.stop(false).await;
}
