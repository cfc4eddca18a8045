//! The client side over TLS, as the bridge reaches api.openai.com: a private certificate is
//! refused unless trusted; trusted, μ-law media frames go out and come back whole (TLS buffers
//! records: our flush must push them), and the Close is answered.

use bytes::Bytes;
use callway_ws::{ConnectError, Credential, Event, WsEndpoint};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A self-signed certificate for 127.0.0.1, made by `openssl` (as bridge-load does).
fn certificate() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("callway-ws-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs")
        .success();
    assert!(ok, "openssl made no certificate");
    (cert, key)
}

/// A TLS WebSocket server echoing every text message.
async fn echo_server(cert: &PathBuf, key: &PathBuf) -> std::net::SocketAddr {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let (resp, pending) = callway_ws::accept(&mut req).unwrap();
                    tokio::spawn(async move {
                        let mut conn = pending.ready(1 << 20).await.unwrap();
                        loop {
                            conn.readable().await;
                            while let Some(ev) = conn.next_event() {
                                match ev {
                                    Event::Text(t) => {
                                        let t = t.as_bytes().to_vec();
                                        conn.queue_text(&t).unwrap();
                                    }
                                    Event::Binary(_) => {}
                                    Event::Closed { .. } => {
                                        let _ = conn.flush().await;
                                        return;
                                    }
                                }
                            }
                            conn.flush().await.unwrap();
                        }
                    });
                    let (parts, _) = resp.into_parts();
                    Ok::<_, Infallible>(Response::from_parts(parts, Full::new(Bytes::new())))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn frames_cross_tls_whole_and_a_private_certificate_needs_trust() {
    let (cert, key) = certificate();
    let addr = echo_server(&cert, &key).await;
    let ep = WsEndpoint::new(
        &format!("https://{addr}/v1"),
        "/realtime?model=m",
        Credential::new("sk-test"),
        Duration::from_secs(5),
    )
    .unwrap();
    // Not trusted: refused by certificate verification, never sent in clear.
    match ep.connect_conn(1 << 20).await {
        Err(ConnectError::Transport(why)) => assert!(why.contains("certificate"), "{why}"),
        other => panic!("an untrusted certificate was accepted: {:?}", other.is_ok()),
    }
    let mut conn = ep
        .trusting(&cert)
        .unwrap()
        .connect_conn(1 << 20)
        .await
        .unwrap();
    use base64::Engine as _;
    let frames: Vec<String> = [1usize, 159, 160, 161, 3000, 20_000]
        .iter()
        .map(|n| {
            let audio: Vec<u8> = (0..*n).map(|i| (i % 251) as u8 ^ 0x7F).collect();
            format!(
                r#"{{"type":"input_audio_buffer.append","audio":"{}"}}"#,
                base64::engine::general_purpose::STANDARD.encode(audio)
            )
        })
        .collect();
    for f in &frames {
        conn.queue_text(f.as_bytes()).unwrap();
    }
    conn.flush().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while back.len() < frames.len() {
            conn.readable().await;
            while let Some(ev) = conn.next_event() {
                if let Event::Text(t) = ev {
                    back.push(t.to_owned());
                }
            }
        }
    })
    .await
    .expect("every frame echoed within 5 s");
    assert_eq!(back, frames);
    conn.close(1000).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            conn.readable().await;
            if let Some(Event::Closed { code, by_peer, .. }) = conn.next_event() {
                return (code, by_peer);
            }
        }
    })
    .await
    .expect("the server answers our Close");
    assert_eq!(answer, (Some(1000), true));
}
