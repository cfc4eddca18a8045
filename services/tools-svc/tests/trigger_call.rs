//! trigger_call: session binding, one callback per session, cooldown per number, daily cap, and
//! nothing left claimed when the dial fails. Telnyx's REST answer is scripted here; the full call
//! life cycle is tested against the Telnyx simulator elsewhere.

use callway_core::call_context::{CallRef, ContextStore};
use callway_core::lead_store::{EmbeddedLeadStore, LeadStore};
use callway_core::phone::PhonePolicy;
use callway_core::secret::Secret;
use callway_core::session_token::{SessionTokens, WebSessionId};
use callway_core::telnyx::{TelnyxClient, TelnyxConfig};
use callway_testkit::scripted_http::{Script, ScriptedHttp};
use serde_json::{json, Value};
use std::time::Duration;
use tools_svc::{CallDeps, ToolsState};

const SECRET: &str = "tools-test-session-secret-0123456789abcdef";

struct App {
    base: String,
    tokens: SessionTokens,
    contexts: ContextStore,
    leads: LeadStore,
    telnyx: ScriptedHttp,
    _redis: callway_testkit::redis::TempRedis,
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

async fn spawn(telnyx_script: Script, daily_cap: u64) -> App {
    callway_testkit::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let leads = LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap());
    let tokens = SessionTokens::new(&Secret::new(SECRET));
    let telnyx = ScriptedHttp::start(telnyx_script).await;
    // The claims (one per session, cooldown per number, daily cap) live in Redis in production.
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
    };
    let state = ToolsState {
        leads: leads.clone(),
        tokens: tokens.clone(),
        policy: PhonePolicy::default(),
        consent_version: "v1".into(),
        calls: Some(calls),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(tools_svc::serve(listener, state).unwrap());
    App {
        base: format!("http://127.0.0.1:{port}"),
        tokens,
        contexts,
        leads,
        telnyx,
        _redis: redis,
        _dir: dir,
    }
}

impl App {
    fn session(&self) -> String {
        self.tokens.mint(
            &WebSessionId::generate(),
            chrono::Utc::now().timestamp() + 600,
        )
    }

    async fn post(&self, tool: &str, token: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/tools/{tool}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn lead(&self, token: &str, phone: &str) -> String {
        let (s, b) = self
            .post(
                "save_lead",
                token,
                json!({"first_name":"Marie","last_name":"Curie","phone":phone,"consent":true}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["lead_id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_callback_dials_telnyx_with_an_opaque_state_and_a_one_time_stream_token() {
    let app = spawn(dial_ok(), 10).await;
    let t = app.session();
    let lead = app.lead(&t, "06 12 34 56 78").await;
    let (status, body) = app.post("trigger_call", &t, json!({"lead_id": lead, "summary": "Cabinet dentaire, 40 appels par jour, veut filtrer."})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phone_masked"], "+33 6•• •• •• 78");
    let call_ref = CallRef::parse(body["call_id"].as_str().unwrap()).unwrap();

    let req = app.telnyx.requests().remove(0);
    assert!(req.starts_with("POST /v2/calls "), "{req}");
    assert!(req
        .to_ascii_lowercase()
        .contains("authorization: bearer keytest"));
    let dial: Value = serde_json::from_str(req.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(dial["to"], "+33612345678");
    assert_eq!(dial["from"], "+33900000000");
    assert_eq!(dial["connection_id"], "conn-1");
    assert_eq!(dial["answering_machine_detection"], "premium");
    assert_eq!(dial["stream_bidirectional_mode"], "rtp");
    assert_eq!(dial["stream_bidirectional_codec"], "PCMU");
    assert_eq!(dial["stream_codec"], "PCMU");
    assert_eq!(
        CallRef::from_client_state(dial["client_state"].as_str().unwrap()),
        Some(call_ref.clone())
    );
    assert!(
        !req.contains("Marie") && !req.contains("Cabinet"),
        "client_state and the dial carry no personal data beyond the number"
    );
    let stream_url = dial["stream_url"].as_str().unwrap();
    let token = stream_url
        .strip_prefix("wss://example.test/media/telnyx?token=")
        .unwrap();

    let ctx = app.contexts.load(&call_ref).await.unwrap().unwrap();
    assert_eq!(ctx.first_name, "Marie");
    assert_eq!(
        ctx.summary,
        "Cabinet dentaire, 40 appels par jour, veut filtrer."
    );
    assert_eq!(ctx.call_control_id.as_deref(), Some("v3:abc"));
    assert_eq!(dial["stream_auth_token"], ctx.stream_secret);
    assert_eq!(
        app.contexts.redeem_stream_token(token).await.unwrap(),
        Some(call_ref.clone())
    );
    assert_eq!(app.contexts.redeem_stream_token(token).await.unwrap(), None);

    let stored = app
        .leads
        .get(callway_core::lead::LeadId::parse(&lead).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.summary.as_deref(),
        Some("Cabinet dentaire, 40 appels par jour, veut filtrer.")
    );
    assert_eq!(
        stored.callback_status,
        callway_core::lead::CallbackStatus::Dialing
    );
}

#[tokio::test]
async fn one_callback_per_session_a_cooldown_per_number_and_leads_bound_to_their_session() {
    let app = spawn(dial_ok(), 10).await;
    let t = app.session();
    let lead = app.lead(&t, "06 12 34 56 78").await;
    assert_eq!(
        app.post("trigger_call", &t, json!({"lead_id": lead, "summary": "x"}))
            .await
            .0,
        200
    );
    let (s, b) = app
        .post("trigger_call", &t, json!({"lead_id": lead, "summary": "x"}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("callback_already_requested"))
    );

    // Another session cannot use this lead, and is told exactly what a missing lead gets.
    let other = app.session();
    let (s, b) = app
        .post(
            "trigger_call",
            &other,
            json!({"lead_id": lead, "summary": "x"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("lead_not_found"))
    );
    let (s, _) = app
        .post(
            "trigger_call",
            &other,
            json!({"lead_id": "not-a-uuid", "summary": "x"}),
        )
        .await;
    assert_eq!(s, 404);

    // Same number from a new session: cooldown.
    let lead2 = app.lead(&other, "06 12 34 56 78").await;
    let (s, b) = app
        .post(
            "trigger_call",
            &other,
            json!({"lead_id": lead2, "summary": "x"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (429, Some("number_cooldown"))
    );
    // ...which did not burn that session's single callback: another number goes through.
    let lead3 = app.lead(&other, "07 81 23 45 67").await;
    assert_eq!(
        app.post(
            "trigger_call",
            &other,
            json!({"lead_id": lead3, "summary": "x"})
        )
        .await
        .0,
        200
    );
    assert_eq!(app.telnyx.requests().len(), 2);

    let (s, b) = app
        .post(
            "trigger_call",
            &app.session(),
            json!({"lead_id": lead, "summary": "a".repeat(2000)}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("summary_too_long"))
    );
}

#[tokio::test]
async fn the_daily_cap_holds() {
    let app = spawn(dial_ok(), 1).await;
    let a = app.session();
    let lead = app.lead(&a, "06 12 34 56 78").await;
    assert_eq!(
        app.post("trigger_call", &a, json!({"lead_id": lead, "summary": "x"}))
            .await
            .0,
        200
    );
    let b = app.session();
    let lead = app.lead(&b, "07 81 23 45 67").await;
    let (s, body) = app
        .post("trigger_call", &b, json!({"lead_id": lead, "summary": "x"}))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (503, Some("daily_cap_reached"))
    );
    assert_eq!(app.telnyx.requests().len(), 1);
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
        // A cap of one: the retry below only reaches Telnyx if the failed call was not counted.
        1,
    )
    .await;
    let t = app.session();
    let lead = app.lead(&t, "06 12 34 56 78").await;
    let (s, b) = app
        .post("trigger_call", &t, json!({"lead_id": lead, "summary": "x"}))
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (502, Some("dial_failed")));
    let stored = app
        .leads
        .get(callway_core::lead::LeadId::parse(&lead).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.callback_status,
        callway_core::lead::CallbackStatus::Failed
    );
    // Session, number and daily claims were released: the retry reaches Telnyx again (and fails
    // again).
    let (s, b) = app
        .post("trigger_call", &t, json!({"lead_id": lead, "summary": "x"}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (502, Some("dial_failed")),
        "{b}"
    );
    assert_eq!(
        app.telnyx.requests().len(),
        2,
        "a 4xx is final: no retry of the same command"
    );
}

#[tokio::test]
async fn a_telnyx_outage_is_retried_a_bounded_number_of_times_with_the_same_command_id() {
    let app = spawn(
        Script {
            status: 503,
            body: "{}".into(),
            delay: Duration::ZERO,
            headers: vec![],
        },
        10,
    )
    .await;
    let t = app.session();
    let lead = app.lead(&t, "06 12 34 56 78").await;
    let (s, _) = app
        .post("trigger_call", &t, json!({"lead_id": lead, "summary": "x"}))
        .await;
    assert_eq!(s, 502);
    let reqs = app.telnyx.requests();
    assert_eq!(reqs.len(), 2, "max_attempts = 2");
    let id = |r: &str| {
        serde_json::from_str::<Value>(r.split("\r\n\r\n").nth(1).unwrap()).unwrap()["command_id"]
            .clone()
    };
    assert_eq!(id(&reqs[0]), id(&reqs[1]));
}
