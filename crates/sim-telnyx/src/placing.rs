//! Creating a call leg: its ids, its entry in the call table, and the task that runs it.
//! Dials, transfers' agent legs and inbound calls all start here.

use crate::call_lifecycle;
use crate::call_options::Routing;
use crate::callee_audio::{CallerScript, Script};
use crate::dial_request::DialParams;
use crate::ids;
use crate::inbound_call;
use crate::state::{lock, CallEntry, CallInfo, Direction, Shared, TransferLink};
use std::sync::Arc;

/// Places an outbound leg (a dial, or a transfer's agent leg when `transfer_of` is set).
/// `session` is the call session to join (a transfer's legs share one).
pub(crate) fn outbound(
    shared: &Arc<Shared>,
    dial: DialParams,
    script: Script,
    transfer_of: Option<TransferLink>,
    session: Option<String>,
) -> Arc<CallInfo> {
    let routing = Routing {
        webhook_url: dial.webhook_url.clone(),
        webhook_urls: dial.webhook_urls.clone(),
        retry_policies: dial.retry_policies.clone(),
    };
    let info = Arc::new(CallInfo {
        call_control_id: ids::call_control_id(),
        call_leg_id: ids::uuid(),
        call_session_id: session.unwrap_or_else(ids::uuid),
        from: dial.from.clone(),
        to: dial.to.clone(),
        connection_id: dial.connection_id.clone(),
        start_time: ids::now_iso(),
        dial,
        direction: Direction::Outgoing,
        transfer_of,
    });
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    lock(&shared.calls).insert(
        info.call_control_id.clone(),
        CallEntry::new(info.clone(), cmd_tx, routing),
    );
    let task = tokio::spawn(call_lifecycle::run(
        shared.clone(),
        info.clone(),
        script,
        cmd_rx,
    ));
    shared.track_task(task.abort_handle());
    info
}

/// A call arriving on the account's connection from `from` to `to`.
pub(crate) fn inbound(
    shared: &Arc<Shared>,
    from: &str,
    to: &str,
    caller: CallerScript,
) -> Arc<CallInfo> {
    let connection_id = shared.cfg.connection_id.clone();
    let info = Arc::new(CallInfo {
        call_control_id: ids::call_control_id(),
        call_leg_id: ids::uuid(),
        call_session_id: ids::uuid(),
        from: from.to_owned(),
        to: to.to_owned(),
        connection_id: connection_id.clone(),
        start_time: ids::now_iso(),
        dial: DialParams::inbound(to, from, &connection_id),
        direction: Direction::Incoming,
        transfer_of: None,
    });
    let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    lock(&shared.calls).insert(
        info.call_control_id.clone(),
        CallEntry::new(info.clone(), cmd_tx, Routing::default()),
    );
    let task = tokio::spawn(inbound_call::run(
        shared.clone(),
        info.clone(),
        caller,
        cmd_rx,
    ));
    shared.track_task(task.abort_handle());
    info
}
