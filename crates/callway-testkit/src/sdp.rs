//! A browser-shaped WebRTC peer for tests that exercise the server-side call creation without a
//! browser: a real str0m peer with an Opus audio track (it sends nothing) and the `oai-events`
//! data channel. `browser_offer` is just its offer; `Peer` also completes ICE, DTLS and SCTP with
//! the answer and keeps the connection alive in a background task, collecting the data-channel
//! events, as a page that stays open would.

use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

/// A fresh SDP offer, as a page would post it to `/api/realtime/session`.
pub fn browser_offer() -> String {
    Peer::offer().1
}

/// What the peer saw on its data channel, and whether it is still connected.
#[derive(Default, Debug, Clone)]
pub struct PeerState {
    pub connected: bool,
    pub channel_open: bool,
    pub closed: bool,
    pub events: Vec<Value>,
}

pub struct Peer {
    rtc: Rtc,
    sock: std::net::UdpSocket,
    local: SocketAddr,
    pending: SdpPendingOffer,
}

impl Peer {
    /// A peer and its offer.
    pub fn offer() -> (Peer, String) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        sock.set_nonblocking(true).expect("non-blocking");
        let local = sock.local_addr().expect("local address");
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel("oai-events".into());
        let (offer, pending) = api.apply().expect("an offer");
        (
            Peer {
                rtc,
                sock,
                local,
                pending,
            },
            offer.to_sdp_string(),
        )
    }

    /// Applies the answer and runs the connection in the background until the server ends it
    /// (or the returned state's owner stops caring: the task ends with the runtime).
    pub fn connect(mut self, answer_sdp: &str) -> Arc<Mutex<PeerState>> {
        let answer = SdpAnswer::from_sdp_string(answer_sdp).expect("the answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(self.pending, answer)
            .expect("the answer is accepted");
        let state = Arc::new(Mutex::new(PeerState::default()));
        let shared = state.clone();
        let sock = UdpSocket::from_std(self.sock).expect("tokio socket");
        let (mut rtc, local) = (self.rtc, self.local);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2000];
            let set = |f: &dyn Fn(&mut PeerState)| {
                if let Ok(mut s) = shared.lock() {
                    f(&mut s);
                }
            };
            loop {
                if !rtc.is_alive() {
                    set(&|s| s.closed = true);
                    return;
                }
                let timeout = loop {
                    match rtc.poll_output() {
                        Ok(Output::Timeout(t)) => break t,
                        Ok(Output::Transmit(t)) => {
                            let _ = sock.send_to(&t.contents, t.destination).await;
                        }
                        Ok(Output::Event(e)) => match e {
                            Event::Connected => set(&|s| s.connected = true),
                            Event::ChannelOpen(_, _) => set(&|s| s.channel_open = true),
                            Event::ChannelClose(_) => set(&|s| s.closed = true),
                            Event::ChannelData(d) => {
                                if let Ok(v) = serde_json::from_slice::<Value>(&d.data) {
                                    set(&|s| s.events.push(v.clone()));
                                }
                            }
                            _ => {}
                        },
                        Err(_) => {
                            set(&|s| s.closed = true);
                            return;
                        }
                    }
                };
                let wake = timeout.min(Instant::now() + Duration::from_millis(100));
                tokio::select! {
                    r = sock.recv_from(&mut buf) => {
                        let Ok((n, source)) = r else { continue };
                        let Ok(contents) = buf[..n].try_into() else { continue };
                        let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents });
                        if rtc.handle_input(input).is_err() {
                            set(&|s| s.closed = true);
                            return;
                        }
                    }
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
                }
                if rtc.handle_input(Input::Timeout(Instant::now())).is_err() {
                    set(&|s| s.closed = true);
                    return;
                }
            }
        });
        state
    }
}
