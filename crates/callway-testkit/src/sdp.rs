//! A browser-shaped WebRTC offer (an Opus audio track and the `oai-events` data channel, made by a
//! real str0m peer), for tests that exercise the server-side call creation without a browser.

use std::time::Instant;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, RtcConfig};

/// A fresh SDP offer, as a page would post it to `/api/realtime/session`.
pub fn browser_offer() -> String {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    let local = sock.local_addr().expect("local address");
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_opus(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").expect("candidate"));
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    api.add_channel("oai-events".into());
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}
