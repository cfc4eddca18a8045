//! One call: the loop of lib.rs around the sans-IO [`Bridge`], with the OpenAI socket arriving
//! whenever its pre-warmed connect finishes (never awaited before Telnyx frames are handled).

use crate::core::{Bridge, HangupReason, Input, Output, State};
use crate::shell::amd::watch_amd;
use crate::shell::error::BridgeError;
use crate::shell::fail_closed::wait_for_start;
use crate::shell::hangup::{hang_up_call, passive_until_closed};
use crate::shell::state::BridgeState;
use crate::shell::telemetry::{self, CallMetrics};
use crate::shell::timeline::Timeline;
use crate::shell::ws_io::{self, Ws, WsEvent, WsHandle};
use callway_core::call_context::{CallContext, CallRef};
use callway_core::metrics::Direction;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Span;

/// Telnyx frames are small JSON (≤ a few KB); anything bigger is not Telnyx.
pub const MAX_TELNYX_MESSAGE: usize = 256 * 1024;
/// OpenAI's largest events (session.updated, response.done) stay well below this.
pub const MAX_OPENAI_MESSAGE: usize = 4 * 1024 * 1024;
/// A call left to webhook-svc (voicemail): how long to wait for Telnyx to end the stream.
const PASSIVE_LIMIT: Duration = Duration::from_secs(60);
/// Extra events taken per wake-up when several are waiting (bounds the time before outputs).
const BATCH: usize = 16;
/// How long to wait for Telnyx's `start` when a hang-up needs its `call_control_id`.
pub const START_WAIT: Duration = Duration::from_secs(10);
/// After our hang-up was accepted, how long Telnyx has to stop the stream.
const HANGUP_STREAM_END: Duration = Duration::from_secs(5);

/// A pending OpenAI connect, started before the Telnyx upgrade completed.
pub type PendingOpenAi = JoinHandle<Result<Ws, BridgeError>>;

pub struct CallStart {
    pub call_ref: CallRef,
    pub ctx: CallContext,
    /// `None` when AMD already said "machine": no agent for a voicemail.
    pub openai: Option<PendingOpenAi>,
}

pub async fn run(state: BridgeState, telnyx_ws: Ws, start: CallStart, span: Span) {
    let CallStart {
        call_ref,
        ctx,
        openai,
    } = start;
    let (tel_tx, mut tel_rx) = mpsc::channel(256);
    let telnyx = ws_io::spawn(telnyx_ws, MAX_TELNYX_MESSAGE, tel_tx);
    let Some(connecting) = openai else {
        tracing::info!("answering machine: the agent stays silent (webhook-svc handles voicemail)");
        span.record("callway.end", "voicemail");
        passive_until_closed(&mut tel_rx, PASSIVE_LIMIT).await;
        telnyx.close(1000).await;
        return;
    };
    let (transfer_tx, transfer_rx) = mpsc::channel(1);
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
        openai: None,
        metrics: CallMetrics::default(),
        telnyx_failed: false,
        hangup_pending: false,
        hangups: JoinSet::new(),
        timeline,
        received: Vec::with_capacity(BATCH + 1),
        transfer_tx,
        transfer_rx: Some(transfer_rx),
        transfer_started: false,
    };
    let end = call.run_loop(&mut tel_rx, connecting).await;
    call.span.record("callway.end", end);
    call.finish(&mut tel_rx, end).await;
}

struct Call {
    bridge: Bridge,
    state: BridgeState,
    ctx: CallContext,
    call_ref: CallRef,
    span: Span,
    telnyx: WsHandle,
    openai: Option<WsHandle>,
    metrics: CallMetrics,
    /// A write to Telnyx failed (reported to the core once).
    telnyx_failed: bool,
    /// The core asked for a hang-up before the `call_control_id` was known.
    hangup_pending: bool,
    hangups: JoinSet<()>,
    timeline: Timeline,
    /// A warm transfer's verdict (`true`: failed, tell the agent); the receiver is moved into the
    /// select loop.
    transfer_tx: mpsc::Sender<bool>,
    transfer_rx: Option<mpsc::Receiver<bool>>,
    transfer_started: bool,
    /// When each frame of the current batch was taken, and which way its output goes: recorded
    /// as `callway.bridge.frame.added_latency` once the batch's outputs are written.
    received: Vec<(Instant, Direction)>,
}

impl Call {
    /// Returns why the loop ended. The helper tasks end with it.
    async fn run_loop(
        &mut self,
        tel_rx: &mut mpsc::Receiver<WsEvent>,
        connecting: PendingOpenAi,
    ) -> &'static str {
        // The AMD verdict is polled in its own task so a slow store never delays audio.
        let amd = tokio::spawn(watch_amd(self.state.clone(), self.call_ref.clone()));
        let helpers = [amd.abort_handle(), connecting.abort_handle()];
        let end = self.select_loop(tel_rx, connecting, amd).await;
        helpers.iter().for_each(|h| h.abort());
        end
    }

    async fn select_loop(
        &mut self,
        tel_rx: &mut mpsc::Receiver<WsEvent>,
        connecting: PendingOpenAi,
        amd: JoinHandle<bool>,
    ) -> &'static str {
        let (oa_tx, mut oa_rx) = mpsc::channel(256);
        let mut connecting = Some(connecting);
        let mut hard_stop = self.state.0.hard_stop.subscribe();
        let mut machine = Some(amd);
        let mut telnyx_open = true;
        let (_, unused_rx) = mpsc::channel::<bool>(1);
        let mut transfer_rx = self.transfer_rx.take().unwrap_or(unused_rx);
        loop {
            self.drain_outputs().await;
            self.record_latencies();
            if self.bridge.state() == State::Ended {
                return "ended";
            }
            let deadline = self
                .bridge
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                ev = tel_rx.recv(), if telnyx_open => {
                    self.on_telnyx(ev, &mut telnyx_open);
                    // Under load several frames wait: take them now, write the outputs in one go.
                    for _ in 0..BATCH {
                        let Ok(ev) = tel_rx.try_recv() else { break };
                        self.on_telnyx(Some(ev), &mut telnyx_open);
                    }
                }
                ev = oa_rx.recv(), if self.openai.is_some() => {
                    self.on_openai(ev);
                    for _ in 0..BATCH {
                        if self.openai.is_none() { break; }
                        let Ok(ev) = oa_rx.try_recv() else { break };
                        self.on_openai(Some(ev));
                    }
                }
                res = maybe(&mut connecting), if connecting.is_some() => {
                    connecting = None;
                    match res {
                        Ok(Ok(ws)) => {
                            self.openai = Some(ws_io::spawn(ws, MAX_OPENAI_MESSAGE, oa_tx.clone()));
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
                _ = sleep_until(deadline) => self.bridge.handle(Input::Tick, Instant::now()),
                Some(failed) = transfer_rx.recv() => {
                    if failed {
                        self.bridge.handle(Input::Notice(super::transfer::FAILED_NOTICE), Instant::now());
                    }
                }
                verdict = maybe(&mut machine), if machine.is_some() => {
                    machine = None;
                    if matches!(verdict, Ok(true)) {
                        return "voicemail";
                    }
                }
                () = stopped(&mut hard_stop) => return "shutdown",
            }
        }
    }

    /// Once per call: the transfer runs beside the call; its verdict comes back to the loop.
    fn start_transfer(&mut self, reason: String) {
        if self.transfer_started {
            return;
        }
        self.transfer_started = true;
        let (state, ctx, tx) = (
            self.state.clone(),
            self.ctx.clone(),
            self.transfer_tx.clone(),
        );
        tokio::spawn(async move {
            let failed = super::transfer::run(state, ctx, reason).await;
            let _ = tx.send(failed).await;
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

    fn on_telnyx(&mut self, ev: Option<WsEvent>, telnyx_open: &mut bool) {
        match ev {
            Some(WsEvent::Text(t)) => {
                let now = Instant::now();
                self.received.push((now, Direction::ToOpenAi));
                self.bridge.handle(Input::TelnyxText(&t), now)
            }
            // Said once: a closed channel would otherwise be ready on every turn.
            Some(WsEvent::Closed { .. }) | None => {
                *telnyx_open = false;
                self.bridge.handle(Input::TelnyxClosed, Instant::now());
            }
        }
    }

    fn on_openai(&mut self, ev: Option<WsEvent>) {
        let now = Instant::now();
        match ev {
            Some(WsEvent::Text(t)) => {
                self.received.push((now, Direction::ToTelnyx));
                self.timeline.observe_openai(&t);
                self.bridge.handle(Input::OpenAiText(&t), now);
            }
            Some(WsEvent::Closed { code, reason }) => {
                self.openai = None;
                let reason = reason.as_str();
                self.bridge
                    .handle(Input::OpenAiClosed { code, reason }, now);
            }
            None => {
                self.openai = None;
                let closed = Input::OpenAiClosed {
                    code: None,
                    reason: "reader gone",
                };
                self.bridge.handle(closed, now);
            }
        }
    }

    /// Executes the core's outputs in order. Frames are buffered per socket and flushed once
    /// per pass (one write syscall for a burst instead of one per frame).
    async fn drain_outputs(&mut self) {
        loop {
            let (telnyx_dirty, openai_dirty) = self.run_outputs().await;
            if telnyx_dirty && self.telnyx.writer.flush().await.is_err() && !self.telnyx_failed {
                self.telnyx_failed = true;
                self.bridge.handle(Input::TelnyxClosed, Instant::now());
                continue;
            }
            let openai_failed = match (&self.openai, openai_dirty) {
                (Some(o), true) => o.writer.flush().await.is_err(),
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
        if self.openai.take().is_some() {
            let closed = Input::OpenAiClosed {
                code: None,
                reason: "write failed",
            };
            self.bridge.handle(closed, Instant::now());
        }
    }

    /// Returns which sockets have buffered frames to flush.
    async fn run_outputs(&mut self) -> (bool, bool) {
        let (mut telnyx_dirty, mut openai_dirty) = (false, false);
        while let Some(out) = self.bridge.poll_output() {
            match out {
                Output::ToTelnyx(text) => {
                    if self.telnyx.writer.queue_text(text).await.is_ok() {
                        telnyx_dirty = true;
                    } else if !self.telnyx_failed {
                        self.telnyx_failed = true;
                        self.bridge.handle(Input::TelnyxClosed, Instant::now());
                    }
                }
                Output::ToOpenAi(text) => {
                    let queued = match &self.openai {
                        Some(o) => o.writer.queue_text(text).await.is_ok(),
                        None => false,
                    };
                    if queued {
                        openai_dirty = true;
                    } else {
                        self.openai_write_failed();
                    }
                }
                Output::HangUp { reason } => self.hang_up(reason),
                Output::CloseOpenAi => {
                    // The close frame is flushed with whatever was queued before it.
                    if let Some(o) = self.openai.take() {
                        o.close(1000).await;
                    }
                    openai_dirty = false;
                }
                Output::Metric(m) => self.metrics.record(&self.span, m),
                Output::Log { level, message } => telemetry::log(level, &message),
                Output::Qualification(q) => self.keep_qualification(*q),
                Output::Transfer { reason } => self.start_transfer(reason),
            }
        }
        (telnyx_dirty, openai_dirty)
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
    async fn hang_up_after_start(&mut self, tel_rx: &mut mpsc::Receiver<WsEvent>) {
        match wait_for_start(tel_rx).await.and_then(|s| s.call_control_id) {
            Some(id) => {
                let telnyx = self.state.0.telnyx.clone();
                let limit = self.state.0.tuning.hangup_timeout;
                self.hangups.spawn(hang_up_call(telnyx, id, limit));
            }
            None => tracing::warn!("cannot hang up: no `start` from Telnyx"),
        }
    }

    /// Closes OpenAI, lets pending hang-ups finish, then closes the Telnyx socket.
    async fn finish(mut self, tel_rx: &mut mpsc::Receiver<WsEvent>, end: &str) {
        if let Some(o) = self.openai.take() {
            o.close(1000).await;
        }
        match end {
            "voicemail" => {
                tracing::info!("AMD says machine: agent cut, webhook-svc handles the voicemail");
                let _ = self
                    .telnyx
                    .writer
                    .send_text(r#"{"event":"clear"}"#.into())
                    .await;
                passive_until_closed(tel_rx, PASSIVE_LIMIT).await;
            }
            "shutdown" => tracing::warn!("drain deadline passed: call cut"),
            _ => {}
        }
        if self.hangup_pending {
            self.hang_up_after_start(tel_rx).await;
        }
        let hung_up = !self.hangups.is_empty();
        while self.hangups.join_next().await.is_some() {}
        if hung_up {
            // Telnyx ends the stream itself after a hang-up (`stop`, then close): let it.
            passive_until_closed(tel_rx, HANGUP_STREAM_END).await;
        }
        self.telnyx.close(1000).await;
        tracing::info!(stats = ?self.bridge.stats(), "call finished");
    }
}

/// Resolves once the drain deadline has passed (never if the sender is gone).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Awaits the future if there is one (the branch is disabled otherwise).
async fn maybe<F: std::future::Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
