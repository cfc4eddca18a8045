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
    // Same seed as SimConfig::new's default ([7; 32]): same public key.
    let lib = sim_telnyx::TelnyxSim::start(sim_telnyx::SimConfig::new(
        "k",
        "c",
        vec![],
        "http://127.0.0.1:9/",
    ))
    .await
    .expect("lib sim");
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
