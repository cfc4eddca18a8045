//! Scrubs phone numbers out of free text (log lines, error messages). Domain types already print
//! masked; this is the safety net for anything that slips through, applied to every log line.

use std::borrow::Cow;

/// Replaces phone-number-looking sequences with a masked form.
///
/// Matched: `+` then at least 8 digits; `00` then at least 9 digits; a national number of exactly
/// 10 digits starting with `0`; 8 to 15 bare digits between backticks (how serde quotes a number
/// it refused). Spaces, dots, dashes and parentheses may separate digits. Digit runs
/// glued to letters (ids, hex) and other lengths (timestamps, counters) are left alone.
pub fn mask_phone_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_token = i == 0 || !is_word(bytes[i - 1]);
        if starts_token && (bytes[i] == b'+' || bytes[i].is_ascii_digit()) {
            if let Some((end, digits)) = scan(bytes, i) {
                let plus = bytes[i] == b'+';
                let n = digits.len();
                // serde and Debug output quote values in backticks: a bare international
                // number there (`33612345678`, a phone sent as a JSON number) is masked too.
                let quoted = i > 0 && bytes[i - 1] == b'`' && bytes.get(end) == Some(&b'`');
                let phone_like = (plus && n >= 8)
                    || (!plus && digits.starts_with("00") && (11..=17).contains(&n))
                    || (!plus && n == 10 && digits.starts_with('0'))
                    || (!plus && quoted && (8..=15).contains(&n));
                if phone_like {
                    let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    o.push_str(&text[copied..i]);
                    o.push_str(&masked(&digits, plus));
                    copied = end;
                    i = end;
                    continue;
                }
                i = end.max(i + 1);
                continue;
            }
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Scans a number token; returns where it ends and its digits. `None` if glued to a letter.
fn scan(bytes: &[u8], start: usize) -> Option<(usize, String)> {
    let mut digits = String::new();
    let mut j = start;
    if bytes[j] == b'+' {
        j += 1;
    }
    let mut last_digit_end = j;
    while j < bytes.len() {
        let b = bytes[j];
        if b.is_ascii_digit() {
            digits.push(b as char);
            j += 1;
            last_digit_end = j;
        } else if matches!(b, b' ' | b'.' | b'-' | b'(' | b')')
            && j + 1 < bytes.len()
            && (bytes[j + 1].is_ascii_digit() || (b == b'(' || bytes[j + 1] == b'('))
        {
            j += 1;
        } else {
            break;
        }
    }
    if last_digit_end < bytes.len() && bytes[last_digit_end].is_ascii_alphabetic() {
        return None;
    }
    Some((last_digit_end, digits))
}

fn masked(digits: &str, plus: bool) -> String {
    let keep_head = if plus { 3 } else { 2 };
    let head = &digits[..keep_head.min(digits.len())];
    let tail = &digits[digits.len().saturating_sub(2)..];
    let hidden = digits.len().saturating_sub(keep_head + 2);
    format!(
        "{}{head}{}{tail}",
        if plus { "+" } else { "" },
        "•".repeat(hidden)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_numbers_in_all_usual_spellings() {
        for (input, hidden) in [
            ("call +33612345678 now", "12345"),
            ("to=+33 6 12 34 56 78", "12 34"),
            ("raw 06 12 34 56 78 given", "12 34 56"),
            ("raw 06.12.34.56.78", "12.34"),
            ("0033612345678", "3361234"),
            ("{\"to\":\"+14155552671\"}", "4155552"),
            (
                "invalid type: integer `33612345678`, expected a string at line 1 column 20",
                "3612345",
            ),
        ] {
            let out = mask_phone_numbers(input);
            assert!(!out.contains(hidden), "{input:?} -> {out:?}");
            assert!(out.contains('•'), "{input:?} -> {out:?}");
        }
    }

    #[test]
    fn leaves_timestamps_ids_and_counters_alone() {
        for input in [
            "2026-11-24T09:12:13.123456Z",
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
            "span 1234567890123 took 15 ms",
            "lead 3f2b1c9e-1111-4222-8333-944445555666",
            "port 54321 status 201",
            "id 0612345678abc",
            "invalid length `12`, expected 32 bytes",
        ] {
            assert_eq!(mask_phone_numbers(input), input);
        }
    }
}
