//! The Supabase lead store over HTTP, against a PostgREST-compatible server (postrust) on a real
//! PostgreSQL with our migrations, plus the failure modes a real project shows: bad key, stall, 5xx.

use callway_core::lead::{CallbackStatus, Consent, NewLead, PersonName};
use callway_core::lead_store::{LeadStore, StoreError, SupabaseConfig, SupabaseLeadStore};
use callway_core::phone::{PhoneE164, PhonePolicy};
use callway_core::secret::Secret;
use callway_testkit::pg::TempPostgres;
use callway_testkit::postrust::{Postrust, JWT_SECRET};
use callway_testkit::scripted_http::{Script, ScriptedHttp};
use std::time::Duration;

fn lead(phone: &str) -> NewLead {
    NewLead {
        first_name: PersonName::parse("Marie").unwrap(),
        last_name: PersonName::parse("Curie").unwrap(),
        phone: PhoneE164::parse(phone, &PhonePolicy::default()).unwrap(),
        consent: Consent {
            at: chrono::Utc::now(),
            wording_version: "2026-11-v1".into(),
        },
        source: "voice_agent".into(),
        web_session_id: "ws_abc".into(),
    }
}

fn store(url: &str, key: &str, timeout_ms: u64) -> LeadStore {
    LeadStore::Supabase(
        SupabaseLeadStore::new(SupabaseConfig {
            rest_url: url.to_owned(),
            service_key: Secret::new(key),
            timeout: Duration::from_millis(timeout_ms),
        })
        .expect("valid config"),
    )
}

#[tokio::test]
async fn insert_read_update_erase_and_constraint_errors_through_postgrest() {
    let pg = TempPostgres::start().await.expect("postgres");
    let api = Postrust::start(&pg).await.expect("postrust");
    let s = store(&api.rest_url(), &api.service_role_key(), 3000);

    let saved = s.insert(&lead("06 12 34 56 78")).await.expect("insert");
    assert_eq!(saved.phone.as_e164(), "+33612345678");
    assert_eq!(saved.phone.raw(), "06 12 34 56 78");
    assert_eq!(saved.callback_status, CallbackStatus::Pending);
    assert_eq!(saved.consent.wording_version, "2026-11-v1");
    let got = s.get(saved.id).await.expect("get").expect("row exists");
    assert_eq!(got.first_name.as_str(), "Marie");
    assert_eq!(s.count().await.unwrap(), 1);

    assert!(s
        .update_callback(
            saved.id,
            CallbackStatus::Dialing,
            Some("Veut un agent pour son cabinet")
        )
        .await
        .unwrap());
    let got = s.get(saved.id).await.unwrap().unwrap();
    assert_eq!(
        got.summary.as_deref(),
        Some("Veut un agent pour son cabinet")
    );

    // A CHECK violation comes back as a rejection carrying the SQLSTATE, and changes nothing.
    let err = s
        .update_callback(saved.id, CallbackStatus::Dialing, Some(&"x".repeat(4001)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected { status: 400, code } if code == "23514"),
        "{err:?}"
    );
    assert!(
        !err.to_string().contains("Marie"),
        "row details must not leak: {err}"
    );
    assert_eq!(
        s.get(saved.id).await.unwrap().unwrap().summary.as_deref(),
        Some("Veut un agent pour son cabinet")
    );

    assert_eq!(s.delete_by_phone(&saved.phone).await.unwrap(), 1);
    assert_eq!(s.count().await.unwrap(), 0);
    s.insert(&lead("07 81 23 45 67")).await.unwrap();
    assert_eq!(
        s.purge_before(chrono::Utc::now() + chrono::Duration::seconds(5))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_wrong_key_is_a_401_and_inserts_nothing() {
    let pg = TempPostgres::start().await.expect("postgres");
    let api = Postrust::start(&pg).await.expect("postrust");
    let forged =
        callway_testkit::jwt::role_key("not-the-project-secret-but-32-chars-long", "service_role");
    let bad = store(&api.rest_url(), &forged, 3000);
    let err = bad.insert(&lead("06 12 34 56 78")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unauthorized(401)), "{err:?}");
    let anon = store(
        &api.rest_url(),
        &callway_testkit::jwt::role_key(JWT_SECRET, "anon"),
        3000,
    );
    assert!(matches!(
        anon.insert(&lead("06 12 34 56 78")).await.unwrap_err(),
        StoreError::Unauthorized(_)
    ));
    let good = store(&api.rest_url(), &api.service_role_key(), 3000);
    assert_eq!(good.count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_stalled_server_hits_our_timeout() {
    let stall = ScriptedHttp::start(Script {
        status: 201,
        body: "[]".into(),
        delay: Duration::from_secs(30),
        headers: vec![],
    })
    .await;
    let s = store(
        &format!("http://127.0.0.1:{}/rest/v1", stall.port),
        "sb_secret_test_key_123",
        300,
    );
    let err = tokio::time::timeout(Duration::from_secs(5), s.insert(&lead("06 12 34 56 78")))
        .await
        .expect("the store gives up on its own")
        .unwrap_err();
    assert!(matches!(err, StoreError::Timeout), "{err:?}");
}

#[tokio::test]
async fn a_5xx_is_unavailable_and_its_body_is_not_trusted() {
    let down = ScriptedHttp::start(Script {
        status: 503,
        body: r#"{"code":"PGRST000","message":"Could not connect","details":"+33612345678","hint":null}"#.into(),
        delay: Duration::ZERO,
        headers: vec![],
    })
    .await;
    let s = store(
        &format!("http://127.0.0.1:{}/rest/v1", down.port),
        "sb_secret_test_key_123",
        1000,
    );
    let err = s.insert(&lead("06 12 34 56 78")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(503)), "{err:?}");
    assert!(!err.to_string().contains("612345678"));
}

#[tokio::test]
async fn secret_keys_go_in_apikey_only_and_legacy_jwts_in_both_headers() {
    let srv = ScriptedHttp::start(Script {
        status: 200,
        body: "[]".into(),
        delay: Duration::ZERO,
        headers: vec![("content-range".into(), "*/0".into())],
    })
    .await;
    let url = format!("http://127.0.0.1:{}/rest/v1", srv.port);
    store(&url, "sb_secret_fake", 1000).count().await.unwrap();
    let jwt = callway_testkit::jwt::role_key(JWT_SECRET, "service_role");
    store(&url, &jwt, 1000).count().await.unwrap();
    let reqs: Vec<String> = srv
        .requests()
        .into_iter()
        .map(|r| r.to_ascii_lowercase())
        .collect();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[0].contains("apikey: sb_secret_fake") && !reqs[0].contains("authorization:"),
        "{}",
        reqs[0]
    );
    assert!(
        reqs[1].contains(&format!("apikey: {}", jwt.to_ascii_lowercase()))
            && reqs[1].contains("authorization: bearer "),
        "{}",
        reqs[1]
    );
    assert!(reqs[0].starts_with("get /rest/v1/leads?"), "{}", reqs[0]);
}

/// A save retried after a timeout whose insert landed: one lead, its id and callback state
/// kept, the retry's names applied. The callback claim is taken once, durably; the cooldown
/// reads it back by number.
#[tokio::test]
async fn saves_are_idempotent_and_the_callback_claim_is_taken_once_through_postgrest() {
    let pg = TempPostgres::start().await.expect("postgres");
    let api = Postrust::start(&pg).await.expect("postrust");
    let s = store(&api.rest_url(), &api.service_role_key(), 3000);
    let key = callway_core::call_context::key_hash("save:ws_abc:+33612345678");

    let first = s
        .save_once(&lead("06 12 34 56 78"), &key)
        .await
        .expect("save");
    assert!(s.claim_callback(first.id).await.unwrap(), "first claim");
    assert!(!s.claim_callback(first.id).await.unwrap(), "claimed once");
    let mut corrected = lead("06 12 34 56 78");
    corrected.last_name = PersonName::parse("Sklodowska").unwrap();
    let again = s.save_once(&corrected, &key).await.expect("repeat");
    assert_eq!(again.id, first.id, "the same lead");
    assert_eq!(again.last_name.as_str(), "Sklodowska");
    assert_eq!(
        again.callback_status,
        CallbackStatus::Dialing,
        "callback state kept"
    );
    assert_eq!(s.count().await.unwrap(), 1);
    // Another number in the same session is another lead.
    let other_key = callway_core::call_context::key_hash("save:ws_abc:+33781234567");
    let other = s
        .save_once(&lead("07 81 23 45 67"), &other_key)
        .await
        .unwrap();
    assert_ne!(other.id, first.id);

    let phone = PhoneE164::parse("06 12 34 56 78", &PhonePolicy::default()).unwrap();
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    assert!(s.callback_since(&phone, hour_ago).await.unwrap());
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    assert!(!s.callback_since(&phone, later).await.unwrap());
    let other_phone = PhoneE164::parse("07 81 23 45 67", &PhonePolicy::default()).unwrap();
    assert!(!s.callback_since(&other_phone, hour_ago).await.unwrap());

    // Not placed: released, and claimable again.
    s.release_callback(first.id).await.unwrap();
    let got = s.get(first.id).await.unwrap().unwrap();
    assert_eq!(got.callback_status, CallbackStatus::Failed);
    assert!(got.callback_requested_at.is_none());
    assert!(s.claim_callback(first.id).await.unwrap());
}

/// Call records through PostgREST: written at the dial (a repeat keeps the first), updated by
/// events, read back in order with their transcript and qualification, and erased with their
/// lead (`delete-lead`) and by the retention purge.
#[tokio::test]
async fn call_records_are_kept_updated_and_erased_with_their_lead() {
    use callway_core::call_record::{CallRecord, CallUpdate, Qualification};
    use callway_core::transcript::{Speaker, Turn};
    let pg = TempPostgres::start().await.expect("postgres");
    let api = Postrust::start(&pg).await.expect("postrust");
    let s = store(&api.rest_url(), &api.service_role_key(), 3000);
    let saved = s.insert(&lead("06 12 34 56 78")).await.unwrap();
    let first = CallRecord::dialled("cx_first_attempt", saved.id, 1, "2026-11-v3");
    s.record_call(&first).await.unwrap();
    s.record_call(&first)
        .await
        .expect("a repeat is not an error");
    let q = Qualification::parse(
        r#"{"activity":"Cabinet dentaire","call_volume":"40 par jour","main_need":"Filtrer les appels","interest_level":"high","next_step":"meeting"}"#,
        chrono::Utc::now(),
    )
    .unwrap();
    let transcript = vec![
        Turn::new(Speaker::Agent, "Bonjour Marie").unwrap(),
        Turn::new(Speaker::Visitor, "Oui, c'est moi").unwrap(),
    ];
    assert!(s
        .update_call(
            "cx_first_attempt",
            CallUpdate {
                answered_at: Some(chrono::Utc::now()),
                ended_at: Some(chrono::Utc::now()),
                outcome: Some(CallbackStatus::Completed),
                hangup_cause: Some("normal_clearing".into()),
                duration_secs: Some(42),
                amd_result: Some("human".into()),
                transcript: Some(transcript.clone()),
                qualification: Some(q.clone()),
                ..Default::default()
            }
        )
        .await
        .unwrap());
    assert!(!s
        .update_call("cx_unknown", CallUpdate::default())
        .await
        .unwrap());
    let records = s.call_records(saved.id).await.unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.outcome, Some(CallbackStatus::Completed));
    assert_eq!(r.transcript, transcript);
    assert_eq!(r.qualification.as_ref(), Some(&q));
    assert_eq!(r.duration_secs, Some(42));

    // Erasure and purge take the call records with the lead.
    s.delete_by_phone(&saved.phone).await.unwrap();
    assert!(s.call_records(saved.id).await.unwrap().is_empty());
    let other = s.insert(&lead("07 81 23 45 67")).await.unwrap();
    s.record_call(&CallRecord::dialled("cx_second_lead", other.id, 1, "v3"))
        .await
        .unwrap();
    s.purge_before(chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(s.call_records(other.id).await.unwrap().is_empty());
}
