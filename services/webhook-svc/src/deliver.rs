//! The business webhooks' worker: takes due messages from the outbox (any instance may run it:
//! a claim is a lease), sends each one signed per Standard Webhooks, and records the outcome —
//! delivered on a 2xx, otherwise retried on the outbox's backoff, then dead. Every attempt is a
//! span (`business_webhook.deliver`: message id, attempt, status) and failures are logged.

use callway_core::outbound::{AfterFailure, Message, Outbox, Target};
use std::io::Write;
use std::time::Duration;
use tracing::Instrument;

/// Longest a receiver may take to answer one attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the worker sleeps without looking (another instance may have queued something).
const IDLE: Duration = Duration::from_millis(500);

pub struct Deliverer {
    outbox: Outbox,
    target: Target,
    http: reqwest::Client,
}

impl Deliverer {
    pub fn new(outbox: Outbox, target: Target) -> Result<Self, String> {
        callway_core::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Deliverer {
            outbox,
            target,
            http,
        })
    }

    /// From the settings; `None` when no business webhook is configured.
    pub fn from_settings(
        settings: &callway_core::Settings,
        outbox: Option<Outbox>,
    ) -> Result<Option<Self>, callway_core::config::ConfigError> {
        let (Some(outbox), Some(target)) = (outbox, Target::from_settings(settings)?) else {
            return Ok(None);
        };
        Deliverer::new(outbox, target).map(Some).map_err(|reason| {
            callway_core::config::ConfigError::Invalid {
                name: "CALLWAY_BUSINESS_WEBHOOK_URL",
                reason,
            }
        })
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            match self.outbox.claim(now).await {
                Ok(Some(msg)) => self.attempt(msg).await,
                Ok(None) => tokio::time::sleep(IDLE).await,
                Err(e) => {
                    tracing::warn!(error = %e, "business webhook outbox unavailable");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn attempt(&self, msg: Message) {
        let span = tracing::info_span!(
            "business_webhook.deliver",
            msg_id = %msg.id,
            attempt = msg.attempts + 1,
            status = tracing::field::Empty,
        );
        async {
            let sent = self.send(&msg).await;
            let now = chrono::Utc::now().timestamp_millis();
            let stored = match sent {
                Ok(()) => {
                    tracing::info!("business webhook delivered");
                    self.outbox.delivered(msg).await
                }
                Err(error) => match self.outbox.failed(msg, &error, now).await {
                    Ok(AfterFailure::RetryAt(at)) => {
                        tracing::warn!(%error, retry_in_ms = at - now, "business webhook failed: retried later");
                        Ok(())
                    }
                    Ok(AfterFailure::Dead) => {
                        tracing::error!(%error, "business webhook failed its last attempt: dropped to the dead letters");
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = stored {
                // The lease runs out and the message is attempted again: at least once.
                tracing::warn!(error = %e, "business webhook outcome not stored");
            }
        }
        .instrument(span)
        .await
    }

    async fn send(&self, msg: &Message) -> Result<(), String> {
        match &self.target {
            Target::Http { url, secret } => {
                let ts = chrono::Utc::now().timestamp();
                let resp = self
                    .http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &msg.id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", secret.sign(&msg.id, ts, &msg.body))
                    .body(msg.body.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        if e.is_timeout() {
                            "timeout".to_owned()
                        } else {
                            format!("transport: {}", e.without_url())
                        }
                    })?;
                let status = resp.status().as_u16();
                tracing::Span::current().record("status", status);
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {status}"))
                }
            }
            Target::LocalLog(path) => {
                let line = serde_json::json!({
                    "webhook-id": msg.id,
                    "body": serde_json::from_str::<serde_json::Value>(&msg.body).unwrap_or_default(),
                });
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| e.to_string())?;
                writeln!(f, "{line}").map_err(|e| e.to_string())?;
                tracing::info!(path = %path.display(), "sandbox: business webhook written to the local log");
                Ok(())
            }
        }
    }
}
