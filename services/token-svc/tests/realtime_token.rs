//! token-svc on port 0 against an upstream standing in for OpenAI's REST endpoint.

use callway_core::secret::Secret;
use callway_core::session_token::SessionTokens;
use callway_testkit::scripted_http::{Script, ScriptedHttp};
use serde_json::Value;
use std::time::Duration;
use token_svc::{OpenAiClient, OpenAiConfig, RateLimiter, TokenState};

const SECRET: &str = "token-test-session-secret-0123456789abcdef";

fn ok_secret() -> Script {
    Script {
        status: 200,
        body: r#"{"value":"ek_test_123","expires_at":1999999999,"session":{"type":"realtime"}}"#
            .into(),
        delay: Duration::ZERO,
        headers: vec![],
    }
}

async fn spawn(upstream_port: u16, limiter: RateLimiter, timeout_ms: u64) -> String {
    let openai = OpenAiClient::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{upstream_port}/v1"),
        api_key: Secret::new("sk-test-key"),
        model: "gpt-realtime".into(),
        voice: "marin".into(),
        timeout: Duration::from_millis(timeout_ms),
        secret_ttl_secs: 120,
    })
    .unwrap();
    let state = TokenState {
        openai,
        tokens: SessionTokens::new(&Secret::new(SECRET)),
        limiter,
        session_ttl_secs: 900,
        realtime_calls_url: format!("http://127.0.0.1:{upstream_port}/v1/realtime/calls"),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(token_svc::serve(listener, state).unwrap());
    format!("http://127.0.0.1:{port}")
}

async fn mint(base: &str) -> (u16, Value, Option<String>) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/realtime-token"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn mints_a_secret_with_the_session_fixed_server_side_and_a_valid_session_token() {
    let upstream = ScriptedHttp::start(ok_secret()).await;
    let base = spawn(upstream.port, RateLimiter::memory(10, 60), 2000).await;
    let (status, body, _) = mint(&base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_secret"], "ek_test_123");
    assert_eq!(body["expires_at"], 1999999999);
    assert!(body["realtime_calls_url"]
        .as_str()
        .unwrap()
        .ends_with("/v1/realtime/calls"));
    let tokens = SessionTokens::new(&Secret::new(SECRET));
    assert!(tokens
        .verify(
            body["session_token"].as_str().unwrap(),
            chrono::Utc::now().timestamp()
        )
        .is_ok());

    let req = &upstream.requests()[0];
    assert!(req.starts_with("POST /v1/realtime/client_secrets"), "{req}");
    assert!(req
        .to_ascii_lowercase()
        .contains("authorization: bearer sk-test-key"));
    let json: Value = serde_json::from_str(req.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["session"]["type"], "realtime");
    assert_eq!(json["session"]["model"], "gpt-realtime");
    assert_eq!(json["session"]["audio"]["output"]["voice"], "marin");
    assert_eq!(
        json["session"]["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );
    assert_eq!(json["session"]["tools"][0]["name"], "save_lead");
    assert_eq!(json["session"]["tools"][1]["name"], "trigger_call");
    assert_eq!(json["expires_after"]["anchor"], "created_at");
    assert!(json["session"]["instructions"]
        .as_str()
        .unwrap()
        .contains("Callway"));
    assert!(
        !body.to_string().contains("sk-test-key"),
        "the API key must never reach the browser"
    );
}

#[tokio::test]
async fn openai_failures_become_clear_502_and_503_answers() {
    for (status, delay_ms, want_status, want_code) in [
        (401, 0, 502, "upstream_auth"),
        (429, 0, 503, "upstream_busy"),
        (500, 0, 502, "upstream_error"),
        (200, 3000, 503, "upstream_timeout"),
    ] {
        let upstream = ScriptedHttp::start(Script {
            status,
            body: r#"{"error":{"message":"x","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#.into(),
            delay: Duration::from_millis(delay_ms),
            headers: vec![],
        })
        .await;
        let base = spawn(upstream.port, RateLimiter::memory(10, 60), 300).await;
        let (got, body, _) = mint(&base).await;
        assert_eq!(got, want_status, "{status}: {body}");
        assert_eq!(body["error"]["code"], want_code);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("service vocal"));
        assert!(body.get("client_secret").is_none());
    }
}

#[tokio::test]
async fn the_rate_limit_holds_per_client_in_memory() {
    let upstream = ScriptedHttp::start(ok_secret()).await;
    let base = spawn(upstream.port, RateLimiter::memory(3, 60), 2000).await;
    for _ in 0..3 {
        assert_eq!(mint(&base).await.0, 200);
    }
    let (status, body, retry) = mint(&base).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(retry.unwrap().parse::<u64>().unwrap() <= 60);
    assert_eq!(
        upstream.requests().len(),
        3,
        "a refused request must not cost an OpenAI session"
    );
}

#[tokio::test]
async fn the_rate_limit_is_shared_by_instances_through_redis_and_fails_closed() {
    let redis = callway_testkit::redis::TempRedis::start().await.unwrap();
    let upstream = ScriptedHttp::start(ok_secret()).await;
    let conn = callway_core::redis_conn::connect(&redis.url())
        .await
        .unwrap();
    let a = spawn(
        upstream.port,
        RateLimiter::Redis {
            limit: 4,
            window_secs: 3600,
            conn: conn.clone(),
        },
        2000,
    )
    .await;
    let b = spawn(
        upstream.port,
        RateLimiter::Redis {
            limit: 4,
            window_secs: 3600,
            conn,
        },
        2000,
    )
    .await;
    let mut statuses = vec![];
    for i in 0..6 {
        statuses.push(mint(if i % 2 == 0 { &a } else { &b }).await.0);
    }
    // One-hour window: both instances count against the same key.
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429]);
    drop(redis);
    let (status, body, _) = mint(&a).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
}
