//! The missed-callback retries: webhook-svc queues the next attempt (durable retry queue, due
//! inside calling hours) when a call was missed; any tools-svc instance fires it when due. A job
//! fires at most once per attempt: the lead's attempt count in PostgreSQL is claimed
//! conditionally (`claim_retry`), so two instances, a restart or a repeated job never dial
//! twice; a job found outside calling hours (a worker that was down) waits for the next
//! opening; a job whose lead moved on (completed, declined, erased) is dropped.

use crate::tools;
use crate::ToolsState;
use callway_core::outbound::{Message, Outbox, RetryJob};
use callway_core::retry::CallingHours;
use std::time::Duration;
use tracing::Instrument;

const IDLE: Duration = Duration::from_millis(500);

pub struct RetryWorker {
    state: ToolsState,
    queue: Outbox,
    hours: CallingHours,
}

/// What firing a job did.
#[derive(Debug, PartialEq)]
pub enum Fired {
    Dialled,
    Skipped(&'static str),
    NotNow(chrono::DateTime<chrono::Utc>),
}

impl RetryWorker {
    /// `None` when this instance cannot dial (Telnyx not configured).
    pub fn from_settings(
        settings: &callway_core::Settings,
        state: ToolsState,
    ) -> Result<Option<Self>, callway_core::config::ConfigError> {
        let Some(deps) = &state.calls else {
            return Ok(None);
        };
        let queue = callway_core::outbound::retry_queue(deps.contexts.clone());
        let hours = callway_core::retry::RetryPolicy::from_settings(settings)?.hours;
        Ok(Some(RetryWorker {
            state,
            queue,
            hours,
        }))
    }

    /// With an explicit queue and calling hours (tests).
    pub fn new(state: ToolsState, queue: Outbox, hours: CallingHours) -> Self {
        RetryWorker {
            state,
            queue,
            hours,
        }
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        loop {
            let now = chrono::Utc::now();
            match self.queue.claim(now.timestamp_millis()).await {
                Ok(Some(msg)) => self.handle(msg).await,
                Ok(None) => tokio::time::sleep(IDLE).await,
                Err(e) => {
                    tracing::warn!(error = %e, "retry queue unavailable");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn handle(&self, msg: Message) {
        let span =
            tracing::info_span!("callback.retry", job = %msg.id, attempt = tracing::field::Empty);
        async {
            let outcome = self.fire(&msg, chrono::Utc::now()).await;
            let stored = match outcome {
                Ok(Fired::NotNow(at)) => {
                    tracing::info!(%at, "outside calling hours: postponed");
                    self.queue.postpone(&msg, at.timestamp_millis()).await
                }
                Ok(fired) => {
                    tracing::info!(?fired, "retry fired");
                    self.queue.delivered(msg).await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retry could not fire: tried again later");
                    let now = chrono::Utc::now().timestamp_millis();
                    self.queue
                        .failed(msg, &e.to_string(), now)
                        .await
                        .map(|_| ())
                }
            };
            if let Err(e) = stored {
                tracing::warn!(error = %e, "retry job state not stored (its lease runs out)");
            }
        }
        .instrument(span)
        .await
    }

    /// Fires one job at `now`.
    pub async fn fire(
        &self,
        msg: &Message,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Fired, crate::error::ToolsError> {
        let Ok(job) = serde_json::from_str::<RetryJob>(&msg.body) else {
            return Ok(Fired::Skipped("unreadable job"));
        };
        tracing::Span::current().record("attempt", job.attempt);
        let open = self.hours.next_open(now);
        if open > now {
            return Ok(Fired::NotNow(open));
        }
        let s = &self.state;
        let Some(lead) = s
            .leads
            .get(job.lead_id)
            .await
            .map_err(crate::error::ToolsError::Store)?
        else {
            return Ok(Fired::Skipped("lead erased"));
        };
        // Declined is final, whatever queued this job.
        let records = s
            .leads
            .call_records(lead.id)
            .await
            .map_err(crate::error::ToolsError::Store)?;
        if records
            .last()
            .is_some_and(|r| r.hangup_cause.as_deref() == Some("call_rejected"))
        {
            return Ok(Fired::Skipped("the person declined the last call"));
        }
        if !s
            .leads
            .claim_retry(lead.id, job.attempt)
            .await
            .map_err(crate::error::ToolsError::Store)?
        {
            return Ok(Fired::Skipped(
                "the lead moved on (answered, declined, or tried already)",
            ));
        }
        let prepared = tools::prepare_retry(s, &lead, job.attempt).await?;
        // A dial that fails is this attempt's outcome (the lead shows it), not the job's.
        if let Err(e) = tools::place_callback(s, prepared).await {
            tracing::warn!(error = %e, "retry dial failed");
        }
        Ok(Fired::Dialled)
    }
}
