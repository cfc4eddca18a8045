//! One call: the loop of lib.rs around the sans-IO [`Bridge`], with the OpenAI socket arriving
//! whenever its pre-warmed connect finishes (never awaited before Telnyx frames are handled).
//!
//! One task owns both sockets: a frame goes from the socket's buffer to the core (borrowed) and
//! the core's outputs into the other socket's write buffer, with no task or channel between
//! them. Everything read in one wake-up is handled before the outputs are flushed, so a burst
//! leaves in one write per socket.

use crate::core::{Bridge, HangupReason, Input, Output, State};
use crate::shell::amd::watch_amd;
use crate::shell::error::BridgeError;
use crate::shell::fail_closed::wait_for_start;
use crate::shell::hangup::{hang_up_call, passive_until_closed};
use crate::shell::state::BridgeState;
use crate::shell::telemetry::{self, CallMetrics};
use crate::shell::timeline::Timeline;
use crate::shell::ws_io::{self, Conn};
use callway_core::call_context::{CallContext, CallRef};
use callway_core::metrics::Direction;
use callway_ws::Event;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Span;

/// Telnyx frames are small JSON (≤ a few KB); anything bigger is not Telnyx.
pub const MAX_TELNYX_MESSAGE: usize = 256 * 1024;
/// A call left to webhook-svc (voicemail): how long to wait for Telnyx to end the stream.
const PASSIVE_LIMIT: Duration = Duration::from_secs(60);
/// How long to wait for Telnyx's `start` when a hang-up needs its `call_control_id`.
pub const START_WAIT: Duration = Duration::from_secs(10);
/// After our hang-up was accepted, how long Telnyx has to stop the stream.
const HANGUP_STREAM_END: Duration = Duration::from_secs(5);

/// A pending OpenAI connect, started before the Telnyx upgrade completed.
pub type PendingOpenAi = JoinHandle<Result<Conn, BridgeError>>;

pub struct CallStart {
    pub call_ref: CallRef,
    pub ctx: CallContext,
    /// `None` when AMD already said "machine": no agent for a voicemail.
    pub openai: Option<PendingOpenAi>,
}

pub async fn run(state: BridgeState, mut telnyx: Conn, start: CallStart, span: Span) {
    let CallStart {
        call_ref,
        ctx,
        openai,
    } = start;
    let Some(connecting) = openai else {
        tracing::info!("answering machine: the agent stays silent (webhook-svc handles voicemail)");
        span.record("callway.end", "voicemail");
        passive_until_closed(&mut telnyx, PASSIVE_LIMIT).await;
        ws_io::retire(telnyx, 1000);
        return;
    };
    let (transfer_tx, transfer_rx) = oneshot::channel();
    let timeline = Timeline::spawn(
        state.0.contexts.clone(),
        call_ref.clone(),
        state.0.tuning.store_timeout,
    );
    let mut call = Call {
        bridge: Bridge::new(state.bridge_config(&ctx), Instant::now()),
        state: state.clone(),
        ctx,
        call_ref,
        span,
        telnyx,
        telnyx_open: true,
        openai: None,
        metrics: CallMetrics::default(),
        telnyx_failed: false,
        hangup_pending: false,
        hangups: JoinSet::new(),
        timeline,
        received: Vec::with_capacity(32),
        transfer_tx: Some(transfer_tx),
        transfer_rx: Some(transfer_rx),
    };
    let end = call.run_loop(connecting).await;
    call.span.record("callway.end", end);
    call.finish(end).await;
}

struct Call {
    bridge: Bridge,
    state: BridgeState,
    ctx: CallContext,
    call_ref: CallRef,
    span: Span,
    telnyx: Conn,
    /// Telnyx's socket may still send (its end was not yet reported to the core).
    telnyx_open: bool,
    openai: Option<Conn>,
    metrics: CallMetrics,
    /// A write to Telnyx failed (reported to the core once).
    telnyx_failed: bool,
    /// The core asked for a hang-up before the `call_control_id` was known.
    hangup_pending: bool,
    hangups: JoinSet<()>,
    timeline: Timeline,
    /// A warm transfer's verdict (`true`: failed, tell the agent), once per call: the sender
    /// goes to the transfer's task when it starts, the receiver into the select loop.
    transfer_tx: Option<oneshot::Sender<bool>>,
    transfer_rx: Option<oneshot::Receiver<bool>>,
    /// When each frame of the current batch was taken, and which way its output goes: recorded
    /// as `callway.bridge.frame.added_latency` once the batch's outputs are written.
    received: Vec<(Instant, Direction)>,
}

impl Call {
    /// Returns why the loop ended. The helper tasks end with it.
    async fn run_loop(&mut self, connecting: PendingOpenAi) -> &'static str {
        // The AMD verdict is polled in its own task so a slow store never delays audio.
        let amd = tokio::spawn(watch_amd(self.state.clone(), self.call_ref.clone()));
        let helpers = [amd.abort_handle(), connecting.abort_handle()];
        let end = self.select_loop(connecting, amd).await;
        helpers.iter().for_each(|h| h.abort());
        end
    }

    async fn select_loop(
        &mut self,
        connecting: PendingOpenAi,
        amd: JoinHandle<bool>,
    ) -> &'static str {
        let mut connecting = Some(connecting);
        // The rarely-firing branches are futures made once, not per turn of the loop.
        let stop = stopped(self.state.0.hard_stop.subscribe());
        tokio::pin!(stop);
        let mut machine = Some(amd);
        let transfer_rx = self.transfer_rx.take();
        // A oneshot: polling it on every turn is one atomic load (an mpsc cost a queue pop).
        let transfer = async move {
            match transfer_rx {
                Some(rx) => rx.await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::pin!(transfer);
        let mut transfer_done = false;
        // One timer for the call, moved when the core's deadline moves (a new timer per turn
        // cost a timer-wheel insert and removal per frame).
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            self.drain_outputs().await;
            self.record_latencies();
            if self.bridge.state() == State::Ended {
                return "ended";
            }
            let deadline = self.bridge.poll_timeout();
            if deadline != armed {
                if let Some(d) = deadline {
                    timer.as_mut().reset(tokio::time::Instant::from_std(d));
                }
                armed = deadline;
            }
            tokio::select! {
                // Under load several frames wait: all that one read brought are handled, and
                // their outputs written in one go.
                () = self.telnyx.readable(), if self.telnyx_open => self.on_telnyx(),
                () = readable(&mut self.openai) => self.on_openai(),
                res = maybe(&mut connecting), if connecting.is_some() => {
                    connecting = None;
                    match res {
                        Ok(Ok(conn)) => {
                            self.openai = Some(conn);
                            self.bridge.handle(Input::OpenAiConnected, Instant::now());
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "OpenAI connect failed");
                            callway_core::metrics::get().upstream_error(callway_core::metrics::Peer::OpenAi, "connect");
                            self.bridge.handle(Input::OpenAiClosed { code: None, reason: "connect failed" }, Instant::now());
                        }
                        Err(_) => self.bridge.handle(Input::OpenAiClosed { code: None, reason: "connect task lost" }, Instant::now()),
                    }
                }
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    self.bridge.handle(Input::Tick, Instant::now());
                }
                verdict = &mut transfer, if !transfer_done => {
                    transfer_done = true;
                    if verdict == Some(true) {
                        self.bridge.handle(Input::Notice(super::transfer::FAILED_NOTICE), Instant::now());
                    }
                }
                verdict = maybe(&mut machine), if machine.is_some() => {
                    machine = None;
                    if matches!(verdict, Ok(true)) {
                        return "voicemail";
                    }
                }
                () = &mut stop => return "shutdown",
            }
        }
    }

    /// Once per call: the transfer runs beside the call; its verdict comes back to the loop.
    fn start_transfer(&mut self, reason: String) {
        let Some(tx) = self.transfer_tx.take() else {
            return;
        };
        let (state, ctx) = (self.state.clone(), self.ctx.clone());
        tokio::spawn(async move {
            let failed = super::transfer::run(state, ctx, reason).await;
            let _ = tx.send(failed);
        });
    }

    /// Stored for webhook-svc, which copies it into the call record at the hang-up. Off the
    /// audio loop: a slow store never delays a frame.
    fn keep_qualification(&self, q: callway_core::call_record::Qualification) {
        let (contexts, call_ref) = (self.state.0.contexts.clone(), self.call_ref.clone());
        let timeout = self.state.0.tuning.store_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, contexts.set_qualification(&call_ref, &q)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "qualification not stored"),
                Err(_) => tracing::warn!("qualification store timed out"),
            }
        });
    }

    fn record_latencies(&mut self) {
        if self.received.is_empty() {
            return;
        }
        let m = callway_core::metrics::get();
        let now = Instant::now();
        for (at, direction) in self.received.drain(..) {
            m.frame_latency(direction, now.duration_since(at).as_secs_f64());
        }
    }

    /// Everything the last read brought from Telnyx, fed to the core.
    fn on_telnyx(&mut self) {
        while let Some(ev) = self.telnyx.next_event() {
            let now = Instant::now();
            match ev {
                Event::Text(t) => {
                    self.received.push((now, Direction::ToOpenAi));
                    self.bridge.handle(Input::TelnyxText(t), now);
                }
                // Neither protocol uses binary frames: ignored.
                Event::Binary(_) => {}
                // Said once: the socket reports its end a single time.
                Event::Closed { .. } => {
                    self.telnyx_open = false;
                    self.bridge.handle(Input::TelnyxClosed, now);
                }
            }
        }
    }

    /// Everything the last read brought from OpenAI, fed to the core.
    fn on_openai(&mut self) {
        let Some(conn) = self.openai.as_mut() else {
            return;
        };
        let mut closed = None;
        while let Some(ev) = conn.next_event() {
            let now = Instant::now();
            match ev {
                Event::Text(t) => {
                    self.received.push((now, Direction::ToTelnyx));
                    self.timeline.observe_openai(t);
                    self.bridge.handle(Input::OpenAiText(t), now);
                }
                Event::Binary(_) => {}
                Event::Closed { code, reason, .. } => {
                    closed = Some((code, reason));
                    break;
                }
            }
        }
        if let Some((code, reason)) = closed {
            // Our answer to its Close (or our 1011) leaves from the retired socket.
            if let Some(conn) = self.openai.take() {
                ws_io::retire(conn, 1000);
            }
            let closed = Input::OpenAiClosed {
                code,
                reason: reason.as_str(),
            };
            self.bridge.handle(closed, Instant::now());
        }
    }

    /// Executes the core's outputs in order. Frames are buffered per socket and flushed once
    /// per pass (one write syscall for a burst instead of one per frame); pongs and Close
    /// answers queued while reading leave with them.
    async fn drain_outputs(&mut self) {
        loop {
            self.run_outputs();
            if self.telnyx.has_queued() && self.telnyx.flush().await.is_err() && !self.telnyx_failed
            {
                self.telnyx_failed = true;
                self.bridge.handle(Input::TelnyxClosed, Instant::now());
                continue;
            }
            let openai_failed = match self.openai.as_mut() {
                Some(o) if o.has_queued() => o.flush().await.is_err(),
                _ => false,
            };
            if openai_failed {
                self.openai_write_failed();
                continue;
            }
            return;
        }
    }

    fn openai_write_failed(&mut self) {
        if let Some(conn) = self.openai.take() {
            ws_io::retire(conn, 1011);
            let closed = Input::OpenAiClosed {
                code: None,
                reason: "write failed",
            };
            self.bridge.handle(closed, Instant::now());
        }
    }

    /// Queues the core's frames on their sockets and starts its other outputs.
    fn run_outputs(&mut self) {
        while let Some(out) = self.bridge.poll_output() {
            match out {
                Output::ToTelnyx(text) => {
                    if self.telnyx.queue_text(text.as_bytes()).is_err() && !self.telnyx_failed {
                        self.telnyx_failed = true;
                        self.bridge.handle(Input::TelnyxClosed, Instant::now());
                    }
                }
                Output::ToOpenAi(text) => {
                    let queued = match self.openai.as_mut() {
                        Some(o) => o.queue_text(text.as_bytes()).is_ok(),
                        None => false,
                    };
                    if !queued {
                        self.openai_write_failed();
                    }
                }
                Output::HangUp { reason } => self.hang_up(reason),
                Output::CloseOpenAi => {
                    // The close frame leaves after whatever was queued before it.
                    if let Some(o) = self.openai.take() {
                        ws_io::retire(o, 1000);
                    }
                }
                Output::Metric(m) => self.metrics.record(&self.span, m),
                Output::Log { level, message } => telemetry::log(level, &message),
                Output::Qualification(q) => self.keep_qualification(*q),
                Output::Transfer { reason } => self.start_transfer(reason),
            }
        }
    }

    /// `hangup` via Call Control in the background (the stream keeps flowing until Telnyx stops
    /// it); one `command_id` for every attempt so Telnyx de-duplicates retries.
    fn hang_up(&mut self, reason: HangupReason) {
        self.span.record("callway.hangup_reason", reason.as_str());
        tracing::info!(reason = reason.as_str(), "hanging up");
        let Some(id) = self
            .bridge
            .call_control_id()
            .map(str::to_owned)
            .or_else(|| self.ctx.call_control_id.clone())
        else {
            // OpenAI failed before Telnyx's `start`: hang up once `start` names the call.
            self.hangup_pending = true;
            return;
        };
        let telnyx = self.state.0.telnyx.clone();
        let limit = self.state.0.tuning.hangup_timeout;
        self.hangups.spawn(hang_up_call(telnyx, id, limit));
    }

    /// Reads Telnyx frames (no longer fed to the ended core) until `start` gives the
    /// `call_control_id`, then hangs up.
    async fn hang_up_after_start(&mut self) {
        match wait_for_start(&mut self.telnyx)
            .await
            .and_then(|s| s.call_control_id)
        {
            Some(id) => {
                let telnyx = self.state.0.telnyx.clone();
                let limit = self.state.0.tuning.hangup_timeout;
                self.hangups.spawn(hang_up_call(telnyx, id, limit));
            }
            None => tracing::warn!("cannot hang up: no `start` from Telnyx"),
        }
    }

    /// Closes OpenAI, lets pending hang-ups finish, then closes the Telnyx socket.
    async fn finish(mut self, end: &str) {
        if let Some(o) = self.openai.take() {
            ws_io::retire(o, 1000);
        }
        match end {
            "voicemail" => {
                tracing::info!("AMD says machine: agent cut, webhook-svc handles the voicemail");
                if self.telnyx.queue_text(br#"{"event":"clear"}"#).is_ok() {
                    let _ = self.telnyx.flush().await;
                }
                passive_until_closed(&mut self.telnyx, PASSIVE_LIMIT).await;
            }
            "shutdown" => tracing::warn!("drain deadline passed: call cut"),
            _ => {}
        }
        if self.hangup_pending {
            self.hang_up_after_start().await;
        }
        let hung_up = !self.hangups.is_empty();
        while self.hangups.join_next().await.is_some() {}
        if hung_up {
            // Telnyx ends the stream itself after a hang-up (`stop`, then close): let it.
            passive_until_closed(&mut self.telnyx, HANGUP_STREAM_END).await;
        }
        tracing::info!(stats = ?self.bridge.stats(), "call finished");
        ws_io::retire(self.telnyx, 1000);
    }
}

/// Resolves once the drain deadline has passed (never if the sender is gone).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits for bytes on the OpenAI socket once there is one (the branch is idle before).
async fn readable(conn: &mut Option<Conn>) {
    match conn {
        Some(c) => c.readable().await,
        None => std::future::pending().await,
    }
}

/// Awaits the future if there is one (the branch is disabled otherwise).
async fn maybe<F: std::future::Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
