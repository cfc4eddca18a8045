//! tools-svc spawned on port 0, called over HTTP like the browser does.

use callway_core::lead_store::{EmbeddedLeadStore, LeadStore};
use callway_core::phone::PhonePolicy;
use callway_core::secret::Secret;
use callway_core::session_token::{SessionTokens, WebSessionId};
use serde_json::{json, Value};
use tools_svc::ToolsState;

const SECRET: &str = "tools-test-session-secret-0123456789abcdef";

struct App {
    base: String,
    leads: LeadStore,
    tokens: SessionTokens,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn spawn() -> App {
    callway_testkit::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let leads = LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap());
    let tokens = SessionTokens::new(&Secret::new(SECRET));
    let state = ToolsState {
        leads: leads.clone(),
        tokens: tokens.clone(),
        policy: PhonePolicy::default(),
        consent_version: "2026-11-v1".into(),
        calls: None,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tools_svc::serve(listener, state).unwrap();
    tokio::spawn(server);
    App {
        base: format!("http://127.0.0.1:{port}"),
        leads,
        tokens,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl App {
    fn token(&self) -> String {
        self.tokens.mint(
            &WebSessionId::generate(),
            chrono::Utc::now().timestamp() + 600,
        )
    }

    async fn save(&self, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/api/tools/save_lead", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn count(&self) -> u64 {
        self.leads.count().await.unwrap()
    }
}

fn lead(phone: &str) -> String {
    json!({"first_name": "Marie", "last_name": "Curie", "phone": phone, "consent": true})
        .to_string()
}

#[tokio::test]
async fn a_valid_lead_is_normalised_stored_and_returned() {
    let app = spawn().await;
    let (status, body) = app.save(Some(&app.token()), lead("06 12 34 56 78")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phone_e164"], "+33612345678");
    let id = callway_core::lead::LeadId::parse(body["lead_id"].as_str().unwrap()).unwrap();
    let stored = app.leads.get(id).await.unwrap().unwrap();
    assert_eq!(stored.phone.raw(), "06 12 34 56 78");
    assert_eq!(stored.consent.wording_version, "2026-11-v1");
    assert!(stored.web_session_id.starts_with("ws_"));
    assert!((chrono::Utc::now() - stored.consent.at).num_seconds() < 10);
}

#[tokio::test]
async fn every_refusal_is_a_4xx_with_a_code_and_a_french_sentence_and_stores_nothing() {
    let app = spawn().await;
    let t = app.token();
    let cases: Vec<(String, u16, &str)> = vec![
        (json!({"first_name":"Marie","last_name":"Curie","phone":"06 12 34 56 78","consent":false}).to_string(), 422, "consent_required"),
        (json!({"first_name":"R2D2","last_name":"Curie","phone":"06 12 34 56 78","consent":true}).to_string(), 422, "first_name_invalid"),
        (json!({"first_name":"Marie","last_name":"  ","phone":"06 12 34 56 78","consent":true}).to_string(), 422, "last_name_invalid"),
        (lead("06 12 34 56"), 422, "phone_invalid"),
        (lead("06 12 AB 56 78"), 422, "phone_unparseable"),
        (lead("08 99 12 34 56"), 422, "phone_type_not_allowed"),
        (lead("3615"), 422, "phone_short_code"),
        (lead("+32 470 12 34 56"), 422, "phone_country_not_allowed"),
        (lead(&"0".repeat(500)), 422, "phone_too_long"),
        (lead(""), 422, "phone_missing"),
        ("{\"first_name\": \"Marie\",".to_string(), 400, "invalid_json"),
        (json!({"first_name":"Marie","last_name":"Curie","phone":"0612345678"}).to_string(), 400, "invalid_json"),
        (json!({"first_name":"Marie","last_name":"Curie","phone":"0612345678","consent":true,"role":"admin"}).to_string(), 400, "invalid_json"),
        (json!({"first_name":"Marie","last_name":"Curie","phone":"0612345678","consent":"yes"}).to_string(), 400, "invalid_json"),
        (json!({"first_name": "x".repeat(20_000),"last_name":"Curie","phone":"0612345678","consent":true}).to_string(), 413, "body_too_large"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = app.save(Some(&t), body.clone()).await;
        assert_eq!(got, status, "{code}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        let msg = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.len() > 10 && !msg.contains("error"),
            "{code}: message {msg:?}"
        );
        assert_eq!(app.count().await, 0, "{code} stored something");
    }
}

#[tokio::test]
async fn missing_expired_and_forged_session_tokens_are_refused() {
    let app = spawn().await;
    let expired = app.tokens.mint(
        &WebSessionId::generate(),
        chrono::Utc::now().timestamp() - 1,
    );
    let forged = SessionTokens::new(&Secret::new("another-secret-that-is-32-characters-long"))
        .mint(
            &WebSessionId::generate(),
            chrono::Utc::now().timestamp() + 600,
        );
    for (token, code) in [
        (None, "session_missing"),
        (Some(expired.as_str()), "session_expired"),
        (Some(forged.as_str()), "session_invalid"),
        (Some("garbage"), "session_invalid"),
    ] {
        let (status, body) = app.save(token, lead("06 12 34 56 78")).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], code);
    }
    let resp = app
        .client
        .post(format!("{}/api/tools/save_lead", app.base))
        .header("authorization", format!("Basic {}", app.token()))
        .header("content-type", "application/json")
        .body(lead("06 12 34 56 78"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(app.count().await, 0);
}

#[tokio::test]
async fn health_reports_version_and_lead_store() {
    let app = spawn().await;
    let body: Value = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["service"], "tools-svc");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["dependencies"][0]["kind"], "embedded");
}
