//! A strict `multipart/form-data` reader (RFC 7578 over RFC 2046) for a body already read in
//! full: boundary from the `Content-Type`, CRLF delimiters, per-part headers. Anything that is
//! not well formed is refused with a reason, never guessed at.

/// One part of a form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    /// `Content-Disposition: form-data; name="…"`.
    pub name: String,
    pub filename: Option<String>,
    /// The part's own `Content-Type`, as sent (`None` when absent: text/plain per RFC 7578).
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Longest header block accepted per part.
const MAX_PART_HEADERS: usize = 8 * 1024;

/// Splits `type/subtype; k=v; k="quoted"` into the lowercased media type and its parameters
/// (names lowercased, quoted values unescaped).
pub(crate) fn media_type(value: &str) -> Result<(String, Vec<(String, String)>), String> {
    let (mt, mut rest) = match value.find(';') {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    let mt = mt.trim().to_ascii_lowercase();
    if mt.is_empty() || !mt.contains('/') {
        return Err(format!("'{value}' is not a media type"));
    }
    let mut params = vec![];
    while let Some(r) = rest.strip_prefix(';') {
        let r = r.trim_start();
        if r.is_empty() {
            break;
        }
        let eq = r
            .find('=')
            .ok_or_else(|| format!("parameter without a value in '{value}'"))?;
        let name = r[..eq].trim().to_ascii_lowercase();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '"') {
            return Err(format!("bad parameter name in '{value}'"));
        }
        let after = &r[eq + 1..];
        let (val, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => out.push(e),
                        None => break,
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => out.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("unterminated quoted string in '{value}'"))?;
            let tail = q[end + 1..].trim_start();
            if !(tail.is_empty() || tail.starts_with(';')) {
                return Err(format!("text after a quoted string in '{value}'"));
            }
            (out, tail)
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((name, val));
        rest = tail;
    }
    if !rest.trim().is_empty() {
        return Err(format!("unexpected text in '{value}'"));
    }
    Ok((mt, params))
}

/// The boundary of a `multipart/form-data` content type (RFC 2046: 1 to 70 characters).
pub(crate) fn boundary(content_type: &str) -> Result<String, String> {
    let (mt, params) = media_type(content_type)?;
    if mt != "multipart/form-data" {
        return Err(format!("expected multipart/form-data, got '{mt}'"));
    }
    let b = params
        .into_iter()
        .find(|(k, _)| k == "boundary")
        .map(|(_, v)| v)
        .ok_or("the multipart/form-data content type has no boundary")?;
    if b.is_empty() || b.len() > 70 || b.ends_with(' ') || !b.is_ascii() {
        return Err(format!("invalid multipart boundary '{b}'"));
    }
    Ok(b)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i..].starts_with(needle))
}

/// After a delimiter: optional transport padding (spaces, tabs) then CRLF. Returns the index
/// after the CRLF.
fn line_end_after_padding(body: &[u8], mut i: usize) -> Option<usize> {
    while i < body.len() && (body[i] == b' ' || body[i] == b'\t') {
        i += 1;
    }
    body[i..].starts_with(b"\r\n").then_some(i + 2)
}

/// The parts of `body`, in order.
pub(crate) fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let dash = format!("--{boundary}");
    let delim = format!("\r\n{dash}");
    // The first delimiter opens the body or follows a preamble line.
    let mut pos = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        find(body, delim.as_bytes(), 0)
            .map(|i| i + delim.len())
            .ok_or("no multipart boundary delimiter found in the body")?
    };
    let mut parts = vec![];
    loop {
        if body[pos..].starts_with(b"--") {
            if parts.is_empty() {
                return Err("the multipart body has no parts".into());
            }
            return Ok(parts); // close delimiter; the epilogue is ignored
        }
        let start = line_end_after_padding(body, pos)
            .ok_or("a multipart boundary delimiter must end its line")?;
        let next = find(body, delim.as_bytes(), start)
            .ok_or("the multipart body ends without its closing boundary")?;
        parts.push(parse_part(&body[start..next])?);
        pos = next + delim.len();
    }
}

fn parse_part(raw: &[u8]) -> Result<Part, String> {
    let (head, content) = if raw.starts_with(b"\r\n") {
        (&raw[..0], &raw[2..])
    } else {
        let end = find(raw, b"\r\n\r\n", 0).ok_or("a multipart part has no end of headers")?;
        (&raw[..end], &raw[end + 4..])
    };
    if head.len() > MAX_PART_HEADERS {
        return Err("multipart part headers too large".into());
    }
    let head = std::str::from_utf8(head).map_err(|_| "multipart part headers are not UTF-8")?;
    let mut disposition = None;
    let mut content_type = None;
    for line in head
        .split("\r\n")
        .filter(|l| !head.is_empty() || !l.is_empty())
    {
        if line.starts_with([' ', '\t']) {
            return Err("folded multipart headers are not accepted".into());
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed multipart header line '{line}'"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" if disposition.is_none() => disposition = Some(value),
            "content-type" if content_type.is_none() => content_type = Some(value.to_string()),
            "content-disposition" | "content-type" => {
                return Err(format!(
                    "repeated '{}' header in a multipart part",
                    name.trim()
                ))
            }
            _ => {}
        }
    }
    let disposition = disposition.ok_or("a multipart part has no Content-Disposition")?;
    // `form-data; name=…` parses like a media type once given a dummy subtype.
    let (kind, params) = match disposition.split_once(';') {
        Some((k, p)) => (k.trim(), media_type(&format!("x/x;{p}"))?.1),
        None => (disposition.trim(), vec![]),
    };
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(format!(
            "multipart part disposition must be form-data, got '{kind}'"
        ));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let name = get("name").ok_or("a multipart part has no name")?;
    Ok(Part {
        name,
        filename: get("filename"),
        content_type,
        body: content.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &str)], boundary: &str) -> Vec<u8> {
        let mut out = String::new();
        for (name, ct, body) in parts {
            out.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n"
            ));
            if let Some(ct) = ct {
                out.push_str(&format!("Content-Type: {ct}\r\n"));
            }
            out.push_str(&format!("\r\n{body}\r\n"));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out.into_bytes()
    }

    #[test]
    fn boundary_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc123").as_deref(),
            Ok("abc123")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;charset=utf-8;BOUNDARY=\"a b;c\"").as_deref(),
            Ok("a b;c")
        );
        assert!(boundary("multipart/form-data").is_err());
        assert!(boundary("multipart/form-data; boundary=").is_err());
        assert!(boundary("multipart/mixed; boundary=x").is_err());
        assert!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))).is_err());
        assert!(boundary("multipart/form-data; boundary=\"unterminated").is_err());
        assert!(boundary("multipart/form-data; boundary=\"x\"junk").is_err());
    }

    #[test]
    fn parts_with_their_own_headers() {
        let body = form(
            &[
                (
                    "sdp",
                    Some("application/sdp"),
                    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n",
                ),
                (
                    "session",
                    Some("application/json"),
                    "{\"type\":\"realtime\"}",
                ),
            ],
            "XyZ",
        );
        let parts = parse(&body, "XyZ").expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "sdp");
        assert_eq!(parts[0].content_type.as_deref(), Some("application/sdp"));
        // CRLFs inside a part are content; only the one before the delimiter is not.
        assert_eq!(parts[0].body, b"v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n");
        assert_eq!(parts[1].body, b"{\"type\":\"realtime\"}");
    }

    #[test]
    fn preamble_epilogue_padding_filenames_and_header_case() {
        let body = b"preamble line\r\n--b  \r\ncontent-disposition: FORM-DATA; filename=\"o.sdp\"; name=sdp\r\nCONTENT-TYPE: application/sdp\r\nX-Other: 1\r\n\r\nv=0\r\n--b--\r\nepilogue --b\r\n";
        let parts = parse(body, "b").expect("parses");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, "sdp");
        assert_eq!(parts[0].filename.as_deref(), Some("o.sdp"));
        assert_eq!(parts[0].content_type.as_deref(), Some("application/sdp"));
        assert_eq!(parts[0].body, b"v=0");
    }

    #[test]
    fn the_boundary_inside_a_line_is_content() {
        // `--b` not at the start of a line does not end the part.
        let body = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\na--b c\r\n--b--";
        let parts = parse(body, "b").expect("parses");
        assert_eq!(parts[0].body, b"a--b c");
        // An empty part body.
        let body = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n--b--";
        assert_eq!(parse(body, "b").expect("parses")[0].body, b"");
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let ok_part = "Content-Disposition: form-data; name=\"x\"\r\n\r\n1";
        for (body, why) in [
            (String::new(), "empty"),
            ("no delimiter at all".to_string(), "no delimiter"),
            (format!("--b\r\n{ok_part}\r\n"), "no closing delimiter"),
            (format!("--b\r\n{ok_part}"), "truncated"),
            ("--b--\r\n".to_string(), "no parts"),
            ("--b\r\n\r\n1\r\n--b--".to_string(), "no headers"),
            (
                "--b\r\nContent-Type: text/plain\r\n\r\n1\r\n--b--".to_string(),
                "no disposition",
            ),
            (
                "--b\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\n1\r\n--b--".to_string(),
                "not form-data",
            ),
            (
                "--b\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--".to_string(),
                "no name",
            ),
            (
                "--b\nContent-Disposition: form-data; name=\"x\"\n\n1\n--b--".to_string(),
                "bare LF",
            ),
            (format!("--bX\r\n{ok_part}\r\n--b--"), "delimiter not ending its line"),
            (
                "--b\r\nContent-Disposition: form-data;\r\n name=\"x\"\r\n\r\n1\r\n--b--".to_string(),
                "folded header",
            ),
            (
                "--b\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n1\r\n--b--"
                    .to_string(),
                "repeated header",
            ),
            (
                "--b\r\nContent-Disposition: form-data; name=\"x\r\n\r\n1\r\n--b--".to_string(),
                "unterminated name",
            ),
        ] {
            assert!(parse(body.as_bytes(), "b").is_err(), "{why}: accepted");
        }
    }
}
