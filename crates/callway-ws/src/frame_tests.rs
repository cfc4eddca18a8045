//! Real frames (μ-law media as the bridge carries them, OpenAI events), split anywhere, in both
//! roles; every refusal RFC 6455 asks for; and fastwebsockets as an independent peer.

use super::*;
use proptest::prelude::*;

/// A Telnyx media frame with `n` bytes of μ-law (base64), as Telnyx sends it.
fn media_frame(n: usize) -> String {
    use base64::Engine as _;
    let audio: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8 ^ 0x7F).collect();
    format!(
        r#"{{"event":"media","sequence_number":"{n}","media":{{"track":"inbound","chunk":"1","timestamp":"20","payload":"{}"}},"stream_id":"s"}}"#,
        base64::engine::general_purpose::STANDARD.encode(audio)
    )
}

/// Every message the decoder yields, as owned values, after feeding `chunks` one by one.
fn decode_all(dec: &mut Decoder, chunks: &[&[u8]]) -> Result<Vec<Owned>, ProtocolError> {
    let mut got = Vec::new();
    for c in chunks {
        dec.read_buffer().extend_from_slice(c);
        loop {
            let mut pings = Vec::new();
            let m = dec.next_message(|p| pings.push(Owned::Ping(p.to_vec())))?;
            // Pings read on the way come before the message they preceded.
            got.append(&mut pings);
            match m {
                Some(m) => got.push(Owned::from(m)),
                None => break,
            }
        }
    }
    Ok(got)
}

#[derive(Debug, PartialEq, Eq, Clone)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Close(Option<u16>, String, usize),
}

impl From<Message<'_>> for Owned {
    fn from(m: Message<'_>) -> Self {
        match m {
            Message::Text(t) => Owned::Text(t.to_owned()),
            Message::Binary(b) => Owned::Binary(b.to_vec()),
            Message::Close {
                code,
                reason,
                payload_len,
            } => Owned::Close(code, reason.to_owned(), payload_len),
        }
    }
}

/// A raw frame, masked when `mask` is given: for the cases an encoder never produces.
fn raw(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n <= 125 => out.push(m | n as u8),
        n if n <= 0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn media_frames_of_odd_sizes_cross_both_ways() {
    for n in [0usize, 1, 2, 3, 7, 159, 160, 161, 320, 4000, 70_000] {
        let text = media_frame(n);
        for (from, to) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
            let mut out = Vec::new();
            Encoder::new(from).text(&mut out, text.as_bytes());
            let mut dec = Decoder::new(to, 1 << 20);
            let got = decode_all(&mut dec, &[&out]).unwrap();
            assert_eq!(got, vec![Owned::Text(text.clone())], "n={n} {from:?}");
            assert!(!dec.has_partial());
        }
    }
}

#[test]
fn a_frame_split_at_every_byte_still_arrives_once() {
    let text = media_frame(160);
    let mut out = Vec::new();
    let mut enc = Encoder::new(Role::Client);
    enc.text(&mut out, text.as_bytes());
    enc.ping(&mut out, b"p");
    enc.text(&mut out, b"{\"event\":\"stop\"}");
    let chunks: Vec<&[u8]> = out.chunks(1).collect();
    let got = decode_all(&mut Decoder::new(Role::Server, 4096), &chunks).unwrap();
    assert_eq!(
        got,
        vec![
            Owned::Text(text),
            Owned::Ping(b"p".to_vec()),
            Owned::Text("{\"event\":\"stop\"}".into())
        ]
    );
}

#[test]
fn a_fragmented_message_is_assembled_around_a_ping_and_a_pong() {
    // "héllo" split inside the two-byte é: each fragment alone is not UTF-8, the whole is.
    let whole = "héllo wörld".as_bytes();
    let mut bytes = raw(OP_TEXT, &whole[..2], Some(KEY));
    bytes.extend(raw(OP_CONT, &whole[2..7], Some(KEY)));
    bytes.extend(raw(0x80 | OP_PING, b"hb", Some(KEY)));
    // A pong (unsolicited, allowed by §5.5.3) is read and dropped.
    bytes.extend(raw(0x80 | OP_PONG, b"pg", Some(KEY)));
    bytes.extend(raw(0x80 | OP_CONT, &whole[7..], Some(KEY)));
    let got = decode_all(&mut Decoder::new(Role::Server, 1024), &[&bytes]).unwrap();
    assert_eq!(
        got,
        vec![
            Owned::Ping(b"hb".to_vec()),
            Owned::Text("héllo wörld".into())
        ]
    );
}

#[test]
fn close_frames_carry_their_code_and_reason() {
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"session expired");
    let cases = [
        (
            raw(0x80 | OP_CLOSE, &payload, None),
            Owned::Close(Some(1001), "session expired".into(), 17),
        ),
        (
            raw(0x80 | OP_CLOSE, &[], None),
            Owned::Close(None, String::new(), 0),
        ),
        (
            raw(0x80 | OP_CLOSE, &[3], None),
            Owned::Close(None, String::new(), 1),
        ),
    ];
    for (bytes, want) in cases {
        let got = decode_all(&mut Decoder::new(Role::Client, 1024), &[&bytes]).unwrap();
        assert_eq!(got, vec![want]);
    }
    let mut out = Vec::new();
    Encoder::new(Role::Client).close(&mut out, 1000);
    let got = decode_all(&mut Decoder::new(Role::Server, 1024), &[&out]).unwrap();
    assert_eq!(got, vec![Owned::Close(Some(1000), String::new(), 2)]);
    // A reason too long for a control frame is cut at a character boundary.
    let long = "é".repeat(100);
    let mut out = Vec::new();
    Encoder::new(Role::Server).close_with_reason(&mut out, 1001, &long);
    let got = decode_all(&mut Decoder::new(Role::Client, 1024), &[&out]).unwrap();
    assert_eq!(got, vec![Owned::Close(Some(1001), "é".repeat(61), 124)]);
}

#[test]
fn what_rfc_6455_forbids_is_refused_with_its_close_code() {
    let big = vec![b'a'; 200];
    let cases: Vec<(Role, Vec<u8>, ProtocolError)> = vec![
        (
            Role::Server,
            raw(0xC1, b"x", Some(KEY)),
            ProtocolError::ReservedBits,
        ),
        (
            Role::Server,
            raw(0x83, b"x", Some(KEY)),
            ProtocolError::UnknownOpcode(3),
        ),
        (
            Role::Server,
            raw(0x8B, b"x", Some(KEY)),
            ProtocolError::UnknownOpcode(0xB),
        ),
        (
            Role::Server,
            raw(0x80 | OP_PING, &big, Some(KEY)),
            ProtocolError::BadControlFrame,
        ),
        (
            Role::Server,
            raw(OP_PING, b"x", Some(KEY)),
            ProtocolError::BadControlFrame,
        ),
        // A client must mask; a server must not.
        (Role::Server, raw(0x81, b"x", None), ProtocolError::Masking),
        (
            Role::Client,
            raw(0x81, b"x", Some(KEY)),
            ProtocolError::Masking,
        ),
        (
            Role::Server,
            raw(0x80 | OP_CONT, b"x", Some(KEY)),
            ProtocolError::Fragmentation,
        ),
        (
            Role::Server,
            [raw(OP_TEXT, b"a", Some(KEY)), raw(0x81, b"b", Some(KEY))].concat(),
            ProtocolError::Fragmentation,
        ),
        (
            Role::Server,
            raw(0x81, &[0xC3, 0x28], Some(KEY)),
            ProtocolError::InvalidUtf8,
        ),
        (
            Role::Server,
            raw(0x81, &[b'a'; 101], Some(KEY)),
            ProtocolError::TooBig,
        ),
        (
            Role::Server,
            [
                raw(OP_TEXT, &[b'a'; 60], Some(KEY)),
                raw(0x80, &[b'a'; 60], Some(KEY)),
            ]
            .concat(),
            ProtocolError::TooBig,
        ),
    ];
    for (role, bytes, want) in cases {
        let err = decode_all(&mut Decoder::new(role, 100), &[&bytes]).unwrap_err();
        assert_eq!(err, want, "{bytes:02x?}");
    }
    assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
    assert_eq!(ProtocolError::TooBig.close_code(), 1009);
    assert_eq!(ProtocolError::Masking.close_code(), 1002);
}

#[test]
fn an_announced_length_over_the_limit_is_refused_before_its_payload_arrives() {
    // Only the header: a peer announcing 1 GiB is refused without buffering anything.
    let mut head = vec![0x81, 0x80 | 127];
    head.extend_from_slice(&(1u64 << 30).to_be_bytes());
    let err = decode_all(&mut Decoder::new(Role::Server, 1 << 20), &[&head]).unwrap_err();
    assert_eq!(err, ProtocolError::TooBig);
}

#[test]
fn client_masking_keys_differ_from_frame_to_frame() {
    let mut enc = Encoder::new(Role::Client);
    let keys: std::collections::HashSet<[u8; 4]> = (0..600)
        .map(|_| {
            let mut out = Vec::new();
            enc.text(&mut out, b"x");
            [out[2], out[3], out[4], out[5]]
        })
        .collect();
    // 600 draws from 2^32: a repeat would mean the keys are not random.
    assert_eq!(keys.len(), 600);
}

proptest! {
    /// Any sequence of messages, cut into reads of any sizes, comes out whole and in order.
    #[test]
    fn any_split_of_any_messages_decodes_to_the_same_messages(
        msgs in proptest::collection::vec(
            prop_oneof![
                "[a-zA-Z0-9+/=é\"{}:,]{0,300}".prop_map(Owned::Text),
                proptest::collection::vec(any::<u8>(), 0..125).prop_map(Owned::Ping),
            ],
            1..12,
        ),
        cuts in proptest::collection::vec(1usize..64, 1..200),
        client in any::<bool>(),
    ) {
        let (from, to) = if client { (Role::Client, Role::Server) } else { (Role::Server, Role::Client) };
        let mut enc = Encoder::new(from);
        let mut bytes = Vec::new();
        for m in &msgs {
            match m {
                Owned::Text(t) => enc.text(&mut bytes, t.as_bytes()),
                Owned::Ping(p) => enc.ping(&mut bytes, p),
                _ => unreachable!(),
            }
        }
        let mut chunks = Vec::new();
        let mut rest = &bytes[..];
        for c in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let (a, b) = rest.split_at((*c).min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        let got = decode_all(&mut Decoder::new(to, 4096), &chunks).unwrap();
        prop_assert_eq!(got, msgs);
    }
}

/// fastwebsockets, an independent implementation, reads what we write and writes what we read.
#[tokio::test]
async fn fastwebsockets_understands_us_both_ways() {
    use fastwebsockets::{Frame, OpCode, Payload, Role as FwRole, WebSocket};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    // We are the client; fastwebsockets the server.
    let mut peer = WebSocket::after_handshake(theirs, FwRole::Server);
    peer.set_auto_close(false);
    peer.set_auto_pong(false);
    let (mut rd, mut wr) = tokio::io::split(ours);
    let mut out = Vec::new();
    let mut enc = Encoder::new(Role::Client);
    let texts: Vec<String> = [0usize, 1, 160, 161, 5000, 70_000]
        .iter()
        .map(|n| media_frame(*n))
        .collect();
    for t in &texts {
        enc.text(&mut out, t.as_bytes());
    }
    wr.write_all(&out).await.unwrap();
    for t in &texts {
        let f = peer.read_frame().await.unwrap();
        assert_eq!(f.opcode, OpCode::Text);
        assert_eq!(&f.payload[..], t.as_bytes());
    }
    for t in &texts {
        peer.write_frame(Frame::text(Payload::Owned(t.clone().into_bytes())))
            .await
            .unwrap();
    }
    peer.write_frame(Frame::close(1001, b"bye")).await.unwrap();
    let mut dec = Decoder::new(Role::Client, 1 << 20);
    let mut got = Vec::new();
    while got.len() < texts.len() + 1 {
        let n = rd.read_buf(dec.read_buffer()).await.unwrap();
        assert!(n > 0);
        while let Some(m) = dec.next_message(|_| {}).unwrap() {
            got.push(Owned::from(m));
        }
    }
    let mut want: Vec<Owned> = texts.into_iter().map(Owned::Text).collect();
    want.push(Owned::Close(Some(1001), "bye".into(), 5));
    assert_eq!(got, want);
}
