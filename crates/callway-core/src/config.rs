//! Layered configuration: embedded defaults, then an optional TOML file (`CALLWAY_CONFIG_FILE`,
//! default `callway.toml`), then the environment. Keys are the variable names of `.env.example`
//! (lower-cased in the file). A service asks for what it needs with [`Settings::require`], which
//! names the missing variable, so a misconfigured service refuses to start with a clear message.

use crate::phone::PhonePolicy;
use crate::secret::Secret;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "missing required setting {0}: set it in the environment or in .env (see .env.example)"
    )]
    Missing(&'static str),
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("could not load configuration: {0}")]
    Load(#[from] config::ConfigError),
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_region() -> String {
    "FR".into()
}
fn default_consent_version() -> String {
    crate::prompts::CONSENT_VERSION.into()
}
fn default_data_dir() -> String {
    ".data".into()
}
fn default_openai_base() -> String {
    "https://api.openai.com/v1".into()
}
/// `gpt-realtime` is reported to shut down on 2027-01-20; `gpt-realtime-2.1` is its replacement.
fn default_model() -> String {
    "gpt-realtime-2.1".into()
}
fn default_voice() -> String {
    "marin".into()
}
fn default_telnyx_base() -> String {
    "https://api.telnyx.com".into()
}

/// Every setting Callway reads. Field names are the environment variable names, lower-cased.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    // Network
    #[serde(default = "default_host")]
    pub callway_host: String,
    #[serde(default = "d_8080")]
    pub callway_port: u16,
    #[serde(default = "d_8081")]
    pub token_svc_port: u16,
    #[serde(default = "d_8082")]
    pub tools_svc_port: u16,
    #[serde(default = "d_8083")]
    pub webhook_svc_port: u16,
    #[serde(default = "d_8084")]
    pub media_bridge_port: u16,
    /// Concurrent calls one media bridge accepts (the next media socket gets 503).
    #[serde(default = "d_200_usize")]
    pub media_bridge_max_calls: usize,
    /// On SIGTERM, how long running calls may go on before they are cut (seconds). Keep the
    /// orchestrator's grace period above it (Kubernetes: `terminationGracePeriodSeconds` ≥
    /// preStop + this + 5 s for the hard stop).
    #[serde(default = "d_30_u64")]
    pub media_bridge_drain_secs: u64,
    /// Media sockets one peer address may have open before their request head (and upgrade)
    /// is done; more are closed at once (slowloris, bogus-upgrade floods).
    #[serde(default = "d_16_usize")]
    pub media_bridge_half_open_per_ip: usize,
    /// Same, all addresses together: what half-open sockets may take of the file descriptors.
    #[serde(default = "d_128_usize")]
    pub media_bridge_half_open_max: usize,
    /// Time a client has to send a whole request head (every service and the bridge).
    #[serde(default = "d_10000")]
    pub callway_http_header_timeout_ms: u64,
    /// Time a client has to send a whole request body once its head arrived (actix services).
    #[serde(default = "d_15000")]
    pub callway_http_body_timeout_ms: u64,
    pub callway_public_url: Option<String>,
    /// Overrides the media stream URL derived from `callway_public_url` (the sandbox points it
    /// at the in-process bridge).
    pub callway_media_stream_url: Option<String>,
    #[serde(default = "d_public")]
    pub callway_static_dir: String,

    /// Allows the embedded stand-ins (lead store, context store) when their real settings are
    /// absent. The all-in-one launcher turns it on; production services leave it off.
    #[serde(default)]
    pub callway_sandbox: bool,
    /// JSON scenario for the simulated web agent in the sandbox (default: the built-in one).
    pub callway_sandbox_scenario: Option<String>,

    // Web sessions and policy
    pub callway_session_secret: Option<Secret>,
    #[serde(default = "d_900")]
    pub callway_session_ttl_secs: u64,
    #[serde(default = "default_region")]
    pub callway_phone_default_region: String,
    #[serde(default = "default_region")]
    pub callway_phone_allowed_countries: String,
    #[serde(default = "default_consent_version")]
    pub callway_consent_version: String,
    #[serde(default = "d_30")]
    pub callway_lead_retention_days: u32,
    #[serde(default = "default_data_dir")]
    pub callway_data_dir: String,
    /// Delays before each new attempt of a missed callback (no answer, busy, voicemail), seconds.
    #[serde(default = "d_retry_delays")]
    pub callway_retry_delays_secs: String,
    /// Most attempts of one callback, the first included.
    #[serde(default = "d_3_u8")]
    pub callway_max_call_attempts: u8,
    /// When retries may ring: days and a daily window, in `CALLWAY_CALLING_TZ`.
    #[serde(default = "d_calling_hours")]
    pub callway_calling_hours: String,
    #[serde(default = "d_calling_tz")]
    pub callway_calling_tz: String,
    /// A human who takes calls the agent hands over (warm transfer); unset: no transfer.
    pub callway_transfer_number: Option<String>,
    /// When that human answers (days and window, in `CALLWAY_CALLING_TZ`).
    #[serde(default = "d_transfer_hours")]
    pub callway_transfer_hours: String,
    /// Where business webhooks go (`lead.created`, `call.ended`); unset: none are sent.
    pub callway_business_webhook_url: Option<String>,
    /// Their Standard Webhooks signing secret, `whsec_<base64>`.
    pub callway_business_webhook_secret: Option<Secret>,
    #[serde(default = "d_600")]
    pub callway_call_cooldown_secs: u64,
    /// How long a dial whose answer was lost waits for Telnyx's `call.initiated` before the lead
    /// is marked failed (it is never dialled again either way).
    #[serde(default = "d_60_u64")]
    pub callway_dial_confirm_secs: u64,
    #[serde(default = "d_200")]
    pub callway_daily_call_cap: u64,
    /// Proxies whose `X-Forwarded-For` is believed (CIDR list; empty: none, the peer is the client).
    #[serde(default)]
    pub callway_trusted_proxies: String,
    /// Longest web voice session; the agent then closes politely and the server hangs up.
    #[serde(default = "d_300")]
    pub callway_web_session_max_secs: u64,
    /// Web voice sessions open at once, site-wide; the next visitor is asked to retry shortly.
    #[serde(default = "d_20_usize")]
    pub callway_max_web_sessions: usize,
    #[serde(default = "d_6")]
    pub callway_sessions_per_hour_client: u64,
    #[serde(default = "d_15")]
    pub callway_sessions_per_hour_network: u64,
    #[serde(default = "d_3")]
    pub callway_leads_per_hour_client: u64,
    #[serde(default = "d_6")]
    pub callway_leads_per_hour_network: u64,
    #[serde(default = "d_2")]
    pub callway_callbacks_per_hour_client: u64,
    #[serde(default = "d_4")]
    pub callway_callbacks_per_hour_network: u64,
    /// Callbacks per hour for the whole site (beside the daily cap).
    #[serde(default = "d_30_u64")]
    pub callway_callbacks_per_hour: u64,
    /// What to do when premium AMD says an answering machine picked up: `message` or `hangup`.
    #[serde(default = "d_message")]
    pub callway_voicemail_action: String,

    // Supabase
    pub supabase_url: Option<String>,
    pub supabase_rest_url: Option<String>,
    pub supabase_service_key: Option<Secret>,
    #[serde(default = "d_5000")]
    pub supabase_timeout_ms: u64,

    // Redis
    pub redis_url: Option<String>,

    // OpenAI
    pub openai_api_key: Option<Secret>,
    #[serde(default = "default_openai_base")]
    pub openai_base_url: String,
    pub openai_realtime_calls_url: Option<String>,
    #[serde(default = "default_model")]
    pub openai_realtime_model: String,
    #[serde(default = "default_voice")]
    pub openai_voice: String,
    #[serde(default = "d_5000")]
    pub openai_timeout_ms: u64,

    // Telnyx
    pub telnyx_api_key: Option<Secret>,
    #[serde(default = "default_telnyx_base")]
    pub telnyx_base_url: String,
    pub telnyx_connection_id: Option<String>,
    pub telnyx_from_number: Option<String>,
    pub telnyx_public_key: Option<String>,

    // Telemetry
    pub otel_exporter_otlp_endpoint: Option<String>,
    pub rust_log: Option<String>,
}

fn d_8080() -> u16 {
    8080
}
fn d_8081() -> u16 {
    8081
}
fn d_8082() -> u16 {
    8082
}
fn d_8083() -> u16 {
    8083
}
fn d_8084() -> u16 {
    8084
}
fn d_200_usize() -> usize {
    200
}
fn d_300() -> u64 {
    300
}
fn d_20_usize() -> usize {
    20
}
fn d_2() -> u64 {
    2
}
fn d_3() -> u64 {
    3
}
fn d_4() -> u64 {
    4
}
fn d_6() -> u64 {
    6
}
fn d_15() -> u64 {
    15
}
fn d_30_u64() -> u64 {
    30
}
fn d_16_usize() -> usize {
    16
}
fn d_128_usize() -> usize {
    128
}
fn d_10000() -> u64 {
    10_000
}
fn d_15000() -> u64 {
    15_000
}
fn d_900() -> u64 {
    900
}
fn d_message() -> String {
    "message".into()
}
fn d_600() -> u64 {
    600
}
fn d_200() -> u64 {
    200
}
fn d_30() -> u32 {
    30
}
fn d_5000() -> u64 {
    5000
}
fn d_public() -> String {
    "public".into()
}

impl Settings {
    /// Loads defaults, then the optional file, then the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var("CALLWAY_CONFIG_FILE").unwrap_or_else(|_| "callway.toml".into());
        Self::from_sources(Some(&file), std::env::vars())
    }

    /// Same layering with explicit inputs, for tests.
    pub fn from_sources(
        file: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder
                .add_source(config::File::new(file, config::FileFormat::Toml).required(false));
        }
        // Empty values (`KEY=` in a .env) mean "unset", not "empty string".
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        builder = builder.add_source(config::Environment::default().source(Some(env)));
        let settings: Settings = builder.build()?.try_deserialize()?;
        Ok(settings)
    }

    /// Returns the value of an optional setting or names the missing variable.
    pub fn require<'a, T: ?Sized>(
        name: &'static str,
        value: &'a Option<impl AsRef<T> + 'a>,
    ) -> Result<&'a T, ConfigError> {
        value
            .as_ref()
            .map(AsRef::as_ref)
            .ok_or(ConfigError::Missing(name))
    }

    pub fn phone_policy(&self) -> Result<PhonePolicy, ConfigError> {
        PhonePolicy::from_codes(
            &self.callway_phone_default_region,
            &self.callway_phone_allowed_countries,
        )
        .map_err(|reason| ConfigError::Invalid {
            name: "CALLWAY_PHONE_ALLOWED_COUNTRIES",
            reason,
        })
    }

    pub fn trusted_proxies(&self) -> Result<crate::client_addr::TrustedProxies, ConfigError> {
        crate::client_addr::TrustedProxies::parse(&self.callway_trusted_proxies).map_err(|reason| {
            ConfigError::Invalid {
                name: "CALLWAY_TRUSTED_PROXIES",
                reason,
            }
        })
    }

    pub fn limits_config(&self) -> crate::limits::LimitsConfig {
        use crate::limits::{HourlyLimit, LimitsConfig};
        LimitsConfig {
            sessions: HourlyLimit {
                per_client: self.callway_sessions_per_hour_client,
                per_network: self.callway_sessions_per_hour_network,
                global: None,
            },
            leads: HourlyLimit {
                per_client: self.callway_leads_per_hour_client,
                per_network: self.callway_leads_per_hour_network,
                global: None,
            },
            callbacks: HourlyLimit {
                per_client: self.callway_callbacks_per_hour_client,
                per_network: self.callway_callbacks_per_hour_network,
                global: Some(self.callway_callbacks_per_hour),
            },
        }
    }

    /// The HMAC key for web-session tokens; at least 32 characters.
    pub fn session_secret(&self) -> Result<&Secret, ConfigError> {
        let s = self
            .callway_session_secret
            .as_ref()
            .ok_or(ConfigError::Missing("CALLWAY_SESSION_SECRET"))?;
        if s.expose().len() < 32 {
            return Err(ConfigError::Invalid {
                name: "CALLWAY_SESSION_SECRET",
                reason: "must be at least 32 characters".into(),
            });
        }
        Ok(s)
    }

    /// Where Telnyx opens the media stream: `CALLWAY_MEDIA_STREAM_URL` if set (`ws://` or
    /// `wss://`), else `wss://host/media/telnyx` derived from `CALLWAY_PUBLIC_URL`.
    pub fn media_stream_url(&self) -> Result<String, ConfigError> {
        if let Some(url) = &self.callway_media_stream_url {
            if !(url.starts_with("wss://") || url.starts_with("ws://")) || url.contains('?') {
                return Err(ConfigError::Invalid {
                    name: "CALLWAY_MEDIA_STREAM_URL",
                    reason: "must be a ws:// or wss:// URL without a query string".into(),
                });
            }
            return Ok(url.trim_end_matches('/').to_owned());
        }
        let public = self
            .callway_public_url
            .as_deref()
            .ok_or(ConfigError::Missing("CALLWAY_PUBLIC_URL"))?;
        let ws = if let Some(rest) = public.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = public.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            return Err(ConfigError::Invalid {
                name: "CALLWAY_PUBLIC_URL",
                reason: "must start with https:// or http://".into(),
            });
        };
        Ok(format!("{}/media/telnyx", ws.trim_end_matches('/')))
    }

    /// Where PostgREST lives: `SUPABASE_REST_URL`, or `SUPABASE_URL` + `/rest/v1`.
    pub fn supabase_rest_url(&self) -> Option<String> {
        self.supabase_rest_url.clone().or_else(|| {
            self.supabase_url
                .as_ref()
                .map(|u| format!("{}/rest/v1", u.trim_end_matches('/')))
        })
    }
}

fn d_retry_delays() -> String {
    "600,7200".into()
}

fn d_3_u8() -> u8 {
    3
}

fn d_calling_hours() -> String {
    "Mon-Fri 09:00-20:00".into()
}

fn d_transfer_hours() -> String {
    "Mon-Fri 09:00-18:00".into()
}

fn d_calling_tz() -> String {
    "Europe/Paris".into()
}

fn d_60_u64() -> u64 {
    60
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_media_stream_url_can_be_set_or_derived() {
        let s = Settings::from_sources(
            None,
            env(&[("CALLWAY_PUBLIC_URL", "https://callway.example/")]),
        )
        .unwrap();
        assert_eq!(
            s.media_stream_url().unwrap(),
            "wss://callway.example/media/telnyx"
        );
        let s = Settings::from_sources(
            None,
            env(&[
                ("CALLWAY_PUBLIC_URL", "https://callway.example"),
                ("CALLWAY_MEDIA_STREAM_URL", "ws://127.0.0.1:9/media/telnyx"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.media_stream_url().unwrap(),
            "ws://127.0.0.1:9/media/telnyx"
        );
        let s = Settings::from_sources(
            None,
            env(&[("CALLWAY_MEDIA_STREAM_URL", "http://127.0.0.1:9/x")]),
        )
        .unwrap();
        assert!(matches!(
            s.media_stream_url(),
            Err(ConfigError::Invalid {
                name: "CALLWAY_MEDIA_STREAM_URL",
                ..
            })
        ));
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("callway.toml");
        std::fs::write(
            &file,
            "tools_svc_port = 9000\ncallway_phone_allowed_countries = \"FR,BE\"\n",
        )
        .unwrap();
        let s = Settings::from_sources(
            file.to_str(),
            env(&[
                ("TOOLS_SVC_PORT", "9100"),
                ("OPENAI_API_KEY", "sk-test"),
                ("REDIS_URL", ""),
            ]),
        )
        .unwrap();
        assert_eq!(s.token_svc_port, 8081);
        assert_eq!(s.tools_svc_port, 9100);
        assert_eq!(s.callway_phone_allowed_countries, "FR,BE");
        assert!(s.redis_url.is_none(), "an empty variable is unset");
        assert_eq!(
            Settings::require::<Secret>("OPENAI_API_KEY", &s.openai_api_key)
                .unwrap()
                .expose(),
            "sk-test"
        );
    }

    #[test]
    fn missing_and_invalid_settings_name_the_variable() {
        let s = Settings::from_sources(None, env(&[("CALLWAY_SESSION_SECRET", "short")])).unwrap();
        let err = Settings::require::<Secret>("TELNYX_API_KEY", &s.telnyx_api_key).unwrap_err();
        assert!(err.to_string().contains("TELNYX_API_KEY"));
        assert!(s
            .session_secret()
            .unwrap_err()
            .to_string()
            .contains("CALLWAY_SESSION_SECRET"));
        let bad = Settings::from_sources(None, env(&[("CALLWAY_PHONE_ALLOWED_COUNTRIES", "XX")]))
            .unwrap();
        assert!(bad
            .phone_policy()
            .unwrap_err()
            .to_string()
            .contains("CALLWAY_PHONE_ALLOWED_COUNTRIES"));
        let port = Settings::from_sources(None, env(&[("TOOLS_SVC_PORT", "not-a-port")]));
        assert!(port.is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let s =
            Settings::from_sources(None, env(&[("OPENAI_API_KEY", "sk-abcdef-secret")])).unwrap();
        assert!(!format!("{s:?}").contains("abcdef"));
    }
}
