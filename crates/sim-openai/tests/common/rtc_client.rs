//! A WebRTC "browser" for tests: a str0m peer with an Opus track and the `oai-events` data
//! channel, ICE to the simulator's ICE-lite peer, DTLS/SRTP/SCTP, Opus audio both ways.

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Channels, SampleRate};
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

/// The "browser".
pub struct Client {
    pub rtc: Rtc,
    pub sock: UdpSocket,
    pub local: SocketAddr,
    pub mid: Mid,
    pub channel: Option<ChannelId>,
    pub events: Vec<Value>,
    pub decoder: Decoder,
    pub encoder: Encoder,
    /// (arrival, level dBFS) of every decoded 20 ms frame from the server.
    pub heard: Vec<(Instant, f64)>,
    pub to_send: VecDeque<Vec<i16>>,
    pub rtp: u64,
    pub next_frame: Instant,
    pub params: Option<PayloadParams>,
    pub connected: bool,
    /// The server closed the `oai-events` channel.
    pub channel_closed: bool,
    /// The peer connection is over (ICE disconnected, DTLS closed, or str0m gave up).
    pub peer_closed: bool,
}

impl Client {
    pub async fn offer() -> (Client, String, SdpPendingOffer) {
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        std_sock.set_nonblocking(true).expect("nonblocking");
        let local = std_sock.local_addr().expect("addr");
        let mut cfg = RtcConfig::new().clear_codecs().enable_opus(true, false);
        // Notice a silent server within about 5 s (str0m's default: about 20 s), as a browser
        // marks ICE disconnected after a few seconds without consent answers.
        cfg.set_max_stun_rto(Duration::from_millis(1000));
        cfg.set_max_stun_retransmits(5);
        let mut rtc = cfg.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel("oai-events".into());
        let (offer, pending) = api.apply().expect("an offer");
        let client = Client {
            rtc,
            sock: UdpSocket::from_std(std_sock).expect("tokio socket"),
            local,
            mid,
            channel: None,
            events: vec![],
            decoder: Decoder::new(SampleRate::Hz48000, Channels::Mono).expect("decoder"),
            encoder: Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip)
                .expect("encoder"),
            heard: vec![],
            to_send: VecDeque::new(),
            rtp: 0,
            next_frame: Instant::now(),
            params: None,
            connected: false,
            channel_closed: false,
            peer_closed: false,
        };
        (client, offer.to_sdp_string(), pending)
    }

    pub fn send_event(&mut self, ev: Value) {
        let id = self.channel.expect("channel open");
        let mut ch = self.rtc.channel(id).expect("channel");
        ch.write(false, ev.to_string().as_bytes()).expect("write");
    }

    pub fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::ChannelOpen(id, label) => {
                assert_eq!(label, "oai-events");
                self.channel = Some(id);
            }
            Event::ChannelClose(id) if Some(id) == self.channel => self.channel_closed = true,
            Event::IceConnectionStateChange(str0m::IceConnectionState::Disconnected)
            | Event::Closed => self.peer_closed = true,
            Event::ChannelData(d) => {
                let v: Value = serde_json::from_slice(&d.data).expect("JSON on the data channel");
                self.events.push(v);
            }
            Event::MediaData(d) => {
                assert_eq!(d.params.spec().codec, Codec::Opus);
                let mut out = vec![0i16; 5760];
                let n = self
                    .decoder
                    .decode(
                        Some((&d.data[..]).try_into().expect("packet")),
                        (&mut out[..]).try_into().expect("signals"),
                        false,
                    )
                    .expect("opus decodes");
                self.heard
                    .push((Instant::now(), callway_audio::level::rms_dbfs(&out[..n])));
            }
            _ => {}
        }
    }

    pub fn send_frame(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        if self.params.is_none() {
            let w = self.rtc.writer(self.mid).expect("writer");
            self.params = w
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .cloned();
        }
        let Some(params) = self.params else { return };
        let pcm = self.to_send.pop_front().unwrap_or_else(|| vec![0; 960]);
        let mut buf = vec![0u8; 1500];
        let n = self.encoder.encode(&pcm, &mut buf).expect("encode");
        buf.truncate(n);
        let t = MediaTime::new(self.rtp, Frequency::FORTY_EIGHT_KHZ);
        self.rtp += 960;
        self.rtc
            .writer(self.mid)
            .expect("writer")
            .write(params.pt(), now, t, buf)
            .expect("write media");
    }

    /// Runs the peer until `done` holds (true) or `within` passes (false).
    pub async fn pump(&mut self, within: Duration, done: impl Fn(&Client) -> bool) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 2000];
        loop {
            if self.peer_closed || !self.rtc.is_alive() {
                self.peer_closed = true;
                // Events str0m queued before the close (the channel's) still count.
                while let Ok(out) = self.rtc.poll_output() {
                    match out {
                        Output::Event(e) => self.on_event(e),
                        Output::Timeout(_) => break,
                        Output::Transmit(_) => {}
                    }
                }
                return done(self);
            }
            let timeout = loop {
                let out = match self.rtc.poll_output() {
                    Ok(o) => o,
                    Err(_) => {
                        self.peer_closed = true;
                        return done(self);
                    }
                };
                match out {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        self.sock
                            .send_to(&t.contents, t.destination)
                            .await
                            .expect("udp send");
                    }
                    Output::Event(e) => self.on_event(e),
                }
            };
            if done(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            let wake = timeout.min(self.next_frame).min(deadline);
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    let (n, source) = r.expect("udp recv");
                    let contents = buf[..n].try_into().expect("datagram");
                    if self.rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: self.local, contents })).is_err() {
                        self.peer_closed = true;
                    }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
            let now = Instant::now();
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                self.peer_closed = true;
                continue;
            }
            if now >= self.next_frame {
                self.send_frame(now);
                self.next_frame = now + Duration::from_millis(20);
            }
        }
    }

    /// Keeps the peer running (ICE, audio, data channel) while `fut` runs; returns its output.
    pub async fn during<F: std::future::Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                out = &mut fut => return out,
                _ = self.pump(Duration::from_millis(100), |_| false) => {}
            }
        }
    }

    /// Applies the simulator's SDP answer.
    pub fn accept(&mut self, pending: SdpPendingOffer, answer_sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(answer_sdp).expect("answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    /// Types of the events received so far.
    pub fn types(&self) -> Vec<String> {
        super::types(&self.events)
    }

    pub fn has(&self, ty: &str) -> bool {
        self.events.iter().any(|e| e["type"] == ty)
    }

    pub fn count(&self, ty: &str) -> usize {
        self.events.iter().filter(|e| e["type"] == ty).count()
    }

    pub fn last(&self, ty: &str) -> Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["type"] == ty)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Queues `ms` of a 300 Hz tone then `silence_ms` of silence, 48 kHz, in 20 ms frames.
    pub fn say_tone(&mut self, ms: usize, silence_ms: usize) {
        let pcm: Vec<i16> = (0..ms * 48)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 300.0 / 48_000.0).sin() * 8000.0) as i16
            })
            .chain(std::iter::repeat_n(0, silence_ms * 48))
            .collect();
        self.to_send.extend(pcm.chunks(960).map(|c| c.to_vec()));
    }
}
