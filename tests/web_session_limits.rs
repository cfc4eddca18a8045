//! The web session seen from outside, as an attacker's script would try it: the all-in-one site
//! with the OpenAI and Telnyx simulators and a real Redis. No tool path exists for any token the
//! page can get; hourly limits per client and per network hold under concurrency; a forged
//! `X-Forwarded-For` counts only from a configured proxy; the concurrent-session cap answers in
//! French; a retired model refuses to start.

use callway_core::Settings;
use serde_json::Value;

struct Site {
    url: String,
    sims: callway::sandbox::Simulators,
    _bridge: callway::site::Bridge,
    _sideband: callway::site::SidebandTask,
    http: reqwest::Client,
    _redis: callway_testkit::redis::TempRedis,
    _dir: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> Site {
    callway_testkit::install_crypto_provider();
    let redis = callway_testkit::redis::TempRedis::start()
        .await
        .expect("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("REDIS_URL".to_owned(), redis.url()),
        (
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
        (
            "CALLWAY_CONFIG_FILE".to_owned(),
            dir.path().join("none.toml").to_string_lossy().into_owned(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::from_sources(None, env).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = callway::site::start(settings, listener)
        .await
        .expect("site");
    tokio::spawn(site.server);
    Site {
        url: site.url,
        sims: site.sims,
        _bridge: site.bridge,
        _sideband: site.sideband,
        http: reqwest::Client::new(),
        _redis: redis,
        _dir: dir,
    }
}

impl Site {
    async fn open(&self, forwarded_for: Option<&str>) -> (u16, Value, Option<String>) {
        let mut req = self
            .http
            .post(format!("{}/api/realtime/session", self.url))
            .header("content-type", "application/sdp")
            .body(callway_testkit::sdp::browser_offer());
        if let Some(ip) = forwarded_for {
            req = req.header("x-forwarded-for", ip);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, resp.json().await.unwrap_or(Value::Null), retry)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_token_the_page_can_get_no_tool_path_stores_or_dials_anything() {
    let s = start(&[]).await;
    let (status, body, _) = s.open(None).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["sdp"].as_str().unwrap().starts_with("v=0"));
    let token = body["session_token"].as_str().unwrap();
    assert!(
        body.get("client_secret").is_none() && !body.to_string().contains("ek_"),
        "no OpenAI credential reaches the browser: {body}"
    );
    let lead =
        r#"{"first_name":"Eve","last_name":"Martin","phone":"06 12 34 56 78","consent":true}"#;
    for path in [
        "api/tools/save_lead",
        "api/tools/trigger_call",
        "api/tools/end_call",
        "api/realtime-token",
        "api/realtime/session/tools",
    ] {
        for auth in [Some(token), None] {
            let mut req = s
                .http
                .post(format!("{}/{path}", s.url))
                .header("content-type", "application/json")
                .body(lead);
            if let Some(t) = auth {
                req = req.bearer_auth(t);
            }
            let status = req.send().await.unwrap().status().as_u16();
            assert!(status == 404 || status == 405, "{path} answered {status}");
        }
    }
    let leads = callway_core::lead_store::from_settings(
        &Settings::from_sources(
            None,
            vec![(
                "CALLWAY_DATA_DIR".to_owned(),
                s._dir.path().to_string_lossy().into_owned(),
            )],
        )
        .unwrap(),
        true,
    )
    .unwrap();
    assert_eq!(leads.count().await.unwrap(), 0, "nothing stored");
    let telnyx = s.sims.telnyx.as_ref().unwrap().recorded();
    assert!(telnyx.dials.is_empty(), "nothing dialled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_sessions_from_one_network_hit_the_network_limit() {
    // Behind a trusted proxy (loopback here), each request says it comes from another address of
    // the same /24.
    let s = start(&[("CALLWAY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    // Every request is in flight before any answer is awaited.
    let all = futures_util::future::join_all((1..=20).map(|i| {
        let s = &s;
        async move { s.open(Some(&format!("203.0.113.{i}"))).await }
    }))
    .await;
    let created = all.iter().filter(|(st, _, _)| *st == 201).count();
    let refused: Vec<_> = all.iter().filter(|(st, _, _)| *st == 429).collect();
    assert_eq!(created, 15, "CALLWAY_SESSIONS_PER_HOUR_NETWORK = 15");
    assert_eq!(refused.len(), 5);
    for (_, body, retry) in refused {
        assert_eq!(body["error"]["code"], "network_rate_limited");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("réseau"));
        assert!(retry.as_deref().unwrap().parse::<u64>().unwrap() <= 3600);
    }
    // Another network is untouched.
    assert_eq!(s.open(Some("198.51.100.1")).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let s = start(&[]).await;
    let mut statuses = Vec::new();
    for i in 1..=7 {
        let (st, body, _) = s.open(Some(&format!("198.51.{i}.{i}"))).await;
        statuses.push((st, body["error"]["code"].as_str().map(str::to_owned)));
    }
    assert_eq!(
        statuses.iter().filter(|(st, _)| *st == 201).count(),
        6,
        "one client (the real peer), whatever the header says: {statuses:?}"
    );
    assert_eq!(statuses[6], (429, Some("rate_limited".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrent_session_cap_answers_in_french() {
    let s = start(&[
        ("CALLWAY_MAX_WEB_SESSIONS", "2"),
        ("CALLWAY_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    assert_eq!(s.open(Some("192.0.2.1")).await.0, 201);
    assert_eq!(s.open(Some("198.51.100.2")).await.0, 201);
    let (st, body, retry) = s.open(Some("203.0.113.3")).await;
    assert_eq!(st, 503);
    assert_eq!(body["error"]["code"], "demo_busy");
    assert_eq!(
        body["error"]["message"],
        "La démo est très demandée, réessayez dans un instant."
    );
    assert!(retry.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_is_not_an_sdp_offer_is_refused_and_costs_nothing() {
    let s = start(&[]).await;
    for (ctype, body, code) in [
        (
            "application/json",
            "{}".to_owned(),
            "unsupported_media_type",
        ),
        ("application/sdp", "hello".to_owned(), "invalid_offer"),
        (
            "application/sdp",
            format!("v=0\r\nm=audio 9\r\n{}", "a".repeat(17_000)),
            "body_too_large",
        ),
    ] {
        let resp = s
            .http
            .post(format!("{}/api/realtime/session", s.url))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["error"]["code"], code);
    }
    // None of them counted against the client.
    for _ in 0..6 {
        assert_eq!(s.open(None).await.0, 201);
    }
}
