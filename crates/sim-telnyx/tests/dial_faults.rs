//! `POST /v2/calls` that places the call and then loses the answer: a 500, or no answer in time.
//! The call really goes out (webhooks, media stream); only the HTTP answer is wrong.

mod support;

use serde_json::json;
use sim_telnyx::DialFault;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn place_then_500_rings_the_callee_and_a_same_command_id_retry_gets_the_call() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    let mut app = AppWsServer::start(None).await;
    sim.fail_next_dials(DialFault::PlaceThen500, 1);
    let body = dial_body(json!({"command_id": "cmd-500", "stream_url": app.url,
                                "stream_bidirectional_mode": "rtp",
                                "client_state": "eyJjYWxsX2lkIjoiYWJjIn0="}));
    let (s, v) = dial(&sim, body.clone()).await;
    assert_eq!(s, 500, "{v}");
    assert_eq!(codes(&v), vec!["10007"]);
    // The call went out anyway: it rings, is answered, and its media stream opens.
    let r = sim
        .wait_for(
            |r| {
                r.webhooks
                    .iter()
                    .any(|w| w.event_type == "call.answered" && w.acknowledged())
            },
            WAIT,
        )
        .await
        .expect("the placed call is answered");
    let placed = r.dials[0]
        .call_control_id
        .clone()
        .expect("a call was placed");
    assert_eq!(r.dials[0].status, 500);
    assert_eq!(r.dials[0].fault, Some(DialFault::PlaceThen500));
    let initiated = r.event(&placed, "call.initiated").expect("initiated");
    assert_eq!(
        initiated["data"]["payload"]["client_state"], "eyJjYWxsX2lkIjoiYWJjIn0=",
        "the app can recognise its call by client_state"
    );
    let (_, _, mut ws) = app.accept(WAIT).await;
    next_event(&mut ws, "start", WAIT).await;

    // A retry with the same command_id is a duplicate: the original call, no second one.
    let (s, v) = dial(&sim, body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["call_control_id"], placed.as_str());
    // A retry with a new command_id is a new call: the callee rings twice.
    let (s, v) = dial(&sim, dial_body(json!({"command_id": "cmd-other"}))).await;
    assert_eq!(s, 200);
    assert_ne!(v["data"]["call_control_id"], placed.as_str());
    let r = sim.recorded();
    assert_eq!(
        r.dials
            .iter()
            .filter(|d| !d.duplicate && d.call_control_id.is_some())
            .count(),
        2
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn place_then_timeout_leaves_the_client_without_an_answer_but_the_call_rings() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    // Every attempt of a client that retries with the same command_id times out.
    sim.fail_next_dials(DialFault::PlaceThenTimeout, 2);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let body = dial_body(json!({"command_id": "cmd-slow"}));
    for _ in 0..2 {
        let sent = client
            .post(format!("{}/v2/calls", sim.base_url()))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await;
        assert!(
            sent.as_ref().is_err_and(|e| e.is_timeout()),
            "no answer in time: {sent:?}"
        );
    }
    let r = sim
        .wait_for(
            |r| r.webhooks.iter().any(|w| w.event_type == "call.initiated"),
            WAIT,
        )
        .await
        .expect("the call went out");
    assert_eq!(r.dials.len(), 2);
    assert!(r
        .dials
        .iter()
        .all(|d| d.status == 0 && d.fault == Some(DialFault::PlaceThenTimeout)));
    assert!(r.dials[1].duplicate, "the retry placed nothing");
    let placed = r.dials[0].call_control_id.clone().expect("placed");
    assert_eq!(r.dials[1].call_control_id.as_deref(), Some(placed.as_str()));
    // Disarmed after two: the third attempt gets the original call at once.
    let (s, v) = dial(&sim, body).await;
    assert_eq!(
        (s, v["data"]["call_control_id"].as_str()),
        (200, Some(placed.as_str()))
    );
    let r = sim.recorded();
    assert_eq!(
        r.webhooks
            .iter()
            .filter(|w| w.event_type == "call.initiated" && w.attempt == 1 && w.fault.is_none())
            .count(),
        1,
        "one call, one ring"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_dial_does_not_use_up_the_fault() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    sim.fail_next_dials(DialFault::PlaceThen500, 1);
    let (s, _) = dial(&sim, dial_body(json!({"to": "0612"}))).await;
    assert_eq!(s, 422);
    let (s, _) = dial(&sim, dial_body(json!({}))).await;
    assert_eq!(s, 500, "the armed fault hits the first accepted dial");
    let (s, _) = dial(&sim, dial_body(json!({}))).await;
    assert_eq!(s, 200);
    sim.shutdown().await;
}
