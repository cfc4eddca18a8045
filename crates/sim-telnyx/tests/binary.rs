//! The `sim-telnyx` binary prints one JSON line when ready and serves the REST API.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn binary_prints_base_url_and_public_key_then_serves() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sim-telnyx"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--api-key",
            "KEYbin",
            "--connection-id",
            "C1",
            "--from",
            "+33100000001",
        ])
        .args([
            "--webhook-url",
            "http://127.0.0.1:9/api/telnyx/webhooks",
            "--fast",
        ])
        .args(["--signing-seed-hex", &"07".repeat(32)])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("ready in time")
        .expect("read")
        .expect("a line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let base = v["base_url"].as_str().expect("base_url");
    assert!(base.starts_with("http://127.0.0.1:"));
    // The seed given on the command line signs: same seed in the library, same public key.
    let mut cfg = sim_telnyx::SimConfig::new("k", "c", vec![], "http://127.0.0.1:9/");
    cfg.signing_seed = [7u8; 32];
    let lib = sim_telnyx::TelnyxSim::start(cfg).await.expect("lib sim");
    assert_eq!(v["public_key"], lib.public_key_base64().as_str());
    lib.shutdown().await;

    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{base}/v2/calls"))
        .bearer_auth("KEYbin")
        .json(&serde_json::json!({"connection_id": "C1", "to": "+33612345678"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 422, "missing from");
    child.kill().await.expect("stop the child we started");
}

/// Without `--signing-seed-hex`, each process signs with its own random key: a key written in
/// the source would let anyone forge webhooks to a sandbox.
#[tokio::test]
async fn each_process_gets_its_own_signing_key() {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sim-telnyx"))
            .args(["--api-key", "KEYbin", "--connection-id", "C1"])
            .args(["--from", "+33100000001"])
            .args(["--webhook-url", "http://127.0.0.1:9/api/telnyx/webhooks"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("ready in time")
        .expect("read")
        .expect("a line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
        keys.push(v["public_key"].as_str().expect("public_key").to_owned());
        child.kill().await.expect("stop the child we started");
    }
    assert_ne!(keys[0], keys[1]);
    let mut fixed = sim_telnyx::SimConfig::new("k", "c", vec![], "http://127.0.0.1:9/");
    fixed.signing_seed = [7u8; 32];
    let old = sim_telnyx::TelnyxSim::start(fixed).await.expect("sim");
    assert!(
        !keys.contains(&old.public_key_base64()),
        "the old fixed seed is not the default any more"
    );
    old.shutdown().await;
    let a = sim_telnyx::SimConfig::new("k", "c", vec![], "http://x/");
    let b = sim_telnyx::SimConfig::new("k", "c", vec![], "http://x/");
    assert_ne!(a.signing_seed, b.signing_seed);
}
