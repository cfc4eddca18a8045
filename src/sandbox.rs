//! The keyless sandbox: when a service's keys are absent, its protocol simulator runs in this
//! process and the settings point at it, so the very same handlers serve the whole journey.
//! With keys set, nothing here runs and the real services are used.

use callway_core::call_context::random_id;
use callway_core::secret::Secret;
use callway_core::Settings;

/// Simulators kept alive for the life of the site.
#[derive(Default)]
pub struct Simulators {
    pub openai: Option<sim_openai::OpenAiSim>,
    pub telnyx: Option<sim_telnyx::TelnyxSim>,
}

impl Simulators {
    pub fn describe(&self) -> String {
        let mut parts = vec![];
        if self.openai.is_some() {
            parts.push("OpenAI simulated");
        }
        if self.telnyx.is_some() {
            parts.push("Telnyx simulated");
        }
        if parts.is_empty() {
            "live services".into()
        } else {
            format!("sandbox: {}", parts.join(", "))
        }
    }
}

/// The number the sandbox calls from (owned by the simulated account).
const SANDBOX_FROM: &str = "+33100000001";

/// Starts what is missing and rewrites `settings` to use it. `site_url` is where this process
/// serves (the simulated Telnyx posts its webhooks there), `bridge_url` (`ws://HOST:PORT`) where
/// its media bridge listens (the simulated Telnyx opens the call's media stream there).
pub async fn start_missing(
    settings: &mut Settings,
    site_url: &str,
    bridge_url: &str,
) -> anyhow::Result<Simulators> {
    let mut sims = Simulators::default();
    let loopback = "127.0.0.1:0".parse()?;
    if settings.openai_api_key.is_none() {
        let key = random_id("sk-sandbox-");
        let mut cfg = sim_openai::SimConfig::new(key.clone(), loopback);
        cfg.scenario = match &settings.callway_sandbox_scenario {
            Some(path) => sim_openai::Scenario::from_json(&std::fs::read_to_string(path)?)
                .map_err(|e| anyhow::anyhow!("CALLWAY_SANDBOX_SCENARIO {path}: {e}"))?,
            None => sim_openai::Scenario::default_sandbox(),
        };
        let sim = sim_openai::OpenAiSim::start(cfg).await?;
        // The web agent talks over WebRTC, the phone agent over the bridge's WebSocket.
        sim.set_websocket_scenario(Some(crate::sandbox_phone::scenario()));
        settings.openai_api_key = Some(Secret::new(key));
        settings.openai_base_url = sim.base_url();
        settings.openai_realtime_calls_url = Some(sim.realtime_calls_url());
        sims.openai = Some(sim);
    }
    if settings.telnyx_api_key.is_none() {
        let key = random_id("KEYsandbox");
        let connection = "sandbox-connection".to_owned();
        let cfg = sim_telnyx::SimConfig::new(
            key.clone(),
            connection.clone(),
            vec![SANDBOX_FROM.to_owned()],
            format!("{site_url}/api/telnyx/webhooks"),
        );
        let sim = sim_telnyx::TelnyxSim::start(cfg).await?;
        sim.script_default_callee(crate::sandbox_phone::callee())?;
        if settings.callway_media_stream_url.is_none() {
            settings.callway_media_stream_url = Some(format!("{bridge_url}/media/telnyx"));
        }
        settings.telnyx_api_key = Some(Secret::new(key));
        settings.telnyx_base_url = sim.base_url();
        settings.telnyx_connection_id = Some(connection);
        settings.telnyx_from_number = Some(SANDBOX_FROM.to_owned());
        settings.telnyx_public_key = Some(sim.public_key_base64());
        if settings.callway_public_url.is_none() {
            settings.callway_public_url = Some(site_url.to_owned());
        }
        sims.telnyx = Some(sim);
    }
    Ok(sims)
}
