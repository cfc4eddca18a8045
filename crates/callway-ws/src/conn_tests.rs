//! A [`WsConn`] against fastwebsockets (an independent implementation) over real TCP.

use super::*;
use fastwebsockets::{Frame, OpCode, Payload, Role as FwRole, WebSocket};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Our server-side conn and a fastwebsockets client on the other end of a loopback socket.
async fn pair(max: usize) -> (WsConn<TcpStream>, WebSocket<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let mut peer = WebSocket::after_handshake(c.unwrap(), FwRole::Client);
    peer.set_auto_close(false);
    peer.set_auto_pong(false);
    (WsConn::new(s.unwrap().0, Role::Server, max), peer)
}

/// Reads until an event comes (or panics after 5 s).
/// The end is `(code, reason, by_peer)`.
async fn next(conn: &mut WsConn<TcpStream>) -> Result<String, (Option<u16>, String, bool)> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match conn.next_event() {
                Some(Event::Text(t)) => return Ok(t.to_owned()),
                Some(Event::Binary(b)) => return Ok(format!("binary:{}", b.len())),
                Some(Event::Closed {
                    code,
                    reason,
                    by_peer,
                }) => return Err((code, reason, by_peer)),
                None => conn.readable().await,
            }
        }
    })
    .await
    .expect("an event within 5 s")
}

#[tokio::test]
async fn a_ping_is_answered_and_text_flows_both_ways() {
    let (mut conn, mut peer) = pair(1024).await;
    peer.write_frame(Frame::new(
        true,
        OpCode::Ping,
        None,
        Payload::Borrowed(b"hb"),
    ))
    .await
    .unwrap();
    peer.write_frame(Frame::text(Payload::Borrowed(b"{\"event\":\"start\"}")))
        .await
        .unwrap();
    assert_eq!(next(&mut conn).await.unwrap(), "{\"event\":\"start\"}");
    conn.queue_text(b"{\"event\":\"media\"}").unwrap();
    conn.flush().await.unwrap();
    let pong = peer.read_frame().await.unwrap();
    assert_eq!((pong.opcode, &pong.payload[..]), (OpCode::Pong, &b"hb"[..]));
    let text = peer.read_frame().await.unwrap();
    assert_eq!(&text.payload[..], b"{\"event\":\"media\"}");
}

#[tokio::test]
async fn the_peers_close_is_echoed_once_and_nothing_follows() {
    let (mut conn, mut peer) = pair(1024).await;
    peer.write_frame(Frame::close(1001, b"going away"))
        .await
        .unwrap();
    assert_eq!(
        next(&mut conn).await,
        Err((Some(1001), "going away".into(), true))
    );
    conn.flush().await.unwrap();
    // Our own close afterwards finds the echo sent: no second Close, and no text after it.
    assert!(matches!(conn.queue_text(b"late"), Err(WriteError::Closed)));
    conn.close(1000).await;
    drop(conn);
    let echo = peer.read_frame().await.unwrap();
    assert_eq!(echo.opcode, OpCode::Close);
    assert_eq!(&echo.payload[..2], &1001u16.to_be_bytes());
    assert!(peer.read_frame().await.is_err(), "only EOF after the Close");
}

#[tokio::test]
async fn a_vanished_peer_and_a_protocol_error_end_with_the_right_status() {
    let (mut conn, peer) = pair(1024).await;
    drop(peer);
    let (code, _, by_peer) = next(&mut conn).await.unwrap_err();
    assert_eq!((code, by_peer), (None, false));
    // No second event: the socket has said its last word.
    assert!(conn.next_event().is_none());

    // A text message with invalid UTF-8: closed with 1007.
    let (mut conn, mut peer) = pair(1024).await;
    peer.write_frame(Frame::new(
        true,
        OpCode::Binary,
        None,
        Payload::Borrowed(b"bin"),
    ))
    .await
    .unwrap();
    let mut raw = peer.into_inner();
    // A masked text frame whose payload is 0xC3 0x28 (bad UTF-8), key 0.
    raw.write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28])
        .await
        .unwrap();
    let mut peer = WebSocket::after_handshake(raw, FwRole::Client);
    peer.set_auto_close(false);
    assert_eq!(next(&mut conn).await, Ok("binary:3".into()));
    assert!(next(&mut conn).await.is_err());
    conn.flush().await.unwrap();
    let close = peer.read_frame().await.unwrap();
    assert_eq!(close.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &1007u16.to_be_bytes());
}

#[tokio::test]
async fn reading_survives_being_cancelled_mid_frame() {
    let (mut conn, peer) = pair(1024).await;
    // One frame trickled a byte at a time while the reader is cancelled over and over.
    let mut bytes = Vec::new();
    crate::frame::Encoder::new(Role::Client).text(&mut bytes, "payload é 160".as_bytes());
    let mut raw = peer.into_inner();
    let writer = tokio::spawn(async move {
        for b in bytes {
            raw.write_all(&[b]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        raw
    });
    let mut cancelled = 0;
    let got = loop {
        if let Some(Event::Text(t)) = conn.next_event() {
            break t.to_owned();
        }
        tokio::select! {
            () = conn.readable() => {}
            () = tokio::time::sleep(Duration::from_millis(1)) => cancelled += 1,
        }
    };
    assert_eq!(got, "payload é 160");
    assert!(
        cancelled > 0,
        "the read was never cancelled: the test proves nothing"
    );
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn a_peer_that_stops_reading_makes_the_write_fail_not_hang() {
    let (mut conn, _peer) = pair(1024).await;
    let frame = vec![b'x'; 64 * 1024];
    let r = async {
        // The kernel buffers take a few MB; then the write must time out.
        for _ in 0..1000 {
            conn.queue_text(&frame)?;
            conn.flush_within(Duration::from_millis(200)).await?;
        }
        Ok::<(), WriteError>(())
    }
    .await;
    assert!(matches!(r, Err(WriteError::Timeout)), "{r:?}");
}

#[test]
fn the_reply_echoes_a_sendable_code_only() {
    assert_eq!(close_reply(2, Some(1000)), 1000);
    assert_eq!(close_reply(5, Some(1001)), 1001);
    assert_eq!(close_reply(2, Some(1011)), 1011);
    assert_eq!(close_reply(2, Some(4000)), 4000);
    assert_eq!(close_reply(0, None), 1000);
    assert_eq!(close_reply(1, None), 1002);
    assert_eq!(close_reply(2, Some(1005)), 1002);
    assert_eq!(close_reply(2, Some(1006)), 1002);
    assert_eq!(close_reply(2, Some(999)), 1002);
    assert_eq!(close_reply(2, Some(2500)), 1002);
}

#[tokio::test]
async fn a_close_from_the_peer_is_told_from_a_broken_connection() {
    async fn ending(bytes: &[u8]) -> (bool, Option<u16>, u16) {
        let (mut conn, peer) = pair(1024).await;
        let mut raw = peer.into_inner();
        raw.write_all(bytes).await.unwrap();
        let (code, _, by_peer) = next(&mut conn).await.unwrap_err();
        conn.flush().await.unwrap();
        let mut peer = WebSocket::after_handshake(raw, FwRole::Client);
        peer.set_auto_close(false);
        let ours = peer.read_frame().await.unwrap();
        (
            by_peer,
            code,
            u16::from_be_bytes([ours.payload[0], ours.payload[1]]),
        )
    }
    // Masked (key 0) Close frames: code 4000; no payload; a one-byte payload (invalid).
    assert_eq!(
        ending(&[0x88, 0x82, 0, 0, 0, 0, 0x0F, 0xA0]).await,
        (true, Some(4000), 4000)
    );
    assert_eq!(ending(&[0x88, 0x80, 0, 0, 0, 0]).await, (true, None, 1000));
    assert_eq!(
        ending(&[0x88, 0x81, 0, 0, 0, 0, 7]).await,
        (false, None, 1002)
    );
}
