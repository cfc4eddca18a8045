//! A WebRTC call driven by a second str0m peer playing the browser: SDP offer with an Opus track
//! and the `oai-events` data channel, ICE to the simulator's ICE-lite peer, DTLS/SRTP/SCTP, Opus
//! audio both ways.

mod common;

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Channels, SampleRate};
use common::*;
use serde_json::{json, Value};
use sim_openai::{Scenario, Step, ToolCall, Trigger};
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
struct Client {
    rtc: Rtc,
    sock: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    channel: Option<ChannelId>,
    events: Vec<Value>,
    decoder: Decoder,
    encoder: Encoder,
    /// (arrival, level dBFS) of every decoded 20 ms frame from the server.
    heard: Vec<(Instant, f64)>,
    to_send: VecDeque<Vec<i16>>,
    rtp: u64,
    next_frame: Instant,
    params: Option<PayloadParams>,
    connected: bool,
}

impl Client {
    async fn offer() -> (Client, String, SdpPendingOffer) {
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        std_sock.set_nonblocking(true).expect("nonblocking");
        let local = std_sock.local_addr().expect("addr");
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
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
        };
        (client, offer.to_sdp_string(), pending)
    }

    fn send_event(&mut self, ev: Value) {
        let id = self.channel.expect("channel open");
        let mut ch = self.rtc.channel(id).expect("channel");
        ch.write(false, ev.to_string().as_bytes()).expect("write");
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::ChannelOpen(id, label) => {
                assert_eq!(label, "oai-events");
                self.channel = Some(id);
            }
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

    fn send_frame(&mut self, now: Instant) {
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
    async fn pump(&mut self, within: Duration, done: impl Fn(&Client) -> bool) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 2000];
        loop {
            let timeout = loop {
                match self.rtc.poll_output().expect("client peer ok") {
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
                    self.rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: self.local, contents })).expect("input");
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            }
            let now = Instant::now();
            self.rtc.handle_input(Input::Timeout(now)).expect("timeout");
            if now >= self.next_frame {
                self.send_frame(now);
                self.next_frame = now + Duration::from_millis(20);
            }
        }
    }

    fn has(&self, ty: &str) -> bool {
        self.events.iter().any(|e| e["type"] == ty)
    }

    fn count(&self, ty: &str) -> usize {
        self.events.iter().filter(|e| e["type"] == ty).count()
    }

    fn last(&self, ty: &str) -> Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["type"] == ty)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Queues `ms` of a 300 Hz tone then `silence_ms` of silence, 48 kHz, in 20 ms frames.
    fn say_tone(&mut self, ms: usize, silence_ms: usize) {
        let pcm: Vec<i16> = (0..ms * 48)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 300.0 / 48_000.0).sin() * 8000.0) as i16
            })
            .chain(std::iter::repeat_n(0, silence_ms * 48))
            .collect();
        self.to_send.extend(pcm.chunks(960).map(|c| c.to_vec()));
    }
}

fn scenario() -> Scenario {
    Scenario {
        steps: vec![
            Step {
                on: Trigger::SessionStart,
                expect_transcript: None,
                say: Some("Bonjour, ici Callway.".into()),
                say_wav: None,
                call: None,
            },
            Step {
                on: Trigger::UserTurn,
                expect_transcript: Some("Rappelez-moi.".into()),
                say: Some("Je note.".into()),
                say_wav: None,
                call: Some(ToolCall {
                    name: "save_lead".into(),
                    arguments: json!({"first_name": "Marie", "phone": "0612345678", "consent": true}),
                }),
            },
            Step {
                on: Trigger::ToolOutput,
                expect_transcript: None,
                say: Some("Merci, au revoir.".into()),
                say_wav: None,
                call: None,
            },
        ],
        fallback_say: "Pardon ?".into(),
        ms_per_char: 50,
    }
}

#[tokio::test]
async fn webrtc_call_with_opus_audio_and_the_data_channel() {
    let sim = start(scenario()).await;
    let ek = mint(&sim, json!({"type": "realtime", "model": "gpt-realtime", "instructions": "Agent Callway.",
                               "tools": [save_lead_tool()],
                               "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}}}})).await;
    let (mut client, offer, pending) = Client::offer().await;
    let auth = format!("Bearer {ek}");
    let r = http(
        sim.addr(),
        "POST",
        "/v1/realtime/calls",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/sdp"),
        ],
        offer.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    let location = r.header("location").expect("Location").to_string();
    assert!(
        location.starts_with("/v1/realtime/calls/rtc_"),
        "{location}"
    );
    let call_id = location.rsplit('/').next().expect("id").to_string();
    let answer_sdp = r.text();
    assert!(answer_sdp.contains("a=ice-lite"), "ICE-lite answer");
    assert!(answer_sdp.contains("opus/48000/2"));
    assert!(answer_sdp.contains("typ host"));
    assert!(answer_sdp.contains("webrtc-datachannel"));
    let answer = SdpAnswer::from_sdp_string(&answer_sdp).expect("answer parses");
    client
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("answer accepted");

    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel.is_some()
                && c.has("session.created"))
            .await,
        "connected, channel open, session.created"
    );
    assert_eq!(client.events[0]["type"], "session.created");
    assert_eq!(
        client.events[0]["session"]["instructions"],
        "Agent Callway."
    );

    // Greeting: events on the channel, audible Opus on the track.
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c
                .has("output_audio_buffer.stopped"))
            .await,
        "greeting played"
    );
    let order: Vec<&str> = client
        .events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        !order.contains(&"response.output_audio.delta"),
        "no audio on the data channel"
    );
    let started = order
        .iter()
        .position(|t| *t == "output_audio_buffer.started")
        .expect("started");
    let done = order
        .iter()
        .position(|t| *t == "response.done")
        .expect("done");
    let stopped = order
        .iter()
        .position(|t| *t == "output_audio_buffer.stopped")
        .expect("stopped");
    assert!(started < done && done < stopped, "{order:?}");
    assert!(client.has("response.output_audio_transcript.done"));
    let loud = client.heard.iter().filter(|(_, db)| *db > -30.0).count();
    let line_frames = "Bonjour, ici Callway.".chars().count() * 50 / 20;
    assert!(
        loud * 10 >= line_frames * 6,
        "speech-like audio on the track: {loud} loud frames of {line_frames}"
    );
    assert!(
        client.heard.iter().any(|(_, db)| *db < -60.0),
        "silence outside the line"
    );

    // The visitor speaks: VAD on decoded Opus, then the scripted function call.
    client.say_tone(600, 700);
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c
                .has("response.function_call_arguments.done")
                && c.count("response.done") >= 2)
            .await,
        "events: {:?}",
        client
            .events
            .iter()
            .map(|e| e["type"].clone())
            .collect::<Vec<_>>()
    );
    for ty in [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ] {
        assert!(client.has(ty), "{ty}");
    }
    let call = client.last("response.function_call_arguments.done");
    assert_eq!(call["name"], "save_lead");
    let call_id_fn = call["call_id"].as_str().expect("call_id").to_string();
    client.send_event(json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id_fn, "output": "{\"lead_id\":\"L1\"}"}}));
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.count("response.done") >= 3)
            .await
    );
    let last_line = client
        .events
        .iter()
        .rev()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .expect("line");
    assert_eq!(last_line["transcript"], "Merci, au revoir.");

    let rec = sim.recorded();
    let s = &rec.sessions[0];
    assert_eq!(s.call_id.as_deref(), Some(call_id.as_str()));
    assert_eq!(s.transport, sim_openai::TransportKind::WebRtc);
    assert!(s.audio_in_ms > 1000, "{}", s.audio_in_ms);
    assert!(
        s.audio_in_max_dbfs.is_some_and(|d| d > -20.0),
        "{:?}",
        s.audio_in_max_dbfs
    );
    assert_eq!(s.tool_calls[0].name, "save_lead");
    assert!(
        s.scenario_mismatches.is_empty(),
        "{:?}",
        s.scenario_mismatches
    );

    let r = http(
        sim.addr(),
        "POST",
        &format!("{location}/hangup"),
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn webrtc_barge_in_clears_the_buffer_and_truncates_at_the_played_position() {
    let mut cfg = config(scenario());
    cfg.generation_speed = 1.0;
    let sim = sim_openai::OpenAiSim::start(cfg).await.expect("start");
    let ek = mint(
        &sim,
        json!({"type": "realtime", "tools": [save_lead_tool()]}),
    )
    .await;
    let (mut client, offer, pending) = Client::offer().await;
    let r = http(
        sim.addr(),
        "POST",
        "/v1/realtime/calls",
        &[
            ("Authorization", &format!("Bearer {ek}")),
            ("Content-Type", "application/sdp"),
        ],
        offer.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201);
    client
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&r.text()).expect("answer"),
        )
        .expect("accept");
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel.is_some())
            .await
    );
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.started"))
            .await
    );
    client.pump(Duration::from_millis(400), |_| false).await;
    client.say_tone(400, 400);
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.cleared"))
            .await
    );
    let done = client.last("response.done");
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "turn_detected"
    );
    let tr = client.last("conversation.item.truncated");
    let played = tr["audio_end_ms"].as_u64().expect("audio_end_ms");
    assert!(
        (300..1000).contains(&played),
        "truncated where playback stopped: {played}"
    );
    assert!(
        !client.has("output_audio_buffer.stopped"),
        "cleared, not stopped"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn webrtc_output_clear_and_cancel_from_the_client() {
    let sim = start(scenario()).await;
    let ek = mint(&sim, json!({"type": "realtime"})).await;
    let (mut client, offer, pending) = Client::offer().await;
    let r = http(
        sim.addr(),
        "POST",
        "/v1/realtime/calls",
        &[
            ("Authorization", &format!("Bearer {ek}")),
            ("Content-Type", "application/sdp"),
        ],
        offer.as_bytes(),
    )
    .await;
    client
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&r.text()).expect("answer"),
        )
        .expect("accept");
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel.is_some())
            .await
    );
    client.send_event(json!({"type": "response.cancel", "event_id": "c0"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c.has("error"))
            .await
    );
    assert_eq!(
        client.last("error")["error"]["code"],
        "response_cancel_not_active"
    );
    assert_eq!(client.last("error")["error"]["event_id"], "c0");
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.started"))
            .await
    );
    client.send_event(json!({"type": "output_audio_buffer.clear"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.cleared"))
            .await
    );
    sim.shutdown().await;
}
