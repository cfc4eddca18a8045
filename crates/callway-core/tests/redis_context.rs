//! The call-context store against a real Redis: what any instance writes, any other reads; stream
//! tokens are single use even when two bridge instances race for one.

use callway_core::call_context::{random_id, CallContext, CallRef, ContextStore, TimelineKind};
use callway_core::lead::LeadId;
use std::time::Duration;

#[tokio::test]
async fn contexts_claims_and_tokens_through_redis() {
    let redis = callway_testkit::redis::TempRedis::start().await.unwrap();
    let a = ContextStore::Redis(
        callway_core::redis_conn::connect(&redis.url())
            .await
            .unwrap(),
    );
    let b = ContextStore::Redis(
        callway_core::redis_conn::connect(&redis.url())
            .await
            .unwrap(),
    );
    let ctx = CallContext {
        call_ref: CallRef::generate(),
        attempt: 1,
        kind: Default::default(),
        lead_id: LeadId::new(),
        first_name: "Marie".into(),
        web_transcript: vec![callway_core::transcript::Turn::new(
            callway_core::transcript::Speaker::Visitor,
            "Cabinet dentaire, 40 appels par jour",
        )
        .unwrap()],
        web_session_id: "ws_abc".into(),
        phone_masked: "+33 6•• •• •• 78".into(),
        stream_secret: random_id("ss_"),
        call_control_id: Some("v3:abc".into()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        created_at: chrono::Utc::now(),
    };
    a.put(&ctx).await.unwrap();
    assert_eq!(b.load(&ctx.call_ref).await.unwrap(), Some(ctx.clone()));

    let token = a.issue_stream_token(&ctx.call_ref).await.unwrap();
    let (x, y) = tokio::join!(a.redeem_stream_token(&token), b.redeem_stream_token(&token));
    let winners = [x.unwrap(), y.unwrap()].into_iter().flatten().count();
    assert_eq!(winners, 1, "exactly one instance may redeem a stream token");

    assert!(a
        .claim("callway:test:claim", Duration::from_secs(60))
        .await
        .unwrap());
    assert!(!b
        .claim("callway:test:claim", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(
        a.incr("callway:test:n", Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.incr("callway:test:n", Duration::from_secs(60))
            .await
            .unwrap(),
        2
    );
    // Giving a unit back lowers the shared count, never below zero, never creating a key.
    a.decr("callway:test:n").await.unwrap();
    assert_eq!(
        b.incr("callway:test:n", Duration::from_secs(60))
            .await
            .unwrap(),
        2
    );
    b.decr("callway:test:absent").await.unwrap();
    assert_eq!(
        a.incr("callway:test:absent", Duration::from_secs(60))
            .await
            .unwrap(),
        1
    );

    use callway_core::call_context::TimelineEvent;
    a.push_event(
        &ctx.call_ref,
        &TimelineEvent::now(TimelineKind::Ringing, None),
    )
    .await
    .unwrap();
    b.push_event(
        &ctx.call_ref,
        &TimelineEvent::now(TimelineKind::Agent, Some("Bonjour Marie".into())),
    )
    .await
    .unwrap();
    let t = a.timeline(&ctx.call_ref).await.unwrap();
    assert_eq!(
        t.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["ringing", "agent"]
    );
    a.set_owner(&ctx.call_ref, "ws_abc").await.unwrap();
    assert_eq!(
        b.owner(&ctx.call_ref).await.unwrap().as_deref(),
        Some("ws_abc")
    );

    b.remove(&ctx.call_ref).await.unwrap();
    assert_eq!(a.load(&ctx.call_ref).await.unwrap(), None);

    drop(redis);
    assert!(
        a.load(&ctx.call_ref).await.is_err(),
        "a dead Redis is an error, never an empty answer"
    );
}

#[tokio::test]
async fn the_web_call_registry_holds_its_cap_leases_and_claims_across_instances() {
    use callway_core::session_token::WebSessionId;
    use callway_core::web_call::WebCalls;
    let redis = callway_testkit::redis::TempRedis::start()
        .await
        .expect("redis-server");
    let connect = || async {
        WebCalls::new(ContextStore::Redis(
            callway_core::redis_conn::connect(&redis.url())
                .await
                .unwrap(),
        ))
    };
    let (a, b) = (connect().await, connect().await);
    // Ten instances race for five slots: exactly five win.
    let sessions: Vec<WebSessionId> = (0..10).map(|_| WebSessionId::generate()).collect();
    let races = sessions.iter().enumerate().map(|(i, ws)| {
        let w = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { w.reserve_slot(ws, 1_000, 60_000, 5).await.unwrap() }
    });
    let won = futures_util::future::join_all(races)
        .await
        .into_iter()
        .filter(|w| *w)
        .count();
    assert_eq!(won, 5);
    assert_eq!(a.active(2_000).await.unwrap().len(), 5);
    assert!(
        a.active(70_000).await.unwrap().is_empty(),
        "slots end at their deadline"
    );
    let live = a.active(2_000).await.unwrap();
    let loser = sessions.iter().find(|s| !live.contains(s)).unwrap();
    assert!(
        !a.reserve_slot(loser, 2_000, 60_000, 5).await.unwrap(),
        "still full"
    );
    b.release_slot(&live[0]).await.unwrap();
    assert!(
        a.reserve_slot(loser, 2_000, 60_000, 5).await.unwrap(),
        "a freed slot is taken"
    );

    // Leases: one holder; renew and release only by the holder.
    let ws = WebSessionId::generate();
    let ttl = Duration::from_secs(5);
    assert!(a.lease(&ws, "i1", ttl).await.unwrap());
    assert!(!b.lease(&ws, "i2", ttl).await.unwrap());
    assert!(!b.renew(&ws, "i2", ttl).await.unwrap());
    b.unlease(&ws, "i2").await.unwrap();
    assert!(a.renew(&ws, "i1", ttl).await.unwrap());
    a.unlease(&ws, "i1").await.unwrap();
    assert!(b.lease(&ws, "i2", ttl).await.unwrap());

    // One execution per function call, whichever instance sees it.
    let (x, y) = tokio::join!(
        a.claim_function_call(&ws, "call_1"),
        b.claim_function_call(&ws, "call_1")
    );
    assert_eq!(
        [x.unwrap(), y.unwrap()].into_iter().filter(|w| *w).count(),
        1
    );
}
