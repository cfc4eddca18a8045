//! One trace per journey: the token request starts it, the page echoes its `traceparent` on the
//! tool calls, `trigger_call` stores it in the call context, and the Telnyx webhooks and the media
//! bridge pick it up from there. Spans are exported over OTLP/HTTP to a receiver this test runs,
//! and asserted with their parent links. The all-in-one launcher runs in sandbox (simulated
//! OpenAI and Telnyx, embedded lead store); the tool calls are made as the page makes them.

use callway_core::Settings;
use callway_testkit::otlp::OtlpReceiver;
use serde_json::{json, Value};
use std::time::Duration;

#[path = "support/trace_checks.rs"]
mod trace_checks;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_journey_is_one_trace_from_token_to_hang_up() {
    callway_testkit::install_crypto_provider();
    let receiver = OtlpReceiver::start().await;
    let _telemetry =
        callway_core::telemetry::init("callway", Some(&receiver.endpoint), Some("info"));
    let dir = tempfile::tempdir().unwrap();
    let root = callway_testkit::workspace_root();
    let env = vec![
        (
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
        (
            "CALLWAY_STATIC_DIR".to_owned(),
            root.join("public").to_string_lossy().into_owned(),
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

    let token: Value = http
        .post(url("api/realtime-token"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let traceparent = token["traceparent"]
        .as_str()
        .expect("the token response carries the journey's trace context")
        .to_owned();
    let bearer = format!("Bearer {}", token["session_token"].as_str().unwrap());
    let tool = |name: &str, body: Value| {
        http.post(url(&format!("api/tools/{name}")))
            .header("authorization", &bearer)
            .header("traceparent", &traceparent)
            .json(&body)
            .send()
    };
    let saved: Value = tool(
        "save_lead",
        json!({"first_name": "Marie", "last_name": "Dupont", "phone": "06 12 34 56 78", "consent": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let call = tool(
        "trigger_call",
        json!({"lead_id": saved["lead_id"], "summary": "Cabinet dentaire, veut automatiser les rappels."}),
    )
    .await
    .unwrap();
    assert_eq!(call.status(), 200);
    let call: Value = call.json().await.unwrap();
    let call_id = call["call_id"].as_str().unwrap().to_owned();

    // The sandbox callee answers, talks with the agent through the bridge, and hangs up.
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
    let mint = spans.iter().find(|s| s.name == "token.mint").unwrap();
    assert_eq!(
        &traceparent[3..35],
        mint.trace_id,
        "the page is given the token request's own trace"
    );
    eprintln!("journey trace: {summary}");
    server.stop(false).await;
}
