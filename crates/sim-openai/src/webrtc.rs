//! The WebRTC peer: str0m (ICE-lite, DTLS, SRTP, SCTP) driven by a tokio UDP socket. Opus (or
//! PCMU/PCMA) audio both ways; server events on the `oai-events` data channel.

use crate::calls::CallOrigin;
use crate::engine::{recorded_form, Engine, Output};
use crate::errors::FieldError;
use crate::live_call::{LiveCall, SidebandIn};
use crate::recording::{CallEndReason, CallRecord, SessionRecord, TransportKind};
use crate::session_config::SessionConfig;
use crate::state::{lock, Shared};
use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Channels, SampleRate};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output as RtcOutput, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const FRAME: Duration = Duration::from_millis(20);

fn invalid_offer(msg: impl Into<String>) -> FieldError {
    FieldError::new("invalid_offer", msg, None)
}

/// Checks the offer, builds the peer and its answer, and spawns its run loop.
pub(crate) fn start_peer(
    offer_sdp: &str,
    session: SessionConfig,
    call_id: String,
    origin: CallOrigin,
    shared: Arc<Shared>,
) -> Result<String, FieldError> {
    if !offer_sdp.trim_start().starts_with("v=0") {
        return Err(invalid_offer(
            "Invalid SDP offer: expected a session description starting with 'v=0'.",
        ));
    }
    let offer = SdpOffer::from_sdp_string(offer_sdp)
        .map_err(|e| invalid_offer(format!("Invalid SDP offer: {e}")))?;
    if !offer_sdp.lines().any(|l| l.starts_with("m=audio")) {
        return Err(invalid_offer(
            "Invalid SDP offer: no audio media section (m=audio).",
        ));
    }
    let std_socket =
        std::net::UdpSocket::bind(SocketAddr::new(shared.media_ip, 0)).map_err(|e| {
            FieldError::new(
                "server_error",
                format!("cannot bind a media socket: {e}"),
                None,
            )
        })?;
    std_socket
        .set_nonblocking(true)
        .map_err(|e| FieldError::new("server_error", e.to_string(), None))?;
    let local = std_socket
        .local_addr()
        .map_err(|e| FieldError::new("server_error", e.to_string(), None))?;
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_pcmu(true, false)
        .enable_pcma(true, false)
        .build(Instant::now());
    let cand = Candidate::host(local, "udp")
        .map_err(|e| FieldError::new("server_error", e.to_string(), None))?;
    rtc.add_local_candidate(cand);
    // str0m is defensive, but a hostile offer must never take the simulator down.
    let accepted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rtc.sdp_api().accept_offer(offer)
    }))
    .map_err(|_| invalid_offer("Invalid SDP offer: could not be negotiated."))?;
    let answer = accepted.map_err(|e| invalid_offer(format!("Invalid SDP offer: {e}")))?;
    let socket = UdpSocket::from_std(std_socket)
        .map_err(|e| FieldError::new("server_error", e.to_string(), None))?;
    let call_record = shared.recorder.add_call(CallRecord {
        call_id: call_id.clone(),
        session_id: session.id.clone(),
        created_with: origin.created_with,
        session_request: origin.session_request,
        created: shared.recorder.moment(),
        hangup_requested: None,
        ended: None,
    });
    let (call, from_sidebands) = LiveCall::new(call_id.clone(), session.id.clone(), call_record);
    lock(&shared.calls).insert(call_id.clone(), call.clone());
    let record = shared.recorder.add_session(SessionRecord::new(
        &session.id,
        TransportKind::WebRtc,
        Some(call_id.clone()),
        session.to_json(),
    ));
    let engine = Engine::new(
        session,
        TransportKind::WebRtc,
        48_000,
        shared.scenario(),
        shared.opts,
        record,
    );
    tokio::spawn(async move {
        let mut peer = Peer::new(rtc, socket, local, engine, call.clone());
        peer.run(&shared, from_sidebands).await;
    });
    Ok(answer.to_sdp_string())
}

#[derive(Clone, Copy, PartialEq)]
enum SendCodec {
    Opus,
    Pcmu,
    Pcma,
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    engine: Engine,
    call: Arc<LiveCall>,
    start: Instant,
    mid: Option<Mid>,
    send: Option<(str0m::format::PayloadParams, SendCodec)>,
    channel: Option<str0m::channel::ChannelId>,
    /// The channel being closed and whether the browser acknowledged it (its stream reset).
    closing: Option<(str0m::channel::ChannelId, bool)>,
    pending_events: Vec<String>,
    playback: VecDeque<i16>,
    rtp_samples: u64,
    encoder: Option<Encoder>,
    decoder: Option<Decoder>,
    connected: bool,
    /// Why the run loop must stop, once it must.
    done: Option<CallEndReason>,
}

impl Peer {
    fn new(
        rtc: Rtc,
        socket: UdpSocket,
        local: SocketAddr,
        engine: Engine,
        call: Arc<LiveCall>,
    ) -> Self {
        Peer {
            rtc,
            socket,
            local,
            engine,
            call,
            start: Instant::now(),
            mid: None,
            send: None,
            channel: None,
            closing: None,
            pending_events: vec![],
            playback: VecDeque::new(),
            rtp_samples: 0,
            encoder: Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip).ok(),
            decoder: Decoder::new(SampleRate::Hz48000, Channels::Mono).ok(),
            connected: false,
            done: None,
        }
    }

    /// Runs the call until it ends, then ends it for everyone.
    async fn run(
        &mut self,
        shared: &Shared,
        mut from_sidebands: mpsc::UnboundedReceiver<SidebandIn>,
    ) {
        let mut buf = vec![0u8; 2000];
        let mut next_frame = Instant::now() + FRAME;
        let mut shutdown = shared.shutdown.clone();
        let call = self.call.clone();
        // No ICE connection within this time: give up.
        let connect_deadline = Instant::now() + Duration::from_secs(30);
        let reason = loop {
            if let Some(reason) = self.done {
                break reason;
            }
            let timeout = match self.drive().await {
                Some(t) => t,
                None => break CallEndReason::PeerGone,
            };
            self.flush_engine();
            if !self.connected && Instant::now() > connect_deadline {
                break CallEndReason::NeverConnected;
            }
            let wake = timeout.min(next_frame);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = r {
                        if let Ok(contents) = buf[..n].try_into() {
                            let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: self.local, contents });
                            if self.rtc.handle_input(input).is_err() { break CallEndReason::PeerGone; }
                        }
                    }
                }
                Some(msg) = from_sidebands.recv() => {
                    msg.from.client_event(recorded_form(&msg.text));
                    self.engine.handle_client_text(&msg.text, self.start.elapsed());
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
                _ = call.hung_up() => break CallEndReason::HungUp,
                _ = shutdown.changed() => break CallEndReason::Shutdown,
            }
            let now = Instant::now();
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                break CallEndReason::PeerGone;
            }
            if now >= next_frame {
                self.engine.tick(now - self.start);
                self.send_frame(now);
                next_frame += FRAME;
                if now > next_frame + FRAME * 5 {
                    next_frame = now + FRAME;
                }
            }
        };
        // Events the engine produced last still go out (the data channel is closed after them).
        self.flush_engine();
        // The call is over for everyone before the browser hears of it: no attach, no hang-up,
        // the end recorded.
        {
            let mut calls = lock(&shared.calls);
            // Only this call's entry: a hang-up removed it already.
            if calls
                .get(&call.call_id)
                .is_some_and(|c| Arc::ptr_eq(c, &call))
            {
                calls.remove(&call.call_id);
            }
        }
        call.finished(reason);
        if matches!(
            reason,
            CallEndReason::HungUp | CallEndReason::SessionClosed(_) | CallEndReason::Shutdown
        ) {
            self.close_gracefully(&mut buf).await;
        }
        self.rtc.disconnect();
        let _ = self.drive().await;
    }

    fn close_channel(&mut self, id: str0m::channel::ChannelId) {
        self.rtc.direct_api().close_data_channel(id);
        self.closing = Some((id, false));
    }

    /// Ends the peer connection the way a browser notices at once: the data channel's stream
    /// reset (its `close` event), then SCTP shutdown, RTCP BYE and DTLS close_notify
    /// (`Rtc::close`). The channel's reset waits for the browser up to 3 s (a loaded machine
    /// can take over a second to answer; the wait ends as soon as it does), the rest 1 s.
    async fn close_gracefully(&mut self, buf: &mut [u8]) {
        if let Some(id) = self.channel.take() {
            self.close_channel(id);
        }
        self.run_until(buf, Duration::from_secs(3), |p| {
            !matches!(p.closing, Some((_, false)))
        })
        .await;
        // Our side of the reset is done; the browser's `close` event comes with the answer to
        // its own reset, a round trip later. Closing the connection at once could beat it.
        self.run_until(buf, Duration::from_millis(300), |_| false)
            .await;
        if self.rtc.close().is_ok() {
            self.run_until(buf, Duration::from_secs(1), |p| !p.rtc.is_alive())
                .await;
        }
    }

    /// Keeps str0m running (network in and out, timers), nothing else, until `done` holds or
    /// `within` passes.
    async fn run_until(&mut self, buf: &mut [u8], within: Duration, done: fn(&Peer) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) && Instant::now() < deadline {
            let Some(timeout) = self.drive().await else {
                return;
            };
            if done(self) {
                return;
            }
            let wake = timeout.min(deadline);
            tokio::select! {
                r = self.socket.recv_from(buf) => {
                    if let Ok((n, source)) = r {
                        if let Ok(contents) = buf[..n].try_into() {
                            let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: self.local, contents });
                            if self.rtc.handle_input(input).is_err() { return; }
                        }
                    }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
            if self
                .rtc
                .handle_input(Input::Timeout(Instant::now()))
                .is_err()
            {
                return;
            }
        }
    }

    /// Polls str0m until it wants time to pass; returns when to wake (None when dead).
    async fn drive(&mut self) -> Option<Instant> {
        loop {
            match self.rtc.poll_output() {
                Ok(RtcOutput::Timeout(t)) => return Some(t),
                Ok(RtcOutput::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(RtcOutput::Event(e)) => self.on_event(e),
                Err(e) => {
                    tracing::debug!("webrtc peer error: {e}");
                    return None;
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) | Event::Closed => {
                self.done.get_or_insert(CallEndReason::PeerGone);
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Audio => {
                self.mid = Some(m.mid);
                self.pick_codec();
            }
            Event::ChannelOpen(id, label) if label == "oai-events" => {
                self.channel = Some(id);
                for text in std::mem::take(&mut self.pending_events) {
                    self.write_channel(&text);
                }
            }
            Event::ChannelClose(id) => {
                if let Some((closing, acked)) = self.closing.as_mut() {
                    if *closing == id {
                        *acked = true;
                    }
                }
                if self.channel == Some(id) {
                    // The browser closed it: no more events to it (the call itself ends with
                    // the peer connection).
                    self.channel = None;
                }
            }
            Event::ChannelData(d) if Some(d.id) == self.channel => {
                let text = String::from_utf8_lossy(&d.data).into_owned();
                self.engine.handle_client_text(&text, self.start.elapsed());
            }
            Event::MediaData(d) => {
                let (pcm, rate) = match d.params.spec().codec {
                    Codec::Opus => {
                        let mut out = vec![0i16; 5760];
                        let n = match (
                            self.decoder.as_mut(),
                            audiopus::packet::Packet::try_from(&d.data[..]),
                        ) {
                            (Some(dec), Ok(pkt)) => {
                                match audiopus::MutSignals::try_from(&mut out[..]) {
                                    Ok(sig) => dec.decode(Some(pkt), sig, false).unwrap_or(0),
                                    Err(_) => 0,
                                }
                            }
                            _ => 0,
                        };
                        out.truncate(n);
                        (out, 48_000)
                    }
                    Codec::PCMU => (callway_audio::mulaw::decode(&d.data), 8_000),
                    Codec::PCMA => (crate::alaw::decode(&d.data), 8_000),
                    _ => return,
                };
                self.engine.feed_audio(&pcm, rate, self.start.elapsed());
            }
            _ => {}
        }
    }

    fn pick_codec(&mut self) {
        let Some(mid) = self.mid else { return };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let params: Vec<_> = writer.payload_params().cloned().collect();
        let choice = [
            (Codec::Opus, SendCodec::Opus),
            (Codec::PCMU, SendCodec::Pcmu),
            (Codec::PCMA, SendCodec::Pcma),
        ]
        .into_iter()
        .find_map(|(c, s)| params.iter().find(|p| p.spec().codec == c).map(|p| (*p, s)));
        if let Some((p, s)) = choice {
            self.engine
                .set_track_rate(if s == SendCodec::Opus { 48_000 } else { 8_000 });
            self.send = Some((p, s));
        }
    }

    fn write_channel(&mut self, text: &str) {
        if let Some(mut ch) = self.channel.and_then(|id| self.rtc.channel(id)) {
            let _ = ch.write(false, text.as_bytes());
        }
    }

    fn flush_engine(&mut self) {
        for out in self.engine.take_output() {
            match out {
                Output::Event(ev) => {
                    let text = ev.to_string();
                    self.call
                        .broadcast(ev["type"].as_str().unwrap_or_default(), &text);
                    if self.channel.is_some() {
                        self.write_channel(&text);
                    } else {
                        self.pending_events.push(text);
                    }
                }
                Output::Audio(pcm) => self.playback.extend(pcm),
                Output::ClearAudio => self.playback.clear(),
                Output::Close { code, reason } => {
                    if let Some(id) = self.channel.take() {
                        self.close_channel(id);
                    }
                    self.call.close_sidebands(code, &reason);
                    self.done.get_or_insert(CallEndReason::SessionClosed(code));
                }
            }
        }
    }

    /// One 20 ms frame of output audio (silence when nothing is queued).
    fn send_frame(&mut self, now: Instant) {
        let (Some(mid), Some((params, codec))) = (self.mid, self.send) else {
            return;
        };
        if !self.connected {
            return;
        }
        let rate: u32 = if codec == SendCodec::Opus {
            48_000
        } else {
            8_000
        };
        let n = (rate / 50) as usize;
        let pcm: Vec<i16> = (0..n)
            .map(|_| self.playback.pop_front().unwrap_or(0))
            .collect();
        let data = match codec {
            SendCodec::Opus => {
                let mut out = vec![0u8; 1500];
                match self.encoder.as_ref().map(|e| e.encode(&pcm, &mut out)) {
                    Some(Ok(len)) => {
                        out.truncate(len);
                        out
                    }
                    _ => return,
                }
            }
            SendCodec::Pcmu => callway_audio::mulaw::encode(&pcm),
            SendCodec::Pcma => crate::alaw::encode(&pcm),
        };
        let freq = if codec == SendCodec::Opus {
            Frequency::FORTY_EIGHT_KHZ
        } else {
            Frequency::EIGHT_KHZ
        };
        let t = MediaTime::new(self.rtp_samples, freq);
        self.rtp_samples += n as u64;
        if let Some(w) = self.rtc.writer(mid) {
            let _ = w.write(params.pt(), now, t, data);
        }
    }
}
