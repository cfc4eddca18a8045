//! token-svc against the OpenAI simulator: the call is created server side with the page's SDP
//! offer (multipart, standard key, the session fixed here), registered for the sideband, and
//! nothing OpenAI-side reaches the page; OpenAI's refusals become our French errors; a retired
//! model refuses to start.

use callway_core::call_context::ContextStore;
use callway_core::session_token::SessionTokens;
use callway_core::web_call::WebCalls;
use callway_core::Settings;
use serde_json::Value;
use sim_openai::{NaiveDate, OpenAiSim, SimConfig};

async fn sim() -> OpenAiSim {
    OpenAiSim::start(SimConfig::new(
        "sk-test-key",
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap()
}

fn settings(sim: &OpenAiSim, model: &str) -> Settings {
    Settings::from_sources(
        None,
        [
            ("OPENAI_API_KEY", "sk-test-key".to_owned()),
            ("OPENAI_BASE_URL", sim.base_url()),
            ("OPENAI_REALTIME_MODEL", model.to_owned()),
            ("CALLWAY_SANDBOX", "true".to_owned()),
            (
                "CALLWAY_SESSION_SECRET",
                "token-test-session-secret-0123456789abcdef".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v)),
    )
    .unwrap()
}

async fn spawn(s: &Settings, store: ContextStore) -> (String, token_svc::TokenState) {
    let state = token_svc::state_from_settings(s, Some(store))
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(token_svc::serve(listener, state.clone()).unwrap());
    (format!("http://127.0.0.1:{port}"), state)
}

async fn open(base: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/realtime/session"))
        .header("content-type", "application/sdp")
        .body(callway_testkit::sdp::browser_offer())
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_call_is_created_server_side_with_the_session_fixed_here_and_registered() {
    callway_testkit::install_crypto_provider();
    let sim = sim().await;
    let s = settings(&sim, "gpt-realtime-2.1");
    let store = ContextStore::memory();
    let (base, state) = spawn(&s, store.clone()).await;
    let (status, body) = open(&base).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["sdp"].as_str().unwrap().starts_with("v=0"));
    assert_eq!(body["max_session_secs"], 300);
    let text = body.to_string();
    assert!(
        !text.contains("sk-test-key") && !text.contains("ek_") && !text.contains("rtc_"),
        "no OpenAI credential or call id reaches the page: {text}"
    );
    let session = SessionTokens::new(s.session_secret().unwrap())
        .verify(
            body["session_token"].as_str().unwrap(),
            chrono::Utc::now().timestamp(),
        )
        .unwrap();

    // What OpenAI received: a multipart call creation with our session, standard key.
    let rec = sim.recorded();
    assert_eq!(rec.calls.len(), 1);
    let call = &rec.calls[0];
    assert_eq!(call.created_with, sim_openai::CallCreation::Multipart);
    let sent = call.session_request.clone().expect("the session part");
    assert_eq!(sent, state.openai.session_config());
    assert_eq!(sent["model"], "gpt-realtime-2.1");
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["save_lead", "trigger_call"]);

    // Registered for the sideband, with its deadline and slot.
    let web = WebCalls::new(store).load(&session).await.unwrap().unwrap();
    assert_eq!(web.rtc_call_id.as_str(), call.call_id);
    assert!(web.ended.is_none());
    assert_eq!((web.deadline - web.started_at).num_seconds(), 300);
    assert_eq!(
        WebCalls::new(state.web_calls.store().clone())
            .active(chrono::Utc::now().timestamp_millis())
            .await
            .unwrap(),
        vec![session]
    );

    // The page's status request.
    let st: Value = reqwest::Client::new()
        .get(format!("{base}/api/realtime/session"))
        .bearer_auth(body["session_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["state"], "active");
    let refused = reqwest::Client::new()
        .get(format!("{base}/api/realtime/session"))
        .bearer_auth("v1.ws_x.1.AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
}

#[tokio::test]
async fn openai_refusals_become_french_errors_and_free_the_slot() {
    callway_testkit::install_crypto_provider();
    let sim = sim().await;
    let s = settings(&sim, "gpt-realtime-2.1");
    let store = ContextStore::memory();
    let (base, _) = spawn(&s, store.clone()).await;
    for (failure, status, code) in [
        (sim_openai::Failure::RateLimited, 503, "upstream_busy"),
        (sim_openai::Failure::ServerError, 502, "upstream_error"),
        (sim_openai::Failure::Unauthorized, 502, "upstream_auth"),
    ] {
        sim.fail_next(failure);
        let (st, body) = open(&base).await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert!(
        WebCalls::new(store)
            .active(chrono::Utc::now().timestamp_millis())
            .await
            .unwrap()
            .is_empty(),
        "a refused call holds no slot"
    );
    // …and did not count against the visitor: six sessions still open.
    for _ in 0..6 {
        assert_eq!(open(&base).await.0, 201);
    }
}

#[tokio::test]
async fn a_retired_model_refuses_to_start_and_one_retiring_soon_starts() {
    callway_testkit::install_crypto_provider();
    let sim = sim().await;
    sim.set_model_shutdown("gpt-realtime", NaiveDate::from_ymd_opt(2026, 1, 20));
    let soon = (chrono::Utc::now() + chrono::Duration::days(10)).date_naive();
    sim.set_model_shutdown("gpt-realtime-2.1-mini", Some(soon));
    let err = token_svc::state_from_settings(
        &settings(&sim, "gpt-realtime"),
        Some(ContextStore::memory()),
    )
    .await
    .err()
    .expect("a retired model refuses to start");
    let msg = err.to_string();
    assert!(
        msg.contains("gpt-realtime was retired on 2026-01-20")
            && msg.contains("OPENAI_REALTIME_MODEL"),
        "{msg}"
    );
    let status = callway_core::openai_models::check(
        &sim.base_url(),
        &callway_core::secret::Secret::new("sk-test-key"),
        "gpt-realtime-2.1-mini",
        std::time::Duration::from_secs(2),
        chrono::Utc::now().timestamp(),
    )
    .await
    .unwrap();
    assert!(matches!(
        status,
        callway_core::openai_models::ModelStatus::RetiringSoon { .. }
    ));
    assert!(token_svc::state_from_settings(
        &settings(&sim, "gpt-realtime-2.1-mini"),
        Some(ContextStore::memory())
    )
    .await
    .is_ok());
    let unknown =
        token_svc::state_from_settings(&settings(&sim, "gpt-live-1"), Some(ContextStore::memory()))
            .await
            .err()
            .unwrap();
    assert!(unknown.to_string().contains("does not know"), "{unknown}");
}
