//! What the business gets from one whole journey, end to end: the all-in-one site on real Redis
//! and PostgreSQL + postrust, the OpenAI and Telnyx simulators, and a business endpoint that
//! refuses the first `call.ended` delivery. Checked: one call record with both sides' transcript
//! and the agent's qualification; `lead.created` and `call.ended` signed per Standard Webhooks
//! and accepted by the specification authors' own verifier (`standardwebhooks`, an independent
//! implementation); the refused delivery retried with the same `webhook-id`.

#[path = "support/web_driver.rs"]
mod web_driver;

use callway_core::Settings;
use callway_testkit::pg::TempPostgres;
use callway_testkit::postrust::Postrust;
use callway_testkit::sdp::Peer;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-business-test";

/// One request the business endpoint received.
#[derive(Clone)]
struct Received {
    at: Instant,
    headers: http::HeaderMap,
    body: String,
    status: u16,
}

/// A business endpoint: records every delivery; the first `call.ended` gets a 500.
async fn business_endpoint() -> (String, Arc<Mutex<Vec<Received>>>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/callway", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let sink = sink.clone();
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body = String::from_utf8(body.to_vec()).unwrap();
                            let mut all = sink.lock().unwrap();
                            let first_call_end = body.contains("\"call.ended\"")
                                && !all.iter().any(|r| r.body.contains("\"call.ended\""));
                            let status = if first_call_end { 500 } else { 200 };
                            all.push(Received {
                                at: Instant::now(),
                                headers,
                                body,
                                status,
                            });
                            let mut resp = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::new(),
                            ));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_call_gives_one_record_and_signed_webhooks_the_business_can_verify() {
    callway_testkit::install_crypto_provider();
    let pg = TempPostgres::start().await.expect("postgres");
    let api = Postrust::start(&pg).await.expect("postrust");
    let redis = callway_testkit::redis::TempRedis::start()
        .await
        .expect("redis");
    let (hook_url, received) = business_endpoint().await;
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [42u8; 32])
    );
    let mut cfg = sim_openai::SimConfig::new(KEY, "127.0.0.1:0".parse().unwrap());
    cfg.scenario = web_driver::web_scenario("Marie");
    let openai = sim_openai::OpenAiSim::start(cfg).await.unwrap();
    openai.set_websocket_scenario(Some(callway::sandbox_phone::scenario()));
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("OPENAI_API_KEY".to_owned(), KEY.to_owned()),
        ("OPENAI_BASE_URL".to_owned(), openai.base_url()),
        ("REDIS_URL".to_owned(), redis.url()),
        ("SUPABASE_REST_URL".to_owned(), api.rest_url()),
        ("SUPABASE_SERVICE_KEY".to_owned(), api.service_role_key()),
        ("CALLWAY_BUSINESS_WEBHOOK_URL".to_owned(), hook_url),
        ("CALLWAY_BUSINESS_WEBHOOK_SECRET".to_owned(), secret.clone()),
        (
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
        (
            "CALLWAY_CONFIG_FILE".to_owned(),
            dir.path().join("none.toml").to_string_lossy().into_owned(),
        ),
    ];
    let settings = Settings::from_sources(None, env.clone()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = callway::site::start(settings, listener)
        .await
        .expect("site");
    assert!(site.business.is_some(), "the worker runs");
    let server = site.server.handle();
    tokio::spawn(site.server);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The web conversation, the hand-off, the phone call to its end.
    let (peer, offer) = Peer::offer();
    let session: Value = http
        .post(format!("{}/api/realtime/session", site.url))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _page = peer.connect(session["sdp"].as_str().unwrap());
    let bearer = format!("Bearer {}", session["session_token"].as_str().unwrap());
    let call = web_driver::until("the web call", Duration::from_secs(5), || {
        openai.recorded().calls.first().map(|c| c.call_id.clone())
    })
    .await;
    web_driver::until("the server's sideband", Duration::from_secs(5), || {
        (!openai.recorded().sidebands_of(&call).is_empty()).then_some(())
    })
    .await;
    web_driver::visitor_says(&openai.base_url(), KEY, &call, "Oui, rappelez-moi.").await;
    let mut call_id = None;
    for _ in 0..300 {
        let status: Value = http
            .get(format!("{}/api/realtime/session", site.url))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["reason"] == "handoff" {
            call_id = status["call_id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call_id = call_id.expect("a hand-off");
    let mut ended_at = None;
    for _ in 0..300 {
        let t: Value = http
            .get(format!("{}/api/calls/{call_id}/events", site.url))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if t["ended"] == true {
            ended_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended_at = ended_at.expect("the call ends");

    // The business endpoint: lead.created once, call.ended refused once then accepted.
    let deliveries = web_driver::until("both webhooks delivered", Duration::from_secs(30), || {
        let all = received.lock().unwrap().clone();
        let accepted_end = all
            .iter()
            .any(|r| r.status == 200 && r.body.contains("\"call.ended\""));
        (accepted_end && all.iter().any(|r| r.body.contains("\"lead.created\""))).then_some(all)
    })
    .await;
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    for r in &deliveries {
        verifier
            .verify(r.body.as_bytes(), &r.headers)
            .expect("signed per Standard Webhooks");
        let mut forged = r.headers.clone();
        forged.insert("webhook-id", "msg_other".parse().unwrap());
        assert!(verifier.verify(r.body.as_bytes(), &forged).is_err());
    }
    let of = |ty: &str| -> Vec<&Received> {
        deliveries
            .iter()
            .filter(|r| r.body.contains(&format!("\"type\":\"{ty}\"")))
            .collect()
    };
    assert_eq!(of("lead.created").len(), 1, "one lead.created");
    let ends = of("call.ended");
    assert_eq!(ends.len(), 2, "refused once, retried once");
    assert_eq!(
        ends[0].headers["webhook-id"], ends[1].headers["webhook-id"],
        "a retry is the same message"
    );
    let retry_gap = ends[1].at.duration_since(ends[0].at);
    assert!(
        retry_gap >= Duration::from_secs(4),
        "backoff: {retry_gap:?}"
    );
    let body: Value = serde_json::from_str(&ends[1].body).unwrap();
    let lead: Value =
        serde_json::from_str::<Value>(&of("lead.created")[0].body).unwrap()["data"]["lead"].clone();
    assert_eq!(lead["first_name"], "Marie");
    assert_eq!(lead["phone"], "+33612345678");
    assert_eq!(body["data"]["call"]["call_ref"], call_id.as_str());
    assert_eq!(body["data"]["call"]["outcome"], "completed");
    assert_eq!(
        body["data"]["call"]["qualification"]["activity"],
        "Cabinet dentaire"
    );

    // The record in PostgreSQL: one attempt, both sides' lines, the qualification.
    let store =
        callway_core::lead_store::from_settings(&Settings::from_sources(None, env).unwrap(), false)
            .unwrap();
    let lead_id = callway_core::lead::LeadId::parse(lead["id"].as_str().unwrap()).unwrap();
    let records = store.call_records(lead_id).await.unwrap();
    assert_eq!(records.len(), 1, "one call record");
    let r = &records[0];
    assert_eq!(r.call_ref, call_id);
    assert_eq!(
        r.outcome,
        Some(callway_core::lead::CallbackStatus::Completed)
    );
    assert!(r.answered_at.is_some() && r.ended_at.is_some());
    assert_eq!(r.hangup_cause.as_deref(), Some("normal_clearing"));
    use callway_core::transcript::Speaker;
    assert!(
        r.transcript
            .iter()
            .any(|t| t.speaker == Speaker::Agent && t.text.contains("Callway")),
        "{:?}",
        r.transcript
    );
    assert!(
        r.transcript
            .iter()
            .any(|t| t.speaker == Speaker::Visitor && t.text.contains("allez-y")),
        "{:?}",
        r.transcript
    );
    let q = r.qualification.as_ref().expect("qualification");
    assert_eq!(q.activity, "Cabinet dentaire");
    assert_eq!(q.next_step, callway_core::call_record::NextStep::SendInfo);
    assert_eq!(r.consent_version, callway_core::prompts::CONSENT_VERSION);
    eprintln!(
        "business webhooks: call end → first call.ended delivery {} ms; retry after {} ms",
        ends[0].at.saturating_duration_since(ended_at).as_millis(),
        retry_gap.as_millis()
    );
    server.stop(false).await;
}
