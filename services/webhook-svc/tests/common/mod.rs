#![allow(dead_code)]

//! The world the phone-leg tests share: the Telnyx simulator: tools-svc dials, the simulator
//! plays the callee and sends signed webhooks to webhook-svc, which records the outcome on the
//! lead, handles voicemail, and cleans the context. Context and de-duplication live in Redis.

use callway_core::call_context::{CallRef, ContextStore};
use callway_core::lead::{CallbackStatus, LeadId};
use callway_core::lead_store::{EmbeddedLeadStore, LeadStore};
use callway_core::phone::PhonePolicy;
use callway_core::secret::Secret;
use callway_core::session_token::{SessionTokens, WebSessionId};
use callway_core::telnyx::{TelnyxClient, TelnyxConfig};
use callway_core::Settings;
use serde_json::json;
use sim_telnyx::{SimConfig, TelnyxSim, Timing, WebhookFaults};
use std::time::Duration;
use tools_svc::{CallDeps, ToolsState};
use webhook_svc::{VoicemailAction, WebhookKey, WebhookState};

pub const FROM: &str = "+33100000001";
pub const CALLEE: &str = "+33612345678";
pub const TEST_SEED: [u8; 32] = [7u8; 32];

pub struct World {
    pub sim: TelnyxSim,
    pub tools: String,
    pub tools_state: ToolsState,
    pub tokens: SessionTokens,
    pub leads: LeadStore,
    pub contexts: ContextStore,
    pub hook_port: u16,
    _media: callway_testkit::ws_sink::WsSink,
    pub redis: callway_testkit::redis::TempRedis,
    _dir: tempfile::TempDir,
}

/// What a fault test changes in the world.
#[derive(Default)]
pub struct Options {
    /// The lead store (default: the embedded one).
    pub leads: Option<LeadStore>,
    /// Telnyx's redelivery delays (default: `Timing::fast`'s, 20–80 ms).
    pub webhook_retry_delays: Option<Vec<Duration>>,
    /// The business webhooks' outbox (default: none configured).
    pub business: Option<callway_core::outbound::Outbox>,
    /// Missed calls are retried with this policy (default: never).
    pub retry_policy: Option<callway_core::retry::RetryPolicy>,
}

fn bind() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

pub async fn world(faults: WebhookFaults, voicemail: VoicemailAction) -> World {
    world_with_media(faults, voicemail, true).await
}

pub async fn world_with_media(
    faults: WebhookFaults,
    voicemail: VoicemailAction,
    media_up: bool,
) -> World {
    world_with(faults, voicemail, media_up, Options::default()).await
}

pub async fn world_with(
    faults: WebhookFaults,
    voicemail: VoicemailAction,
    media_up: bool,
    options: Options,
) -> World {
    callway_testkit::install_crypto_provider();
    let redis = callway_testkit::redis::TempRedis::start().await.unwrap();
    let contexts = ContextStore::Redis(
        callway_core::redis_conn::connect(&redis.url())
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let leads = options
        .leads
        .unwrap_or_else(|| LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap()));
    let (hook_listener, hook_port) = bind();
    let mut cfg = SimConfig::new(
        "KEYtest",
        "conn-1",
        vec![FROM.into()],
        format!("http://127.0.0.1:{hook_port}/api/telnyx/webhooks"),
    );
    cfg.timing = Timing::fast();
    if let Some(delays) = options.webhook_retry_delays {
        cfg.timing.webhook_retry_delays = delays;
    }
    cfg.webhook_faults = faults;
    // The tests below that sign by hand need the key (the simulator's default is random).
    cfg.signing_seed = TEST_SEED;
    let sim = TelnyxSim::start(cfg).await.unwrap();
    let telnyx = TelnyxClient::new(TelnyxConfig {
        base_url: sim.base_url(),
        api_key: Secret::new("KEYtest"),
        connection_id: "conn-1".into(),
        from_number: FROM.into(),
        timeout: Duration::from_secs(2),
        max_attempts: 2,
    })
    .unwrap();
    let media = callway_testkit::ws_sink::WsSink::start().await;
    let hooks = WebhookState {
        key: WebhookKey::from_base64(&sim.public_key_base64()).unwrap(),
        contexts: contexts.clone(),
        leads: leads.clone(),
        telnyx: Some(telnyx.clone()),
        voicemail,
        business: options.business.clone(),
        retries: options
            .retry_policy
            .as_ref()
            .map(|_| callway_core::outbound::retry_queue(contexts.clone())),
        retry_policy: options.retry_policy.clone().unwrap_or_default(),
        callback_number: Some(FROM.into()),
        stream_url: Some(format!(
            "ws://127.0.0.1:{}/media/telnyx",
            if media_up {
                media.port
            } else {
                callway_testkit::ports::free_port()
            }
        )),
        retention_days: 30,
    };
    tokio::spawn(webhook_svc::serve(hook_listener, hooks).unwrap());
    let tokens = SessionTokens::new(&Secret::new("lifecycle-test-session-secret-0123456789"));
    let tools_state = ToolsState {
        leads: leads.clone(),
        tokens: tokens.clone(),
        policy: PhonePolicy::default(),
        consent_version: "v1".into(),
        web_calls: callway_core::web_call::WebCalls::new(contexts.clone()),
        limits: callway_core::limits::Limits::new(
            contexts.clone(),
            Settings::from_sources(None, Vec::<(String, String)>::new())
                .unwrap()
                .limits_config(),
        ),
        call_control: callway_core::openai_calls::CallControl::new(
            "http://127.0.0.1:9/v1",
            Secret::new("sk-unused"),
            Duration::from_millis(200),
        )
        .unwrap(),
        business: options.business.clone(),
        calls: Some(CallDeps {
            telnyx,
            contexts: contexts.clone(),
            // The media plane is a sink here (or nothing at all, to test a refused stream).
            stream_url: format!(
                "ws://127.0.0.1:{}/media/telnyx",
                if media_up {
                    media.port
                } else {
                    callway_testkit::ports::free_port()
                }
            ),
            webhook_url: None,
            cooldown: Duration::from_secs(600),
            daily_cap: 100,
            dial_confirm: Duration::from_secs(3),
        }),
    };
    let (tools_listener, tools_port) = bind();
    tokio::spawn(tools_svc::serve(tools_listener, tools_state.clone()).unwrap());
    World {
        sim,
        tools: format!("http://127.0.0.1:{tools_port}"),
        tools_state,
        tokens,
        leads,
        contexts,
        hook_port,
        _media: media,
        redis,
        _dir: dir,
    }
}

impl World {
    /// save_lead + trigger_call as the browser would; returns (lead id, call ref).
    pub async fn request_callback(&self) -> (LeadId, CallRef) {
        let t = self.tokens.mint(
            &WebSessionId::generate(),
            chrono::Utc::now().timestamp() + 600,
        );
        self.request_callback_as(&t).await
    }

    /// What the sideband does for the model's save_lead then trigger_call (prepare, then place
    /// once the web call is over).
    pub async fn request_callback_as(&self, t: &str) -> (LeadId, CallRef) {
        let session = self
            .tokens
            .verify(t, chrono::Utc::now().timestamp())
            .unwrap();
        let now = chrono::Utc::now();
        let call = callway_core::web_call::WebCall {
            session,
            rtc_call_id: callway_core::web_call::RtcCallId::parse("rtc_lifecycle").unwrap(),
            client: callway_core::client_addr::ClientAddr::new("192.0.2.10".parse().unwrap()),
            started_at: now,
            deadline: now + chrono::Duration::seconds(300),
            traceparent: None,
            ended: None,
            handoff: None,
        };
        let args = serde_json::from_value(json!({"first_name":"Marie","last_name":"Curie","phone":"06 12 34 56 78","consent":true})).unwrap();
        let lead = tools_svc::tools::save_lead(&self.tools_state, &call, args)
            .await
            .unwrap();
        let prepared = tools_svc::tools::prepare_callback(&self.tools_state, &call, &lead.lead_id)
            .await
            .unwrap();
        let call_ref = prepared.call_ref.clone();
        tools_svc::tools::place_callback(&self.tools_state, prepared)
            .await
            .unwrap();
        (LeadId::parse(&lead.lead_id).unwrap(), call_ref)
    }

    /// Polls up to 30 s: fault tests wait for Telnyx's redeliveries, which a loaded machine
    /// slows down (a passing run returns as soon as the status is final).
    pub async fn final_status(&self, lead: LeadId) -> CallbackStatus {
        for _ in 0..600 {
            let s = self.leads.get(lead).await.unwrap().unwrap().callback_status;
            if !matches!(
                s,
                CallbackStatus::Pending
                    | CallbackStatus::Dialing
                    | CallbackStatus::Ringing
                    | CallbackStatus::Answered
            ) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the lead never reached a final status");
    }

    pub async fn context_gone(&self, call: &CallRef) -> bool {
        for _ in 0..100 {
            if self.contexts.load(call).await.unwrap().is_none() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// 8 kHz 16-bit mono WAV of silence (the simulated callee "speaks" it).
pub fn silence_wav(ms: u32) -> Vec<u8> {
    let samples = 8 * ms;
    let data = samples * 2;
    let mut w = Vec::with_capacity(44 + data as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    w.resize(44 + data as usize, 0);
    w
}
