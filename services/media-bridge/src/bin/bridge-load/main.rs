//! bridge-load: a load generator in its own process, against the real `media-bridge` binary in
//! another. It plays Telnyx's media stream (a WebSocket client per call) and OpenAI's Realtime
//! WebSocket (the server the bridge connects to), writes each call's context and one-time token
//! in Redis as tools-svc does, and reads the bridge process's own CPU and memory from
//! `/proc/<pid>` — so a figure is the bridge's alone, not the generator's.
//!
//! ```text
//! cargo build --release -p media-bridge --bins
//! target/release/bridge-load --calls 100,250,500,1000,2000 [--secs 10] [--ramp-ms 2000] \
//!     [--bridge-cpus 1] [--tls] [--capacity] [--bridge-env KEY=VALUE] \
//!     [--bridge-bin target/release/media-bridge]
//! # the generator itself on the other core:  taskset -c 0 target/release/bridge-load …
//! ```
//!
//! For each N it starts a fresh `redis-server` and bridge, runs N calls of 20 ms μ-law frames
//! both ways for `--secs`, and prints per-frame added latency both ways (p50/p99/max), frames
//! lost, the bridge's CPU per call-second and per message, its RSS per call, and pick-up → first
//! agent audio. `--tls` puts the OpenAI leg on TLS, as in production: the generator makes a
//! throw-away certificate authority with `openssl` and hands it to the bridge as `SSL_CERT_FILE`.

#[path = "../bridge-bench/contexts.rs"]
mod contexts;
#[path = "../bridge-bench/fake_openai.rs"]
mod fake_openai;
#[path = "../bridge-bench/fake_telnyx.rs"]
mod fake_telnyx;
#[path = "../bridge-bench/stats.rs"]
#[allow(dead_code)]
mod stats;

use callway_core::call_context::ContextStore;
use stats::*;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    calls: Vec<usize>,
    secs: u64,
    ramp_ms: u64,
    bridge_cpus: Option<String>,
    bridge_bin: std::path::PathBuf,
    tls: bool,
    /// After the listed N, bisect for the most calls held at p99 ≤ 5 ms.
    capacity: bool,
    /// Extra `KEY=VALUE` settings for the bridge process (allocator knobs, tuning).
    bridge_env: Vec<(String, String)>,
}

fn args() -> anyhow::Result<Args> {
    let exe = std::env::current_exe()?;
    let mut a = Args {
        calls: vec![100],
        secs: 10,
        ramp_ms: 2_000,
        bridge_cpus: None,
        bridge_bin: exe.with_file_name("media-bridge"),
        tls: false,
        capacity: false,
        bridge_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{k} needs a value"))
        };
        match k.as_str() {
            "--calls" => {
                a.calls = v()?
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--secs" => a.secs = v()?.parse()?,
            "--ramp-ms" => a.ramp_ms = v()?.parse()?,
            "--bridge-cpus" => a.bridge_cpus = Some(v()?),
            "--bridge-bin" => a.bridge_bin = v()?.into(),
            "--tls" => a.tls = true,
            "--capacity" => a.capacity = true,
            "--bridge-env" => {
                let kv = v()?;
                let (k, val) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--bridge-env wants KEY=VALUE"))?;
                a.bridge_env.push((k.to_owned(), val.to_owned()));
            }
            _ => anyhow::bail!(
                "usage: bridge-load [--calls N,N…] [--secs S] [--ramp-ms MS] [--bridge-cpus LIST] [--tls] [--capacity] [--bridge-env K=V] [--bridge-bin PATH]"
            ),
        }
    }
    Ok(a)
}

/// A throw-away self-signed certificate for 127.0.0.1 (made by `openssl`) and the acceptor
/// serving it; the bridge trusts it through `SSL_CERT_FILE`.
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    cert: std::path::PathBuf,
}

fn make_tls() -> anyhow::Result<Tls> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let dir = std::env::temp_dir().join(format!("bridge-load-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "openssl could not make a certificate");
    let chain = CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        cert,
    })
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16, within: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("nothing listens on port {port}")
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let (fd_before, fd_after) = raise_fd_limit();
    callway_core::install_crypto_provider();
    println!(
        "bridge-load: bridge {} (pinned to {}), generator pid {}, fd limit {fd_before} -> {fd_after}, {} build",
        a.bridge_bin.display(),
        a.bridge_cpus.as_deref().unwrap_or("any cpu"),
        std::process::id(),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!("| calls | Telnyx→OpenAI p50/p99/max ms | OpenAI→Telnyx p50/p99/max ms | lost | bridge CPU ms per call-s | µs per message | RSS KiB per call | pick-up→audio p50/p99 ms | CPU bridge / generator | failed |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut verdicts = Vec::new();
    for &n in &a.calls {
        verdicts.push((n, run_one(&a, n)?));
    }
    if a.capacity {
        search_capacity(&a, verdicts)?;
    }
    Ok(())
}

/// Whether a run met the bar: p99 added latency ≤ 5 ms both ways and every call completed.
type Held = bool;

/// Bisects between the largest N that held and the smallest that did not, to within 5 %, and
/// says how many calls the bridge carries at p99 ≤ 5 ms (per core when it is pinned to one).
fn search_capacity(a: &Args, mut verdicts: Vec<(usize, Held)>) -> anyhow::Result<()> {
    let bounds = |v: &[(usize, Held)]| {
        let held = v.iter().filter(|(_, h)| *h).map(|(n, _)| *n).max();
        let failed = v
            .iter()
            .filter(|(n, h)| !*h && held.is_none_or(|m| *n > m))
            .map(|(n, _)| *n)
            .min();
        (held, failed)
    };
    while let (Some(lo), Some(hi)) = bounds(&verdicts) {
        if hi - lo <= lo / 20 + 1 {
            break;
        }
        let mid = (lo + hi) / 2;
        verdicts.push((mid, run_one(a, mid)?));
    }
    let per = match a.bridge_cpus.as_deref() {
        Some(c) if !c.contains([',', '-']) => "on one core",
        _ => "on the cores it was given",
    };
    match bounds(&verdicts) {
        (Some(lo), Some(hi)) => println!(
            "capacity: the bridge carries {lo} calls {per} at p99 ≤ 5 ms ({hi} did not hold)"
        ),
        (Some(lo), None) => println!(
            "capacity: at least {lo} calls {per} at p99 ≤ 5 ms (add a larger --calls value)"
        ),
        _ => println!("capacity: no run held p99 ≤ 5 ms (add a smaller --calls value)"),
    }
    Ok(())
}

fn run_one(a: &Args, n: usize) -> anyhow::Result<Held> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let calls: Arc<Vec<CallTimes>> = Arc::new((0..n).map(|_| CallTimes::default()).collect());
    let redis_port = free_port()?;
    let _redis = Proc(
        Command::new("redis-server")
            .args([
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_port(redis_port, Duration::from_secs(10))?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}/");
    let tls = a.tls.then(make_tls).transpose()?;
    let acceptor = tls.as_ref().map(|t| t.acceptor.clone());
    let openai_addr = rt.block_on(fake_openai::start(calls.clone(), acceptor))?;
    let scheme = if a.tls { "https" } else { "http" };
    let bridge_port = free_port()?;
    let limit = (n + 10).to_string();
    let mut cmd = match &a.bridge_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(&a.bridge_bin);
            c
        }
        None => Command::new(&a.bridge_bin),
    };
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CALLWAY_CONFIG_FILE", "/nonexistent/callway.toml")
        .env("CALLWAY_HOST", "127.0.0.1")
        .env("MEDIA_BRIDGE_PORT", bridge_port.to_string())
        .env("MEDIA_BRIDGE_MAX_CALLS", &limit)
        // Every generated socket comes from 127.0.0.1 within the ramp.
        .env("MEDIA_BRIDGE_HALF_OPEN_PER_IP", &limit)
        .env("MEDIA_BRIDGE_HALF_OPEN_MAX", &limit)
        .env("REDIS_URL", &redis_url)
        .env("OPENAI_API_KEY", fake_openai::KEY)
        .env("OPENAI_BASE_URL", format!("{scheme}://{openai_addr}/v1"))
        .env("TELNYX_API_KEY", "KEYload")
        .env("TELNYX_BASE_URL", "http://127.0.0.1:9")
        .env("TELNYX_CONNECTION_ID", "load")
        .env("TELNYX_FROM_NUMBER", "+33100000001")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if let Some(t) = &tls {
        cmd.env("SSL_CERT_FILE", &t.cert);
    }
    for (k, v) in &a.bridge_env {
        cmd.env(k, v);
    }
    let bridge = Proc(cmd.spawn()?);
    // With taskset, the bridge is taskset's child, exec'd in place: same pid.
    let pid = bridge.0.id().to_string();
    wait_port(bridge_port, Duration::from_secs(20))?;
    let bridge_addr: std::net::SocketAddr = ([127, 0, 0, 1], bridge_port).into();

    let setup = rt.block_on(async {
        let contexts = ContextStore::Redis(callway_core::redis_conn::connect(&redis_url).await?);
        contexts::issue_calls(&contexts, n).await
    })?;

    let rss0 = rss_kib(&pid);
    let cpu0 = proc_cpu_secs(&pid);
    let length = Duration::from_secs(a.secs);
    let ramp = Duration::from_millis(a.ramp_ms);
    // CPU over the steady window only (every call up), so per call-second is honest.
    let (peak_rss, steady_cpu, generator_cpu, steady_secs) = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (token, secret)) in setup.into_iter().enumerate() {
            let delay = Duration::from_millis(a.ramp_ms * i as u64 / n.max(1) as u64);
            let calls = calls.clone();
            tasks.spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) =
                    fake_telnyx::run(bridge_addr, token, secret, i as u32, calls.clone(), length)
                        .await
                {
                    lock(&calls[i].errors).push(e.to_string());
                }
            });
        }
        tokio::time::sleep(ramp + Duration::from_millis(500)).await;
        let (c1, g1, t1) = (proc_cpu_secs(&pid), proc_cpu_secs("self"), Instant::now());
        let window = length.saturating_sub(Duration::from_millis(1500));
        tokio::time::sleep(window / 2).await;
        let peak = rss_kib(&pid);
        tokio::time::sleep(window - window / 2).await;
        let (c2, g2, t2) = (proc_cpu_secs(&pid), proc_cpu_secs("self"), Instant::now());
        while tasks.join_next().await.is_some() {}
        (peak, c2 - c1, g2 - g1, (t2 - t1).as_secs_f64())
    });
    let total_cpu = proc_cpu_secs(&pid) - cpu0;
    drop(bridge);

    let t = Totals::collect(&calls);
    // Messages the bridge read and wrote in the steady window: a frame each way per 20 ms per
    // call, in and out on both sockets (marks and echoes are a few percent more, not counted).
    let messages = n as f64 * steady_secs * 50.0 * 4.0;
    let (i, o, p, errors) = (&t.inbound, &t.outbound, &t.pickup, &t.errors);
    println!(
        "| {n} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {} | {:.2} | {:.2} | {:.1} | {:.2} / {:.2} | {:.0} % / {:.0} % | {}{} |",
        i.p50, i.p99, i.max, o.p50, o.p99, o.max,
        t.lost_inbound + t.lost_outbound,
        steady_cpu * 1000.0 / (n as f64 * steady_secs),
        steady_cpu * 1e6 / messages,
        peak_rss.saturating_sub(rss0) as f64 / n as f64,
        p.p50, p.p99,
        // Of one core: a generator near its cores' limit is what the latencies then measure.
        steady_cpu * 100.0 / steady_secs,
        generator_cpu * 100.0 / steady_secs,
        errors.len(),
        errors.first().map(|e| format!(" ({e})")).unwrap_or_default(),
    );
    eprintln!(
        "  (N={n}: bridge CPU {total_cpu:.2} s in all; RSS {} → {} KiB)",
        rss0, peak_rss
    );
    Ok(errors.is_empty() && i.p99 <= 5.0 && o.p99 <= 5.0)
}
