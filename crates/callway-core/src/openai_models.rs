//! Start-up check of the configured Realtime model against OpenAI's model endpoint
//! (`GET /v1/models/{model}`): a model past its `shutdown_date` refuses to start, one retiring in
//! less than 30 days warns. OpenAI's `Model` schema (openai/openai-openapi) has `shutdown_date`:
//! a date (`"2027-01-20"`) or `null` when no retirement is announced. A Unix timestamp is read too,
//! in case the field ever carries one.

use crate::secret::Secret;
use std::time::Duration;

/// Warn this long before a model's retirement.
pub const WARN_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    /// In service, no retirement announced or one more than [`WARN_BEFORE`] away.
    Current,
    /// Retires at this unix time, less than [`WARN_BEFORE`] from now.
    RetiringSoon { shutdown_unix: i64 },
    /// The check could not be made (network, 5xx): start, and say so.
    Unknown(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("the Realtime model {model} was retired on {date} (OpenAI shutdown_date): set OPENAI_REALTIME_MODEL to a current model such as gpt-realtime-2.1")]
    Retired { model: String, date: String },
    #[error(
        "OpenAI does not know the Realtime model {model} (HTTP 404): check OPENAI_REALTIME_MODEL"
    )]
    Unknown { model: String },
    #[error(
        "OpenAI refused our API key while checking the model (HTTP {0}): check OPENAI_API_KEY"
    )]
    Auth(u16),
}

fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// Asks OpenAI about `model` and decides. `now_unix` is an input so the decision is testable.
pub async fn check(
    base_url: &str,
    api_key: &Secret,
    model: &str,
    timeout: Duration,
    now_unix: i64,
) -> Result<ModelStatus, ModelError> {
    crate::install_crypto_provider();
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => return Ok(ModelStatus::Unknown(e.to_string())),
    };
    let url = format!(
        "{}/models/{}",
        base_url.trim_end_matches('/'),
        model.replace('/', "%2F")
    );
    let resp = match http.get(url).bearer_auth(api_key.expose()).send().await {
        Ok(r) => r,
        Err(e) => return Ok(ModelStatus::Unknown(e.without_url().to_string())),
    };
    match resp.status().as_u16() {
        200 => {}
        401 | 403 => return Err(ModelError::Auth(resp.status().as_u16())),
        404 => {
            return Err(ModelError::Unknown {
                model: model.to_owned(),
            })
        }
        s => return Ok(ModelStatus::Unknown(format!("HTTP {s}"))),
    }
    let body: serde_json::Value = match resp.json().await {
        Ok(b) => b,
        Err(e) => return Ok(ModelStatus::Unknown(e.without_url().to_string())),
    };
    decide(model, shutdown_unix(&body["shutdown_date"]), now_unix)
}

/// `shutdown_date` as Unix seconds (the start of that day, UTC), if one is announced.
fn shutdown_unix(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::String(s) => chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp()),
        other => other.as_i64(),
    }
}

/// The decision alone.
pub fn decide(
    model: &str,
    shutdown_unix: Option<i64>,
    now_unix: i64,
) -> Result<ModelStatus, ModelError> {
    match shutdown_unix {
        Some(t) if t <= now_unix => Err(ModelError::Retired {
            model: model.to_owned(),
            date: date(t),
        }),
        Some(t) if t - now_unix < WARN_BEFORE.as_secs() as i64 => {
            Ok(ModelStatus::RetiringSoon { shutdown_unix: t })
        }
        _ => Ok(ModelStatus::Current),
    }
}

/// Runs the check at start-up and logs the outcome; `Err` means: refuse to start.
pub async fn check_at_startup(
    base_url: &str,
    api_key: &Secret,
    model: &str,
    timeout: Duration,
) -> Result<(), ModelError> {
    let now = chrono::Utc::now().timestamp();
    match check(base_url, api_key, model, timeout, now).await? {
        ModelStatus::Current => tracing::info!(model, "Realtime model in service"),
        ModelStatus::RetiringSoon { shutdown_unix } => tracing::warn!(
            model,
            shutdown = %date(shutdown_unix),
            "the Realtime model retires in less than 30 days: plan the switch (OPENAI_REALTIME_MODEL)"
        ),
        ModelStatus::Unknown(why) => tracing::warn!(
            model,
            reason = %why,
            "could not check the Realtime model's retirement date; starting anyway"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shutdown_date_is_a_date_or_null() {
        assert_eq!(
            shutdown_unix(&serde_json::json!("2027-01-20")),
            Some(1_800_403_200)
        );
        assert_eq!(shutdown_unix(&serde_json::Value::Null), None);
        assert_eq!(shutdown_unix(&serde_json::json!("soon")), None);
        assert_eq!(
            shutdown_unix(&serde_json::json!(1_800_000_000)),
            Some(1_800_000_000)
        );
    }

    #[test]
    fn retired_refuses_near_retirement_warns() {
        let now = 1_800_000_000;
        assert_eq!(decide("m", None, now), Ok(ModelStatus::Current));
        assert_eq!(
            decide("m", Some(now + 90 * 86_400), now),
            Ok(ModelStatus::Current)
        );
        assert_eq!(
            decide("m", Some(now + 10 * 86_400), now),
            Ok(ModelStatus::RetiringSoon {
                shutdown_unix: now + 10 * 86_400
            })
        );
        let e = decide("gpt-realtime", Some(1_800_000_000 - 86_400), now).unwrap_err();
        assert!(
            e.to_string()
                .contains("gpt-realtime was retired on 2027-01-14"),
            "{e}"
        );
    }
}
