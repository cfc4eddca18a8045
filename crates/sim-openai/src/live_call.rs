//! A live WebRTC call as the rest of the simulator sees it: the peer task owns the engine; the
//! HTTP front hangs the call up and attaches sidebands; sidebands get every server event and
//! send client events to the engine through here.

use crate::recording::{CallEndReason, CallHandle, SidebandEndKind, SidebandHandle};
use crate::state::lock;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Server events queued for one sideband before it counts as too slow and is dropped.
const SIDEBAND_QUEUE: usize = 4096;

/// What the peer tells a sideband socket to do.
#[derive(Debug)]
pub(crate) enum SidebandOut {
    /// A server event: its `type` and its JSON text.
    Event { ty: Arc<str>, text: Arc<str> },
    /// Send a close frame, then end.
    Close { code: u16, reason: String },
}

/// A client event a sideband received, for the call's engine.
pub(crate) struct SidebandIn {
    pub from: SidebandHandle,
    pub text: String,
}

struct Port {
    tx: mpsc::Sender<SidebandOut>,
    record: SidebandHandle,
}

/// `None` once the call has ended: no attach, no event goes out any more.
type Ports = Option<Vec<Port>>;

pub(crate) struct LiveCall {
    pub call_id: String,
    pub session_id: String,
    pub record: CallHandle,
    hangup: Notify,
    to_engine: mpsc::UnboundedSender<SidebandIn>,
    ports: Mutex<Ports>,
}

impl LiveCall {
    /// A new call and the receiver of its sidebands' client events (for the peer task).
    pub(crate) fn new(
        call_id: String,
        session_id: String,
        record: CallHandle,
    ) -> (Arc<LiveCall>, mpsc::UnboundedReceiver<SidebandIn>) {
        let (to_engine, from_sidebands) = mpsc::unbounded_channel();
        let call = LiveCall {
            call_id,
            session_id,
            record,
            hangup: Notify::new(),
            to_engine,
            ports: Mutex::new(Some(vec![])),
        };
        (Arc::new(call), from_sidebands)
    }

    /// Registers a sideband, recorded by `record` (called only if the call is still open);
    /// `None` when the call has ended meanwhile.
    pub(crate) fn attach(
        &self,
        record: impl FnOnce() -> SidebandHandle,
    ) -> Option<(SidebandHandle, mpsc::Receiver<SidebandOut>)> {
        let mut ports = lock(&self.ports);
        let list = ports.as_mut()?;
        let record = record();
        let (tx, rx) = mpsc::channel(SIDEBAND_QUEUE);
        list.push(Port {
            tx,
            record: record.clone(),
        });
        Some((record, rx))
    }

    /// A sideband's client closed (or vanished): stop sending to it.
    pub(crate) fn detach(&self, record: &SidebandHandle) {
        if let Some(list) = lock(&self.ports).as_mut() {
            list.retain(|p| p.record.index() != record.index());
        }
    }

    /// Hands a sideband's client event to the engine (ignored once the peer task is gone).
    pub(crate) fn client_event(&self, from: &SidebandHandle, text: String) {
        let _ = self.to_engine.send(SidebandIn {
            from: from.clone(),
            text,
        });
    }

    /// Sends a server event to every attached sideband. A sideband whose queue is full (its
    /// reader stalled) is dropped without a close frame rather than slowing the call down.
    pub(crate) fn broadcast(&self, ty: &str, text: &str) {
        let mut ports = lock(&self.ports);
        let Some(list) = ports.as_mut() else { return };
        if list.is_empty() {
            return;
        }
        let text: Arc<str> = Arc::from(text);
        let ty: Arc<str> = Arc::from(ty);
        list.retain(|p| {
            let ev = SidebandOut::Event {
                ty: ty.clone(),
                text: text.clone(),
            };
            match p.tx.try_send(ev) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    p.record.ended(SidebandEndKind::Dropped);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Ends the call for its sidebands: each gets a close frame with `code`, then nothing more;
    /// later attaches are refused. Idempotent.
    pub(crate) fn close_sidebands(&self, code: u16, reason: &str) {
        let Some(list) = lock(&self.ports).take() else {
            return;
        };
        for p in list {
            // Recorded before the frame is written, so whoever reads the close sees the record.
            p.record.ended(SidebandEndKind::ServerClosed(code));
            let _ = p.tx.try_send(SidebandOut::Close {
                code,
                reason: reason.to_string(),
            });
        }
    }

    /// Failure knob: forgets every sideband without a close frame (their sockets end at once,
    /// as after a network fault). The call goes on and accepts new attaches. Returns how many.
    pub(crate) fn drop_sidebands(&self) -> usize {
        let mut ports = lock(&self.ports);
        let Some(list) = ports.as_mut() else { return 0 };
        let dropped = std::mem::take(list);
        for p in &dropped {
            p.record.ended(SidebandEndKind::Dropped);
        }
        dropped.len()
    }

    /// Asks the peer task to end the call.
    pub(crate) fn hang_up(&self) {
        self.hangup.notify_one();
    }

    /// Resolves once [`LiveCall::hang_up`] was called (for the peer task).
    pub(crate) async fn hung_up(&self) {
        self.hangup.notified().await
    }

    /// The peer task's last word: sidebands closed with 1000 (unless already closed with
    /// another code), the end recorded.
    pub(crate) fn finished(&self, reason: CallEndReason) {
        self.close_sidebands(1000, "call ended");
        self.record.ended(reason);
    }
}
