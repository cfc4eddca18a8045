//! `sim-openai --bind 127.0.0.1:0 --api-key KEY [--scenario file.json] [--generation-speed X]`
//!
//! Prints one JSON line `{"base_url":…,"realtime_calls_url":…,"ws_url":…}` on stdout when ready,
//! then serves until SIGTERM or Ctrl-C.

use sim_openai::{OpenAiSim, Scenario, SimConfig};
use std::net::SocketAddr;

const USAGE: &str = "usage: sim-openai --bind ADDR --api-key KEY [--scenario FILE.json] [--generation-speed X] [--scenario-preset sandbox|phone]";

fn parse_args() -> anyhow::Result<SimConfig> {
    let mut bind: SocketAddr = "127.0.0.1:0".parse()?;
    let mut key = std::env::var("SIM_OPENAI_API_KEY").ok();
    let mut scenario = Scenario::default_sandbox();
    let mut speed = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--bind" => bind = val()?.parse()?,
            "--api-key" => key = Some(val()?),
            "--scenario" => {
                let path = val()?;
                let text =
                    std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
                scenario = Scenario::from_json(&text)?;
            }
            "--scenario-preset" => {
                scenario = match val()?.as_str() {
                    "sandbox" => Scenario::default_sandbox(),
                    "phone" => Scenario::default_phone(),
                    other => anyhow::bail!("unknown preset {other}\n{USAGE}"),
                }
            }
            "--generation-speed" => speed = Some(val()?.parse::<f64>()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let key = key.ok_or_else(|| anyhow::anyhow!("--api-key is required\n{USAGE}"))?;
    let mut cfg = SimConfig::new(key, bind);
    cfg.scenario = scenario;
    if let Some(s) = speed {
        cfg.generation_speed = s;
    }
    Ok(cfg)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let sim = OpenAiSim::start(cfg).await?;
    println!(
        "{}",
        serde_json::json!({"base_url": sim.base_url(), "realtime_calls_url": sim.realtime_calls_url(), "ws_url": sim.ws_url()})
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
