//! The calls' contexts and one-time stream tokens, written as tools-svc writes them.

use callway_core::call_context::{random_id, CallContext, CallRef, ContextStore};

/// `n` call contexts (callee `bench-call-<i>`: the fake OpenAI tells the calls apart by this
/// name in the instructions); returns each call's `(stream token, stream secret)`.
pub async fn issue_calls(
    contexts: &ContextStore,
    n: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let ctx = CallContext {
            call_ref: CallRef::generate(),
            attempt: 1,
            kind: Default::default(),
            lead_id: callway_core::lead::LeadId::new(),
            first_name: format!("bench-call-{i}"),
            web_transcript: vec![],
            web_session_id: random_id("ws_"),
            phone_masked: "+33 6•• •• •• 00".into(),
            stream_secret: random_id("ss_"),
            call_control_id: None,
            traceparent: None,
            created_at: chrono::Utc::now(),
        };
        contexts.put(&ctx).await?;
        let token = contexts.issue_stream_token(&ctx.call_ref).await?;
        v.push((token, ctx.stream_secret));
    }
    Ok(v)
}
