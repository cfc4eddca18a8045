//! Identifiers shaped like OpenAI's: a prefix plus 21 base62 characters (`sess_…`, `event_…`, `item_…`,
//! `resp_…`, `call_…`, `rtc_…`, `ek_…`).

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `prefix` followed by 21 random base62 characters.
pub fn new_id(prefix: &str) -> String {
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut out = String::with_capacity(prefix.len() + 21);
    out.push_str(prefix);
    for _ in 0..21 {
        out.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_have_prefix_and_21_base62_chars() {
        let id = super::new_id("sess_");
        assert!(id.starts_with("sess_"));
        assert_eq!(id.len(), 5 + 21);
        assert!(id[5..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(super::new_id("x"), super::new_id("x"));
    }
}
