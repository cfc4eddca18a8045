//! Per-call timing records and the numbers the bench prints.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one call's drivers saw. Frames carry `(call, seq)` in their first 8 payload bytes, so
/// the far side can find when the matching frame entered the bridge.
#[derive(Default)]
pub struct CallTimes {
    /// Telnyx → bridge media frames, by sequence: when the fake Telnyx wrote them.
    pub inbound_sent: Mutex<HashMap<u32, Instant>>,
    /// OpenAI → bridge audio deltas, by sequence: when the fake OpenAI wrote them.
    pub outbound_sent: Mutex<HashMap<u32, Instant>>,
    /// Microseconds, frame in → matching frame out.
    pub inbound_us: Mutex<Vec<u32>>,
    pub outbound_us: Mutex<Vec<u32>>,
    pub started_at: Mutex<Option<Instant>>,
    pub first_audio: Mutex<Option<Duration>>,
    pub errors: Mutex<Vec<String>>,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn tag(call: u32, seq: u32) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&call.to_be_bytes());
    t[4..].copy_from_slice(&seq.to_be_bytes());
    t
}

pub fn untag(payload: &[u8]) -> Option<(u32, u32)> {
    let call = u32::from_be_bytes(payload.get(..4)?.try_into().ok()?);
    let seq = u32::from_be_bytes(payload.get(4..8)?.try_into().ok()?);
    Some((call, seq))
}

/// Records the latency of a frame that just left the bridge.
pub fn arrived(sent: &Mutex<HashMap<u32, Instant>>, out: &Mutex<Vec<u32>>, seq: u32) {
    if let Some(t0) = lock(sent).remove(&seq) {
        lock(out).push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
}

/// The string value of `"key":"..."` in a JSON text without escapes in that value (base64,
/// mark names): enough for the bench's own drivers, much cheaper than a parse.
pub fn string_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = json.find(&pat)? + pat.len();
    let len = json[start..].find('"')?;
    Some(&json[start..start + len])
}

pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Percentiles in milliseconds.
pub fn summary_us(mut v: Vec<u32>) -> Summary {
    v.sort_unstable();
    let at = |q: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i] as f64 / 1000.0
    };
    Summary {
        n: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
pub fn thread_cpu_secs(prefix: &str) -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let mut ticks = 0u64;
    for t in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // "tid (comm) state ..." — comm may contain spaces: split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After the comm: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        let utime = fields
            .get(11)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        let stime = fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        ticks += utime + stime;
    }
    ticks as f64 / tick
}

/// Whole-process CPU seconds (getrusage).
pub fn process_cpu_secs() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Resident set size in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Raises the soft open-files limit to the hard limit; returns (before, after).
pub fn raise_fd_limit() -> (u64, u64) {
    let mut r: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return (0, 0);
    }
    let before = r.rlim_cur as u64;
    r.rlim_cur = r.rlim_max;
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return (before, before);
    }
    (before, r.rlim_cur as u64)
}
