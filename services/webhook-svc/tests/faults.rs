//! Faults around the phone leg, each checked by what a user would notice — one ring, one lead,
//! the right final status — against real Redis (and PostgreSQL + postrust where the lead store
//! is the subject): Telnyx placing the call and then timing out or answering 500, Redis frozen
//! (SIGSTOP) during webhooks, Redis restarted empty mid-call, PostgREST down while webhooks
//! arrive.

mod common;

use callway_core::lead::CallbackStatus;
use callway_core::lead_store::{LeadStore, SupabaseConfig, SupabaseLeadStore};
use callway_core::secret::Secret;
use callway_core::session_token::WebSessionId;
use common::*;
use sim_telnyx::{Callee, DialFault, WebhookFaults};
use std::time::Duration;
use webhook_svc::VoicemailAction;

fn talker(hang_up_after: Duration) -> Callee {
    Callee::Human {
        speech_wav: silence_wav(200),
        hang_up_after: Some(hang_up_after),
    }
}

/// Redeliveries spread over ~15 s, like Telnyx's own, so an outage of a few seconds is survived.
fn slow_retries() -> Options {
    Options {
        webhook_retry_delays: Some(vec![
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(4),
            Duration::from_secs(8),
        ]),
        ..Options::default()
    }
}

/// Some deliveries were refused during the outage (never a 2xx for an effect not stored), and
/// each refused event was delivered again and acknowledged.
fn every_refusal_was_redelivered_and_handled(w: &World) {
    let rec = w.sim.recorded();
    // Printed with the test's output on failure.
    for h in &rec.webhooks {
        eprintln!(
            "{} ms {} #{} -> {:?} {:?}",
            h.at_ms, h.event_type, h.attempt, h.status, h.error
        );
    }
    let refused: Vec<_> = rec.webhooks.iter().filter(|h| !h.acknowledged()).collect();
    assert!(
        !refused.is_empty(),
        "deliveries during the outage were refused"
    );
    for h in &refused {
        assert!(
            rec.webhooks
                .iter()
                .any(|later| later.id == h.id && later.acknowledged()),
            "{} was redelivered and handled",
            h.event_type
        );
    }
}

fn real_dials(w: &World) -> usize {
    w.sim
        .recorded()
        .dials
        .iter()
        .filter(|d| (200..300).contains(&d.status) || d.fault.is_some())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telnyx_placing_the_call_then_answering_500_or_nothing_rings_once() {
    for fault in [DialFault::PlaceThen500, DialFault::PlaceThenTimeout] {
        let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
        w.sim
            .script_callee(CALLEE, talker(Duration::from_millis(800)))
            .unwrap();
        w.sim.fail_next_dials(fault, 1);
        // place_callback returns once call.initiated confirmed the lost dial.
        let (lead, _) = w.request_callback().await;
        assert_eq!(
            w.final_status(lead).await,
            CallbackStatus::Completed,
            "{fault:?}"
        );
        let rec = w.sim.recorded();
        assert_eq!(rec.dials.len(), 1, "{fault:?}: the dial was sent once");
        assert_eq!(real_dials(&w), 1, "{fault:?}: one ring");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_while_webhooks_arrive_then_resumed_loses_no_outcome() {
    let w = world_with(
        WebhookFaults::default(),
        VoicemailAction::Message,
        true,
        slow_retries(),
    )
    .await;
    w.sim
        .script_callee(CALLEE, talker(Duration::from_millis(300)))
        .unwrap();
    let (lead, _) = w.request_callback().await;
    // The call rings, is answered and hung up while Redis answers nothing.
    w.redis.freeze();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    w.redis.thaw();
    assert_eq!(w.final_status(lead).await, CallbackStatus::Completed);
    every_refusal_was_redelivered_and_handled(&w);
    assert_eq!(real_dials(&w), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgrest_down_while_webhooks_arrive_then_back_records_the_right_outcome() {
    let pg = callway_testkit::pg::TempPostgres::start()
        .await
        .expect("postgres");
    let mut api = callway_testkit::postrust::Postrust::start(&pg)
        .await
        .expect("postrust");
    let leads = LeadStore::Supabase(
        SupabaseLeadStore::new(SupabaseConfig {
            rest_url: api.rest_url(),
            service_key: Secret::new(api.service_role_key()),
            timeout: Duration::from_millis(1500),
        })
        .unwrap(),
    );
    let w = world_with(
        WebhookFaults::default(),
        VoicemailAction::Message,
        true,
        Options {
            leads: Some(leads),
            ..slow_retries()
        },
    )
    .await;
    // Answered, then hung up, both inside the outage.
    w.sim
        .script_callee(CALLEE, talker(Duration::from_millis(700)))
        .unwrap();
    let (lead, _) = w.request_callback().await;
    api.stop();
    let down = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/_/health", api.port))
        .send()
        .await;
    assert!(down.is_err(), "postrust is down: {down:?}");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    api.restart().await.expect("postrust back");
    assert_eq!(w.final_status(lead).await, CallbackStatus::Completed);
    every_refusal_was_redelivered_and_handled(&w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_mid_call_records_the_outcome_and_never_rings_twice() {
    let mut w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.sim
        .script_callee(CALLEE, talker(Duration::from_millis(1500)))
        .unwrap();
    let (lead, call_ref) = w.request_callback().await;
    for _ in 0..100 {
        let s = w.leads.get(lead).await.unwrap().unwrap().callback_status;
        if s == CallbackStatus::Answered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.redis.restart_empty().await.unwrap();
    // The context is gone; the hang-up still ends the lead properly, from client_state.
    assert_eq!(w.final_status(lead).await, CallbackStatus::Completed);
    assert!(w.contexts.load(&call_ref).await.unwrap().is_none());
    // Every cooldown key is gone too: the same number from a new session is still refused,
    // from what PostgreSQL (here the embedded store) remembers.
    let t = w.tokens.mint(
        &WebSessionId::generate(),
        chrono::Utc::now().timestamp() + 600,
    );
    let session = w.tokens.verify(&t, chrono::Utc::now().timestamp()).unwrap();
    let now = chrono::Utc::now();
    let call = callway_core::web_call::WebCall {
        session,
        rtc_call_id: callway_core::web_call::RtcCallId::parse("rtc_again").unwrap(),
        client: callway_core::client_addr::ClientAddr::new("192.0.2.77".parse().unwrap()),
        started_at: now,
        deadline: now + chrono::Duration::seconds(300),
        traceparent: None,
        ended: None,
        handoff: None,
    };
    let args = serde_json::from_value(serde_json::json!({"first_name":"Marie","last_name":"Curie","phone":"06 12 34 56 78","consent":true})).unwrap();
    let again = tools_svc::tools::save_lead(&w.tools_state, &call, args)
        .await
        .unwrap();
    let refused = tools_svc::tools::prepare_callback(&w.tools_state, &call, &again.lead_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "number_cooldown");
    assert_eq!(real_dials(&w), 1, "one ring");
}
