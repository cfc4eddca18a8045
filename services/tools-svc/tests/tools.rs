//! The web agent's tools as the sideband runs them: save_lead's checks and limits, trigger_call's
//! session binding, claims (one callback per session, cooldown per number, hourly and daily caps)
//! and the dial that only happens in `place_callback`. Claims live in a real Redis; Telnyx's REST
//! answer is scripted here (the call life cycle runs against the Telnyx simulator elsewhere).

use callway_core::call_context::{CallRef, ContextStore, TimelineKind};
use callway_core::client_addr::ClientAddr;
use callway_core::lead::{CallbackStatus, LeadId};
use callway_core::lead_store::{EmbeddedLeadStore, LeadStore};
use callway_core::limits::{HourlyLimit, Limits, LimitsConfig};
use callway_core::openai_calls::CallControl;
use callway_core::phone::PhonePolicy;
use callway_core::secret::Secret;
use callway_core::session_token::{SessionTokens, WebSessionId};
use callway_core::telnyx::{TelnyxClient, TelnyxConfig};
use callway_core::transcript::{Speaker, Turn};
use callway_core::web_call::{RtcCallId, WebCall, WebCalls};
use callway_testkit::scripted_http::{Script, ScriptedHttp};
use serde_json::{json, Value};
use std::time::Duration;
use tools_svc::tools::{self, SaveLeadArgs};
use tools_svc::{CallDeps, ToolsError, ToolsState};

struct App {
    state: ToolsState,
    contexts: ContextStore,
    leads: LeadStore,
    telnyx: ScriptedHttp,
    redis: callway_testkit::redis::TempRedis,
    _dir: tempfile::TempDir,
}

fn dial_ok() -> Script {
    Script {
        status: 200,
        body: json!({"data": {"call_control_id": "v3:abc", "call_leg_id": "leg", "call_session_id": "sess", "is_alive": false, "record_type": "call"}}).to_string(),
        delay: Duration::ZERO,
        headers: vec![],
    }
}

fn hourly(c: u64, n: u64, g: Option<u64>) -> HourlyLimit {
    HourlyLimit {
        per_client: c,
        per_network: n,
        global: g,
    }
}

async fn spawn(telnyx_script: Script, daily_cap: u64, limits: LimitsConfig) -> App {
    callway_testkit::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let leads = LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap());
    let telnyx = ScriptedHttp::start(telnyx_script).await;
    let redis = callway_testkit::redis::TempRedis::start()
        .await
        .expect("redis-server");
    let contexts = ContextStore::Redis(
        callway_core::redis_conn::connect(&redis.url())
            .await
            .expect("redis"),
    );
    let calls = CallDeps {
        telnyx: TelnyxClient::new(TelnyxConfig {
            base_url: format!("http://127.0.0.1:{}", telnyx.port),
            api_key: Secret::new("KEYtest"),
            connection_id: "conn-1".into(),
            from_number: "+33900000000".into(),
            timeout: Duration::from_millis(500),
            max_attempts: 2,
        })
        .unwrap(),
        contexts: contexts.clone(),
        stream_url: "wss://example.test/media/telnyx".into(),
        webhook_url: None,
        cooldown: Duration::from_secs(600),
        daily_cap,
        dial_confirm: Duration::from_secs(2),
    };
    let state = ToolsState {
        leads: leads.clone(),
        tokens: SessionTokens::new(&Secret::new("tools-test-session-secret-0123456789abcdef")),
        policy: PhonePolicy::default(),
        consent_version: "2026-11-v2".into(),
        web_calls: WebCalls::new(contexts.clone()),
        limits: Limits::new(contexts.clone(), limits),
        call_control: CallControl::new(
            "http://127.0.0.1:9/v1",
            Secret::new("sk"),
            Duration::from_millis(200),
        )
        .unwrap(),
        calls: Some(calls),
        business: None,
    };
    App {
        state,
        contexts,
        leads,
        telnyx,
        redis,
        _dir: dir,
    }
}

fn roomy() -> LimitsConfig {
    LimitsConfig {
        sessions: hourly(100, 100, None),
        leads: hourly(100, 100, None),
        callbacks: hourly(100, 100, Some(100)),
    }
}

fn web_call(ip: &str) -> WebCall {
    let now = chrono::Utc::now();
    WebCall {
        session: WebSessionId::generate(),
        rtc_call_id: RtcCallId::parse("rtc_test").unwrap(),
        client: ClientAddr::new(ip.parse().unwrap()),
        started_at: now,
        deadline: now + chrono::Duration::seconds(300),
        traceparent: None,
        ended: None,
        handoff: None,
    }
}

fn args(first: &str, last: &str, phone: &str, consent: bool) -> SaveLeadArgs {
    serde_json::from_value(
        json!({"first_name": first, "last_name": last, "phone": phone, "consent": consent}),
    )
    .unwrap()
}

impl App {
    async fn lead(&self, call: &WebCall, phone: &str) -> String {
        tools::save_lead(&self.state, call, args("Marie", "Curie", phone, true))
            .await
            .expect("lead saved")
            .lead_id
    }

    /// The lead as stored, by the id `save_lead` returned.
    async fn stored(&self, lead: &str) -> callway_core::lead::Lead {
        self.leads
            .get(LeadId::parse(lead).unwrap())
            .await
            .unwrap()
            .expect("the lead is stored")
    }

    async fn count(&self) -> usize {
        self.leads.count().await.unwrap() as usize
    }
}

#[tokio::test]
async fn save_lead_stores_once_every_check_passes_and_refuses_clearly_otherwise() {
    let app = spawn(dial_ok(), 10, roomy()).await;
    let call = web_call("203.0.113.7");
    let out = tools::save_lead(
        &app.state,
        &call,
        args("Marie", "Curie", "06 12 34 56 78", true),
    )
    .await
    .unwrap();
    assert_eq!(out.phone_masked, "+33 6•• •• •• 78");
    let stored = app
        .leads
        .get(LeadId::parse(&out.lead_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.web_session_id, call.session.as_str());
    assert_eq!(stored.consent.wording_version, "2026-11-v2");
    for (a, code) in [
        (
            args("Marie", "Curie", "06 12 34 56 78", false),
            "consent_required",
        ),
        (
            args("M4rie", "Curie", "06 12 34 56 78", true),
            "first_name_invalid",
        ),
        (
            args("Marie", "", "06 12 34 56 78", true),
            "last_name_invalid",
        ),
        (
            args("Marie", "Curie", "08 99 12 34 56", true),
            "phone_type_not_allowed",
        ),
        (args("Marie", "Curie", "3615", true), "phone_short_code"),
        (
            args("Marie", "Curie", "+1 415 555 2671", true),
            "phone_country_not_allowed",
        ),
    ] {
        let e = tools::save_lead(&app.state, &call, a).await.unwrap_err();
        assert_eq!(e.code(), code);
        let out: Value = serde_json::from_str(&e.to_output()).unwrap();
        assert!(!out["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(app.count().await, 1, "refusals store nothing");
}

#[tokio::test]
async fn leads_are_limited_per_client_and_per_network() {
    let app = spawn(
        dial_ok(),
        10,
        LimitsConfig {
            leads: hourly(2, 3, None),
            ..roomy()
        },
    )
    .await;
    let a = web_call("203.0.113.7");
    app.lead(&a, "06 12 34 56 78").await;
    app.lead(&a, "06 12 34 56 79").await;
    let e = tools::save_lead(
        &app.state,
        &a,
        args("Marie", "Curie", "06 12 34 56 70", true),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "rate_limited");
    // The same /24 from another address: one more, then the network is full.
    let b = web_call("203.0.113.8");
    app.lead(&b, "06 12 34 56 71").await;
    let e = tools::save_lead(
        &app.state,
        &b,
        args("Marie", "Curie", "06 12 34 56 72", true),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ToolsError::Limited { .. }));
    app.lead(&web_call("198.51.100.1"), "06 12 34 56 73").await;
    assert_eq!(app.count().await, 4);
}

#[tokio::test]
async fn a_prepared_callback_dials_only_when_placed_with_an_opaque_state_and_the_transcript_in_context(
) {
    let app = spawn(dial_ok(), 10, roomy()).await;
    let call = web_call("203.0.113.7");
    for (who, text) in [
        (Speaker::Agent, "Bonjour, je suis l'agent IA de Callway."),
        (
            Speaker::Visitor,
            "Cabinet dentaire, 40 appels par jour, je veux filtrer.",
        ),
    ] {
        app.state
            .web_calls
            .push_turn(&call.session, &Turn::new(who, text).unwrap())
            .await
            .unwrap();
    }
    let lead = app.lead(&call, "06 12 34 56 78").await;
    let prepared = tools::prepare_callback(&app.state, &call, &lead)
        .await
        .unwrap();
    assert_eq!(prepared.phone_masked, "+33 6•• •• •• 78");
    assert!(
        app.telnyx.requests().is_empty(),
        "nothing dialled before the web call ends"
    );
    let call_ref: CallRef = prepared.call_ref.clone();
    let ctx = app.contexts.load(&call_ref).await.unwrap().unwrap();
    assert_eq!(ctx.first_name, "Marie");
    assert_eq!(ctx.web_transcript.len(), 2);
    assert_eq!(ctx.web_transcript[1].speaker, Speaker::Visitor);
    let stored = app.stored(&lead).await;
    assert_eq!(
        stored.summary.as_deref(),
        Some("Agent : Bonjour, je suis l'agent IA de Callway.\nVisiteur : Cabinet dentaire, 40 appels par jour, je veux filtrer."),
        "the business reads the conversation itself"
    );
    assert_eq!(stored.callback_status, CallbackStatus::Pending);
    assert!(
        stored.callback_requested_at.is_none(),
        "claimed only at the dial"
    );

    tools::place_callback(&app.state, prepared).await.unwrap();
    let stored = app.stored(&lead).await;
    assert_eq!(stored.callback_status, CallbackStatus::Dialing);
    assert!(stored.callback_requested_at.is_some());
    let req = app.telnyx.requests().remove(0);
    assert!(req.starts_with("POST /v2/calls "), "{req}");
    let dial: Value = serde_json::from_str(req.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(dial["to"], "+33612345678");
    assert_eq!(dial["answering_machine_detection"], "premium");
    assert_eq!(
        CallRef::from_client_state(dial["client_state"].as_str().unwrap()),
        Some(call_ref.clone())
    );
    assert!(
        !req.contains("Marie") && !req.contains("dentaire"),
        "no personal data beyond the number"
    );
    let token = dial["stream_url"]
        .as_str()
        .unwrap()
        .strip_prefix("wss://example.test/media/telnyx?token=")
        .unwrap();
    let ctx = app.contexts.load(&call_ref).await.unwrap().unwrap();
    assert_eq!(ctx.call_control_id.as_deref(), Some("v3:abc"));
    assert_eq!(dial["stream_auth_token"], ctx.stream_secret);
    assert_eq!(
        app.contexts.redeem_stream_token(token).await.unwrap(),
        Some(call_ref)
    );
}

#[tokio::test]
async fn one_callback_per_session_a_cooldown_per_number_and_leads_bound_to_their_session() {
    let app = spawn(dial_ok(), 10, roomy()).await;
    let a = web_call("203.0.113.7");
    let lead = app.lead(&a, "06 12 34 56 78").await;
    tools::prepare_callback(&app.state, &a, &lead)
        .await
        .unwrap();
    // The same request again (a retry after a fault) finds its own claims and goes on...
    let again = tools::prepare_callback(&app.state, &a, &lead)
        .await
        .unwrap();
    // ...but the lead is dialled once, whatever runs twice.
    tools::place_callback(&app.state, again).await.unwrap();
    let e = tools::prepare_callback(&app.state, &a, &lead)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "callback_already_requested");
    // Another lead of the same session is another request: refused.
    let other = app.lead(&a, "07 81 23 45 60").await;
    let e = tools::prepare_callback(&app.state, &a, &other)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "callback_already_requested");
    // Another session cannot use this lead, and is told exactly what a missing lead gets.
    let b = web_call("198.51.100.7");
    assert_eq!(
        tools::prepare_callback(&app.state, &b, &lead)
            .await
            .unwrap_err()
            .code(),
        "lead_not_found"
    );
    assert_eq!(
        tools::prepare_callback(&app.state, &b, "not-a-uuid")
            .await
            .unwrap_err()
            .code(),
        "lead_not_found"
    );
    // Same number from another session: cooldown, which does not burn that session's callback.
    let lead2 = app.lead(&b, "06 12 34 56 78").await;
    assert_eq!(
        tools::prepare_callback(&app.state, &b, &lead2)
            .await
            .unwrap_err()
            .code(),
        "number_cooldown"
    );
    let lead3 = app.lead(&b, "07 81 23 45 67").await;
    tools::prepare_callback(&app.state, &b, &lead3)
        .await
        .unwrap();
}

#[tokio::test]
async fn hourly_callback_limits_and_the_daily_cap_hold() {
    let app = spawn(
        dial_ok(),
        3,
        LimitsConfig {
            callbacks: hourly(1, 5, Some(2)),
            ..roomy()
        },
    )
    .await;
    let a = web_call("203.0.113.7");
    let lead = app.lead(&a, "06 12 34 56 78").await;
    tools::prepare_callback(&app.state, &a, &lead)
        .await
        .unwrap();
    // The same client in a new session: per-client hourly limit.
    let a2 = web_call("203.0.113.7");
    let lead = app.lead(&a2, "06 12 34 56 79").await;
    assert_eq!(
        tools::prepare_callback(&app.state, &a2, &lead)
            .await
            .unwrap_err()
            .code(),
        "rate_limited"
    );
    let b = web_call("198.51.100.7");
    let lead = app.lead(&b, "06 12 34 56 70").await;
    tools::prepare_callback(&app.state, &b, &lead)
        .await
        .unwrap();
    // The site-wide hourly cap (2) before the daily cap (3).
    let c = web_call("192.0.2.7");
    let lead = app.lead(&c, "06 12 34 56 71").await;
    assert_eq!(
        tools::prepare_callback(&app.state, &c, &lead)
            .await
            .unwrap_err()
            .code(),
        "calls_busy"
    );
}

#[tokio::test]
async fn the_daily_cap_holds() {
    let app = spawn(dial_ok(), 1, roomy()).await;
    let a = web_call("203.0.113.7");
    let lead = app.lead(&a, "06 12 34 56 78").await;
    tools::prepare_callback(&app.state, &a, &lead)
        .await
        .unwrap();
    let b = web_call("198.51.100.7");
    let lead = app.lead(&b, "07 81 23 45 67").await;
    assert_eq!(
        tools::prepare_callback(&app.state, &b, &lead)
            .await
            .unwrap_err()
            .code(),
        "daily_cap_reached"
    );
}

#[tokio::test]
async fn a_failed_dial_releases_every_claim_and_marks_the_lead_failed() {
    let app = spawn(
        Script {
            status: 422,
            body:
                json!({"errors":[{"code":"10016","title":"Phone number must be in +E164 format"}]})
                    .to_string(),
            delay: Duration::ZERO,
            headers: vec![],
        },
        // A cap of one: the retry only gets through if the failed call was not counted.
        1,
        LimitsConfig {
            callbacks: hourly(1, 1, Some(1)),
            ..roomy()
        },
    )
    .await;
    let a = web_call("203.0.113.7");
    let lead = app.lead(&a, "06 12 34 56 78").await;
    let p = tools::prepare_callback(&app.state, &a, &lead)
        .await
        .unwrap();
    let call_ref = p.call_ref.clone();
    assert_eq!(
        tools::place_callback(&app.state, p)
            .await
            .unwrap_err()
            .code(),
        "dial_failed"
    );
    let stored = app.stored(&lead).await;
    assert_eq!(stored.callback_status, CallbackStatus::Failed);
    let timeline = app.contexts.timeline(&call_ref).await.unwrap();
    assert_eq!(timeline.last().unwrap().kind, TimelineKind::Ended);
    assert_eq!(timeline.last().unwrap().text.as_deref(), Some("failed"));
    // Session, number, hourly and daily claims were all given back.
    let p = tools::prepare_callback(&app.state, &a, &lead)
        .await
        .unwrap();
    assert_eq!(
        tools::place_callback(&app.state, p)
            .await
            .unwrap_err()
            .code(),
        "dial_failed"
    );
    assert_eq!(
        app.telnyx.requests().len(),
        2,
        "a 4xx is final: no retry of the same command"
    );
}

/// Redis frozen (SIGSTOP) while trigger_call takes its claims: the request fails (store
/// timeout), its claim lands when Redis wakes, and the same request's retry is not refused by
/// it. One dial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_landed_after_a_redis_stall_does_not_refuse_the_retry() {
    let app = spawn(dial_ok(), 10, roomy()).await;
    let call = web_call("203.0.113.7");
    let lead = app.lead(&call, "06 12 34 56 78").await;
    // The claim script is cached in Redis already (as it is on a live server), so the stalled
    // EVALSHA runs when Redis wakes instead of failing with NOSCRIPT.
    app.contexts
        .acquire("callway:test:warm", "x", Duration::from_secs(5))
        .await
        .unwrap();
    app.redis.freeze();
    let e = tools::prepare_callback(&app.state, &call, &lead)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "storage_unavailable");
    app.redis.thaw();
    // What the stalled request sent is executed now: its claim holds the session.
    let key = callway_core::call_context::keys::callback_session(call.session.as_str());
    let landed = async {
        for _ in 0..100 {
            if app.contexts.get_value(&key).await.ok().flatten().is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(landed.await, "the stalled claim landed after the thaw");
    let p = tools::prepare_callback(&app.state, &call, &lead)
        .await
        .expect("the retry of the same request goes through");
    tools::place_callback(&app.state, p).await.unwrap();
    assert_eq!(app.telnyx.requests().len(), 1, "one dial");
}

fn dial_answered(status: u16, delay: Duration) -> Script {
    Script {
        status,
        body: json!({"errors":[{"code":"90000","title":"Internal error"}]}).to_string(),
        delay,
        headers: vec![],
    }
}

/// A dial whose answer is lost (a 500 or a timeout: the call may be out) is never sent again.
/// Without Telnyx's call.initiated the lead ends `failed` after the confirmation window and the
/// claims stay (nobody dials that number again before the cooldown); with it, the call goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_dial_is_never_repeated_and_call_initiated_decides() {
    for (script, confirmed) in [
        (dial_answered(500, Duration::ZERO), false),
        (dial_answered(200, Duration::from_secs(3)), false),
        (dial_answered(500, Duration::ZERO), true),
    ] {
        let app = spawn(script, 10, roomy()).await;
        let call = web_call("203.0.113.7");
        let lead = app.lead(&call, "06 12 34 56 78").await;
        let p = tools::prepare_callback(&app.state, &call, &lead)
            .await
            .unwrap();
        let call_ref = p.call_ref.clone();
        if confirmed {
            // webhook-svc's doing when call.initiated arrives for this ref.
            let contexts = app.contexts.clone();
            let r = call_ref.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                contexts
                    .raise(&r, callway_core::call_context::CallFlag::Initiated)
                    .await
                    .unwrap();
            });
        }
        let placed = tools::place_callback(&app.state, p).await;
        assert_eq!(app.telnyx.requests().len(), 1, "sent once, never repeated");
        assert_eq!(
            app.contexts.dial_state(&call_ref).await.unwrap(),
            Some(callway_core::call_context::DialState::Unconfirmed)
        );
        let stored = app.stored(&lead).await;
        if confirmed {
            placed.expect("confirmed by call.initiated");
            assert_eq!(stored.callback_status, CallbackStatus::Dialing);
            assert!(app.contexts.load(&call_ref).await.unwrap().is_some());
        } else {
            assert_eq!(placed.unwrap_err().code(), "dial_failed");
            assert_eq!(stored.callback_status, CallbackStatus::Failed);
            // The call may be out: the same number is not dialled again, by anyone.
            let again = web_call("198.51.100.9");
            let lead2 = app.lead(&again, "06 12 34 56 78").await;
            assert_eq!(
                tools::prepare_callback(&app.state, &again, &lead2)
                    .await
                    .unwrap_err()
                    .code(),
                "number_cooldown"
            );
            assert_eq!(
                tools::prepare_callback(&app.state, &call, &lead)
                    .await
                    .unwrap_err()
                    .code(),
                "callback_already_requested"
            );
        }
    }
}
