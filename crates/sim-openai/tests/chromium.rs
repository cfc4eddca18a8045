//! The real browser: headless Chromium (Debian `/usr/bin/chromium`, fake microphone) calls the
//! simulator from a page served by this test, exactly as the landing page will: mDNS-hidden host
//! candidates, DTLS, SCTP data channel, Opus both ways. Skipped (with a message) when Chromium is
//! not installed.

mod common;

use common::*;
use serde_json::{json, Value};
use sim_openai::Scenario;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const CHROMIUM: &str = "/usr/bin/chromium";

const PAGE: &str = r#"<!doctype html><html><body><script>
const q = new URLSearchParams(location.hash.slice(1));
const out = {events: [], levels: [], errors: []};
let sent = false;
async function report() { if (sent) return; sent = true; await fetch('/result', {method: 'POST', body: JSON.stringify(out)}); }
(async () => {
  try {
    const pc = new RTCPeerConnection();
    const ms = await navigator.mediaDevices.getUserMedia({audio: true});
    pc.addTrack(ms.getAudioTracks()[0], ms);
    const dc = pc.createDataChannel('oai-events');
    dc.onmessage = (m) => {
      const ev = JSON.parse(m.data); out.events.push(ev.type);
      if (out.events.includes('response.done') && out.events.includes('input_audio_buffer.speech_started') && out.levels.some(l => l > -30)) report();
    };
    dc.onopen = () => dc.send(JSON.stringify({type: 'response.create'}));
    pc.ontrack = (e) => {
      const ctx = new AudioContext();
      const an = ctx.createAnalyser();
      ctx.createMediaStreamSource(e.streams[0] || new MediaStream([e.track])).connect(an);
      const buf = new Float32Array(2048);
      setInterval(() => { an.getFloatTimeDomainData(buf); let s = 0; for (const x of buf) s += x * x; out.levels.push(10 * Math.log10(s / buf.length + 1e-12)); }, 50);
      const a = new Audio(); a.srcObject = e.streams[0]; a.muted = true; a.play().catch(() => {});
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const r = await fetch(q.get('calls'), {method: 'POST', body: offer.sdp, headers: {Authorization: 'Bearer ' + q.get('ek'), 'Content-Type': 'application/sdp'}});
    out.status = r.status; out.location = r.headers.get('Location');
    if (!r.ok) { out.errors.push(await r.text()); return report(); }
    await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
  } catch (e) { out.errors.push(String(e)); report(); }
  setTimeout(report, 15000);
})();
</script></body></html>"#;

/// A call that the test hangs up over REST: the page reports when its data channel is open,
/// then when it closes (with the peer connection's state at that moment).
const HANGUP_PAGE: &str = r#"<!doctype html><html><body><script>
const q = new URLSearchParams(location.hash.slice(1));
const post = (o) => fetch('/result', {method: 'POST', body: JSON.stringify(o)});
(async () => {
  try {
    const pc = new RTCPeerConnection();
    const ms = await navigator.mediaDevices.getUserMedia({audio: true});
    pc.addTrack(ms.getAudioTracks()[0], ms);
    const dc = pc.createDataChannel('oai-events');
    let location_ = null;
    dc.onopen = () => post({phase: 'open', location: location_});
    dc.onclose = () => post({phase: 'closed', ice: pc.iceConnectionState});
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const r = await fetch(q.get('calls'), {method: 'POST', body: offer.sdp, headers: {Authorization: 'Bearer ' + q.get('ek'), 'Content-Type': 'application/sdp'}});
    location_ = r.headers.get('Location');
    if (!r.ok) return post({phase: 'error', error: await r.text()});
    await pc.setRemoteDescription({type: 'answer', sdp: await r.text()});
  } catch (e) { post({phase: 'error', error: String(e)}); }
})();
</script></body></html>"#;

fn chromium(url: &str, profile: &Path) -> tokio::process::Child {
    tokio::process::Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts")
}

/// Serves the page and receives the page's reports.
async fn page_server(page_html: &'static str) -> (std::net::SocketAddr, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![];
                let mut chunk = [0u8; 8192];
                let (head_end, len) = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0usize);
                        break (p + 4, len);
                    }
                };
                while buf.len() < head_end + len {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let (ctype, body) = if buf.starts_with(b"POST /result") {
                    if let Ok(v) = serde_json::from_slice(&buf[head_end..]) {
                        let _ = tx.send(v).await;
                    }
                    ("text/plain", String::new())
                } else {
                    ("text/html", page_html.to_string())
                };
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn headless_chromium_talks_to_the_simulator_over_webrtc() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED: {CHROMIUM} not installed");
        return;
    }
    let sim = start(Scenario::default_sandbox()).await;
    let ek = mint(&sim, json!({"type": "realtime", "model": "gpt-realtime"})).await;
    let (page, mut results) = page_server(PAGE).await;
    let profile =
        std::env::temp_dir().join(format!("sim-openai-chromium-{}", uuid::Uuid::new_v4()));
    let url = format!(
        "http://{page}/page.html#calls={}&ek={ek}",
        sim.realtime_calls_url()
    );
    let mut chrome = chromium(&url, &profile);
    let report = tokio::time::timeout(Duration::from_secs(40), results.recv()).await;
    let _ = chrome.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    let report = report
        .expect("the page reports within 40 s")
        .expect("a report");
    assert_eq!(report["status"], 201, "{report}");
    assert!(
        report["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{report}"
    );
    assert!(
        report["location"]
            .as_str()
            .is_some_and(|l| l.starts_with("/v1/realtime/calls/rtc_")),
        "Location is exposed by CORS"
    );
    let events: Vec<&str> = report["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(events.first(), Some(&"session.created"));
    for ty in [
        "response.created",
        "output_audio_buffer.started",
        "response.output_audio_transcript.delta",
        "response.done",
        "input_audio_buffer.speech_started",
    ] {
        assert!(events.contains(&ty), "{ty} missing from {events:?}");
    }
    let loudest = report["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .filter_map(Value::as_f64)
        .fold(f64::MIN, f64::max);
    assert!(loudest > -30.0, "the browser hears the agent: {loudest} dB");
    let rec = sim.recorded();
    assert!(
        rec.sessions[0].audio_in_max_dbfs.is_some_and(|d| d > -40.0),
        "the simulator hears the fake microphone"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn headless_chromium_sees_its_data_channel_close_when_the_call_is_hung_up() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED: {CHROMIUM} not installed");
        return;
    }
    let sim = start(Scenario::default_sandbox()).await;
    let ek = mint(
        &sim,
        json!({"type": "realtime", "model": "gpt-realtime-2.1"}),
    )
    .await;
    let (page, mut results) = page_server(HANGUP_PAGE).await;
    let profile =
        std::env::temp_dir().join(format!("sim-openai-chromium-{}", uuid::Uuid::new_v4()));
    let url = format!(
        "http://{page}/page.html#calls={}&ek={ek}",
        sim.realtime_calls_url()
    );
    let mut chrome = chromium(&url, &profile);
    let opened = tokio::time::timeout(Duration::from_secs(40), results.recv()).await;
    let location = opened
        .ok()
        .flatten()
        .filter(|r| r["phase"] == "open")
        .and_then(|r| r["location"].as_str().map(str::to_string));
    let closed = match &location {
        Some(loc) => {
            let r = http(
                sim.addr(),
                "POST",
                &format!("{loc}/hangup"),
                &[("Authorization", &format!("Bearer {KEY}"))],
                b"",
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            tokio::time::timeout(Duration::from_secs(20), results.recv()).await
        }
        None => Ok(None),
    };
    let _ = chrome.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    let location = location.expect("the page's data channel opens and it knows the call id");
    let closed = closed
        .expect("the page reports within 20 s of the hang-up")
        .expect("a report");
    assert_eq!(closed["phase"], "closed", "{closed}");
    let call_id = location.rsplit('/').next().expect("id");
    let rec = sim.recorded();
    let call = rec.call(call_id).expect("call recorded");
    assert!(call.hangup_requested.is_some());
    assert!(sim.live_calls().is_empty());
    sim.shutdown().await;
}
