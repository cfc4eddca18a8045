//! bridge-bench: N concurrent calls through the real bridge server (shell + core) on loopback.
//!
//! `cargo run --release -p media-bridge --bin bridge-bench -- --calls 1000 [--secs 10] [--ramp-ms 2000]`
//!
//! The bridge runs on its own Tokio runtime (threads `bridge-rt*`, its calls on `bridge-io-*`) so its CPU time can be read
//! per thread; the fake Telnyx streams and the fake OpenAI peer run on another (`driver-rt*`).
//! Each 20 ms frame carries `(call, seq)` in its first bytes, so latency is measured from the
//! moment a driver writes a frame into a bridge socket to the moment the matching frame comes
//! out of the other socket (loopback TCP both ways included).

mod contexts;
mod fake_openai;
mod fake_telnyx;
mod stats;

use callway_core::call_context::ContextStore;
use callway_core::secret::Secret;
use callway_core::telnyx::{TelnyxClient, TelnyxConfig};
use media_bridge::{BridgeState, OpenAiEndpoint, Tuning};
use stats::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    calls: usize,
    secs: u64,
    ramp_ms: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        calls: 100,
        secs: 10,
        ramp_ms: 2_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{k} needs a value"))
        };
        match k.as_str() {
            "--calls" => a.calls = v()?.parse()?,
            "--secs" => a.secs = v()?.parse()?,
            "--ramp-ms" => a.ramp_ms = v()?.parse()?,
            _ => anyhow::bail!("usage: bridge-bench [--calls N] [--secs S] [--ramp-ms MS]"),
        }
    }
    Ok(a)
}

fn runtime(name: &'static str, threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let (fd_before, fd_after) = raise_fd_limit();
    callway_core::install_crypto_provider();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bridge_rt = runtime("bridge-rt", cores)?;
    let driver_rt = runtime("driver-rt", cores)?;
    let calls: Arc<Vec<CallTimes>> = Arc::new((0..a.calls).map(|_| CallTimes::default()).collect());
    let contexts = ContextStore::memory();

    // The fake OpenAI peer, then the bridge pointing at it.
    let openai_addr = driver_rt.block_on(fake_openai::start(calls.clone(), None))?;
    let openai = OpenAiEndpoint::new(
        &format!("http://{openai_addr}/v1"),
        "gpt-realtime",
        Secret::new(fake_openai::KEY),
        Duration::from_secs(5),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    // Never called: calls end with the stream's `stop`, not with a hang-up.
    let telnyx = TelnyxClient::new(TelnyxConfig {
        base_url: "http://127.0.0.1:9".into(),
        api_key: Secret::new("KEYbench"),
        connection_id: "bench".into(),
        from_number: "+33100000001".into(),
        timeout: Duration::from_secs(1),
        max_attempts: 1,
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    // Every fake Telnyx socket comes from 127.0.0.1, all within the ramp: the per-address
    // half-open limit (a defence against slowloris) would turn most of them away.
    let tuning = Tuning {
        max_calls: a.calls + 10,
        half_open_per_ip: a.calls + 10,
        half_open_max: a.calls + 10,
        ..Tuning::default()
    };
    let state = BridgeState::new(contexts.clone(), telnyx, openai, "marin".into(), tuning);
    let listener = bridge_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let bridge_addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = bridge_rt.spawn(media_bridge::run(listener, state, async {
        let _ = stopped.await;
    }));

    let setup = driver_rt.block_on(contexts::issue_calls(&contexts, a.calls))?;

    let rss0 = rss_kib("self");
    let (cpu_bridge0, cpu_proc0) = (thread_cpu_secs("bridge-"), proc_cpu_secs("self"));
    let wall = Instant::now();
    let length = Duration::from_secs(a.secs);
    let peak_rss = driver_rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (token, secret)) in setup.into_iter().enumerate() {
            let delay = Duration::from_millis(a.ramp_ms * i as u64 / a.calls.max(1) as u64);
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
        // Peak memory: sample while every call is up.
        let mid = Duration::from_millis(a.ramp_ms) + length / 2;
        tokio::time::sleep(mid).await;
        let peak = rss_kib("self");
        while tasks.join_next().await.is_some() {}
        peak
    });
    // Let the bridge finish closing (OpenAI close handshakes).
    std::thread::sleep(Duration::from_millis(500));
    let elapsed = wall.elapsed();
    let cpu_bridge = thread_cpu_secs("bridge-") - cpu_bridge0;
    let cpu_proc = proc_cpu_secs("self") - cpu_proc0;
    let _ = stop.send(());
    let _ = bridge_rt.block_on(server);

    let n = a.calls as f64;
    let Totals {
        inbound: i,
        outbound: o,
        pickup: p,
        lost_inbound: lost_in,
        lost_outbound: lost_out,
        errors,
    } = Totals::collect(&calls);
    println!(
        "bridge-bench: {} calls x {} s (ramp {} ms), loopback, {} cores, {} build",
        a.calls,
        a.secs,
        a.ramp_ms,
        cores,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    if fd_after > fd_before {
        println!("fd limit: soft RLIMIT_NOFILE raised with setrlimit {fd_before} -> {fd_after}");
    } else {
        println!(
            "fd limit: soft RLIMIT_NOFILE {fd_before} (already the hard limit; 4 sockets per call)"
        );
    }
    println!(
        "calls: {} with agent audio, {} failed{}",
        p.n,
        errors.len(),
        errors
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "added latency Telnyx->OpenAI per frame: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} frames, {} unmatched)",
        i.p50, i.p99, i.max, i.n, lost_in
    );
    println!(
        "added latency OpenAI->Telnyx per frame: p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} frames, {} unmatched)",
        o.p50, o.p99, o.max, o.n, lost_out
    );
    println!(
        "pick-up (start) -> first agent audio frame: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        p.p50, p.p99, p.max
    );
    println!(
        "CPU: bridge threads {:.2} s = {:.1} ms per call ({:.2} ms per call-second); whole process (incl. drivers) {:.2} s = {:.1} ms per call",
        cpu_bridge,
        cpu_bridge * 1000.0 / n,
        cpu_bridge * 1000.0 / n / a.secs as f64,
        cpu_proc,
        cpu_proc * 1000.0 / n
    );
    println!(
        "memory: RSS {} MiB before calls, {} MiB with all calls up: +{:.1} KiB per call (bridge + bench drivers)",
        rss0 / 1024,
        peak_rss / 1024,
        (peak_rss.saturating_sub(rss0)) as f64 / n
    );
    println!("wall time: {:.1} s", elapsed.as_secs_f64());
    Ok(())
}
