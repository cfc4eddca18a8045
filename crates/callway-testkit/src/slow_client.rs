//! Clients that stall on purpose (slowloris heads, trickled bodies) and report how the server
//! ended them. Each one writes `first`, then one `trickle` piece per `every` for as long as the
//! server keeps the socket open, reading whatever the server answers. It ends when the server
//! closes the connection (EOF or reset) — or when `give_up` passes, which a test treats as a
//! failure: the server held the socket.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// How a stalling client's connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The server closed the connection; what it sent first (an HTTP answer, or nothing).
    Closed { answer: String },
    /// Still open when the client gave up; what the server had sent by then.
    HeldOpen { answer: String },
}

impl Ended {
    /// The status code of the server's answer, if it sent one.
    pub fn status(&self) -> Option<u16> {
        let (Ended::Closed { answer } | Ended::HeldOpen { answer }) = self;
        answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok())
    }
}

/// Connects to `server` from `from` (any loopback address works on Linux: 127.0.0.2 is
/// another peer than 127.0.0.1).
pub async fn connect_from(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// Starts one stalling client (see the module docs).
pub fn stall(
    from: IpAddr,
    server: SocketAddr,
    first: Vec<u8>,
    trickle: Vec<u8>,
    every: Duration,
    give_up: Duration,
) -> JoinHandle<Ended> {
    tokio::spawn(async move {
        let Ok(mut s) = connect_from(from, server).await else {
            return Ended::Closed {
                answer: String::new(),
            };
        };
        let mut answer = Vec::new();
        let ended = tokio::time::timeout(give_up, async {
            if s.write_all(&first).await.is_err() {
                return;
            }
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            let mut buf = [0u8; 4096];
            loop {
                tokio::select! {
                    r = s.read(&mut buf) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                    },
                    _ = tick.tick() => {
                        // A failed write means the server is gone; the read says it next.
                        let _ = s.write_all(&trickle).await;
                    }
                }
            }
        })
        .await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        match ended {
            Ok(()) => Ended::Closed { answer },
            Err(_) => Ended::HeldOpen { answer },
        }
    })
}

/// A request head sent a header line at a time, never finished (slowloris).
pub fn slow_head(
    from: IpAddr,
    server: SocketAddr,
    path: &str,
    every: Duration,
    give_up: Duration,
) -> JoinHandle<Ended> {
    let first = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\n").into_bytes();
    stall(
        from,
        server,
        first,
        b"X-Slow: 1\r\n".to_vec(),
        every,
        give_up,
    )
}

/// A whole head announcing `len` bytes of body, then `start` of it, then a byte per `every`.
#[allow(clippy::too_many_arguments)]
pub fn slow_body(
    from: IpAddr,
    server: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    len: usize,
    start: &[u8],
    every: Duration,
    give_up: Duration,
) -> JoinHandle<Ended> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {server}\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut first = head.into_bytes();
    first.extend_from_slice(start);
    stall(from, server, first, b" ".to_vec(), every, give_up)
}

/// One plain request, read to the end (the server closes, or `Connection: close` makes it).
pub async fn request(from: IpAddr, server: SocketAddr, raw: &str) -> std::io::Result<String> {
    let mut s = connect_from(from, server).await?;
    s.write_all(raw.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
