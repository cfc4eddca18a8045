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

/// utime + stime, in seconds, from a `/proc/…/stat` line (fields 14 and 15 of proc(5); the
/// comm may contain spaces, so fields are counted after its closing `)`), with its comm.
fn stat_cpu_secs(stat: &str) -> Option<(&str, f64)> {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let f: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some((&stat[open + 1..close], (get(11) + get(12)) as f64 / tick))
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
pub fn thread_cpu_secs(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    dir.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            stat_cpu_secs(&stat)
                .filter(|(comm, _)| comm.starts_with(prefix))
                .map(|(_, secs)| secs)
        })
        .sum()
}

/// CPU seconds (user + system) of process `pid` (`"self"` for this one).
pub fn proc_cpu_secs(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_cpu_secs(&stat).map(|(_, secs)| secs))
        .unwrap_or(f64::NAN)
}

/// Resident set size in KiB (`VmRSS` of /proc/<pid>/status; `"self"` for this process).
pub fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// What every call's drivers saw, put together.
pub struct Totals {
    pub inbound: Summary,
    pub outbound: Summary,
    pub pickup: Summary,
    /// Frames sent and never matched on the far side (in flight at the stop, or lost), each
    /// way.
    pub lost_inbound: usize,
    pub lost_outbound: usize,
    pub errors: Vec<String>,
}

impl Totals {
    pub fn collect(calls: &[CallTimes]) -> Totals {
        let (mut inbound, mut outbound, mut pickup) = (Vec::new(), Vec::new(), Vec::new());
        let (mut lost_inbound, mut lost_outbound, mut errors) = (0, 0, Vec::new());
        for c in calls {
            inbound.extend(lock(&c.inbound_us).iter());
            outbound.extend(lock(&c.outbound_us).iter());
            lost_inbound += lock(&c.inbound_sent).len();
            lost_outbound += lock(&c.outbound_sent).len();
            if let Some(d) = *lock(&c.first_audio) {
                pickup.push(d.as_micros() as u32);
            }
            errors.extend(lock(&c.errors).iter().cloned());
        }
        Totals {
            inbound: summary_us(inbound),
            outbound: summary_us(outbound),
            pickup: summary_us(pickup),
            lost_inbound,
            lost_outbound,
            errors,
        }
    }
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
