//! Clients that stall: a request head that never ends (slowloris) and bodies that trickle in
//! (with a length, or chunked). tools-svc must end each one — 408 and the connection closed —
//! store nothing from a body that did not arrive in time, and keep serving others meanwhile.
//! The same limits (callway_core::http_timeouts) serve token-svc, webhook-svc and the launcher.
//!
//! Waits are bounded far above the configured timeouts; nothing asserts how fast a socket
//! was closed, only that it was.

use callway_core::http_timeouts::HttpTimeouts;
use callway_core::lead_store::{EmbeddedLeadStore, LeadStore};
use callway_core::phone::PhonePolicy;
use callway_core::secret::Secret;
use callway_core::session_token::{SessionTokens, WebSessionId};
use callway_testkit::slow_client::{self, Ended};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tools_svc::ToolsState;

const SECRET: &str = "tools-test-session-secret-0123456789abcdef";
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const GIVE_UP: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(200);

struct App {
    addr: SocketAddr,
    leads: LeadStore,
    tokens: SessionTokens,
    _dir: tempfile::TempDir,
}

async fn spawn() -> App {
    callway_testkit::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let leads = LeadStore::Embedded(EmbeddedLeadStore::open(dir.path()).unwrap());
    let tokens = SessionTokens::new(&Secret::new(SECRET));
    let state = ToolsState {
        leads: leads.clone(),
        tokens: tokens.clone(),
        policy: PhonePolicy::default(),
        consent_version: "2026-11-v1".into(),
        calls: None,
    };
    let timeouts = HttpTimeouts {
        header: Duration::from_secs(1),
        body: Duration::from_secs(1),
        ..HttpTimeouts::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tools_svc::serve_with(listener, state, timeouts).unwrap());
    App {
        addr,
        leads,
        tokens,
        _dir: dir,
    }
}

impl App {
    fn bearer(&self) -> String {
        let t = self.tokens.mint(
            &WebSessionId::generate(),
            chrono::Utc::now().timestamp() + 600,
        );
        format!("Bearer {t}")
    }

    /// A normal save, from 127.0.0.1, while the attacker stalls.
    async fn save(&self, phone: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("http://{}/api/tools/save_lead", self.addr))
            .header("authorization", self.bearer())
            .json(&json!({"first_name": "Marie", "last_name": "Curie", "phone": phone, "consent": true}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn closed_with(ended: &Ended, status: Option<u16>) -> bool {
    matches!(ended, Ended::Closed { .. }) && ended.status() == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_heads_are_closed_and_a_lead_still_saves_meanwhile() {
    let app = spawn().await;
    let slow: Vec<_> = (0..100)
        .map(|_| slow_client::slow_head(ATTACKER, app.addr, "/health", EVERY, GIVE_UP))
        .collect();
    assert_eq!(app.save("06 12 34 56 78").await, 200);
    for s in slow {
        let ended = s.await.unwrap();
        // actix answers a head that did not arrive in time with 408, then closes.
        assert!(closed_with(&ended, Some(408)), "{ended:?}");
    }
    assert_eq!(app.leads.count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_gets_408_the_socket_is_closed_and_nothing_is_stored() {
    let app = spawn().await;
    let bearer = app.bearer();
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let slow: Vec<_> = (0..20)
        .map(|_| {
            slow_client::slow_body(
                ATTACKER,
                app.addr,
                "/api/tools/save_lead",
                &headers,
                4_000,
                br#"{"first_name":"Marie","last_name":"Curie","phone":"0612345678","consent":true"#,
                EVERY,
                GIVE_UP,
            )
        })
        .collect();
    assert_eq!(app.save("06 12 34 56 79").await, 200);
    for s in slow {
        let ended = s.await.unwrap();
        assert!(closed_with(&ended, Some(408)), "{ended:?}");
        if let Ended::Closed { answer } = &ended {
            assert!(answer.contains("request_timeout"), "{answer}");
        }
    }
    assert_eq!(
        app.leads.count().await.unwrap(),
        1,
        "only the normal save is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_chunked_body_is_cut_too() {
    let app = spawn().await;
    let head = format!(
        "POST /api/tools/save_lead HTTP/1.1\r\nHost: tools\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"fir\r\n",
        app.bearer()
    );
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
    assert_eq!(app.leads.count().await.unwrap(), 0);
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
        b"POST /health HTTP/1.1\r\nHost: tools\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"
            .to_vec(),
        b"1\r\n \r\n".to_vec(),
        EVERY,
        GIVE_UP,
    )
    .await
    .unwrap();
    assert!(matches!(ended, Ended::Closed { .. }), "{ended:?}");
}
