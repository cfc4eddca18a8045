//! The web leg end to end: Chromium with a fake microphone talks to the all-in-one site, whose
//! OpenAI side is the simulator (a real WebRTC peer) and whose leads go to a real PostgreSQL
//! through the PostgREST-compatible server. The simulated agent follows the sandbox scenario:
//! greets, qualifies, calls `save_lead`, then `trigger_call`, then says goodbye; the page hands off.

use callway_core::lead_store::{LeadStore, SupabaseConfig, SupabaseLeadStore};
use callway_core::secret::Secret;
use callway_core::Settings;
use callway_testkit::pg::TempPostgres;
use callway_testkit::postrust::Postrust;
use serde_json::Value;
use std::time::Duration;

fn fast_scenario(dir: &std::path::Path) -> String {
    let mut s = serde_json::to_value(sim_openai::Scenario::default_sandbox()).unwrap();
    // Shorter lines keep the journey under a minute; the protocol is the same.
    s["ms_per_char"] = 25.into();
    let path = dir.join("scenario.json");
    std::fs::write(&path, s.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_talks_to_the_agent_the_lead_is_saved_and_the_callback_is_dialled() {
    callway_testkit::install_crypto_provider();
    let pg = TempPostgres::start().await.expect("postgres");
    let api = Postrust::start(&pg).await.expect("postrust");
    let dir = tempfile::tempdir().unwrap();
    let root = callway_testkit::workspace_root();
    let env = vec![
        ("SUPABASE_REST_URL".to_owned(), api.rest_url()),
        ("SUPABASE_SERVICE_KEY".to_owned(), api.service_role_key()),
        (
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
        (
            "CALLWAY_STATIC_DIR".to_owned(),
            root.join("public").to_string_lossy().into_owned(),
        ),
        (
            "CALLWAY_SANDBOX_SCENARIO".to_owned(),
            fast_scenario(dir.path()),
        ),
    ];
    let settings = Settings::from_sources(None, env).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = callway::site::start(settings, listener)
        .await
        .expect("site");
    let server = site.server.handle();
    tokio::spawn(site.server);

    let out = tokio::process::Command::new("node")
        .arg(root.join("e2e/journey/web-journey.mjs"))
        .arg(&site.url)
        .arg("120000")
        // Keep the page open until its phone-leg panel shows the end of the callback.
        .env("JOURNEY_WAIT_PHONE_END", "90000")
        .current_dir(&root)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .expect("journey timed out")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let seen: Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "no JSON from the browser: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let openai = site.sims.openai.as_ref().unwrap().recorded();
    let telnyx = site.sims.telnyx.as_ref().unwrap().recorded();
    let diag = format!(
        "browser: {seen:#}\nopenai sessions: {:#?}",
        openai
            .sessions
            .iter()
            .map(|s| (
                &s.transport,
                s.audio_in_ms,
                s.audio_in_max_dbfs,
                &s.lines_said,
                &s.tool_calls,
                &s.tool_outputs,
                &s.scenario_mismatches
            ))
            .collect::<Vec<_>>()
    );

    assert!(seen["error"].is_null(), "{diag}");
    assert_eq!(
        seen["problems"],
        serde_json::json!([]),
        "no console error or failed request\n{diag}"
    );
    let states: Vec<&str> = seen["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        states.contains(&"connecting")
            && states.contains(&"listening")
            && states.contains(&"speaking"),
        "{diag}"
    );
    assert!(
        seen["maxRemoteLevel"].as_f64().unwrap() > 0.01,
        "the agent's audio plays in the page\n{diag}"
    );
    assert!(
        seen["phoneLeg"]
            .as_str()
            .unwrap()
            .contains("+33 6•• •• •• 78"),
        "{diag}"
    );
    assert!(seen["closedCleanly"].as_bool().unwrap(), "{diag}");
    let panel = seen["phoneLeg"].as_str().unwrap();
    for shown in ["Appel décroché", "Agent : «", "Vous : «", "Appel terminé"] {
        assert!(
            panel.contains(shown),
            "the phone-leg panel shows {shown:?}: {panel}"
        );
    }

    // The page never asked for a tool, nor talked to anyone but us; it muted its microphone at the
    // hand-off.
    let requests: Vec<&str> = seen["requests"]
        .as_array()
        .expect("the page's requests")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        requests
            .iter()
            .all(|r| !r.contains("/api/tools/") && !r.contains("realtime-token")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("/api/realtime/session")),
        "{requests:?}"
    );
    assert_eq!(
        seen["muted"], true,
        "the microphone is muted after trigger_call\n{diag}"
    );

    // The simulator heard the microphone; both tool outputs came from the server's sideband.
    let s = openai
        .sessions
        .iter()
        .find(|s| !s.tool_outputs.is_empty())
        .expect(&diag);
    assert!(
        s.audio_in_ms > 1000 && s.audio_in_max_dbfs.unwrap_or(f64::NEG_INFINITY) > -40.0,
        "{diag}"
    );
    // The fake microphone keeps "talking" after the goodbye until the page has closed: only
    // turns past the end of the script may fall back.
    assert!(
        s.scenario_mismatches
            .iter()
            .all(|m| m.contains("script finished")),
        "{diag}"
    );
    let outputs: Vec<Value> = s
        .tool_outputs
        .iter()
        .map(|(_, o)| serde_json::from_str(o).unwrap())
        .collect();
    assert_eq!(outputs[0]["phone_masked"], "+33 6•• •• •• 78", "{diag}");
    let web_call = s.call_id.clone().expect("the web call id");
    let from_sideband: Vec<String> = openai
        .sidebands_of(&web_call)
        .iter()
        .flat_map(|sb| sb.client_events.iter())
        .filter(|e| e.event["item"]["type"] == "function_call_output")
        .map(|e| {
            e.event["item"]["output"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        from_sideband,
        s.tool_outputs
            .iter()
            .map(|(_, o)| o.clone())
            .collect::<Vec<_>>(),
        "every tool output was sent by the server's sideband"
    );
    let hung_up = openai
        .call(&web_call)
        .and_then(|c| c.hangup_requested)
        .expect("the server hung the web call up");
    assert!(
        outputs[1]["call_id"].as_str().unwrap().starts_with("cx_"),
        "{diag}"
    );

    // The lead is in PostgreSQL, with consent and the summary; Telnyx was asked to call it.
    let store = LeadStore::Supabase(
        SupabaseLeadStore::new(SupabaseConfig {
            rest_url: api.rest_url(),
            service_key: Secret::new(api.service_role_key()),
            timeout: Duration::from_secs(3),
        })
        .unwrap(),
    );
    let lead_id =
        callway_core::lead::LeadId::parse(outputs[0]["lead_id"].as_str().unwrap()).unwrap();
    let lead = store.get(lead_id).await.unwrap().expect("lead row");
    assert_eq!(lead.phone.as_e164(), "+33612345678");
    assert_eq!(
        lead.consent.wording_version,
        callway_core::prompts::CONSENT_VERSION
    );
    let summary = lead.summary.as_deref().unwrap_or_default();
    assert!(
        summary.contains("Visiteur : Une cinquantaine") && summary.contains("Agent : "),
        "the business reads the conversation: {summary}"
    );
    assert_eq!(telnyx.dials.len(), 1);
    assert_eq!(telnyx.dials[0].body.as_ref().unwrap()["to"], "+33612345678");

    // The phone leg: the simulated callee answers, the media bridge joins it to a phone agent
    // session that carries the web summary, they talk, the agent hangs up, the webhook closes it.
    let telnyx_sim = site.sims.telnyx.as_ref().unwrap();
    let ccid = telnyx.dials[0].call_control_id.clone().expect("dialled");
    let telnyx = telnyx_sim
        .wait_for(
            |r| {
                r.webhooks.iter().any(|w| {
                    w.call_control_id == ccid && w.event_type == "call.hangup" && w.acknowledged()
                })
            },
            Duration::from_secs(90),
        )
        .await
        .unwrap_or_else(|e| panic!("the phone leg did not end: {e}\n{diag}"));
    let events = telnyx.events_for(&ccid);
    assert!(events.contains(&"call.answered".to_owned()), "{events:?}");
    let stream = telnyx.stream_for(&ccid).expect("media stream");
    assert_eq!(
        stream.outcome,
        sim_telnyx::StreamOutcome::Accepted,
        "{events:?}"
    );
    assert!(
        stream.media_frames_sent > 100,
        "the callee spoke into the stream"
    );
    assert!(
        callway_audio::level::rms_dbfs(&stream.played_pcm) > -40.0
            && stream.played_pcm.len() > 8_000,
        "the callee heard the agent"
    );
    assert!(
        telnyx
            .commands
            .iter()
            .any(|c| c.call_control_id == ccid && c.command == "hangup" && c.status == 200),
        "the bridge hung up after the agent's goodbye"
    );
    let openai = site.sims.openai.as_ref().unwrap().recorded();
    let phone = openai
        .sessions
        .iter()
        .find(|s| s.transport == sim_openai::TransportKind::WebSocket)
        .expect("a phone agent session");
    let instructions = phone.session["instructions"].as_str().unwrap_or_default();
    assert!(
        !instructions.contains("cinquantaine")
            && instructions.contains("<<<PRÉNOM\nMarie\nPRÉNOM>>>"),
        "only the first name, delimited, is in the phone instructions"
    );
    let replayed: Vec<String> = phone
        .client_events
        .iter()
        .filter(|e| e["type"] == "conversation.item.create" && e["item"]["type"] == "message")
        .map(|e| {
            format!(
                "{}: {}",
                e["item"]["role"].as_str().unwrap_or_default(),
                e["item"]["content"][0]["text"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        replayed
            .iter()
            .any(|l| l.starts_with("user: ") && l.contains("cinquantaine"))
            && replayed.iter().any(|l| l.starts_with("assistant: ")),
        "the web conversation is replayed to the phone agent: {replayed:?}"
    );
    assert!(
        phone.audio_in_max_dbfs.unwrap_or(f64::NEG_INFINITY) > -40.0,
        "the agent heard the callee"
    );
    // The agent records the qualification, then hangs up.
    let tools: Vec<&str> = phone.tool_calls.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tools, vec!["record_qualification", "end_call"]);

    // Context gone, outcome recorded in PostgreSQL (poll: the last webhooks may still be in flight).
    let call_ref =
        callway_core::call_context::CallRef::parse(outputs[1]["call_id"].as_str().unwrap())
            .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let gone = site.contexts.load(&call_ref).await.unwrap().is_none();
        let status = store
            .get(lead_id)
            .await
            .unwrap()
            .expect("lead row")
            .callback_status;
        if gone && status == callway_core::lead::CallbackStatus::Completed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "context gone: {gone}, callback status: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let timeline = site.contexts.timeline(&call_ref).await.unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    // The web call was hung up before the phone leg started (`dialing` is written just before
    // the dial).
    let hung_up_wall =
        chrono::Utc::now() - chrono::Duration::from_std(hung_up.at.elapsed()).unwrap();
    assert_eq!(kinds[0], "dialing");
    assert!(
        hung_up_wall <= timeline[0].at,
        "hung up before the phone rang"
    );
    for k in ["answered", "agent", "callee", "ended"] {
        assert!(kinds.contains(&k), "timeline {kinds:?} lacks {k}");
    }

    server.stop(false).await;
    site.bridge.stop().await;
}
