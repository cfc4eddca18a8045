//! The native production topology, started for a test: PostgreSQL with the migrations and the
//! PostgREST-compatible server, Redis, the OpenAI and Telnyx simulators (in-process), N instances
//! of each service binary as separate processes, and the real Caddy with the real `Caddyfile` in
//! front of them on one port. Everything listens on loopback on free ports and is stopped when
//! the returned [`Topology`] is dropped.
//!
//! Between Caddy and each service instance sits a transparent TCP relay that notes the request
//! lines going through it, so a test can tell which instance served what (Caddy 2.6 logs no
//! upstream per request, and the services log no access lines).

#![allow(dead_code)] // each test binary uses a different part of the harness

use anyhow::{bail, Context};
use callway_testkit::pg::TempPostgres;
use callway_testkit::ports::{free_port, wait_for_port};
use callway_testkit::postrust::Postrust;
use callway_testkit::redis::TempRedis;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The four services, with the port variable each reads and the Caddy upstream-list variable
/// that routes to it.
pub const SERVICES: [Service; 4] = [
    Service {
        bin: "token-svc",
        port_var: "TOKEN_SVC_PORT",
        upstreams_var: "TOKEN_SVC_UPSTREAMS",
    },
    Service {
        bin: "tools-svc",
        port_var: "TOOLS_SVC_PORT",
        upstreams_var: "TOOLS_SVC_UPSTREAMS",
    },
    Service {
        bin: "webhook-svc",
        port_var: "WEBHOOK_SVC_PORT",
        upstreams_var: "WEBHOOK_SVC_UPSTREAMS",
    },
    Service {
        bin: "media-bridge",
        port_var: "MEDIA_BRIDGE_PORT",
        upstreams_var: "MEDIA_BRIDGE_UPSTREAMS",
    },
];

#[derive(Clone, Copy, Debug)]
pub struct Service {
    pub bin: &'static str,
    pub port_var: &'static str,
    pub upstreams_var: &'static str,
}

/// The number every topology test calls back (a French mobile, as the sandbox scenario says).
pub const CALLEE: &str = "+33612345678";
const FROM: &str = "+33100000001";
const CONNECTION: &str = "topology-connection";

pub struct Options {
    /// Instances of each service.
    pub instances: usize,
    /// Forwarded to every process as `OTEL_EXPORTER_OTLP_ENDPOINT` (an OTLP/HTTP receiver).
    pub otel_endpoint: Option<String>,
    /// The web agent's scenario (default: the sandbox one).
    pub web_scenario: sim_openai::Scenario,
    /// The phone agent's scenario, on a second OpenAI simulator used only by media-bridge.
    pub phone_scenario: sim_openai::Scenario,
    /// How the callee behaves.
    pub callee: sim_telnyx::Callee,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            instances: 2,
            otel_endpoint: None,
            web_scenario: sim_openai::Scenario::default_sandbox(),
            phone_scenario: sim_openai::Scenario::default_phone(),
            callee: sim_telnyx::Callee::Human {
                speech_wav: tone_wav_8k(1.0),
                hang_up_after: Some(Duration::from_secs(8)),
            },
        }
    }
}

/// One running service instance.
pub struct Instance {
    pub service: Service,
    pub index: usize,
    /// Where the process listens.
    pub port: u16,
    /// Where Caddy sends its traffic (the relay in front of `port`).
    pub relay_port: u16,
    pub log: PathBuf,
    /// Request lines (`GET /api/calls/cx_…/events`) Caddy sent through the relay, health checks
    /// included.
    pub seen: Arc<Mutex<Vec<String>>>,
    child: Option<Child>,
}

impl Instance {
    /// Requests other than Caddy's health checks.
    pub fn requests(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.ends_with(" /health"))
            .cloned()
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn name(&self) -> String {
        format!("{}#{}", self.service.bin, self.index)
    }
}

pub struct Topology {
    /// Caddy's URL: the only address the browser and Telnyx use.
    pub url: String,
    pub pg: TempPostgres,
    pub api: Postrust,
    pub redis: TempRedis,
    /// The web agent (token-svc mints here; the browser's WebRTC peer).
    pub openai_web: sim_openai::OpenAiSim,
    /// The phone agent (media-bridge's WebSocket sessions).
    pub openai_phone: sim_openai::OpenAiSim,
    pub telnyx: sim_telnyx::TelnyxSim,
    pub instances: Vec<Instance>,
    pub dir: tempfile::TempDir,
    caddy: Option<Child>,
    pub caddy_log: PathBuf,
}

impl Topology {
    pub fn instances_of(&self, bin: &str) -> Vec<&Instance> {
        self.instances
            .iter()
            .filter(|i| i.service.bin == bin)
            .collect()
    }

    /// Every process log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in &self.instances {
            out.push_str(&format!(
                "--- {} (requests {:?})\n{}\n",
                i.name(),
                i.requests(),
                tail(&i.log_text(), 30)
            ));
        }
        out.push_str(&format!(
            "--- caddy\n{}\n",
            tail(
                &std::fs::read_to_string(&self.caddy_log).unwrap_or_default(),
                20
            )
        ));
        out
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let children = self
            .instances
            .iter_mut()
            .filter_map(|i| i.child.take())
            .chain(self.caddy.take());
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Where the service binaries are: `$CALLWAY_BIN_DIR` (scripts/test sets it after
/// `cargo build --workspace --bins`). Building them is not this harness's job.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var("CALLWAY_BIN_DIR").context(
        "CALLWAY_BIN_DIR is not set: build the services (`cargo build --workspace --bins`) and \
         point CALLWAY_BIN_DIR at the target's debug directory (scripts/test does both)",
    )?;
    Ok(PathBuf::from(dir))
}

fn caddy_bin() -> PathBuf {
    std::env::var_os("CALLWAY_CADDY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("caddy"))
}

/// A 16-bit PCM mono 8 kHz WAV of a 440 Hz tone (the simulated callee's "voice").
pub fn tone_wav_8k(seconds: f64) -> Vec<u8> {
    let n = (8000.0 * seconds) as usize;
    let mut out = Vec::with_capacity(44 + n * 2);
    let data_len = (n * 2) as u32;
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..n {
        let s = (i as f64 * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 0.3 * 32767.0;
        out.extend_from_slice(&(s as i16).to_le_bytes());
    }
    out
}

/// Starts the whole topology and returns once Caddy serves the page.
pub async fn start(opts: Options) -> anyhow::Result<Topology> {
    callway_testkit::install_crypto_provider();
    let root = callway_testkit::workspace_root();
    let bins = bin_dir()?;
    for s in SERVICES {
        if !bins.join(s.bin).is_file() {
            bail!(
                "{} not found in CALLWAY_BIN_DIR={} (build it: cargo build --workspace --bins)",
                s.bin,
                bins.display()
            );
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("callway-topology-")
        .tempdir()?;

    let pg = TempPostgres::start().await.context("PostgreSQL")?;
    let api = Postrust::start(&pg)
        .await
        .context("PostgREST-compatible server")?;
    let redis = TempRedis::start().await.context("Redis")?;

    // Caddy's port first: Telnyx must know where to post webhooks and where the stream goes.
    let caddy_port = free_port();
    let url = format!("http://127.0.0.1:{caddy_port}");

    let openai_key = "sk-topology-test".to_owned();
    let mut web_cfg = sim_openai::SimConfig::new(openai_key.clone(), "127.0.0.1:0".parse()?);
    web_cfg.scenario = opts.web_scenario;
    let openai_web = sim_openai::OpenAiSim::start(web_cfg).await?;
    let mut phone_cfg = sim_openai::SimConfig::new(openai_key.clone(), "127.0.0.1:0".parse()?);
    phone_cfg.scenario = opts.phone_scenario;
    let openai_phone = sim_openai::OpenAiSim::start(phone_cfg).await?;

    let telnyx_key = "KEYtopologytest".to_owned();
    let mut telnyx_cfg = sim_telnyx::SimConfig::new(
        telnyx_key.clone(),
        CONNECTION,
        vec![FROM.to_owned()],
        format!("{url}/api/telnyx/webhooks"),
    );
    telnyx_cfg.timing = sim_telnyx::Timing::fast();
    let telnyx = sim_telnyx::TelnyxSim::start(telnyx_cfg).await?;
    telnyx.script_callee(CALLEE, opts.callee)?;

    // What every process reads, as docker compose's env_file gives it; only ports differ.
    let mut env: Vec<(String, String)> = vec![
        ("CALLWAY_HOST".into(), "127.0.0.1".into()),
        ("CALLWAY_PUBLIC_URL".into(), url.clone()),
        (
            "CALLWAY_SESSION_SECRET".into(),
            "topology-test-session-secret-0123456789abcdef".into(),
        ),
        (
            "CALLWAY_DATA_DIR".into(),
            dir.path().join("data").to_string_lossy().into_owned(),
        ),
        ("SUPABASE_REST_URL".into(), api.rest_url()),
        ("SUPABASE_SERVICE_KEY".into(), api.service_role_key()),
        ("REDIS_URL".into(), redis.url()),
        ("OPENAI_API_KEY".into(), openai_key),
        ("OPENAI_BASE_URL".into(), openai_web.base_url()),
        (
            "OPENAI_REALTIME_CALLS_URL".into(),
            openai_web.realtime_calls_url(),
        ),
        ("TELNYX_API_KEY".into(), telnyx_key),
        ("TELNYX_BASE_URL".into(), telnyx.base_url()),
        ("TELNYX_CONNECTION_ID".into(), CONNECTION.into()),
        ("TELNYX_FROM_NUMBER".into(), FROM.into()),
        ("TELNYX_PUBLIC_KEY".into(), telnyx.public_key_base64()),
        ("RUST_LOG".into(), "info".into()),
        // Caddy (and the test's relay in front of each instance) connect from loopback.
        (
            "CALLWAY_TRUSTED_PROXIES".into(),
            "127.0.0.1/32, ::1/128".into(),
        ),
        // Nothing from a developer's callway.toml.
        (
            "CALLWAY_CONFIG_FILE".into(),
            dir.path().join("none.toml").to_string_lossy().into_owned(),
        ),
    ];
    if let Some(otel) = &opts.otel_endpoint {
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), otel.clone()));
    }

    let mut instances = Vec::new();
    for service in SERVICES {
        for index in 0..opts.instances {
            let port = free_port();
            let log = dir.path().join(format!("{}-{index}.log", service.bin));
            let mut cmd = Command::new(bins.join(service.bin));
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(env.iter().map(|(k, v)| (k, v)))
                .env(service.port_var, port.to_string())
                .current_dir(&root)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log)?)
                .stderr(std::fs::File::create(log.with_extension("err"))?);
            if service.bin == "media-bridge" {
                // The phone agent is a separate simulator with the phone scenario.
                cmd.env("OPENAI_BASE_URL", openai_phone.base_url());
                cmd.env(
                    "OPENAI_REALTIME_CALLS_URL",
                    openai_phone.realtime_calls_url(),
                );
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {}", service.bin))?;
            let seen = Arc::new(Mutex::new(Vec::new()));
            let relay_port = relay(port, seen.clone()).await?;
            instances.push(Instance {
                service,
                index,
                port,
                relay_port,
                log,
                seen,
                child: Some(child),
            });
        }
    }
    for i in &mut instances {
        if let Err(e) = wait_healthy(i.port, Duration::from_secs(30)).await {
            let status = i.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            bail!(
                "{} did not become healthy ({e}); exit status {status:?}\n{}\n{}",
                i.name(),
                i.log_text(),
                std::fs::read_to_string(i.log.with_extension("err")).unwrap_or_default()
            );
        }
    }

    // Caddy with the repository's Caddyfile; only the environment differs from production.
    let caddy_log = dir.path().join("caddy.log");
    let mut caddy = Command::new(caddy_bin());
    caddy
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(root.join("Caddyfile"))
        .env("CALLWAY_SITE_ADDRESS", &url)
        .env("CALLWAY_STATIC_DIR", root.join("public"))
        .env("XDG_DATA_HOME", dir.path().join("caddy-data"))
        .env("XDG_CONFIG_HOME", dir.path().join("caddy-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&caddy_log)?);
    for service in SERVICES {
        let list: Vec<String> = instances
            .iter()
            .filter(|i| i.service.bin == service.bin)
            .map(|i| format!("127.0.0.1:{}", i.relay_port))
            .collect();
        // No media-bridge yet: point at a closed port, so the stream fails as in an outage.
        let list = if list.is_empty() {
            format!("127.0.0.1:{}", free_port())
        } else {
            list.join(" ")
        };
        caddy.env(service.upstreams_var, list);
    }
    let caddy = caddy.spawn().context(
        "starting caddy (apt-get install caddy, or set CALLWAY_CADDY_BIN to its binary)",
    )?;
    let topology = Topology {
        url,
        pg,
        api,
        redis,
        openai_web,
        openai_phone,
        telnyx,
        instances,
        dir,
        caddy: Some(caddy),
        caddy_log,
    };
    if let Err(e) = wait_for_page(&topology.url, Duration::from_secs(20)).await {
        bail!("Caddy does not serve the page: {e}\n{}", topology.logs());
    }
    Ok(topology)
}

async fn wait_healthy(port: u16, timeout: Duration) -> anyhow::Result<()> {
    wait_for_port(port, timeout).await?;
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ok = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("GET /health on port {port} never answered 2xx");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_page(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match client.get(format!("{url}/")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            other => {
                if tokio::time::Instant::now() > deadline {
                    bail!("GET {url}/: {other:?}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A loopback TCP relay to `target`; returns its port. Notes every HTTP request line seen in
/// the client-to-server direction (bodies are small JSON; after a WebSocket upgrade the frames
/// are masked binary, so a false match is not a practical concern).
async fn relay(target: u16, seen: Arc<Mutex<Vec<String>>>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                else {
                    return;
                };
                let (mut ri, mut wi) = inbound.split();
                let (mut ro, mut wo) = outbound.split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut pending = Vec::new();
                    loop {
                        let n = match ri.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        note_request_lines(&mut pending, &buf[..n], &seen);
                        if wo.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = wo.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut ro, &mut wi).await;
                    let _ = wi.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    Ok(port)
}

const METHODS: [&str; 7] = [
    "GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ", "OPTIONS ",
];

fn note_request_lines(pending: &mut Vec<u8>, chunk: &[u8], seen: &Mutex<Vec<String>>) {
    pending.extend_from_slice(chunk);
    while let Some(pos) = pending.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&pending[..pos]).into_owned();
        pending.drain(..pos + 2);
        if line.ends_with(" HTTP/1.1") && METHODS.iter().any(|m| line.starts_with(m)) {
            let line = line.trim_end_matches(" HTTP/1.1");
            // The path without its query string (a media token must not end up in test output).
            let line = line.split('?').next().unwrap_or(line).to_owned();
            seen.lock().unwrap().push(line);
        }
    }
    // Binary frames have no line breaks for long stretches: keep the buffer bounded.
    if pending.len() > 64 * 1024 {
        pending.clear();
    }
}

/// Runs the browser journey (`e2e/journey/web-journey.mjs`, Chromium with a fake microphone)
/// against `url`, returning the JSON line it prints.
pub async fn browser_journey(
    url: &str,
    wait_phone_end_ms: Option<u64>,
) -> anyhow::Result<serde_json::Value> {
    let root = callway_testkit::workspace_root();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("e2e/journey/web-journey.mjs"))
        .arg(url)
        .arg("120000")
        .current_dir(&root);
    if let Some(ms) = wait_phone_end_ms {
        cmd.env("JOURNEY_WAIT_PHONE_END", ms.to_string());
    }
    let out = tokio::time::timeout(Duration::from_secs(240), cmd.output())
        .await
        .context("the browser journey timed out")?
        .context("running node")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| {
        format!(
            "no JSON from the browser journey: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Keys matching `pattern` in the topology's Redis (`redis-cli --scan`).
pub fn redis_keys(redis: &TempRedis, pattern: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "--scan",
            "--pattern",
            pattern,
        ])
        .output()
        .context("redis-cli (installed with redis-server)")?;
    if !out.status.success() {
        bail!("redis-cli: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
