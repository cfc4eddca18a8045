//! The visitor calls back: an incoming call to our number is answered, its stream started with
//! the stream's auth token once answered, and the phone agent's context says who it may be — a
//! recent lead with that number (the agent continues that conversation) or nobody (Callway's
//! generic agent). Against the Telnyx simulator and a real Redis.

mod common;

use callway_core::call_context::{CallKind, CallRef};
use callway_core::call_record::CallDirection;
use callway_core::lead::CallbackStatus;
use common::*;
use sim_telnyx::{Callee, Caller, WebhookFaults};
use std::time::Duration;
use webhook_svc::VoicemailAction;

fn caller(hang_up_after: Duration) -> Caller {
    Caller::Human {
        speech_wav: silence_wav(200),
        hang_up_after: Some(hang_up_after),
    }
}

/// The context of the incoming call, read while it lasts (it is removed at the hang-up).
async fn inbound_context(w: &World) -> (String, callway_core::call_context::CallContext) {
    for _ in 0..200 {
        let rec = w.sim.recorded();
        if let Some(answer) = rec.inbound.first().and_then(|i| i.answer.clone()) {
            let cs = answer["client_state"]
                .as_str()
                .expect("client_state on answer");
            let call_ref = CallRef::from_client_state(cs).expect("our client_state");
            if let Some(ctx) = w.contexts.load(&call_ref).await.unwrap() {
                return (rec.inbound[0].call_control_id.clone(), ctx);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the incoming call was not answered");
}

async fn ended(w: &World) {
    for _ in 0..200 {
        if w.sim
            .recorded()
            .inbound
            .first()
            .is_some_and(|i| i.ended_at_ms.is_some())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the incoming call never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_caller_is_answered_and_the_agent_continues_their_conversation() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.sim.script_callee(CALLEE, Callee::NoAnswer).unwrap();
    let (lead, _) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::NoAnswer);

    // The person rings our number back.
    w.sim
        .ring_inbound(CALLEE, FROM, caller(Duration::from_millis(1500)))
        .unwrap();
    let (ccid, ctx) = inbound_context(&w).await;
    assert_eq!(ctx.kind, CallKind::InboundKnown);
    assert_eq!(ctx.lead_id, lead);
    assert_eq!(ctx.first_name, "Marie");
    ended(&w).await;
    let rec = w.sim.recorded();
    // Answered first, then the stream started with its auth token (AnswerRequest has none).
    let start = rec
        .commands
        .iter()
        .find(|c| c.call_control_id == ccid && c.command == "streaming_start")
        .expect("streaming_start");
    assert_eq!(start.status, 200, "{:?}", start.error_codes);
    let body = start.body.as_ref().unwrap();
    assert_eq!(body["stream_auth_token"], ctx.stream_secret.as_str());
    assert!(body["stream_url"].as_str().unwrap().contains("?token=st_"));
    assert!(rec.inbound[0].answer_ignored_fields.is_empty());
    // One more call record, inbound; the lead's callback outcome is untouched.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = w.leads.call_records(lead).await.unwrap();
        if records.len() == 2 && records[1].outcome.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].direction, CallDirection::Inbound);
    assert_eq!(records[1].outcome, Some(CallbackStatus::Completed));
    assert_eq!(
        w.leads.get(lead).await.unwrap().unwrap().callback_status,
        CallbackStatus::NoAnswer
    );
    assert!(w.context_gone(&ctx.call_ref).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_caller_gets_the_generic_agent_and_no_record() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.sim
        .ring_inbound("+33799999999", FROM, caller(Duration::from_millis(1000)))
        .unwrap();
    let (_, ctx) = inbound_context(&w).await;
    assert_eq!(ctx.kind, CallKind::InboundUnknown);
    assert!(ctx.first_name.is_empty() && ctx.web_transcript.is_empty());
    ended(&w).await;
    assert!(w.leads.get(ctx.lead_id).await.unwrap().is_none());
    assert!(w.context_gone(&ctx.call_ref).await);
}
