//! Missed callbacks are tried again: webhook-svc schedules the next attempt in the durable retry
//! queue (Redis), tools-svc's retry worker fires it when due. Checked against the Telnyx
//! simulator, a real Redis and PostgreSQL + postrust (where each attempt is claimed): a callee who never answers gets exactly the configured attempts,
//! at the configured delays, one at a time, including when the worker is restarted while a retry
//! is pending; a declined call is not retried; a retry due outside calling hours waits.

mod common;

use callway_core::lead::CallbackStatus;
use callway_core::retry::{CallingHours, RetryPolicy};
use common::*;
use sim_telnyx::{Callee, WebhookFaults};
use std::time::{Duration, Instant};
use tools_svc::retries::{Fired, RetryWorker};
use webhook_svc::VoicemailAction;

fn always_open() -> CallingHours {
    CallingHours::parse("Mon-Sun 00:00-24:00", "UTC").unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::from_secs(1), Duration::from_secs(2)],
        max_attempts: 3,
        hours: always_open(),
    }
}

/// The world on PostgreSQL + postrust (the attempt claim is a conditional update there); the
/// database and its API are returned so they live as long as the world.
async fn world_with_retries() -> (
    World,
    callway_testkit::pg::TempPostgres,
    callway_testkit::postrust::Postrust,
) {
    let pg = callway_testkit::pg::TempPostgres::start()
        .await
        .expect("postgres");
    let api = callway_testkit::postrust::Postrust::start(&pg)
        .await
        .expect("postrust");
    let leads = callway_core::lead_store::LeadStore::Supabase(
        callway_core::lead_store::SupabaseLeadStore::new(
            callway_core::lead_store::SupabaseConfig {
                rest_url: api.rest_url(),
                service_key: callway_core::secret::Secret::new(api.service_role_key()),
                timeout: Duration::from_secs(3),
            },
        )
        .unwrap(),
    );
    let w = world_with(
        WebhookFaults::default(),
        VoicemailAction::Message,
        true,
        Options {
            retry_policy: Some(policy()),
            leads: Some(leads),
            ..Options::default()
        },
    )
    .await;
    (w, pg, api)
}

fn worker(w: &World, hours: CallingHours) -> RetryWorker {
    RetryWorker::new(
        w.tools_state.clone(),
        callway_core::outbound::retry_queue(w.contexts.clone()),
        hours,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_who_never_answers_gets_exactly_the_configured_attempts_across_a_restart() {
    let (w, _pg, _api) = world_with_retries().await;
    w.sim.script_callee(CALLEE, Callee::NoAnswer).unwrap();
    let first = worker(&w, always_open()).spawn();
    let started = Instant::now();
    let (lead, _) = w.request_callback().await;
    // The first attempt ends (no answer) and its retry is queued; the worker "restarts" before
    // it is due: the schedule lives in Redis, not in the process.
    while w.leads.get(lead).await.unwrap().unwrap().callback_status != CallbackStatus::NoAnswer {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.abort();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _second = worker(&w, always_open()).spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let dialled = w.sim.recorded().dials.len();
        let l = w.leads.get(lead).await.unwrap().unwrap();
        if dialled >= 3 && l.callback_status == CallbackStatus::NoAnswer {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more comes after the last attempt.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dials = w.sim.recorded().dials;
    assert_eq!(dials.len(), 3, "three attempts in all");
    let gaps: Vec<u64> = dials.windows(2).map(|d| d[1].at_ms - d[0].at_ms).collect();
    // Each retry waits its delay after the previous attempt *ended* (ring timeout 300 ms here).
    assert!(gaps[0] >= 1_000 && gaps[0] < 4_000, "{gaps:?}");
    assert!(gaps[1] >= 2_000 && gaps[1] < 5_000, "{gaps:?}");
    let l = w.leads.get(lead).await.unwrap().unwrap();
    assert_eq!(l.callback_attempts, 3);
    let records = w.leads.call_records(lead).await.unwrap();
    let attempts: Vec<u8> = records.iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    assert!(records
        .iter()
        .all(|r| r.outcome == Some(CallbackStatus::NoAnswer)));
    eprintln!(
        "retries: 3 attempts, gaps {gaps:?} ms, done {} ms after the first dial",
        started.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_call_is_not_retried_and_a_retry_due_outside_calling_hours_waits() {
    let (w, _pg, _api) = world_with_retries().await;
    w.sim.script_callee(CALLEE, Callee::Rejected).unwrap();
    let _worker = worker(&w, always_open()).spawn();
    let (lead, _) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::NoAnswer);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.sim.recorded().dials.len(),
        1,
        "declined: never called again"
    );

    // A job found outside calling hours (a worker that was down at the time) is postponed.
    let closed = CallingHours::parse("Mon-Fri 09:00-20:00", "Europe/Paris").unwrap();
    let saturday: chrono::DateTime<chrono::Utc> = "2026-12-05T12:00:00Z".parse().unwrap();
    let queue = callway_core::outbound::retry_queue(w.contexts.clone());
    let job = callway_core::outbound::RetryJob {
        lead_id: lead,
        attempt: 2,
    };
    let now = saturday.timestamp_millis();
    queue
        .enqueue_at(&job.id(), serde_json::to_string(&job).unwrap(), now, now)
        .await
        .unwrap();
    let msg = queue.claim(now).await.unwrap().unwrap();
    let fired = worker(&w, closed).fire(&msg, saturday).await.unwrap();
    assert_eq!(
        fired,
        Fired::NotNow("2026-12-07T08:00:00Z".parse().unwrap()),
        "Monday 9:00 Paris"
    );
    // Inside calling hours, a job for a lead who declined is dropped, not dialled.
    let fired = worker(&w, always_open())
        .fire(&msg, saturday)
        .await
        .unwrap();
    assert!(matches!(fired, Fired::Skipped(_)), "{fired:?}");
    assert_eq!(w.sim.recorded().dials.len(), 1);
}
