//! Warm transfer, end to end on the all-in-one site with the OpenAI and Telnyx simulators: the
//! callee asks for a human; the agent says so and calls `transfer_to_human`; the human is dialled,
//! hears a short summary, and is bridged with the callee (the agent leaves). When the human is
//! busy, the agent is told and offers a callback tomorrow at 10, recorded in the qualification;
//! a callee who asks to be called tomorrow at 10 gets that slot recorded.

#[path = "support/web_driver.rs"]
mod web_driver;

use callway::sandbox_phone::{self, ASKS_FOR_A_HUMAN};
use callway_core::Settings;
use callway_testkit::sdp::Peer;
use serde_json::Value;
use sim_telnyx::Callee;
use std::time::Duration;

const KEY: &str = "sk-transfer-test";
const CALLEE: &str = "+33612345678";
const HUMAN: &str = "+33188888888";

fn tomorrow_at_ten() -> String {
    let d = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    format!("{}T10:00:00+01:00", d.format("%Y-%m-%d"))
}

struct Journey {
    site_url: String,
    sims: callway::sandbox::Simulators,
    http: reqwest::Client,
    _openai: sim_openai::OpenAiSim,
    _page: std::sync::Arc<std::sync::Mutex<callway_testkit::sdp::PeerState>>,
    _bridge: callway::site::Bridge,
    _sideband: callway::site::SidebandTask,
    _dir: tempfile::TempDir,
}

/// The site, a web conversation up to the hand-off, the human scripted as `human`.
async fn journey(human: Callee) -> (Journey, String) {
    journey_with(
        human,
        sandbox_phone::transfer_scenario(&tomorrow_at_ten()),
        ASKS_FOR_A_HUMAN,
    )
    .await
}

/// Same, with the phone agent's scenario and what the callee says.
async fn journey_with(
    human: Callee,
    phone_agent: sim_openai::Scenario,
    callee_says: &str,
) -> (Journey, String) {
    callway_testkit::install_crypto_provider();
    let mut cfg = sim_openai::SimConfig::new(KEY, "127.0.0.1:0".parse().unwrap());
    cfg.scenario = web_driver::web_scenario("Marie");
    let openai = sim_openai::OpenAiSim::start(cfg).await.unwrap();
    openai.set_websocket_scenario(Some(phone_agent));
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("OPENAI_API_KEY".to_owned(), KEY.to_owned()),
        ("OPENAI_BASE_URL".to_owned(), openai.base_url()),
        ("CALLWAY_TRANSFER_NUMBER".to_owned(), HUMAN.to_owned()),
        (
            "CALLWAY_TRANSFER_HOURS".to_owned(),
            "Mon-Sun 00:00-24:00".to_owned(),
        ),
        (
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
        (
            "CALLWAY_CONFIG_FILE".to_owned(),
            dir.path().join("none.toml").to_string_lossy().into_owned(),
        ),
    ];
    let settings = Settings::from_sources(None, env).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = callway::site::start(settings, listener)
        .await
        .expect("site");
    let telnyx = site.sims.telnyx.as_ref().expect("the Telnyx simulator");
    telnyx
        .script_callee(CALLEE, sandbox_phone::callee_saying(callee_says))
        .unwrap();
    telnyx.script_callee(HUMAN, human).unwrap();
    tokio::spawn(site.server);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
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
    let page = peer.connect(session["sdp"].as_str().unwrap());
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
    let j = Journey {
        site_url: site.url,
        sims: site.sims,
        http,
        _openai: openai,
        _page: page,
        _bridge: site.bridge,
        _sideband: site.sideband,
        _dir: dir,
    };
    (j, bearer)
}

fn site_leads(dir: &tempfile::TempDir) -> callway_core::lead_store::LeadStore {
    // The launcher's embedded store, read through the same journal once the call is over.
    let s = Settings::from_sources(
        None,
        vec![(
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        )],
    )
    .unwrap();
    callway_core::lead_store::from_settings(&s, true).unwrap()
}

impl Journey {
    /// Waits for the phone leg to end; returns the call ref.
    async fn phone_leg_ended(&self, bearer: &str) -> String {
        let mut call_id = None;
        for _ in 0..600 {
            let status: Value = self
                .http
                .get(format!("{}/api/realtime/session", self.site_url))
                .header("authorization", bearer)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(id) = status["call_id"].as_str() {
                call_id = Some(id.to_owned());
                let t: Value = self
                    .http
                    .get(format!("{}/api/calls/{id}/events", self.site_url))
                    .header("authorization", bearer)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if t["ended"] == true {
                    return id.to_owned();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the phone leg never ended (call {call_id:?})");
    }

    async fn lead(&self) -> callway_core::lead::Lead {
        let s = site_leads(&self._dir);
        let phone = callway_core::phone::PhoneE164::from_stored(CALLEE, CALLEE).unwrap();
        s.latest_by_phone(&phone, chrono::Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap()
            .expect("the lead")
    }
}

fn speech(text: &str) -> Vec<u8> {
    let mut samples = vec![0i16; 4000];
    samples.extend(sim_openai::voice::synth_speech(
        text,
        callway_audio::PCMU_RATE_HZ,
        80,
    ));
    callway_audio::wav::to_bytes(&callway_audio::wav::Wav {
        sample_rate: callway_audio::PCMU_RATE_HZ,
        samples,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_asks_for_a_human_who_hears_a_summary_and_takes_the_call() {
    let human = Callee::Human {
        speech_wav: speech("Bonjour, ici un conseiller de Callway."),
        hang_up_after: Some(Duration::from_secs(4)),
    };
    let (j, bearer) = journey(human).await;
    j.phone_leg_ended(&bearer).await;
    let telnyx = j.sims.telnyx.as_ref().unwrap();
    // The human's leg ends the bridged call: wait for the bridge to be over.
    let rec = web_driver::until("the bridge", Duration::from_secs(30), || {
        let r = telnyx.recorded();
        r.bridges
            .first()
            .is_some_and(|b| b.outcome == sim_telnyx::BridgeOutcome::Ended)
            .then_some(r)
    })
    .await;
    let dials: Vec<&Value> = rec.dials.iter().filter_map(|d| d.body.as_ref()).collect();
    assert_eq!(dials.len(), 2, "the callee, then the human");
    assert_eq!(dials[1]["to"], HUMAN);
    assert!(
        dials[1].get("stream_url").is_none(),
        "no agent on the human's leg"
    );
    let human_id = rec.dials[1].call_control_id.clone().unwrap();
    let callee_id = rec.dials[0].call_control_id.clone().unwrap();
    let speak = rec
        .commands
        .iter()
        .find(|c| c.command == "speak" && c.call_control_id == human_id)
        .expect("a summary for the human");
    let said = speak.body.as_ref().unwrap()["payload"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(said.contains("Marie"), "{said}");
    assert!(
        !said.contains("612345678") && !said.contains("06 12"),
        "{said}"
    );
    let stop = rec
        .commands
        .iter()
        .position(|c| c.command == "streaming_stop" && c.call_control_id == callee_id)
        .expect("the agent leaves the callee's call");
    let bridge = rec
        .commands
        .iter()
        .position(|c| c.command == "bridge")
        .expect("bridged");
    assert!(stop < bridge, "the agent left before the two were joined");
    let b = &rec.bridges[0];
    assert!(b.leg_of(&callee_id).is_some() && b.leg_of(&human_id).is_some());
    assert!(
        b.leg_of(&callee_id).unwrap().heard_voiced_frames > 10,
        "the callee heard the human"
    );
    let lead = j.lead().await;
    assert_eq!(
        lead.callback_status,
        callway_core::lead::CallbackStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_human_returns_the_call_to_the_agent_which_offers_a_callback_slot() {
    let (j, bearer) = journey(Callee::Busy).await;
    let call_ref = j.phone_leg_ended(&bearer).await;
    let telnyx = j.sims.telnyx.as_ref().unwrap();
    let rec = telnyx.recorded();
    assert_eq!(rec.dials.len(), 2, "the human was dialled");
    assert!(rec.bridges.is_empty(), "nobody to bridge to");
    let lead = j.lead().await;
    assert_eq!(
        lead.callback_status,
        callway_core::lead::CallbackStatus::Completed
    );
    let records = site_leads(&j._dir).call_records(lead.id).await.unwrap();
    let record = records
        .iter()
        .find(|r| r.call_ref == call_ref)
        .expect("the call record");
    let q = record
        .qualification
        .as_ref()
        .expect("the agent recorded the slot");
    assert_eq!(q.next_step, callway_core::call_record::NextStep::Callback);
    let slot = q.preferred_slot.expect("a slot");
    assert_eq!(
        slot,
        chrono::DateTime::parse_from_rfc3339(&tomorrow_at_ten()).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_who_asks_to_be_called_tomorrow_at_ten_gets_that_slot_recorded() {
    let (j, bearer) = journey_with(
        Callee::NoAnswer,
        sandbox_phone::callback_tomorrow_scenario(&tomorrow_at_ten()),
        sandbox_phone::TOMORROW_AT_TEN,
    )
    .await;
    let call_ref = j.phone_leg_ended(&bearer).await;
    let lead = j.lead().await;
    let records = site_leads(&j._dir).call_records(lead.id).await.unwrap();
    let q = records
        .iter()
        .find(|r| r.call_ref == call_ref)
        .and_then(|r| r.qualification.clone())
        .expect("the qualification");
    assert_eq!(q.next_step, callway_core::call_record::NextStep::Callback);
    assert_eq!(
        q.preferred_slot.unwrap(),
        chrono::DateTime::parse_from_rfc3339(&tomorrow_at_ten()).unwrap()
    );
    assert_eq!(
        j.sims.telnyx.as_ref().unwrap().recorded().dials.len(),
        1,
        "no transfer"
    );
}
