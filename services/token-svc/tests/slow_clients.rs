//! Clients that stall: a request head that never ends (slowloris) and bodies that trickle in
//! (with a length, or chunked). token-svc (whose session endpoint reads a body: the SDP offer)
//! must end each one — 408 and the connection closed — create nothing at OpenAI from a body that
//! did not arrive in time, and keep serving others meanwhile.
//! The same limits (callway_core::http_timeouts) serve token-svc, webhook-svc and the launcher.
//!
//! Waits are bounded far above the configured timeouts; nothing asserts how fast a socket
//! was closed, only that it was.

use callway_core::call_context::ContextStore;
use callway_core::http_timeouts::HttpTimeouts;
use callway_core::Settings;
use callway_testkit::slow_client::{self, Ended};
use sim_openai::{OpenAiSim, SimConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const GIVE_UP: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(200);

struct App {
    addr: SocketAddr,
    openai: OpenAiSim,
}

async fn spawn() -> App {
    callway_testkit::install_crypto_provider();
    let openai = OpenAiSim::start(SimConfig::new("sk-slow", "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let settings = Settings::from_sources(
        None,
        [
            ("OPENAI_API_KEY", "sk-slow".to_owned()),
            ("OPENAI_BASE_URL", openai.base_url()),
            ("CALLWAY_SANDBOX", "true".to_owned()),
            (
                "CALLWAY_SESSION_SECRET",
                "slow-test-session-secret-0123456789abcdef".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v)),
    )
    .unwrap();
    let state = token_svc::state_from_settings(&settings, Some(ContextStore::memory()))
        .await
        .unwrap();
    let timeouts = HttpTimeouts {
        header: Duration::from_secs(1),
        body: Duration::from_secs(1),
        ..HttpTimeouts::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(token_svc::serve_with(listener, state, timeouts).unwrap());
    App { addr, openai }
}

impl App {
    /// A normal session, from 127.0.0.1, while the attacker stalls.
    async fn open(&self) -> u16 {
        reqwest::Client::new()
            .post(format!("http://{}/api/realtime/session", self.addr))
            .header("content-type", "application/sdp")
            .body(callway_testkit::sdp::browser_offer())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn calls(&self) -> usize {
        self.openai.recorded().calls.len()
    }
}

fn closed_with(ended: &Ended, status: Option<u16>) -> bool {
    matches!(ended, Ended::Closed { .. }) && ended.status() == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_heads_are_closed_and_a_session_still_opens_meanwhile() {
    let app = spawn().await;
    let slow: Vec<_> = (0..100)
        .map(|_| slow_client::slow_head(ATTACKER, app.addr, "/health", EVERY, GIVE_UP))
        .collect();
    assert_eq!(app.open().await, 201);
    for s in slow {
        let ended = s.await.unwrap();
        // actix answers a head that did not arrive in time with 408, then closes.
        assert!(closed_with(&ended, Some(408)), "{ended:?}");
    }
    assert_eq!(app.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_gets_408_the_socket_is_closed_and_nothing_is_stored() {
    let app = spawn().await;
    let headers = [("Content-Type", "application/sdp")];
    let slow: Vec<_> = (0..20)
        .map(|_| {
            slow_client::slow_body(
                ATTACKER,
                app.addr,
                "/api/realtime/session",
                &headers,
                4_000,
                b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
                EVERY,
                GIVE_UP,
            )
        })
        .collect();
    assert_eq!(app.open().await, 201);
    for s in slow {
        let ended = s.await.unwrap();
        assert!(closed_with(&ended, Some(408)), "{ended:?}");
        if let Ended::Closed { answer } = &ended {
            assert!(answer.contains("request_timeout"), "{answer}");
        }
    }
    assert_eq!(app.calls(), 1, "only the normal session reached OpenAI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_chunked_body_is_cut_too() {
    let app = spawn().await;
    let head = "POST /api/realtime/session HTTP/1.1\r\nHost: token\r\n\
         Content-Type: application/sdp\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nv=0\r\n"
        .to_owned();
    let ended = slow_client::stall(
        ATTACKER,
        app.addr,
        head.into_bytes(),
        b"1\r\n \r\n".to_vec(),
        EVERY,
        GIVE_UP,
    )
    .await
    .unwrap();
    assert!(closed_with(&ended, Some(408)), "{ended:?}");
    assert_eq!(app.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_does_not_keep_the_connection() {
    // /health reads no body: it answers, and the socket is closed instead of draining the rest.
    let app = spawn().await;
    let ended = slow_client::slow_body(
        ATTACKER,
        app.addr,
        "/health",
        &[],
        100_000,
        b"x",
        EVERY,
        GIVE_UP,
    )
    .await
    .unwrap();
    assert!(matches!(ended, Ended::Closed { .. }), "{ended:?}");
    // Chunked: actix would drain it to its end after the answer, however slowly it comes.
    let ended = slow_client::stall(
        ATTACKER,
        app.addr,
        b"POST /health HTTP/1.1\r\nHost: token\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"
            .to_vec(),
        b"1\r\n \r\n".to_vec(),
        EVERY,
        GIVE_UP,
    )
    .await
    .unwrap();
    assert!(matches!(ended, Ended::Closed { .. }), "{ended:?}");
}
