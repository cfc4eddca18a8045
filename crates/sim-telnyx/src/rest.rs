//! The Call Control REST API on hyper 1: `POST /v2/calls`, `GET /v2/calls/{id}`,
//! `POST /v2/calls/{id}/actions/{command}`. Bearer auth, Telnyx error bodies, `command_id` dedupe.

use crate::answer_request::parse_answer;
use crate::api_error::{ApiError, ErrorItem};
use crate::bridge_request::{parse_bridge, BridgeParams};
use crate::callee_audio::Script;
use crate::config::{CommandFault, DialFault};
use crate::dial_request::{self, parse_dial, Account};
use crate::fields::Fields;
use crate::placing;
use crate::recording::{
    BridgeLeg, BridgeOutcome, BridgeRecord, CommandRecord, DialRecord, TransferOutcome,
    TransferRecord,
};
use crate::state::{
    lock, BridgePeer, CallCmd, CallEntry, Direction, PeerLink, Phase, Shared, TransferLink, Voice,
};
use crate::transfer_request::{parse_transfer, TransferParams};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const MAX_BODY: usize = 1 << 20;

/// Serves until the simulator aborts this task; dropping `conns` then ends every connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    callway_ws::accept_until(&listener, &mut conns, std::future::pending(), |tcp, _| {
        let shared = shared.clone();
        let svc = service_fn(move |req| handle(shared.clone(), req));
        Some(callway_ws::serve_http1(tcp, svc, None))
    })
    .await;
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .is_some_and(|(scheme, key)| {
            scheme.eq_ignore_ascii_case("bearer") && key.trim() == shared.cfg.api_key
        });
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(respond(
                413,
                &ApiError::bad_json("Request body too large").body(),
            ))
        }
    };
    let (status, value, hold) = route(&shared, &method, &path, authorized, &body);
    if let Some(hold) = hold {
        // `DialFault::PlaceThenTimeout`: the call is out, the answer comes too late to matter.
        tokio::time::sleep(hold).await;
    }
    Ok(respond(status, &value))
}

fn respond(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Status and body of the answer, and how long to hold it back (dial faults only).
type Routed = (u16, Value, Option<std::time::Duration>);

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    authorized: bool,
    body: &[u8],
) -> Routed {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (status, value) = match (method, segs.as_slice()) {
        (&Method::POST, ["v2", "calls"]) => return dial(shared, authorized, body),
        (&Method::GET, ["v2", "calls", id]) => get_call(shared, authorized, &percent_decode(id)),
        (&Method::POST, ["v2", "calls", id, "actions", cmd]) => {
            command(shared, authorized, &percent_decode(id), cmd, body)
        }
        _ if !authorized => error(&ApiError::unauthorized()),
        _ => error(&ApiError::not_found()),
    };
    (status, value, None)
}

fn error(e: &ApiError) -> (u16, Value) {
    (e.status, e.body())
}

/// Parses a JSON object body. An empty body counts as `{}` for commands.
fn parse_body(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_encoding())?;
    if text.trim().is_empty() && empty_ok {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_json(
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(ApiError::bad_json(format!(
            "The request body is not valid JSON: {e}"
        ))),
    }
}

fn dial(shared: &Arc<Shared>, authorized: bool, body: &[u8]) -> Routed {
    let raw = String::from_utf8_lossy(body).into_owned();
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let mut rec = DialRecord {
        at_ms: shared.recorder.now_ms(),
        raw_body: raw,
        body: parsed,
        status: 0,
        error_codes: Vec::new(),
        call_control_id: None,
        duplicate: false,
        fault: None,
    };
    let result = dial_inner(shared, authorized, body, &mut rec);
    let (mut status, mut value) = match result {
        Ok(ok) => ok,
        Err(e) => {
            rec.error_codes = e.codes();
            error(&e)
        }
    };
    // An armed fault hits an accepted dial (new or duplicate) after the work is done.
    let fault = (status == 200).then(|| shared.take_dial_fault()).flatten();
    let mut hold = None;
    match fault {
        Some(DialFault::PlaceThen500) => {
            let e = ApiError::internal();
            rec.error_codes = e.codes();
            (status, value) = error(&e);
        }
        Some(DialFault::PlaceThenTimeout) => hold = Some(shared.cfg.timing.dial_hold),
        None => {}
    }
    rec.fault = fault;
    rec.status = if hold.is_some() { 0 } else { status };
    shared.recorder.with(|r| r.dials.push(rec));
    (status, value, hold)
}

fn dial_inner(
    shared: &Arc<Shared>,
    authorized: bool,
    body: &[u8],
    rec: &mut DialRecord,
) -> Result<(u16, Value), ApiError> {
    if !authorized {
        return Err(ApiError::unauthorized());
    }
    let obj = parse_body(body, false)?;
    if let Some(cid) = obj.get("command_id").and_then(Value::as_str) {
        if let Some((status, value)) = shared.stored_answer(&format!("dial|{cid}")) {
            rec.duplicate = true;
            rec.call_control_id = value["data"]["call_control_id"].as_str().map(str::to_owned);
            return Ok((status, value));
        }
    }
    let account = Account {
        connection_id: &shared.cfg.connection_id,
        from_numbers: &shared.cfg.from_numbers,
    };
    let params = parse_dial(&obj, &account)?;
    let script = lock(&shared.scripts)
        .get(&params.to)
        .cloned()
        .or_else(|| lock(&shared.default_script).clone())
        .unwrap_or_else(Script::default_human);
    let info = placing::outbound(shared, params, script, None, None);
    let value = json!({"data": {
        "call_control_id": info.call_control_id,
        "call_leg_id": info.call_leg_id,
        "call_session_id": info.call_session_id,
        "is_alive": false,
        "record_type": "call",
    }});
    if let Some(cid) = &info.dial.command_id {
        shared.store_answer(format!("dial|{cid}"), 200, value.clone());
    }
    rec.call_control_id = Some(info.call_control_id.clone());
    Ok((200, value))
}

fn get_call(shared: &Arc<Shared>, authorized: bool, id: &str) -> (u16, Value) {
    if !authorized {
        return error(&ApiError::unauthorized());
    }
    let calls = lock(&shared.calls);
    let Some(c) = calls.get(id) else {
        return error(&ApiError::not_found());
    };
    let duration = match (c.answered_at, c.ended_at) {
        (Some(a), Some(e)) => Some(e.duration_since(a).as_secs()),
        (Some(a), None) => Some(a.elapsed().as_secs()),
        _ => None,
    };
    (
        200,
        json!({"data": {
            "call_control_id": c.info.call_control_id,
            "call_leg_id": c.info.call_leg_id,
            "call_session_id": c.info.call_session_id,
            "client_state": c.client_state,
            "is_alive": c.phase != Phase::Ended,
            "record_type": "call",
            "start_time": c.answer_time,
            "end_time": c.end_time,
            "call_duration": duration,
        }}),
    )
}

fn command(
    shared: &Arc<Shared>,
    authorized: bool,
    id: &str,
    cmd: &str,
    body: &[u8],
) -> (u16, Value) {
    let parsed = parse_body(body, true).ok();
    let mut rec = CommandRecord {
        at_ms: shared.recorder.now_ms(),
        call_control_id: id.to_owned(),
        command: cmd.to_owned(),
        command_id: parsed
            .as_ref()
            .and_then(|m| m.get("command_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        body: parsed.map(Value::Object),
        status: 0,
        error_codes: Vec::new(),
        duplicate: false,
    };
    let (status, value) = match command_inner(shared, authorized, id, cmd, body, &mut rec) {
        Ok(ok) => ok,
        Err(e) => {
            rec.error_codes = e.codes();
            error(&e)
        }
    };
    rec.status = status;
    shared.recorder.with(|r| r.commands.push(rec));
    (status, value)
}

const KNOWN_COMMANDS: &[&str] = &[
    "answer",
    "hangup",
    "speak",
    "playback_start",
    "streaming_start",
    "streaming_stop",
    "client_state_update",
    "transfer",
    "bridge",
];

fn command_inner(
    shared: &Arc<Shared>,
    authorized: bool,
    id: &str,
    cmd: &str,
    body: &[u8],
    rec: &mut CommandRecord,
) -> Result<(u16, Value), ApiError> {
    if !authorized {
        return Err(ApiError::unauthorized());
    }
    if !KNOWN_COMMANDS.contains(&cmd) {
        return Err(ApiError::not_found());
    }
    let obj = parse_body(body, true)?;
    // What validation needs to know of the call: its `to` (a transfer's default `from`).
    let original_to = lock(&shared.calls)
        .get(id)
        .map(|c| c.info.to.clone())
        .ok_or_else(ApiError::invalid_call_control_id)?;
    let dedupe_key = rec.command_id.as_ref().map(|cid| format!("{id}|{cid}"));
    if let Some((status, value)) = dedupe_key.as_ref().and_then(|k| shared.stored_answer(k)) {
        rec.duplicate = true;
        return Ok((status, value));
    }
    let mut f = Fields::new(&obj);
    let client_state = f.opt_base64("client_state").map(str::to_owned);
    f.opt_str("command_id");
    let action = validate_command(cmd, &obj, &mut f, &original_to, &shared.cfg.connection_id);
    if !f.errors.is_empty() {
        return Err(ApiError::unprocessable(f.errors));
    }
    // An armed command fault refuses a valid command before it does anything.
    if let Some(fault) = shared.take_command_fault(cmd) {
        return Err(match fault {
            CommandFault::Refused => ApiError::unprocessable(vec![ErrorItem::new(
                "10015",
                "Invalid value",
                format!("The {cmd} command could not be processed."),
            )]),
            CommandFault::Unavailable => ApiError::unavailable(),
        });
    }
    let action = action.ok_or_else(|| {
        ApiError::unprocessable(vec![ErrorItem::invalid("body", "Invalid command")])
    })?;

    let mut calls = lock(&shared.calls);
    let c = calls
        .get_mut(id)
        .ok_or_else(ApiError::invalid_call_control_id)?;
    let incoming = c.info.direction == Direction::Incoming;
    match (c.phase, &action) {
        (Phase::Ended, _) => return Err(ApiError::call_ended()),
        (_, Action::Send(CallCmd::Answer(_))) if !incoming => {
            return Err(ApiError::unprocessable(vec![ErrorItem::invalid(
                "call_control_id",
                "answer applies to incoming calls; this call is outgoing.",
            )]))
        }
        // Decision: Telnyx documents no code for answering an answered call; 10015 with a plain
        // detail, as for the other invalid requests on a call's state.
        (Phase::Answered, Action::Send(CallCmd::Answer(_))) => {
            return Err(ApiError::unprocessable(vec![ErrorItem::invalid(
                "call_control_id",
                "This call has already been answered.",
            )]))
        }
        (
            Phase::Ringing,
            Action::Send(CallCmd::Hangup | CallCmd::Answer(_)) | Action::ClientState,
        ) => {}
        // "You must issue this command [answer] before executing subsequent commands on an
        // incoming call" (`AnswerCall`); an outgoing call must have been picked up.
        (Phase::Ringing, _) => return Err(ApiError::not_answered()),
        (Phase::Answered, Action::Send(CallCmd::StreamingStart(_))) if c.streaming => {
            return Err(ApiError::streaming_in_use())
        }
        // Decision: one transfer at a time. The spec lets a call whose transfer failed be
        // transferred again, and says nothing of a transfer while one rings or is bridged.
        (Phase::Answered, Action::Transfer(_)) if c.peer.is_some() => {
            return Err(ApiError::unprocessable(vec![ErrorItem::invalid(
                "call_control_id",
                "A transfer is already in progress or bridged on this call.",
            )]))
        }
        (Phase::Answered, Action::Bridge(_)) if c.peer.is_some() => {
            return Err(already_bridged("This call"))
        }
        _ => {}
    }
    if let Action::Bridge(p) = &action {
        check_bridge_target(&calls, id, p)?;
    }
    let c = calls
        .get_mut(id)
        .ok_or_else(ApiError::invalid_call_control_id)?;
    if let Some(cs) = client_state {
        c.client_state = Some(cs);
    }
    match action {
        Action::ClientState => {}
        Action::Transfer(params) => {
            let session = c.info.call_session_id.clone();
            drop(calls);
            transfer(shared, id, &obj, *params, session);
        }
        Action::Bridge(params) => bridge(shared, &mut calls, id, &obj, &params),
        Action::Send(cmd) => {
            match &cmd {
                CallCmd::Hangup => c.phase = Phase::Ended,
                CallCmd::StreamingStart(_) => c.streaming = true,
                CallCmd::Answer(p) => {
                    // Answered from now on for the REST side: a second answer is refused even
                    // before the call task has sent `call.answered`.
                    c.phase = Phase::Answered;
                    c.routing = p.routing.clone();
                    c.streaming = p.stream.is_some();
                    let (ignored, body) = (p.ignored.clone(), Value::Object(obj.clone()));
                    shared.recorder.with(|r| {
                        if let Some(i) = r.inbound.iter_mut().find(|i| i.call_control_id == id) {
                            i.answer = Some(body);
                            i.answer_ignored_fields = ignored;
                        }
                    });
                }
                _ => {}
            }
            // The call task only goes away after the call ended, which was checked above.
            let _ = c.cmd_tx.send(cmd);
        }
    }
    let value = json!({"data": {"result": "ok"}});
    if let Some(k) = dedupe_key {
        shared.store_answer(k, 200, value.clone());
    }
    Ok((200, value))
}

/// Places the agent leg of an accepted transfer and records it.
fn transfer(
    shared: &Arc<Shared>,
    id: &str,
    body: &Map<String, Value>,
    params: TransferParams,
    session: String,
) {
    let script = lock(&shared.agents)
        .get(&params.leg.to)
        .cloned()
        .unwrap_or(Script::NoAnswer);
    let (to, from) = (params.leg.to.clone(), params.leg.from.clone());
    let now = shared.recorder.now_ms();
    let idx = shared.recorder.with(|r| {
        r.transfers.push(TransferRecord {
            at_ms: now,
            call_control_id: id.to_owned(),
            body: Value::Object(body.clone()),
            to,
            from,
            agent_call_control_id: String::new(),
            outcome: TransferOutcome::Ringing,
            announce: params.announce.clone(),
            park_after_unbridge: params.park_after_unbridge,
            agent_answered_at_ms: None,
            bridged_at_ms: None,
            ended_at_ms: None,
            agent_hangup_cause: None,
            agent_heard_caller_frames: 0,
            agent_heard_app_pcm: Vec::new(),
        });
        r.transfers.len() - 1
    });
    let link = TransferLink {
        original: id.to_owned(),
        park_after_unbridge: params.park_after_unbridge,
        announce: params.announce,
        transfer_idx: idx,
    };
    let info = placing::outbound(shared, params.leg, script, Some(link), Some(session));
    // Linked unless the leg already ended (its end unlinks what is linked by then, under the
    // same lock, so a leg that ends now still finds the link and reports its end).
    let mut calls = lock(&shared.calls);
    let ended = calls
        .get(&info.call_control_id)
        .is_some_and(|c| c.phase == Phase::Ended);
    if let (false, Some(c)) = (ended, calls.get_mut(id)) {
        c.peer = Some(info.call_control_id.clone());
    }
    drop(calls);
    let agent = info.call_control_id.clone();
    shared.recorder.with(|r| {
        if let Some(t) = r.transfers.get_mut(idx) {
            t.agent_call_control_id = agent;
        }
    });
}

/// Refuses a bridge with a call that cannot be bridged with `id` now.
fn check_bridge_target(
    calls: &HashMap<String, CallEntry>,
    id: &str,
    p: &BridgeParams,
) -> Result<(), ApiError> {
    // Decision: the spec has no code for a call bridged with itself; 10015 on the field.
    if p.with == id {
        return Err(ApiError::unprocessable(vec![ErrorItem::invalid(
            "call_control_id",
            "A call cannot be bridged with itself.",
        )]));
    }
    let other = calls
        .get(&p.with)
        .ok_or_else(ApiError::invalid_call_control_id)?;
    match other.phase {
        Phase::Ended => Err(ApiError::one(
            422,
            ErrorItem::new(
                "90018",
                "Call has already ended",
                "The call to bridge with is no longer active.",
            )
            .at("/call_control_id"),
        )),
        // Decision: `play_ringtone` ("if the call you want to bridge with has not yet been
        // answered") says Telnyx can bridge with a ringing call and ring until it answers; the
        // simulator does not model that early bridge and refuses, with the code of a command
        // on an unanswered call.
        Phase::Ringing => Err(ApiError::one(
            422,
            ErrorItem::new(
                "90034",
                "Call not answered yet",
                "The call to bridge with has not been answered yet.",
            )
            .at("/call_control_id"),
        )),
        // `prevent_double_bridge: true` "prevents bridging if the target call is already
        // bridged to another call". Decision: without it (the default) Telnyx would presumably
        // take the target out of its bridge; the simulator refuses all the same (as it refuses
        // a bridge on a call in a transfer).
        Phase::Answered if other.peer.is_some() => {
            Err(already_bridged(if p.prevent_double_bridge {
                "The call to bridge with (prevent_double_bridge)"
            } else {
                "The call to bridge with"
            }))
        }
        Phase::Answered => Ok(()),
    }
}

/// Decision: 10015 for a call that is already bridged (or has a transfer ringing).
fn already_bridged(which: &str) -> ApiError {
    ApiError::unprocessable(vec![ErrorItem::invalid(
        "call_control_id",
        format!("{which} is already bridged, or has a transfer in progress."),
    )])
}

/// Makes an accepted bridge: both entries linked (under the calls lock, so that a leg ending
/// now finds the link and unbridges the other), recorded, both tasks told (`call.bridged`),
/// and the bridge's audio clock started.
fn bridge(
    shared: &Arc<Shared>,
    calls: &mut HashMap<String, CallEntry>,
    id: &str,
    body: &Map<String, Value>,
    p: &BridgeParams,
) {
    let stays = p.park_after_unbridge || p.hold_after_unbridge;
    let now = shared.recorder.now_ms();
    let idx = shared.recorder.with(|r| {
        r.bridges.push(BridgeRecord {
            at_ms: now,
            body: Value::Object(body.clone()),
            leg: BridgeLeg::new(id, stays),
            with: BridgeLeg::new(&p.with, false),
            outcome: BridgeOutcome::Bridged,
            unbridged_at_ms: None,
            hangup_order: Vec::new(),
        });
        r.bridges.len() - 1
    });
    let voice = |c: Option<&CallEntry>| {
        c.and_then(|c| c.voice.clone()).unwrap_or_else(|| Voice {
            audio: Arc::new(Vec::new()),
            from: std::time::Instant::now(),
        })
    };
    let (leg_voice, with_voice) = (voice(calls.get(id)), voice(calls.get(&p.with)));
    // Each leg holds the other as its peer; only the commanded leg may stay after unbridge.
    let pairs = [
        (id, &p.with, with_voice, true, stays),
        (p.with.as_str(), &id.to_owned(), leg_voice, false, false),
    ];
    for (holder, other, v, peer_is_with, park) in pairs {
        if let Some(c) = calls.get_mut(holder) {
            c.bridged = true;
            c.peer = Some(other.clone());
            let peer = Arc::new(BridgePeer {
                call_control_id: other.clone(),
                audio: v.audio,
                audio_from: v.from,
                link: PeerLink::Bridge { idx, peer_is_with },
                park_after_unbridge: park,
            });
            // Sent under the lock: it precedes any `OppositeEnded` for this bridge.
            let _ = c.cmd_tx.send(CallCmd::Bridged(peer));
        }
    }
    crate::bridge_clock::spawn(shared, idx, id.to_owned(), p.with.clone());
}

enum Action {
    ClientState,
    Transfer(Box<TransferParams>),
    Bridge(Box<BridgeParams>),
    Send(CallCmd),
}

/// Validates a command's own fields. Returns `None` only together with an error in `f`.
fn validate_command(
    cmd: &str,
    obj: &Map<String, Value>,
    f: &mut Fields<'_>,
    original_to: &str,
    connection_id: &str,
) -> Option<Action> {
    Some(match cmd {
        "answer" => Action::Send(CallCmd::Answer(Box::new(parse_answer(obj, f)?))),
        "transfer" => Action::Transfer(Box::new(parse_transfer(f, original_to, connection_id)?)),
        "bridge" => Action::Bridge(Box::new(parse_bridge(f)?)),
        "hangup" => {
            if f.has("custom_headers") && !f.raw("custom_headers").is_some_and(Value::is_array) {
                f.errors.push(ErrorItem::invalid(
                    "custom_headers",
                    "Must be an array of {name, value}.",
                ));
            }
            Action::Send(CallCmd::Hangup)
        }
        "client_state_update" => {
            if !f.has("client_state") {
                f.errors.push(ErrorItem::missing("client_state"));
            }
            Action::ClientState
        }
        "streaming_start" => {
            if !f.has("stream_url") {
                f.errors.push(ErrorItem::missing("stream_url"));
            }
            let params = dial_request::parse_stream(f, "stream_url");
            f.opt_bool("enable_dialogflow");
            Action::Send(CallCmd::StreamingStart(params?))
        }
        "streaming_stop" => {
            f.opt_str("stream_id");
            Action::Send(CallCmd::StreamingStop)
        }
        "speak" => {
            crate::speak_request::parse_speak(f)?;
            Action::Send(CallCmd::Speak)
        }
        "playback_start" => {
            let url = f.opt_http_url("audio_url").map(str::to_owned);
            let name = f.opt_str("media_name").map(str::to_owned);
            let content = f.opt_base64("playback_content").map(str::to_owned);
            let given = [url.is_some(), name.is_some(), content.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if given == 0 && f.errors.is_empty() {
                f.errors.push(ErrorItem::missing("audio_url"));
            } else if given > 1 {
                f.errors.push(ErrorItem::invalid(
                    "audio_url",
                    "audio_url, media_name and playback_content cannot be used together.",
                ));
            }
            f.opt_bool("overlay");
            f.opt_enum("target_legs", &["self", "opposite", "both"]);
            f.opt_enum("audio_type", &["mp3", "wav"]);
            match f.raw("loop") {
                None => {}
                Some(Value::String(s)) if s == "infinity" => {}
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=100).contains(&n)) => {}
                Some(_) => f.errors.push(ErrorItem::out_of_range(
                    "loop",
                    "loop must be 1-100 or \"infinity\".",
                )),
            }
            Action::Send(CallCmd::Playback {
                media: json!({"media_url": url, "media_name": name, "overlay": false}),
            })
        }
        _ => return None,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
