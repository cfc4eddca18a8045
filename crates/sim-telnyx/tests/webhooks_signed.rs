//! Webhooks: envelope, Ed25519 signature over `timestamp|raw body` (checked with ring by the
//! receiver), retries, and each injected fault actually produced.

mod support;

use serde_json::json;
use sim_telnyx::{WebhookFault, WebhookFaults};
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn genuine_webhooks_are_signed_enveloped_and_echo_client_state() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    let (_, v) = dial(
        &sim,
        dial_body(json!({"client_state": "eyJjYWxsX2lkIjoiYWJjIn0="})),
    )
    .await;
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let got = hooks.wait_for_event("call.answered", WAIT).await;

    assert!(got.len() >= 2);
    for h in &got {
        assert!(
            h.valid_signature,
            "signature over timestamp|raw body verifies with the portal key"
        );
        assert!(h.fresh);
        assert_eq!(h.json["data"]["record_type"], "event");
        assert_eq!(h.json["meta"]["attempt"], 1);
        assert_eq!(h.json["meta"]["delivered_to"], hooks.url.as_str());
        let at = h.json["data"]["occurred_at"].as_str().expect("occurred_at");
        assert_eq!(
            at.len(),
            "2025-09-11T12:34:01.931798Z".len(),
            "microseconds, Z: {at}"
        );
        assert_eq!(h.payload()["call_control_id"], ccid.as_str());
        assert_eq!(h.payload()["client_state"], "eyJjYWxsX2lkIjoiYWJjIn0=");
        assert_eq!(h.payload()["connection_id"], CONN);
        assert_eq!(
            (h.payload()["from"].as_str(), h.payload()["to"].as_str()),
            (Some(FROM), Some(TO))
        );
    }
    assert_eq!(got[0].event_type(), "call.initiated");
    assert_eq!(got[0].payload()["direction"], "outgoing");
    assert_ne!(got[0].id(), got[1].id(), "a fresh data.id per event");

    // A different key does not verify: the receiver's check is real.
    let other = WebhookReceiver::start().await;
    other.trust("eu2zvPjhY6odxV34Z/EsRiERvTodkev4Fq0SlK90Izg=");
    let mut cfg = sim_telnyx::SimConfig::new(KEY, CONN, vec![FROM.into()], other.url.clone());
    cfg.timing = sim_telnyx::Timing::fast();
    let sim2 = sim_telnyx::TelnyxSim::start(cfg).await.expect("sim2");
    dial(&sim2, dial_body(json!({}))).await;
    let seen = other
        .wait_until("a delivery", WAIT, |h| !h.is_empty())
        .await;
    assert!(!seen[0].valid_signature);
    assert_eq!(seen[0].answered, 401);

    // client_state_update changes what later webhooks carry; unset state is null.
    let (_, v) = dial(&sim, dial_body(json!({}))).await;
    let plain = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let init = hooks
        .wait_until("initiated of the 2nd call", WAIT, |h| {
            h.iter()
                .any(|h| h.payload()["call_control_id"] == plain.as_str())
        })
        .await;
    let first = init
        .iter()
        .find(|h| h.payload()["call_control_id"] == plain.as_str())
        .expect("hook");
    assert!(first.payload()["client_state"].is_null());
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_id_and_bounded() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    hooks.plan(&[500, 503]);
    dial(&sim, dial_body(json!({}))).await;
    let got = hooks
        .wait_until("call.initiated accepted", WAIT, |h| {
            h.iter()
                .any(|h| h.accepted() && h.event_type() == "call.initiated")
        })
        .await;
    let init: Vec<_> = got
        .iter()
        .filter(|h| h.event_type() == "call.initiated")
        .collect();
    assert_eq!(init.len(), 3);
    assert!(init.iter().all(|h| h.id() == init[0].id()));
    let attempts: Vec<_> = init
        .iter()
        .map(|h| h.json["meta"]["attempt"].as_u64())
        .collect();
    assert_eq!(attempts, vec![Some(1), Some(2), Some(3)]);
    assert_eq!(
        init.iter().map(|h| h.answered).collect::<Vec<_>>(),
        vec![500, 503, 200]
    );

    // Always failing: 1 + 3 retries (Timing::fast has three delays), then it gives up.
    hooks.plan(&[500; 10]);
    let (_, v) = dial(&sim, dial_body(json!({}))).await;
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let r = sim
        .wait_for(
            |r| {
                r.webhooks
                    .iter()
                    .filter(|w| w.call_control_id == ccid && w.event_type == "call.initiated")
                    .count()
                    == 4
            },
            WAIT,
        )
        .await
        .expect("four attempts");
    let statuses: Vec<_> = r
        .webhooks
        .iter()
        .filter(|w| w.call_control_id == ccid && w.event_type == "call.initiated")
        .map(|w| (w.attempt, w.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, Some(500)),
            (2, Some(500)),
            (3, Some(500)),
            (4, Some(500))
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn forged_and_stale_copies_are_produced_and_refused_by_a_careful_app() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    sim.set_webhook_faults(WebhookFaults {
        forged_copy: true,
        stale_copy_age: Some(Duration::from_secs(600)),
        only_events: vec!["call.initiated".into()],
        ..Default::default()
    });
    dial(&sim, dial_body(json!({}))).await;
    let got = hooks.wait_for_event("call.answered", WAIT).await;
    let init: Vec<_> = got
        .iter()
        .filter(|h| h.event_type() == "call.initiated")
        .collect();
    assert_eq!(init.len(), 3, "forged copy, stale copy, genuine");
    assert!(init.iter().all(|h| h.id() == init[0].id()));
    let forged = init
        .iter()
        .find(|h| !h.valid_signature)
        .expect("a forged copy");
    assert!(forged.fresh);
    assert_eq!(forged.answered, 401);
    let stale = init
        .iter()
        .find(|h| h.valid_signature && !h.fresh)
        .expect("a stale copy");
    let ts: i64 = stale.timestamp.parse().expect("ts");
    let now = chrono::Utc::now().timestamp();
    assert!((590..=610).contains(&(now - ts)), "timestamp ~600 s old");
    assert_eq!(init.iter().filter(|h| h.accepted()).count(), 1);
    // Faults are limited to the chosen events.
    assert_eq!(
        got.iter()
            .filter(|h| h.event_type() == "call.answered")
            .count(),
        1
    );

    let r = sim
        .wait_for(|r| r.webhooks.len() >= 4, WAIT)
        .await
        .expect("recorded");
    let faults: Vec<_> = r
        .webhooks
        .iter()
        .filter_map(|w| w.fault.map(|f| (f, w.status)))
        .collect();
    assert!(faults.contains(&(WebhookFault::Forged, Some(401))));
    assert!(faults.contains(&(WebhookFault::Stale, Some(401))));
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicates_and_out_of_order_deliveries() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    sim.set_webhook_faults(WebhookFaults {
        duplicate: true,
        out_of_order: true,
        ..Default::default()
    });
    dial(&sim, dial_body(json!({}))).await;
    let got = hooks
        .wait_until("both events twice", WAIT, |h| {
            h.iter()
                .filter(|h| h.event_type() == "call.initiated")
                .count()
                == 2
                && h.iter()
                    .filter(|h| h.event_type() == "call.answered")
                    .count()
                    == 2
        })
        .await;
    let order: Vec<&str> = got.iter().map(|h| h.event_type()).collect();
    assert_eq!(
        order[..4],
        [
            "call.answered",
            "call.answered",
            "call.initiated",
            "call.initiated"
        ]
    );
    assert_eq!(got[0].id(), got[1].id(), "a duplicate keeps data.id");
    assert!(got.iter().all(|h| h.valid_signature && h.fresh));
    let r = sim
        .wait_for(
            |r| {
                r.webhooks
                    .iter()
                    .filter(|w| w.fault == Some(WebhookFault::Duplicate))
                    .count()
                    == 2
            },
            WAIT,
        )
        .await
        .expect("two duplicates recorded");
    assert!(r
        .webhooks
        .iter()
        .any(|w| w.event_type == "call.initiated" && w.reordered));
    sim.shutdown().await;
}

#[tokio::test]
async fn per_call_webhook_url_overrides_the_app_url() {
    let app_hooks = WebhookReceiver::start().await;
    let call_hooks = WebhookReceiver::start().await;
    let sim = start_sim(&app_hooks.url).await;
    call_hooks.trust(&sim.public_key_base64());
    dial(&sim, dial_body(json!({"webhook_url": call_hooks.url}))).await;
    call_hooks.wait_for_event("call.answered", WAIT).await;
    assert!(app_hooks.hooks().is_empty());
    sim.shutdown().await;
}
