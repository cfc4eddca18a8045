//! One web call's sideband, held by this instance while it holds the call's lease: attach
//! (`?call_id=`, standard key), feed the controller, run the tools it asks for, save the turns,
//! and end the call the way the controller decides. A drop is re-attached (bounded); a refused
//! first attach, or too many drops, ends the call (`control_lost`): a voice agent whose tools
//! nobody runs must not keep talking.

use super::control::{Action, Control, ToolResult};
use super::socket::{self, Incoming};
use super::Sideband;
use crate::tools::{self, PreparedCallback, ToolCall};
use crate::ToolsState;
use callway_core::session_token::WebSessionId;
use callway_core::web_call::{Handoff, WebCall, WebCallEnd};
use callway_ws::ConnectError;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Attaches after a drop before we give up on the call.
const MAX_REATTACH: u32 = 3;

enum Attached {
    /// The controller decided how the call ends.
    Ended(WebCallEnd),
    /// The server closed the sideband: the call itself ended.
    CallClosed,
    /// The connection broke: attach again.
    Dropped,
    /// Another instance holds the lease now.
    LeaseLost,
}

pub(super) async fn run(sb: Sideband, ws: WebSessionId) {
    let Some(call) = (match sb.state.web_calls.load(&ws).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "web call not readable; leaving it to another attempt");
            let _ = sb.state.web_calls.unlease(&ws, &sb.instance).await;
            return;
        }
    }) else {
        // token-svc takes the slot before it creates the call and writes the record: not yet.
        // The next scan tries again; a record that never comes ends with its slot's deadline.
        let _ = sb.state.web_calls.unlease(&ws, &sb.instance).await;
        return;
    };
    if call.ended.is_some() {
        let _ = sb.state.web_calls.release_slot(&ws).await;
        return;
    }
    let span = tracing::info_span!("web.sideband", web_session = %ws, call_id = %call.rtc_call_id.as_str());
    // The session request's trace, set before the span is first entered: the tools' spans hang
    // under it whichever instance runs them.
    callway_core::telemetry::set_remote_parent(&span, call.traceparent.as_deref());
    tracing::Instrument::instrument(run_call(sb, call, span.clone()), span).await
}

async fn run_call(sb: Sideband, call: WebCall, span: tracing::Span) {
    let deadline = Instant::now()
        + (call.deadline - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
    let mut control = Control::new(
        deadline,
        callway_core::prompts::time_limit_goodbye(sb.max_session_secs.div_ceil(60)),
    );
    let mut session = SessionRun {
        sb: sb.clone(),
        call,
        prepared: None,
    };
    let mut attempts = 0u32;
    let end = loop {
        let endpoint = sb.endpoint.with_path(format!(
            "{}?call_id={}",
            sb.realtime_path,
            callway_ws::encode_query_value(session.call.rtc_call_id.as_str())
        ));
        let attached = match endpoint.connect().await {
            Ok(socket) => {
                attempts = 0;
                tracing::info!(parent: &span, "sideband attached");
                session.attached(socket, &mut control).await
            }
            Err(ConnectError::Refused(status)) => {
                tracing::warn!(parent: &span, status, "sideband attach refused");
                // After a drop, 404 means the call ended meanwhile; at first it means we cannot
                // control a call the visitor is talking to.
                break if status == 404 && attempts > 0 {
                    Some(WebCallEnd::Closed)
                } else {
                    Some(WebCallEnd::ControlLost)
                };
            }
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, "sideband attach failed");
                Attached::Dropped
            }
        };
        match attached {
            Attached::Ended(reason) => break Some(reason),
            Attached::CallClosed => break Some(WebCallEnd::Closed),
            Attached::LeaseLost => break None,
            Attached::Dropped if control.handing_off() => break Some(WebCallEnd::Handoff),
            Attached::Dropped => {
                attempts += 1;
                if attempts > MAX_REATTACH {
                    break Some(WebCallEnd::ControlLost);
                }
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempts))).await;
            }
        }
    };
    match end {
        Some(reason) => session.finish(reason).await,
        None => tracing::info!(parent: &span, "sideband lease taken over by another instance"),
    }
}

struct SessionRun {
    sb: Sideband,
    call: WebCall,
    prepared: Option<PreparedCallback>,
}

impl SessionRun {
    async fn attached(&mut self, socket: callway_ws::Ws, control: &mut Control) -> Attached {
        let (mut incoming, mut writer, reader) = socket::split(socket);
        let (tool_tx, mut tool_rx) =
            mpsc::channel::<(String, ToolResult, Option<PreparedCallback>)>(16);
        let mut renew = tokio::time::interval(super::LEASE_RENEW);
        renew.tick().await;
        let outcome = loop {
            let wake = control
                .next_deadline()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let actions = tokio::select! {
                msg = incoming.recv() => match msg {
                    Some(Incoming::Text(t)) => match serde_json::from_str(&t) {
                        Ok(ev) => control.on_event(&ev, Instant::now()),
                        Err(_) => Vec::new(),
                    },
                    Some(Incoming::Obligated(op, payload)) => {
                        let _ = writer.obligated(op, payload).await;
                        Vec::new()
                    }
                    Some(Incoming::Closed(code)) => {
                        tracing::info!(code, "sideband closed by OpenAI: the call ended");
                        break Attached::CallClosed;
                    }
                    Some(Incoming::Dropped) | None => break Attached::Dropped,
                },
                done = tool_rx.recv() => match done {
                    Some((call_id, result, prepared)) => {
                        if let Some(p) = prepared {
                            self.call.handoff = Some(Handoff {
                                call_ref: p.call_ref.clone(),
                                phone_masked: p.phone_masked.clone(),
                            });
                            self.prepared = Some(p);
                        }
                        control.tool_done(&call_id, result, Instant::now())
                    }
                    None => Vec::new(),
                },
                _ = tokio::time::sleep_until(wake) => control.tick(Instant::now()),
                _ = renew.tick() => {
                    match self.sb.state.web_calls.renew(&self.call.session, &self.sb.instance, super::LEASE_TTL).await {
                        Ok(false) => break Attached::LeaseLost,
                        Ok(true) => {}
                        // A store hiccup: keep serving; the lease TTL covers a short one.
                        Err(e) => tracing::warn!(error = %e, "lease not renewed"),
                    }
                    Vec::new()
                }
            };
            let mut ended = None;
            for action in actions {
                match action {
                    Action::Send(ev) => {
                        if writer.text(ev.to_string()).await.is_err() {
                            break;
                        }
                    }
                    Action::RunTool {
                        call_id,
                        name,
                        arguments,
                    } => {
                        let (state, call, tx) =
                            (self.sb.state.clone(), self.call.clone(), tool_tx.clone());
                        // The tool's spans hang under the sideband's (the session's trace).
                        let task = async move {
                            let (result, prepared) =
                                execute(&state, &call, &call_id, &name, &arguments).await;
                            let _ = tx.send((call_id, result, prepared)).await;
                        };
                        tokio::spawn(tracing::Instrument::instrument(
                            task,
                            tracing::Span::current(),
                        ));
                    }
                    Action::SaveTurn(turn) => {
                        if let Err(e) = self
                            .sb
                            .state
                            .web_calls
                            .push_turn(&self.call.session, &turn)
                            .await
                        {
                            tracing::warn!(error = %e, "turn not saved");
                        }
                    }
                    Action::HangUp(reason) => ended = Some(reason),
                }
            }
            if let Some(reason) = ended {
                writer.close(1000, "call ended by the server").await;
                break Attached::Ended(reason);
            }
        };
        reader.abort();
        outcome
    }

    /// Ends the call: hang-up, the record, the slot; then (hand-off only) the dial.
    async fn finish(mut self, reason: WebCallEnd) {
        let st = &self.sb.state;
        if reason != WebCallEnd::Closed {
            if let Err(e) = self
                .sb
                .state
                .call_control
                .hangup(&self.call.rtc_call_id)
                .await
            {
                tracing::warn!(error = %e, "web call hang-up failed");
            }
        }
        self.call.ended = Some(reason);
        if let Err(e) = st.web_calls.put(&self.call).await {
            tracing::warn!(error = %e, "web call end not recorded");
        }
        let _ = st.web_calls.release_slot(&self.call.session).await;
        let _ = st
            .web_calls
            .unlease(&self.call.session, &self.sb.instance)
            .await;
        tracing::info!(reason = ?reason, "web call ended");
        if let Some(prepared) = self.prepared.take() {
            if let Err(e) = tools::place_callback(st, prepared).await {
                tracing::warn!(error = %e, "callback not placed");
            }
        }
    }
}

/// Runs one tool; returns the output for the model and, for a prepared callback, the dial to
/// place after the hang-up.
async fn execute(
    state: &ToolsState,
    call: &WebCall,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> (ToolResult, Option<PreparedCallback>) {
    let plain = |output: String| ToolResult {
        output: Some(output),
        handoff: false,
    };
    // Once per function call across instances (a re-attached sideband may see it again).
    match state
        .web_calls
        .claim_function_call(&call.session, call_id)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return (
                ToolResult {
                    output: None,
                    handoff: false,
                },
                None,
            )
        }
        Err(e) => {
            return (
                plain(crate::error::ToolsError::Context(e).to_output()),
                None,
            )
        }
    }
    let parsed = match ToolCall::parse(name, arguments) {
        Ok(p) => p,
        Err(e) => return (plain(e.to_output()), None),
    };
    match parsed {
        ToolCall::SaveLead(args) => match tools::save_lead(state, call, args).await {
            Ok(out) => (plain(serde_json::to_string(&out).unwrap_or_default()), None),
            Err(e) => (plain(e.to_output()), None),
        },
        ToolCall::TriggerCall(args) => {
            match tools::prepare_callback(state, call, &args.lead_id).await {
                Ok(p) => {
                    let mut record = call.clone();
                    record.handoff = Some(Handoff {
                        call_ref: p.call_ref.clone(),
                        phone_masked: p.phone_masked.clone(),
                    });
                    if let Err(e) = state.web_calls.put(&record).await {
                        tracing::warn!(error = %e, "hand-off not recorded on the web call");
                    }
                    let output = serde_json::json!({
                        "status": "calling",
                        "call_id": p.call_ref.as_str(),
                        "phone_masked": p.phone_masked,
                        "message": "Le rappel est prêt : le téléphone sonnera dès la fin de cette session web."
                    });
                    (
                        ToolResult {
                            output: Some(output.to_string()),
                            handoff: true,
                        },
                        Some(p),
                    )
                }
                Err(e) => (plain(e.to_output()), None),
            }
        }
    }
}
