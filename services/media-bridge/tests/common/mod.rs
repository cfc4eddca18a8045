//! Test harness: a real Redis, the two simulators, and the bridge server on loopback. Calls are
//! placed the way tools-svc places them: context + one-time token in the store, then a Telnyx
//! dial whose `stream_url` points at the bridge.
//!
//! Both of the bridge's WebSockets go through a tap (ws_tap.rs) that reads what the bridge
//! sends; [`Harness::shutdown`] checks that every one of them ended with exactly one Close frame
//! from the bridge and nothing after it, in every test.
#![allow(dead_code)]

pub mod ws_tap;

use callway_audio::{wav, PCMU_RATE_HZ};
use callway_core::call_context::{random_id, CallContext, CallRef, ContextStore};
use callway_core::lead::LeadId;
use callway_core::telnyx::{DialRequest, TelnyxClient};
use callway_core::transcript::{Speaker, Turn};
use callway_core::Settings;
use callway_testkit::redis::TempRedis;
use media_bridge::Tuning;
use sim_openai::{OpenAiSim, Scenario, Step, ToolCall, Trigger};
use sim_telnyx::{Callee, TelnyxSim, Timing};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use ws_tap::{TapConn, WsTap};

pub const FROM: &str = "+33100000001";

pub struct Harness {
    pub redis: TempRedis,
    pub openai: OpenAiSim,
    pub telnyx: TelnyxSim,
    pub contexts: ContextStore,
    pub client: TelnyxClient,
    pub bridge_addr: SocketAddr,
    /// Telnyx (simulator) → tap → bridge.
    pub telnyx_tap: WsTap,
    /// Bridge → tap → OpenAI (simulator).
    pub openai_tap: WsTap,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// The bridge as its own process (the release binary's `main`), when started that way.
    child: Option<std::process::Child>,
}

pub struct Placed {
    pub call_ref: CallRef,
    pub ctx: CallContext,
    pub call_control_id: String,
}

impl Harness {
    pub async fn start(
        scenario: Scenario,
        tweak_openai: impl FnOnce(&mut sim_openai::SimConfig),
        tuning: Tuning,
    ) -> Harness {
        Self::start_with(scenario, tweak_openai, tuning, None).await
    }

    /// The bridge binary in its own process (signals reach its `main`), with these extra
    /// settings.
    pub async fn start_process(scenario: Scenario, extra_env: &[(&str, &str)]) -> Harness {
        Self::start_with(scenario, |_| {}, Tuning::default(), Some(extra_env)).await
    }

    async fn start_with(
        scenario: Scenario,
        tweak_openai: impl FnOnce(&mut sim_openai::SimConfig),
        tuning: Tuning,
        process: Option<&[(&str, &str)]>,
    ) -> Harness {
        callway_testkit::install_crypto_provider();
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let redis = TempRedis::start().await.expect("redis-server");
        let mut ocfg = sim_openai::SimConfig::new("sk-test-bridge", "127.0.0.1:0".parse().unwrap());
        ocfg.scenario = scenario;
        tweak_openai(&mut ocfg);
        let openai = OpenAiSim::start(ocfg).await.expect("sim-openai");
        // Webhooks go nowhere: the bridge tests do not involve webhook-svc.
        let dead = format!(
            "http://127.0.0.1:{}/hooks",
            callway_testkit::ports::free_port()
        );
        let mut tcfg =
            sim_telnyx::SimConfig::new("KEYtest", "conn-test", vec![FROM.to_owned()], dead);
        tcfg.timing = Timing::fast();
        let telnyx = TelnyxSim::start(tcfg).await.expect("sim-telnyx");
        let openai_tap = WsTap::start(openai.addr(), ws_tap::Bridge::IsClient).await;
        let env: Vec<(String, String)> = [
            ("REDIS_URL", redis.url()),
            ("OPENAI_API_KEY", "sk-test-bridge".into()),
            ("OPENAI_BASE_URL", format!("http://{}/v1", openai_tap.addr)),
            ("TELNYX_API_KEY", "KEYtest".into()),
            ("TELNYX_BASE_URL", telnyx.base_url()),
            ("TELNYX_CONNECTION_ID", "conn-test".into()),
            ("TELNYX_FROM_NUMBER", FROM.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let settings = Settings::from_sources(None, env.clone()).unwrap();
        let contexts = ContextStore::Redis(
            callway_core::redis_conn::connect(&redis.url())
                .await
                .unwrap(),
        );
        let client = TelnyxClient::from_settings(&settings).unwrap();
        let (bridge_addr, stop, server, child) = match process {
            None => {
                let state =
                    media_bridge::state_with_store(&settings, contexts.clone(), tuning).unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let (stop, stopped) = oneshot::channel::<()>();
                let server = tokio::spawn(media_bridge::run(listener, state, async {
                    let _ = stopped.await;
                }));
                (addr, Some(stop), Some(server), None)
            }
            Some(extra) => {
                let port = callway_testkit::ports::free_port();
                let child = std::process::Command::new(env!("CARGO_BIN_EXE_media-bridge"))
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .env("CALLWAY_HOST", "127.0.0.1")
                    .env("MEDIA_BRIDGE_PORT", port.to_string())
                    .env("CALLWAY_CONFIG_FILE", "/nonexistent/callway.toml")
                    .envs(extra.iter().copied())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("the media-bridge binary");
                callway_testkit::ports::wait_for_port(port, Duration::from_secs(20))
                    .await
                    .expect("the bridge process listens");
                (
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    None,
                    None,
                    Some(child),
                )
            }
        };
        let telnyx_tap = WsTap::start(bridge_addr, ws_tap::Bridge::IsUpstream).await;
        Harness {
            redis,
            openai,
            telnyx,
            contexts,
            client,
            bridge_addr,
            telnyx_tap,
            openai_tap,
            stop,
            server,
            child,
        }
    }

    /// Through the tap in front of the bridge.
    pub fn stream_url(&self, token: &str) -> String {
        format!("ws://{}/media/telnyx?token={token}", self.telnyx_tap.addr)
    }

    /// Writes a context as tools-svc does (`web_line`: what the visitor said on the web) and
    /// returns it with a fresh one-time token.
    pub async fn context(&self, first_name: &str, web_line: &str) -> (CallContext, String) {
        let ctx = CallContext {
            call_ref: CallRef::generate(),
            attempt: 1,
            kind: Default::default(),
            lead_id: LeadId::new(),
            first_name: first_name.into(),
            web_transcript: vec![
                Turn::new(Speaker::Agent, "Bonjour, je suis l'agent IA de Callway.").unwrap(),
                Turn::new(Speaker::Visitor, web_line).unwrap(),
            ],
            web_session_id: random_id("ws_"),
            phone_masked: "+33 6•• •• •• 00".into(),
            stream_secret: random_id("ss_"),
            call_control_id: None,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            created_at: chrono::Utc::now(),
        };
        self.contexts.put(&ctx).await.unwrap();
        let token = self
            .contexts
            .issue_stream_token(&ctx.call_ref)
            .await
            .unwrap();
        (ctx, token)
    }

    /// Dials `to` with the bridge as the stream URL.
    pub async fn dial(&self, to: &str, ctx: &CallContext, token: &str, auth: &str) -> String {
        let answer = self
            .client
            .dial(&DialRequest {
                to_e164: to.into(),
                client_state: ctx.call_ref.to_client_state(ctx.lead_id),
                stream_url: self.stream_url(token),
                stream_auth_token: auth.into(),
                command_id: random_id("cmd_"),
                webhook_url: None,
            })
            .await
            .expect("dial");
        answer.call_control_id
    }

    /// A normal call: context, token, dial with the right secret.
    pub async fn call(&self, to: &str, callee: Callee, first_name: &str, summary: &str) -> Placed {
        self.telnyx.script_callee(to, callee).unwrap();
        let (ctx, token) = self.context(first_name, summary).await;
        let call_control_id = self.dial(to, &ctx, &token, &ctx.stream_secret).await;
        Placed {
            call_ref: ctx.call_ref.clone(),
            ctx,
            call_control_id,
        }
    }

    /// Polls the OpenAI simulator (it has no change notification) until `pred` holds.
    pub async fn wait_openai(
        &self,
        mut pred: impl FnMut(&sim_openai::Recording) -> bool,
        timeout: Duration,
    ) -> sim_openai::Recording {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.openai.recorded();
            if pred(&r) {
                return r;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "OpenAI condition not met in {timeout:?}: {:#?}",
                    r.sessions
                        .iter()
                        .map(|s| (
                            &s.server_event_types,
                            &s.lines_said,
                            &s.closed_with,
                            &s.client_closed_with,
                            &s.errors_sent
                        ))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM to the bridge process; the handle resolves with its exit status.
    pub fn sigterm(&mut self) -> JoinHandle<std::process::ExitStatus> {
        let mut child = self.child.take().expect("a bridge process");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -TERM media-bridge");
        tokio::task::spawn_blocking(move || child.wait().expect("the bridge process"))
    }

    /// Signals the bridge to shut down; returns when it was signalled and the server task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.server.take().expect("server running")
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(40), s)
                .await
                .expect("the bridge stops within its drain deadline")
                .expect("the bridge task did not panic");
        }
        // Every call has ended: each of its sockets must have been closed once, and cleanly.
        let telnyx = self.telnyx_tap.finished(Duration::from_secs(15)).await;
        assert_one_close_each("Telnyx", &telnyx);
        let openai = self.openai_tap.finished(Duration::from_secs(15)).await;
        assert_one_close_each("OpenAI", &openai);
        self.telnyx.shutdown().await;
        self.openai.shutdown().await;
    }
}

/// Every upgraded socket got exactly one Close frame from the bridge, and nothing after it.
pub fn assert_one_close_each(side: &str, conns: &[TapConn]) {
    for (i, c) in conns.iter().filter(|c| c.upgraded).enumerate() {
        assert_eq!(
            (c.close_frames, c.frames_after_close),
            (1, 0),
            "{side} socket #{i}: one Close frame from the bridge, then nothing: {c:?}"
        );
    }
}

/// A voiced, speech-like signal (harmonics of 140 Hz with a slow amplitude wobble), about
/// -15 dBFS: enough for server VAD, clearly not silence.
pub fn voice(ms: u64, f0: f64) -> Vec<i16> {
    let n = (ms * PCMU_RATE_HZ as u64 / 1000) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / PCMU_RATE_HZ as f64;
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let s: f64 = (1..=6)
                .map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64)
                .sum();
            (s * env * 4_000.0) as i16
        })
        .collect()
}

pub fn silence(ms: u64) -> Vec<i16> {
    vec![0; (ms * PCMU_RATE_HZ as u64 / 1000) as usize]
}

/// 8 kHz WAV of silence, then speech, then silence.
pub fn callee_wav(lead_silence_ms: u64, speech_ms: u64, tail_ms: u64) -> Vec<u8> {
    let mut s = silence(lead_silence_ms);
    s.extend(voice(speech_ms, 140.0));
    s.extend(silence(tail_ms));
    wav::to_bytes(&wav::Wav {
        sample_rate: PCMU_RATE_HZ,
        samples: s,
    })
}

pub fn say(on: Trigger, text: &str) -> Step {
    Step {
        on,
        expect_transcript: None,
        say: Some(text.into()),
        say_wav: None,
        call: None,
    }
}

pub fn end_call() -> ToolCall {
    ToolCall {
        name: "end_call".into(),
        arguments: serde_json::json!({"reason": "completed"}),
    }
}

pub fn scenario(steps: Vec<Step>, ms_per_char: u32) -> Scenario {
    Scenario {
        steps,
        fallback_say: "Pardon ?".into(),
        ms_per_char,
    }
}

/// The conversation the bridge replayed at the start of the session (user and assistant
/// messages it created), one line per item: `role: text`.
pub fn history(s: &sim_openai::SessionRecord) -> String {
    s.client_events
        .iter()
        .filter(|e| e["type"] == "conversation.item.create" && e["item"]["type"] == "message")
        .filter(|e| e["item"]["role"] != "system")
        .map(|e| {
            format!(
                "{}: {}",
                e["item"]["role"].as_str().unwrap_or_default(),
                e["item"]["content"][0]["text"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The session's effective config as the simulator recorded it.
pub fn instructions(s: &sim_openai::SessionRecord) -> String {
    s.session["instructions"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
