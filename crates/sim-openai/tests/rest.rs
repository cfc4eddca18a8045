//! REST endpoints: client secrets, calls (rejections), forced failures, refused WebSocket handshakes.

mod common;

use common::*;
use serde_json::{json, Value};
use sim_openai::{Failure, Scenario};
use std::time::Duration;

const SECRETS: &str = "/v1/realtime/client_secrets";

fn realtime(extra: serde_json::Value) -> serde_json::Value {
    let mut s = json!({"type": "realtime", "model": "gpt-realtime"});
    if let (Some(dst), Some(src)) = (s.as_object_mut(), extra.as_object()) {
        dst.extend(src.clone());
    }
    s
}

#[tokio::test]
async fn client_secrets_refuse_missing_or_wrong_key_with_401() {
    let sim = start(Scenario::default_sandbox()).await;
    let body = json!({"session": realtime(json!({}))});
    for key in [None, Some("sk-wrong"), Some("ek_notastandardkey")] {
        let r = post_json(sim.addr(), SECRETS, key, &body).await;
        assert_eq!(r.status, 401, "{key:?}");
        let e = r.json();
        assert_eq!(e["error"]["code"], "invalid_api_key");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert!(e["error"]["param"].is_null());
        assert!(e["error"]["message"].is_string());
    }
    // The wrong key is masked, never echoed.
    let r = post_json(sim.addr(), SECRETS, Some("sk-wrong-but-long-key"), &body).await;
    assert!(!r.text().contains("sk-wrong-but-long-key"));
    let rec = sim.recorded();
    assert_eq!(rec.client_secret_requests.len(), 4);
    assert!(rec
        .client_secret_requests
        .iter()
        .all(|s| s.status == 401 && s.value.is_none()));
    sim.shutdown().await;
}

#[tokio::test]
async fn client_secrets_validate_the_body() {
    let sim = start(Scenario::default_sandbox()).await;
    let cases = [
        (
            json!({"session": realtime(json!({})), "ttl": 5}),
            "unknown_parameter",
            Some("ttl"),
        ),
        (json!({}), "missing_required_parameter", Some("session")),
        (
            json!({"session": {"model": "gpt-realtime"}}),
            "missing_required_parameter",
            Some("session.type"),
        ),
        (
            json!({"session": {"type": "session"}}),
            "invalid_value",
            Some("session.type"),
        ),
        (
            json!({"session": realtime(json!({})), "expires_after": {"anchor": "created_at", "seconds": 5}}),
            "integer_below_min_value",
            Some("expires_after.seconds"),
        ),
        (
            json!({"session": realtime(json!({})), "expires_after": {"anchor": "created_at", "seconds": 7201}}),
            "integer_above_max_value",
            Some("expires_after.seconds"),
        ),
        (
            json!({"session": realtime(json!({})), "expires_after": {"anchor": "now", "seconds": 60}}),
            "invalid_value",
            Some("expires_after.anchor"),
        ),
        (
            json!({"session": realtime(json!({})), "expires_after": {"seconds": 60}}),
            "missing_required_parameter",
            Some("expires_after.anchor"),
        ),
        (
            json!({"session": realtime(json!({"modalities": ["audio"]}))}),
            "unknown_parameter",
            Some("session.modalities"),
        ),
        (
            json!({"session": realtime(json!({"model": "gpt-live-1"}))}),
            "invalid_model",
            Some("session.model"),
        ),
        (
            json!({"session": realtime(json!({"audio": {"output": {"voice": "robot"}}}))}),
            "invalid_value",
            Some("session.audio.output.voice"),
        ),
        (
            json!({"session": realtime(json!({"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}))}),
            "invalid_value",
            Some("session.audio.input.format.rate"),
        ),
        (
            json!({"session": realtime(json!({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}}))}),
            "decimal_above_max_value",
            Some("session.audio.input.turn_detection.threshold"),
        ),
        (
            json!({"session": realtime(json!({"tools": [{"type": "function", "name": "save lead"}]}))}),
            "invalid_value",
            Some("session.tools[0].name"),
        ),
        (
            json!({"session": realtime(json!({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "required": ["x"]}}]}))}),
            "invalid_function_parameters",
            Some("session.tools[0].parameters"),
        ),
        (
            json!({"session": realtime(json!({"tool_choice": "sometimes"}))}),
            "invalid_value",
            Some("session.tool_choice"),
        ),
        (
            json!({"session": realtime(json!({"instructions": 42}))}),
            "invalid_type",
            Some("session.instructions"),
        ),
        (
            json!({"session": realtime(json!({"output_modalities": ["audio", "text"]}))}),
            "invalid_value",
            Some("session.output_modalities"),
        ),
    ];
    for (body, code, param) in cases {
        let r = post_json(sim.addr(), SECRETS, Some(KEY), &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = r.json();
        assert_eq!(e["error"]["code"], code, "{body}: {}", r.text());
        assert_eq!(e["error"]["param"].as_str(), param, "{body}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
    // Not JSON at all.
    let r = http(
        sim.addr(),
        "POST",
        SECRETS,
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"session=1",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("parse the JSON")));
    // The beta header is refused.
    let r = http(
        sim.addr(),
        "POST",
        SECRETS,
        &[
            ("Authorization", &format!("Bearer {KEY}")),
            ("OpenAI-Beta", "realtime=v1"),
        ],
        json!({"session": realtime(json!({}))})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r.json()["error"]["code"], "beta_api_shape_disabled");
    assert!(sim
        .recorded()
        .client_secret_requests
        .iter()
        .all(|s| s.status == 400));
    sim.shutdown().await;
}

#[tokio::test]
async fn client_secrets_answer_the_documented_shape() {
    let sim = start(Scenario::default_sandbox()).await;
    let before = sim_openai::ids::unix_now();
    let body = json!({"session": realtime(json!({
        "instructions": "Tu es l'agent de Callway.",
        "audio": {"output": {"voice": "marin"}, "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}},
        "tools": [save_lead_tool()]
    }))});
    let r = post_json(sim.addr(), SECRETS, Some(KEY), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let v = r.json();
    let value = v["value"].as_str().expect("value");
    assert!(value.starts_with("ek_") && value.len() == 24, "{value}");
    let exp = v["expires_at"].as_u64().expect("expires_at");
    assert!(
        exp >= before + 600 && exp <= before + 602,
        "default TTL is 600 s"
    );
    let s = &v["session"];
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["object"], "realtime.session");
    assert!(s["id"].as_str().is_some_and(|i| i.starts_with("sess_")));
    assert_eq!(s["model"], "gpt-realtime");
    assert_eq!(s["output_modalities"], json!(["audio"]));
    assert_eq!(s["instructions"], "Tu es l'agent de Callway.");
    assert_eq!(s["tool_choice"], "auto");
    assert_eq!(s["max_output_tokens"], "inf");
    assert_eq!(s["tools"][0]["name"], "save_lead");
    assert_eq!(
        s["audio"]["input"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    assert_eq!(
        s["audio"]["input"]["turn_detection"]["silence_duration_ms"],
        500
    );
    assert_eq!(
        s["audio"]["input"]["turn_detection"]["prefix_padding_ms"],
        300
    );
    assert_eq!(s["audio"]["output"]["voice"], "marin");
    assert_eq!(s["audio"]["output"]["speed"], 1.0);
    for key in ["tracing", "prompt", "include"] {
        assert!(s.get(key).is_some_and(|x| x.is_null()), "{key}");
    }
    let r = post_json(sim.addr(), SECRETS, Some(KEY), &json!({"session": realtime(json!({})), "expires_after": {"anchor": "created_at", "seconds": 10}})).await;
    assert!(r.json()["expires_at"]
        .as_u64()
        .is_some_and(|e| e <= sim_openai::ids::unix_now() + 10));
    let rec = sim.recorded();
    assert_eq!(
        rec.client_secret_requests[0].body["session"]["instructions"],
        "Tu es l'agent de Callway."
    );
    assert_eq!(rec.client_secret_requests[0].value.as_deref(), Some(value));
    sim.shutdown().await;
}

#[tokio::test]
async fn forced_failures_answer_429_500_401_and_stall() {
    let sim = start(Scenario::default_sandbox()).await;
    let body = json!({"session": realtime(json!({}))});
    sim.fail_next(Failure::RateLimited);
    let r = post_json(sim.addr(), SECRETS, Some(KEY), &body).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    sim.fail_next(Failure::ServerError);
    let r = post_json(sim.addr(), SECRETS, Some(KEY), &body).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "server_error");
    sim.fail_next(Failure::Unauthorized);
    assert_eq!(
        post_json(sim.addr(), SECRETS, Some(KEY), &body)
            .await
            .status,
        401
    );
    // Consumed once: the next request succeeds.
    assert_eq!(
        post_json(sim.addr(), SECRETS, Some(KEY), &body)
            .await
            .status,
        200
    );
    sim.fail_next(Failure::Stall(Duration::from_millis(600)));
    let r = post_json(sim.addr(), SECRETS, Some(KEY), &body).await;
    assert_eq!(
        r.status, 200,
        "a stall delays the answer, it does not fail it"
    );
    // A client with a shorter timeout gives up.
    sim.fail_next(Failure::Stall(Duration::from_secs(5)));
    let timed = tokio::time::timeout(
        Duration::from_millis(300),
        post_json(sim.addr(), SECRETS, Some(KEY), &body),
    )
    .await;
    assert!(timed.is_err());
    let errs = sim.recorded().http_errors;
    assert_eq!(
        errs.iter().map(|e| e.status).collect::<Vec<_>>(),
        vec![429, 500, 401]
    );
    sim.shutdown().await;
}

const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

async fn post_sdp(
    sim: &sim_openai::OpenAiSim,
    path: &str,
    key: Option<&str>,
    ctype: &str,
    body: &str,
) -> HttpResp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![("Content-Type", ctype)];
    if let Some(a) = auth.as_deref() {
        h.push(("Authorization", a));
    }
    http(sim.addr(), "POST", path, &h, body.as_bytes()).await
}

#[tokio::test]
async fn calls_refuse_bad_keys_bad_content_and_bad_sdp() {
    let sim = start(Scenario::default_sandbox()).await;
    let calls = "/v1/realtime/calls";
    for key in [None, Some("ek_unknownunknownunknown1"), Some("sk-wrong")] {
        let r = post_sdp(&sim, calls, key, "application/sdp", OFFER).await;
        assert_eq!(r.status, 401, "{key:?}");
        assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    }
    let ek = mint(&sim, json!({"type": "realtime", "model": "gpt-realtime"})).await;
    let r = post_sdp(&sim, calls, Some(&ek), "application/json", "{}").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("application/sdp")));
    let r = post_sdp(&sim, calls, Some(&ek), "application/sdp", "{\"error\":1}").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "invalid_offer");
    let r = post_sdp(
        &sim,
        calls,
        Some(&ek),
        "application/sdp",
        "v=0\r\nthis is not sdp\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = post_sdp(&sim, calls, Some(&ek), "application/sdp", OFFER).await;
    assert_eq!(r.status, 400, "an offer without audio: {}", r.text());
    let r = post_sdp(
        &sim,
        "/v1/realtime/calls?model=gpt-live-1",
        Some(&ek),
        "application/sdp",
        OFFER,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "invalid_model");
    assert_eq!(
        r.json()["error"]["message"],
        "Model \"gpt-live-1\" is not supported in realtime mode."
    );
    // Expired secrets are refused.
    sim.expire_client_secrets();
    let r = post_sdp(&sim, calls, Some(&ek), "application/sdp", OFFER).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("expired")));
    // Hang-up of an unknown call.
    let r = post_sdp(
        &sim,
        "/v1/realtime/calls/rtc_nope/hangup",
        Some(KEY),
        "application/json",
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(
        sim.recorded().sessions.is_empty(),
        "no session for a refused call"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_404_and_cors_preflight() {
    let sim = start(Scenario::default_sandbox()).await;
    let r = http(sim.addr(), "GET", "/v1/files", &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["message"], "Invalid URL (GET /v1/files)");
    let r = http(
        sim.addr(),
        "OPTIONS",
        "/v1/realtime/calls",
        &[
            ("Origin", "http://localhost:8080"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("authorization")));
    let r = post_json(
        sim.addr(),
        "/v1/realtime/sessions",
        Some(KEY),
        &json!({"model": "gpt-realtime"}),
    )
    .await;
    assert_eq!(r.json()["error"]["code"], "beta_api_shape_disabled");
    sim.shutdown().await;
}

#[tokio::test]
async fn websocket_refuses_bad_auth_with_401_before_the_upgrade() {
    let sim = start(Scenario::default_sandbox()).await;
    let path = "/v1/realtime?model=gpt-realtime";
    let err = ws_connect(sim.addr(), path, &[])
        .await
        .err()
        .expect("refused");
    assert!(err.contains("401"), "{err}");
    let err = ws_connect(sim.addr(), path, &[("Authorization", "Bearer sk-wrong")])
        .await
        .err()
        .expect("refused");
    assert!(err.contains("401"), "{err}");
    let ek = mint(&sim, json!({"type": "realtime"})).await;
    sim.expire_client_secrets();
    let auth = format!("Bearer {ek}");
    let err = ws_connect(sim.addr(), path, &[("Authorization", &auth)])
        .await
        .err()
        .expect("refused");
    assert!(err.contains("401"), "{err}");
    // Plain GET without upgrade, right key: 400, not a socket.
    let r = http(
        sim.addr(),
        "GET",
        path,
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
    let rec = sim.recorded();
    assert!(rec.sessions.is_empty());
    assert_eq!(
        rec.http_errors
            .iter()
            .filter(|e| e.status == 401 && e.path == "/v1/realtime")
            .count(),
        3
    );
    sim.shutdown().await;
}

/// An offer the simulator's SDP parser accepts up to the media check (no audio section).
const SDP_PART: (&str, Option<&str>, &str) = ("sdp", Some("application/sdp"), OFFER);

#[tokio::test]
async fn multipart_calls_refuse_bad_keys_missing_parts_bad_sessions_and_wrong_part_types() {
    let sim = start(Scenario::default_sandbox()).await;
    let session = json!({"type": "realtime", "model": "gpt-realtime-2.1"}).to_string();
    let good = [SDP_PART, ("session", Some("application/json"), &session)];
    // Keys: none, wrong, and a valid ek_ (which may only post application/sdp).
    let ek = mint(&sim, json!({"type": "realtime"})).await;
    for key in [None, Some("sk-wrong-key-0000"), Some(ek.as_str())] {
        let r = post_call_form(sim.addr(), key, &good).await;
        assert_eq!(r.status, 401, "{key:?}: {}", r.text());
        let e = r.json();
        assert_eq!(e["error"]["code"], "invalid_api_key");
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
    let s = |j: Value| j.to_string();
    let unknown_key = s(json!({"type": "realtime", "modalities": ["audio"]}));
    let bad_model = s(json!({"type": "realtime", "model": "gpt-live-1"}));
    let no_type = s(json!({"model": "gpt-realtime-2.1-mini"}));
    let bad_voice = s(json!({"type": "realtime", "audio": {"output": {"voice": "robot"}}}));
    type Case<'a> = (
        Vec<(&'a str, Option<&'a str>, &'a str)>,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            vec![("session", Some("application/json"), &session)],
            "missing_required_parameter",
            Some("sdp"),
        ),
        (
            vec![
                SDP_PART,
                (
                    "session",
                    Some("application/json"),
                    "{\"type\": \"realtime\",",
                ),
            ],
            "invalid_json",
            Some("session"),
        ),
        (
            vec![
                SDP_PART,
                ("session", Some("application/json"), &unknown_key),
            ],
            "unknown_parameter",
            Some("session.modalities"),
        ),
        (
            vec![SDP_PART, ("session", Some("application/json"), &bad_model)],
            "invalid_model",
            Some("session.model"),
        ),
        (
            vec![SDP_PART, ("session", Some("application/json"), &no_type)],
            "missing_required_parameter",
            Some("session.type"),
        ),
        (
            vec![SDP_PART, ("session", Some("application/json"), &bad_voice)],
            "invalid_value",
            Some("session.audio.output.voice"),
        ),
        (
            vec![("sdp", Some("text/plain"), OFFER)],
            "unsupported_content_type",
            Some("sdp"),
        ),
        (
            vec![("sdp", None, OFFER)],
            "unsupported_content_type",
            Some("sdp"),
        ),
        (
            vec![SDP_PART, ("session", Some("text/plain"), &session)],
            "unsupported_content_type",
            Some("session"),
        ),
        (
            vec![SDP_PART, ("model", Some("text/plain"), "gpt-realtime")],
            "unknown_parameter",
            Some("model"),
        ),
        (vec![SDP_PART, SDP_PART], "invalid_type", Some("sdp")),
        // The form is fine; the offer in it is not (no audio section).
        (vec![SDP_PART], "invalid_offer", None),
    ];
    for (parts, code, param) in cases {
        let r = post_call_form(sim.addr(), Some(KEY), &parts).await;
        assert_eq!(r.status, 400, "{parts:?}: {}", r.text());
        let e = r.json();
        assert_eq!(e["error"]["code"], code, "{parts:?}: {e}");
        assert_eq!(e["error"]["param"].as_str(), param, "{parts:?}: {e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
    // Not a well-formed form at all.
    let auth = format!("Bearer {KEY}");
    for (ctype, body) in [
        ("multipart/form-data", "--x\r\n".as_bytes()),
        (
            "multipart/form-data; boundary=x",
            b"no delimiter here".as_slice(),
        ),
        (
            "multipart/form-data; boundary=x",
            b"--x\nContent-Disposition: form-data; name=\"sdp\"\n\nv=0\n--x--".as_slice(),
        ),
    ] {
        let r = http(
            sim.addr(),
            "POST",
            "/v1/realtime/calls",
            &[("Authorization", &auth), ("Content-Type", ctype)],
            body,
        )
        .await;
        assert_eq!(r.status, 400, "{ctype}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_multipart");
    }
    let rec = sim.recorded();
    assert!(
        rec.sessions.is_empty() && rec.calls.is_empty(),
        "no call for a refused form"
    );
    assert!(sim.live_calls().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn sideband_refuses_bad_keys_with_401_and_unknown_calls_with_404_before_the_upgrade() {
    let sim = start(Scenario::default_sandbox()).await;
    let path = "/v1/realtime?call_id=rtc_u1_9c6574da8b8a41a18da9308f4ad974ce";
    let ek = mint(&sim, json!({"type": "realtime"})).await;
    let ek_auth = format!("Bearer {ek}");
    let ek_proto = format!("realtime, openai-insecure-api-key.{ek}");
    for headers in [
        vec![],
        vec![("Authorization", "Bearer sk-wrong-key-0000")],
        vec![("Authorization", ek_auth.as_str())],
        vec![("Sec-WebSocket-Protocol", ek_proto.as_str())],
    ] {
        let err = ws_connect(sim.addr(), path, &headers)
            .await
            .err()
            .expect("refused");
        assert!(err.contains("401"), "{headers:?}: {err}");
    }
    // The right key, but no such call: 404 with OpenAI's body, still before any upgrade.
    let err = ws_connect(
        sim.addr(),
        path,
        &[("Authorization", &format!("Bearer {KEY}"))],
    )
    .await
    .err()
    .expect("refused");
    assert!(err.contains("404"), "{err}");
    let r = http(
        sim.addr(),
        "GET",
        path,
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    let e = r.json();
    assert_eq!(e["error"]["code"], "call_id_not_found");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert_eq!(
        e["error"]["message"],
        "No session found for the provided call_id"
    );
    let rec = sim.recorded();
    assert!(rec.sidebands.is_empty() && rec.sessions.is_empty());
    assert_eq!(
        rec.http_errors
            .iter()
            .filter(|e| e.path == "/v1/realtime")
            .map(|e| e.status)
            .collect::<Vec<_>>(),
        vec![401, 401, 401, 401, 404, 404]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn models_show_the_model_object_with_its_shutdown_date() {
    let mut cfg = config(Scenario::default_sandbox());
    let shutdown = chrono::NaiveDate::from_ymd_opt(2027, 1, 20).expect("date");
    cfg.model_shutdowns.insert("gpt-realtime".into(), shutdown);
    let sim = sim_openai::OpenAiSim::start(cfg).await.expect("start");
    let auth = format!("Bearer {KEY}");
    let get = |path: String, auth: Option<String>| {
        let addr = sim.addr();
        async move {
            let h: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("Authorization", a)])
                .unwrap_or_default();
            http(addr, "GET", &path, &h, b"").await
        }
    };
    let r = get("/v1/models/gpt-realtime".into(), Some(auth.clone())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    assert_eq!(m["id"], "gpt-realtime");
    assert_eq!(m["object"], "model");
    assert!(m["created"].as_i64().is_some_and(|c| c > 1_600_000_000));
    assert!(m["owned_by"].is_string());
    assert_eq!(m["shutdown_date"], "2027-01-20");
    for id in ["gpt-realtime-2.1", "gpt-realtime-2.1-mini"] {
        let m = get(format!("/v1/models/{id}"), Some(auth.clone()))
            .await
            .json();
        assert_eq!(m["id"], id);
        assert!(m["shutdown_date"].is_null(), "{m}");
    }
    sim.set_model_shutdown("gpt-realtime-2.1", Some(shutdown));
    sim.set_model_shutdown("gpt-realtime", None);
    let m = get("/v1/models/gpt-realtime-2.1".into(), Some(auth.clone()))
        .await
        .json();
    assert_eq!(m["shutdown_date"], "2027-01-20");
    let m = get("/v1/models/gpt-realtime".into(), Some(auth.clone()))
        .await
        .json();
    assert!(m["shutdown_date"].is_null());

    let r = get("/v1/models/gpt-live-1".into(), Some(auth.clone())).await;
    assert_eq!(r.status, 404);
    let e = r.json();
    assert_eq!(e["error"]["code"], "model_not_found");
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|s| s.contains("gpt-live-1")));

    let ek = mint(&sim, json!({"type": "realtime"})).await;
    for key in [None, Some("sk-wrong-key-0000".to_string()), Some(ek)] {
        let r = get(
            "/v1/models/gpt-realtime".into(),
            key.map(|k| format!("Bearer {k}")),
        )
        .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    }
    let list = get("/v1/models".into(), Some(auth.clone())).await.json();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"gpt-realtime-2.1") && ids.contains(&"gpt-realtime-2.1-mini"));
    sim.shutdown().await;
}
