//! `sim-telnyx --bind 127.0.0.1:0 --api-key K --connection-id C --from +33… --webhook-url URL
//! [--signing-seed-hex HEX] [--fast] [--callee +33…=human|voicemail|no-answer|busy|rejected|fax|silence|not-sure]`
//!
//! Without `--signing-seed-hex` the webhook signing key is random for this process.
//!
//! Prints one JSON line `{"base_url":…,"public_key":…}` when ready, then serves until Ctrl-C.

use sim_telnyx::{AmdVerdict, Callee, SimConfig, TelnyxSim, Timing};

const USAGE: &str = "usage: sim-telnyx --api-key K --connection-id C --from +E164 [--from …] \
--webhook-url URL [--bind 127.0.0.1:0] [--signing-seed-hex 64HEX] [--fast] \
[--callee +E164=human|voicemail|no-answer|busy|rejected|fax|silence|not-sure]";

fn parse_seed(hex: &str) -> anyhow::Result<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        anyhow::bail!("--signing-seed-hex needs 64 hex digits");
    }
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| anyhow::anyhow!("--signing-seed-hex: not hex"))?;
    }
    Ok(seed)
}

fn parse_callee(kind: &str) -> anyhow::Result<Callee> {
    Ok(match kind {
        "voicemail" => Callee::Voicemail { greeting_wav: None },
        "no-answer" => Callee::NoAnswer,
        "busy" => Callee::Busy,
        "rejected" => Callee::Rejected,
        "fax" | "silence" | "not-sure" => Callee::Answering {
            audio_wav: None,
            verdict: match kind {
                "fax" => AmdVerdict::FaxDetected,
                "silence" => AmdVerdict::Silence,
                _ => AmdVerdict::NotSure,
            },
            beep_after: None,
            hang_up_after: Some(std::time::Duration::from_secs(20)),
        },
        other => anyhow::bail!("unknown callee kind {other} (human is the default)"),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut cfg = SimConfig::new("", "", Vec::new(), "");
    let mut callees = Vec::new();
    while let Some(flag) = args.next() {
        if flag == "--fast" {
            cfg.timing = Timing::fast();
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--bind" => cfg.bind = value.parse()?,
            "--api-key" => cfg.api_key = value,
            "--connection-id" => cfg.connection_id = value,
            "--from" => cfg.from_numbers.push(value),
            "--webhook-url" => cfg.webhook_url = value,
            "--signing-seed-hex" => cfg.signing_seed = parse_seed(&value)?,
            "--callee" => {
                let (num, kind) = value
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--callee wants NUMBER=KIND"))?;
                if kind != "human" {
                    callees.push((num.to_owned(), parse_callee(kind)?));
                }
            }
            other => anyhow::bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    if cfg.api_key.is_empty() || cfg.connection_id.is_empty() || cfg.webhook_url.is_empty() {
        anyhow::bail!("{USAGE}");
    }
    let sim = TelnyxSim::start(cfg).await?;
    for (num, callee) in callees {
        sim.script_callee(&num, callee)?;
    }
    println!(
        "{}",
        serde_json::json!({"base_url": sim.base_url(), "public_key": sim.public_key_base64()})
    );
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
