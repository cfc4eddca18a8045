//! One media stream: Telnyx as the WebSocket client. Sends `connected`, `start`, then a `media`
//! frame every 20 ms of callee audio; plays the app's `media` at real-time pace, echoes `mark`s,
//! honours `clear`, answers bad frames with `error`, and sends `stop` when told to.

use crate::dial_request::{BidiMode, StreamParams};
use crate::ids;
use crate::playout::Playout;
use crate::recording::{MarkEcho, StreamErrorSent, StreamOutcome, StreamRecord};
use crate::state::{BridgePeer, CallInfo, PeerLink, Shared};
use crate::stream_frames::{self as frames, AppFrame, StreamError};
use crate::webhooks::Hooks;
use crate::ws_connect::{self, ConnectError};
use callway_audio::{mulaw, FRAME_BYTES};
use callway_ws::{ClientConn, Event, WriteError};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// Never connected (`streaming.failed` was sent).
    Failed,
    /// The simulator sent `stop` (hang-up or `streaming_stop`).
    Stopped,
    /// The app closed the socket or it broke.
    ClosedByApp,
}

pub(crate) struct StreamHandle {
    stop: Option<oneshot::Sender<()>>,
    pub done: JoinHandle<StreamEnd>,
}

impl StreamHandle {
    /// Sends `stop` and waits for the stream to finish.
    pub async fn stop(mut self) -> StreamEnd {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match tokio::time::timeout(Duration::from_secs(3), &mut self.done).await {
            Ok(Ok(end)) => end,
            _ => {
                self.done.abort();
                StreamEnd::ClosedByApp
            }
        }
    }
}

pub(crate) struct StreamSetup {
    pub shared: Arc<Shared>,
    pub info: Arc<CallInfo>,
    pub hooks: Hooks,
    pub params: StreamParams,
    /// The callee's audio (PCMU) from the answer on; silence follows.
    pub callee_audio: Arc<Vec<u8>>,
    pub answered_at: Instant,
    /// The leg this call is bridged to, if any (changes during the stream).
    pub bridge: watch::Receiver<Option<Arc<BridgePeer>>>,
}

pub(crate) fn spawn(setup: StreamSetup) -> StreamHandle {
    let (stop_tx, stop_rx) = oneshot::channel();
    let shared = setup.shared.clone();
    let done = tokio::spawn(run(setup, stop_rx));
    shared.track_task(done.abort_handle());
    StreamHandle {
        stop: Some(stop_tx),
        done,
    }
}

/// Bytes per 20 ms of the codec the app sends back.
fn frame_bytes(codec: &str, rate: u32) -> usize {
    match codec {
        "L16" => (rate as usize / 50) * 2,
        _ => FRAME_BYTES,
    }
}

struct Session {
    shared: Arc<Shared>,
    idx: usize,
    stream_id: String,
    seq: u64,
    playout: Playout,
    frame_bytes: usize,
    mode: BidiMode,
    decode_pcmu: bool,
    last_mp3_at: Option<Instant>,
}

impl Session {
    fn record(&self, f: impl FnOnce(&mut StreamRecord)) {
        let idx = self.idx;
        self.shared.recorder.with(|r| {
            if let Some(s) = r.streams.get_mut(idx) {
                f(s)
            }
        });
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Handles one text frame from the app; returns frames to send back.
    fn on_text(&mut self, text: &str) -> Vec<String> {
        let now = self.shared.recorder.now_ms();
        match frames::parse_app_frame(text, self.frame_bytes * 1500) {
            Err(e) => vec![self.error(e)],
            Ok(AppFrame::Media(bytes)) => {
                if self.mode == BidiMode::Mp3 {
                    // mp3 mode: whole MP3 files, at most one message per second; not decoded here.
                    let too_soon = self
                        .last_mp3_at
                        .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
                    if too_soon {
                        return vec![self.error(StreamError::rate_limited())];
                    }
                    self.last_mp3_at = Some(Instant::now());
                    let n = bytes.len() as u64;
                    self.record(|s| {
                        s.app_media_messages += 1;
                        s.app_media_bytes += n;
                        s.app_media_at_ms.push(now);
                    });
                    return Vec::new();
                }
                let n = bytes.len();
                let pcm = if self.decode_pcmu {
                    mulaw::decode(&bytes)
                } else {
                    Vec::new()
                };
                let short = n < self.frame_bytes;
                self.record(|s| {
                    s.app_media_messages += 1;
                    s.app_media_bytes += n as u64;
                    s.app_media_at_ms.push(now);
                    s.app_pcm.extend_from_slice(&pcm);
                    if short {
                        s.undersized_media += 1;
                    }
                });
                self.playout.push_audio(bytes);
                Vec::new()
            }
            Ok(AppFrame::Mark(name)) => {
                self.record(|s| s.marks_received.push(name.clone()));
                match self.playout.push_mark(name) {
                    Some(n) => vec![self.mark(n, false)],
                    None => Vec::new(),
                }
            }
            Ok(AppFrame::Clear) => {
                let (marks, dropped) = self.playout.clear();
                self.record(|s| {
                    s.clears_at_ms.push(now);
                    s.cleared_bytes += dropped as u64;
                });
                marks.into_iter().map(|m| self.mark(m, true)).collect()
            }
        }
    }

    fn error(&mut self, e: StreamError) -> String {
        let at_ms = self.shared.recorder.now_ms();
        let rec = StreamErrorSent {
            at_ms,
            code: e.code,
            title: e.title.to_owned(),
        };
        self.record(|s| s.errors_sent.push(rec));
        frames::error(&self.stream_id, &e)
    }

    fn mark(&mut self, name: String, by_clear: bool) -> String {
        let seq = self.next_seq();
        let frame = frames::mark(seq, &self.stream_id, &name);
        let at_ms = self.shared.recorder.now_ms();
        self.record(|s| {
            s.marks_echoed.push(MarkEcho {
                at_ms,
                name,
                by_clear,
            })
        });
        frame
    }
}

async fn run(setup: StreamSetup, mut stop_rx: oneshot::Receiver<()>) -> StreamEnd {
    let StreamSetup {
        shared,
        info,
        hooks,
        params,
        callee_audio,
        answered_at,
        bridge,
    } = setup;
    let stream_id = ids::stream_id();
    let user_id = ids::uuid();
    let idx = shared.recorder.with(|r| {
        r.streams.push(StreamRecord {
            call_control_id: info.call_control_id.clone(),
            stream_id: stream_id.clone(),
            url: params.url.clone(),
            auth_token_sent: params.auth_token.clone(),
            target_legs: params.target_legs.as_str().to_owned(),
            unheard_app_bytes: 0,
            outcome: StreamOutcome::Connecting,
            connected_at_ms: None,
            media_frames_sent: 0,
            app_media_messages: 0,
            app_media_bytes: 0,
            app_media_at_ms: Vec::new(),
            app_pcm: Vec::new(),
            played_pcm: Vec::new(),
            undersized_media: 0,
            marks_received: Vec::new(),
            marks_echoed: Vec::new(),
            clears_at_ms: Vec::new(),
            cleared_bytes: 0,
            errors_sent: Vec::new(),
            stop_sent: false,
            closed_by_app: false,
            ended_at_ms: None,
        });
        r.streams.len() - 1
    });
    let set_outcome = |o: StreamOutcome| {
        let now = shared.recorder.now_ms();
        shared.recorder.with(|r| {
            if let Some(s) = r.streams.get_mut(idx) {
                if o == StreamOutcome::Accepted {
                    s.connected_at_ms = Some(now);
                } else {
                    s.ended_at_ms = Some(now);
                }
                s.outcome = o;
            }
        })
    };
    let mut conn = match ws_connect::connect(&params.url, params.auth_token.as_deref()).await {
        Ok(conn) => conn,
        Err(e) => {
            set_outcome(match e {
                ConnectError::Refused(status) => StreamOutcome::Refused { status },
                ConnectError::Failed(reason) => StreamOutcome::Failed { reason },
            });
            hooks.emit(
                "streaming.failed",
                json!({"failure_reason": "connection_failed", "stream_id": stream_id,
                       "stream_params": {"stream_url": params.url, "track": params.track},
                       "stream_type": "websocket"}),
            );
            return StreamEnd::Failed;
        }
    };
    set_outcome(StreamOutcome::Accepted);

    let fb = frame_bytes(&params.bidi_codec, params.bidi_rate);
    let mut s = Session {
        shared: shared.clone(),
        idx,
        stream_id: stream_id.clone(),
        seq: 0,
        playout: Playout::new(fb),
        frame_bytes: fb,
        mode: params.bidi_mode,
        decode_pcmu: params.bidi_codec == "PCMU",
        last_mp3_at: None,
    };
    let send_inbound = params.track != "outbound_track";
    let send_outbound = params.track != "inbound_track";
    let client_state = shared.client_state(&info.call_control_id);

    let mut out = vec![frames::connected(params.auth_token.as_deref())];
    let end = 'session: {
        if send_all(&mut conn, &mut out).await.is_err() {
            break 'session StreamEnd::ClosedByApp;
        }
        hooks.emit("streaming.started", json!({"stream_url": params.url}));
        let seq = s.next_seq();
        out.push(frames::start(
            seq,
            &frames::StartInfo {
                stream_id: &stream_id,
                user_id: &user_id,
                call_control_id: &info.call_control_id,
                call_session_id: &info.call_session_id,
                from: &info.from,
                to: &info.to,
                client_state: client_state.as_deref(),
                custom_parameters: &params.custom_parameters,
                encoding: "PCMU",
            },
        ));
        if send_all(&mut conn, &mut out).await.is_err() {
            break 'session StreamEnd::ClosedByApp;
        }
        // The callee has been speaking since the answer: start where the call is now.
        let period = shared.cfg.timing.frame_period;
        let since_answer = answered_at.elapsed().as_millis() as u64;
        let mut audio_pos =
            (since_answer / period.as_millis().max(1) as u64) as usize * FRAME_BYTES;
        let mut chunk_in = 0u64;
        let mut chunk_out = 0u64;
        let mut ticker = tokio::time::interval(period);
        loop {
            tokio::select! {
                biased;
                _ = &mut stop_rx => {
                    let seq = s.next_seq();
                    out.push(frames::stop(seq, &stream_id, &user_id, &info.call_control_id));
                    let _ = queue_all(&mut conn, &mut out);
                    s.record(|r| r.stop_sent = true);
                    // Leaves with `stop`, in one write.
                    conn.close(1000).await;
                    break 'session StreamEnd::Stopped;
                }
                () = conn.readable() => {
                    while let Some(ev) = conn.next_event() {
                        match ev {
                            Event::Text(t) => out.extend(s.on_text(t)),
                            Event::Binary(_) => {
                                let e = StreamError::malformed("Binary frames are not supported; send JSON text frames");
                                out.push(s.error(e));
                            }
                            Event::Closed { .. } => {
                                // What earlier messages asked for, then our answer to the
                                // app's Close (queued by `next_event`).
                                let _ = conn.flush().await;
                                break 'session StreamEnd::ClosedByApp;
                            }
                        }
                        // Queued per message: the Close answer must follow the replies
                        // to the messages before it.
                        if queue_all(&mut conn, &mut out).is_err() {
                            break 'session StreamEnd::ClosedByApp;
                        }
                    }
                }
                _ = ticker.tick() => {
                    let tick = s.playout.tick();
                    if send_inbound {
                        let frame = next_callee_frame(&callee_audio, &mut audio_pos);
                        chunk_in += 1;
                        let seq = s.next_seq();
                        out.push(frames::media(seq, &stream_id, "inbound", chunk_in, (chunk_in - 1) * 20, &frame));
                        s.record(|r| r.media_frames_sent += 1);
                    } else {
                        audio_pos += FRAME_BYTES;
                    }
                    // Only the legs `stream_bidirectional_target_legs` names hear the app:
                    // `self` is this leg's party, `opposite` the leg it is bridged to (nobody
                    // when it is not bridged), `both` both.
                    let peer = bridge.borrow().clone();
                    let n = tick.played.len() as u64;
                    let reaches_self = params.target_legs.reaches_callee();
                    let reaches_peer = params.target_legs != crate::dial_request::TargetLegs::SelfLeg
                        && peer.is_some();
                    let heard = if reaches_self { tick.played.clone() } else { Vec::new() };
                    if n > 0 && !reaches_self && !reaches_peer {
                        s.record(|r| r.unheard_app_bytes += n);
                    }
                    // The bridged leg's party is heard by this leg's party (and so on the
                    // outbound track), and hears this party and the app's audio it is sent.
                    let peer_frame = peer.as_ref().map(|p| {
                        let since = p.audio_from.elapsed().as_millis() as u64;
                        let mut pos = (since / period.as_millis().max(1) as u64) as usize * FRAME_BYTES;
                        next_callee_frame(&p.audio, &mut pos)
                    });
                    if let Some(p) = &peer {
                        let to_agent = if reaches_peer && s.decode_pcmu && !tick.played.is_empty() {
                            mulaw::decode(&tick.played)
                        } else {
                            Vec::new()
                        };
                        match p.link {
                            PeerLink::Transfer(idx) => shared.recorder.with(|r| {
                                if let Some(t) = r.transfers.get_mut(idx) {
                                    t.agent_heard_caller_frames += 1;
                                    t.agent_heard_app_pcm.extend_from_slice(&to_agent);
                                }
                            }),
                            // Frames between bridged parties are counted on the bridge's own
                            // clock (`bridge_clock.rs`); the stream adds the app audio.
                            PeerLink::Bridge { idx, peer_is_with } if !to_agent.is_empty() => {
                                shared.recorder.with(|r| {
                                    if let Some(b) = r.bridges.get_mut(idx) {
                                        let leg = if peer_is_with { &mut b.with } else { &mut b.leg };
                                        leg.heard_app_pcm.extend_from_slice(&to_agent);
                                    }
                                })
                            }
                            PeerLink::Bridge { .. } => {}
                        }
                    }
                    if send_outbound {
                        let mut played = heard.clone();
                        played.resize(FRAME_BYTES.max(played.len()), mulaw::SILENCE);
                        if let Some(agent) = &peer_frame {
                            played = mix(&played, agent);
                        }
                        chunk_out += 1;
                        let seq = s.next_seq();
                        out.push(frames::media(seq, &stream_id, "outbound", chunk_out, (chunk_out - 1) * 20, &played));
                    }
                    if !heard.is_empty() && s.decode_pcmu {
                        let pcm = mulaw::decode(&heard);
                        s.record(|r| r.played_pcm.extend_from_slice(&pcm));
                    }
                    for m in tick.marks {
                        let f = s.mark(m, false);
                        out.push(f);
                    }
                }
            }
            if send_all(&mut conn, &mut out).await.is_err() {
                break 'session StreamEnd::ClosedByApp;
            }
        }
    };
    let now = shared.recorder.now_ms();
    s.record(|r| {
        r.ended_at_ms = Some(now);
        if end == StreamEnd::ClosedByApp {
            r.closed_by_app = true;
        }
    });
    end
}

/// Two PCMU frames summed (what a party hears from two sources at once), clipped.
fn mix(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (a, b) = (mulaw::decode(a), mulaw::decode(b));
    let len = a.len().max(b.len());
    let sum: Vec<i16> = (0..len)
        .map(|i| {
            let x = i32::from(a.get(i).copied().unwrap_or(0))
                + i32::from(b.get(i).copied().unwrap_or(0));
            x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
        })
        .collect();
    mulaw::encode(&sum)
}

fn next_callee_frame(audio: &[u8], pos: &mut usize) -> Vec<u8> {
    let mut frame = vec![mulaw::SILENCE; FRAME_BYTES];
    if *pos < audio.len() {
        let end = (*pos + FRAME_BYTES).min(audio.len());
        frame[..end - *pos].copy_from_slice(&audio[*pos..end]);
    }
    *pos += FRAME_BYTES;
    frame
}

/// Queues `out`'s frames, in order.
fn queue_all(conn: &mut ClientConn, out: &mut Vec<String>) -> Result<(), WriteError> {
    for text in out.drain(..) {
        conn.queue_text(text.as_bytes())?;
    }
    Ok(())
}

/// Queues `out`'s frames and sends everything queued.
async fn send_all(conn: &mut ClientConn, out: &mut Vec<String>) -> Result<(), WriteError> {
    queue_all(conn, out)?;
    conn.flush().await
}
