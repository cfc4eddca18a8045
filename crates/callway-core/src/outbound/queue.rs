//! The business webhooks' outbox: durable (Redis with its append-only file; memory in the
//! single-process sandbox), any instance delivers, bounded retries with backoff, dead letters
//! kept for inspection. Time is an input (`now_ms`) everywhere, so the schedule is tested
//! without sleeping.
//!
//! A message is one key (`callway:outbox:msg:<id>`, JSON) plus its due time in one sorted set
//! (`callway:outbox:due`). Claiming moves the due time a lease ahead in the same Lua step, so two
//! instances never send the same attempt and a worker that dies mid-send leaves the message to be
//! picked up again when the lease ends. The id is derived from the event (a lead, a call ref):
//! enqueuing the same event twice (a redelivered Telnyx webhook) is a no-op, and receivers get
//! the same `webhook-id` on every attempt, as the Standard Webhooks spec asks.

use crate::call_context::{keys, ContextError, ContextStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a message's key lives (after delivery only its state is kept, not its body).
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Delays before attempts 2, 3, … ; the number of attempts is this length + 1.
    pub backoff: Vec<Duration>,
    /// A claimed message is invisible to other workers this long.
    pub lease: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        // 8 attempts over about 6 hours.
        let backoff = [5u64, 30, 120, 600, 1800, 3600, 14_400]
            .into_iter()
            .map(Duration::from_secs)
            .collect();
        OutboxConfig {
            backoff,
            lease: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Pending,
    Delivered,
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    /// The JSON body; emptied once delivered or dead (it holds personal data).
    pub body: String,
    pub attempts: u32,
    pub state: MessageState,
    pub created_ms: i64,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(i64),
    Dead,
}

const CLAIM: &str =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1) \
     if #ids == 0 then return false end \
     redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ids[1]) \
     return ids[1]";

#[derive(Clone)]
pub struct Outbox {
    store: ContextStore,
    cfg: OutboxConfig,
    queue: keys::Queue,
}

impl Outbox {
    /// The business webhooks' outbox.
    pub fn new(store: ContextStore, cfg: OutboxConfig) -> Self {
        Self::named(keys::Queue::Outbox, store, cfg)
    }

    /// Another durable queue on the same machinery (the callback retries).
    pub fn named(queue: keys::Queue, store: ContextStore, cfg: OutboxConfig) -> Self {
        Outbox { store, cfg, queue }
    }

    pub fn config(&self) -> &OutboxConfig {
        &self.cfg
    }

    /// Queues `body` under `id`, due now; false when that id was queued before (nothing done).
    pub async fn enqueue(&self, id: &str, body: String, now_ms: i64) -> Result<bool, ContextError> {
        self.enqueue_at(id, body, now_ms, now_ms).await
    }

    /// Queues `body` under `id`, due at `due_ms`; false when that id was queued before.
    pub async fn enqueue_at(
        &self,
        id: &str,
        body: String,
        now_ms: i64,
        due_ms: i64,
    ) -> Result<bool, ContextError> {
        let msg = Message {
            id: id.to_owned(),
            body,
            attempts: 0,
            state: MessageState::Pending,
            created_ms: now_ms,
            last_error: None,
        };
        let json = to_json(&msg)?;
        if !self
            .store
            .set_if_absent(&self.queue.message(id), &json, KEEP)
            .await?
        {
            return Ok(false);
        }
        self.schedule(id, due_ms).await?;
        Ok(true)
    }

    /// The next due message, leased to the caller; `None` when nothing is due.
    pub async fn claim(&self, now_ms: i64) -> Result<Option<Message>, ContextError> {
        let lease_ms = self.cfg.lease.as_millis() as i64;
        let id: Option<String> = match &self.store {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::Script::new(CLAIM)
                    .key(self.queue.due())
                    .arg(now_ms)
                    .arg(lease_ms)
                    .invoke_async(&mut c)
                    .await?
            }
            ContextStore::Memory(m) => m.with(|map| {
                let key = self.queue.due();
                let mut due = due_set(map, &key);
                let id = due
                    .iter()
                    .filter(|(_, at)| **at <= now_ms)
                    .min_by_key(|(_, at)| **at)
                    .map(|(id, _)| id.clone());
                if let Some(id) = &id {
                    due.insert(id.clone(), now_ms + lease_ms);
                    store_due_set(map, &key, &due);
                }
                id
            })?,
        };
        let Some(id) = id else { return Ok(None) };
        match self.store.get_value(&self.queue.message(&id)).await? {
            Some(json) => Ok(Some(from_json(&json)?)),
            None => {
                // Expired meanwhile (kept a week): nothing left to send.
                self.unschedule(&id).await?;
                Ok(None)
            }
        }
    }

    /// The receiver took it (2xx).
    pub async fn delivered(&self, mut msg: Message) -> Result<(), ContextError> {
        msg.attempts += 1;
        msg.state = MessageState::Delivered;
        msg.body.clear();
        msg.last_error = None;
        self.store
            .set_value(&self.queue.message(&msg.id), to_json(&msg)?, KEEP)
            .await?;
        self.unschedule(&msg.id).await
    }

    /// The attempt failed: retried after the next backoff step, or dead after the last one.
    pub async fn failed(
        &self,
        mut msg: Message,
        error: &str,
        now_ms: i64,
    ) -> Result<AfterFailure, ContextError> {
        msg.attempts += 1;
        msg.last_error = Some(error.chars().take(200).collect());
        let next = self.cfg.backoff.get(msg.attempts as usize - 1).copied();
        let after = match next {
            Some(delay) => AfterFailure::RetryAt(now_ms + delay.as_millis() as i64),
            None => {
                msg.state = MessageState::Dead;
                msg.body.clear();
                AfterFailure::Dead
            }
        };
        self.store
            .set_value(&self.queue.message(&msg.id), to_json(&msg)?, KEEP)
            .await?;
        match after {
            AfterFailure::RetryAt(at) => self.schedule(&msg.id, at).await?,
            AfterFailure::Dead => {
                self.unschedule(&msg.id).await?;
                self.store
                    .push_bounded(&self.queue.dead(), msg.id.clone(), 1000, KEEP)
                    .await?;
            }
        }
        Ok(after)
    }

    /// Not now: the message is due again at `at_ms`, its attempts untouched (a retry that
    /// fired outside calling hours waits for the next opening).
    pub async fn postpone(&self, msg: &Message, at_ms: i64) -> Result<(), ContextError> {
        self.schedule(&msg.id, at_ms).await
    }

    /// A message's current state (tests, inspection).
    pub async fn message(&self, id: &str) -> Result<Option<Message>, ContextError> {
        self.store
            .get_value(&self.queue.message(id))
            .await?
            .map(|j| from_json(&j))
            .transpose()
    }

    /// When the next message is due, if any (the worker sleeps until then).
    pub async fn next_due(&self) -> Result<Option<i64>, ContextError> {
        match &self.store {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let first: Vec<(String, f64)> = redis::cmd("ZRANGE")
                    .arg(self.queue.due())
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await?;
                Ok(first.first().map(|(_, s)| *s as i64))
            }
            ContextStore::Memory(m) => {
                m.with(|map| due_set(map, &self.queue.due()).values().min().copied())
            }
        }
    }

    async fn schedule(&self, id: &str, at_ms: i64) -> Result<(), ContextError> {
        match &self.store {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("ZADD")
                    .arg(self.queue.due())
                    .arg(at_ms)
                    .arg(id)
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                let key = self.queue.due();
                let mut due = due_set(map, &key);
                due.insert(id.to_owned(), at_ms);
                store_due_set(map, &key, &due);
            }),
        }
    }

    async fn unschedule(&self, id: &str) -> Result<(), ContextError> {
        match &self.store {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("ZREM")
                    .arg(self.queue.due())
                    .arg(id)
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                let key = self.queue.due();
                let mut due = due_set(map, &key);
                due.remove(id);
                store_due_set(map, &key, &due);
            }),
        }
    }
}

fn to_json(m: &Message) -> Result<String, ContextError> {
    serde_json::to_string(m).map_err(|e| ContextError::Corrupt(e.to_string()))
}

fn from_json(s: &str) -> Result<Message, ContextError> {
    serde_json::from_str(s).map_err(|e| ContextError::Corrupt(e.to_string()))
}

type Entries = std::collections::HashMap<String, (String, std::time::Instant)>;

fn due_set(map: &Entries, key: &str) -> BTreeMap<String, i64> {
    map.get(key)
        .and_then(|(v, _)| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn store_due_set(map: &mut Entries, key: &str, due: &BTreeMap<String, i64>) {
    let json = serde_json::to_string(due).unwrap_or_else(|_| "{}".into());
    map.insert(key.to_owned(), (json, std::time::Instant::now() + KEEP));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox::new(
            ContextStore::memory(),
            OutboxConfig {
                backoff: vec![Duration::from_secs(5), Duration::from_secs(30)],
                lease: Duration::from_secs(60),
            },
        )
    }

    #[tokio::test]
    async fn once_queued_retried_on_schedule_then_dead() {
        let o = outbox();
        let t0 = 1_000_000;
        assert!(o.enqueue("msg_a", "{}".into(), t0).await.unwrap());
        assert!(
            !o.enqueue("msg_a", "{}".into(), t0).await.unwrap(),
            "queued once"
        );
        let m = o.claim(t0).await.unwrap().expect("due now");
        assert_eq!(
            o.claim(t0 + 1).await.unwrap(),
            None,
            "leased: not claimed twice"
        );
        assert_eq!(
            o.failed(m, "HTTP 500", t0).await.unwrap(),
            AfterFailure::RetryAt(t0 + 5_000)
        );
        assert_eq!(o.claim(t0 + 4_999).await.unwrap(), None);
        let m = o.claim(t0 + 5_000).await.unwrap().expect("second attempt");
        assert_eq!(m.attempts, 1);
        assert_eq!(
            o.failed(m, "timeout", t0 + 5_000).await.unwrap(),
            AfterFailure::RetryAt(t0 + 35_000)
        );
        let m = o.claim(t0 + 35_000).await.unwrap().expect("third attempt");
        assert_eq!(
            o.failed(m, "HTTP 502", t0 + 35_000).await.unwrap(),
            AfterFailure::Dead
        );
        let dead = o.message("msg_a").await.unwrap().unwrap();
        assert_eq!((dead.state, dead.attempts), (MessageState::Dead, 3));
        assert!(dead.body.is_empty());
        assert_eq!(o.claim(i64::MAX / 2).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_lease_that_runs_out_gives_the_message_to_another_worker_and_delivery_ends_it() {
        let o = outbox();
        let t0 = 5_000;
        o.enqueue("msg_b", "{\"x\":1}".into(), t0).await.unwrap();
        let _lost = o.claim(t0).await.unwrap().unwrap();
        let again = o.claim(t0 + 60_000).await.unwrap().expect("lease over");
        assert_eq!(again.body, "{\"x\":1}");
        o.delivered(again).await.unwrap();
        let m = o.message("msg_b").await.unwrap().unwrap();
        assert_eq!(m.state, MessageState::Delivered);
        assert!(m.body.is_empty(), "no personal data kept after delivery");
        assert_eq!(o.next_due().await.unwrap(), None);
        assert!(
            !o.enqueue("msg_b", "{}".into(), t0).await.unwrap(),
            "not sent again"
        );
    }
}
