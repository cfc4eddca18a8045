//! Typed, borrowed parsing of the two frames that are most of the traffic — Telnyx `media` and
//! OpenAI `response.output_audio.delta` — without building a `serde_json::Value` tree, and the
//! outbound frames written without one. Anything these cannot read exactly (an escaped string, a
//! duplicate key, another event) falls back to the general parser, so the result is the same.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A non-negative integer given as a JSON number or a decimal string; anything else is `None`
/// (what `json_util::u64_field` reads).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct LooseU64(pub Option<u64>);

impl<'de> Deserialize<'de> for LooseU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseU64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a decimal string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseU64, E> {
                Ok(LooseU64(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseU64, E> {
                Ok(LooseU64(u64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LooseU64, E> {
                Ok(LooseU64(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseU64, E> {
                Ok(LooseU64(v.trim().parse().ok()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LooseU64, E> {
                Ok(LooseU64(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LooseU64, E> {
                Ok(LooseU64(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LooseU64, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LooseU64(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<LooseU64, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LooseU64(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
pub(crate) struct TelnyxMedia<'a> {
    #[serde(borrow)]
    pub event: &'a str,
    #[serde(default)]
    pub sequence_number: LooseU64,
    #[serde(borrow)]
    pub media: TelnyxMediaBody<'a>,
}

#[derive(Deserialize)]
pub(crate) struct TelnyxMediaBody<'a> {
    #[serde(borrow)]
    pub payload: &'a str,
    #[serde(borrow, default)]
    pub track: Option<MaybeStr<'a>>,
    #[serde(default)]
    pub chunk: LooseU64,
    #[serde(default)]
    pub timestamp: LooseU64,
}

/// A field read as a string when it is one (`json_util::str_field`), ignored otherwise.
pub(crate) struct MaybeStr<'a>(pub Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = MaybeStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("anything")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(Some(v)))
            }
            // An escaped string cannot be borrowed: the general parser reads it.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MaybeStr<'a>, E> {
                Err(E::custom("escaped"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeStr<'a>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<MaybeStr<'a>, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<MaybeStr<'a>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
pub(crate) struct AudioDelta<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: &'a str,
    #[serde(borrow)]
    pub response_id: &'a str,
    #[serde(borrow)]
    pub item_id: &'a str,
    #[serde(borrow)]
    pub delta: &'a str,
}

/// Base64 needs no JSON escaping: such text can be written into a frame as is.
pub(crate) fn is_base64_text(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

#[cfg(test)]
mod tests {
    use super::super::{openai_events, telnyx_frames};

    /// Real frames and the awkward ones: numbers as strings or numbers, negative or fractional,
    /// odd tracks, escaped strings, duplicate keys, odd-sized payloads. Fast or general, the
    /// same result.
    #[test]
    fn the_fast_paths_read_exactly_what_the_general_parsers_read() {
        let telnyx = [
            r#"{"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"3","timestamp":"40","payload":"f39/fw=="},"stream_id":"s"}"#,
            r#"{"event":"media","sequence_number":4,"media":{"track":"outbound","chunk":3,"timestamp":40,"payload":"AAEC"}}"#,
            r#"{"event":"media","sequence_number":-1,"media":{"track":7,"chunk":1.5,"payload":"AA"}}"#,
            r#"{"event":"media","media":{"payload":"A\/B="}}"#,
            r#"{"event":"media","media":{"payload":"AA","payload":"BB"}}"#,
            r#"{"event":"media","media":{"track":"out\u0062ound","payload":"AA"}}"#,
            r#"{"event":"media","media":{"track":null,"payload":"AA","chunk":{"a":[1]}}}"#,
            r#"{"event":"media","media":{}}"#,
            r#"{"event":"mark","mark":{"name":"media"}}"#,
            r#"["media"]"#,
        ];
        for t in telnyx {
            assert_eq!(
                telnyx_frames::parse(t),
                telnyx_frames::parse_general(t),
                "{t}"
            );
        }
        let openai = [
            r#"{"type":"response.output_audio.delta","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"f39/fw=="}"#,
            r#"{"type":"response.output_audio.delta","response_id":"r\"x","item_id":"i","delta":"AA"}"#,
            r#"{"type":"response.output_audio.delta","response_id":"r","item_id":"i"}"#,
            r#"{"type":"response.output_audio.delta","type":"error","response_id":"r","item_id":"i","delta":"AA"}"#,
            r#"{"type":"response.done","response":{"id":"response.output_audio.delta"}}"#,
        ];
        for t in openai {
            assert_eq!(
                openai_events::parse(t),
                openai_events::parse_general(t),
                "{t}"
            );
        }
        // Frames we write parse back to what we wrote, payloads of any size.
        for n in [0usize, 1, 2, 3, 160, 161, 4000] {
            let b64 =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![0x7fu8; n]);
            let parsed = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
            let f = telnyx_frames::media(&b64);
            assert_eq!(
                parsed(&f),
                serde_json::json!({"event":"media","media":{"payload":b64}})
            );
            // Encoded straight into the frame: the same text as encoding first.
            let raw = vec![0x7fu8; n];
            assert_eq!(telnyx_frames::media_audio(&raw), f);
            assert_eq!(
                openai_events::append_audio(&raw),
                openai_events::append(&b64)
            );
            let a = openai_events::append(&b64);
            assert_eq!(
                parsed(&a),
                serde_json::json!({"type":"input_audio_buffer.append","audio":b64})
            );
        }
    }
}
