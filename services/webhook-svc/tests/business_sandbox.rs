//! The sandbox without a business URL: each business webhook is written to the local log
//! (`business-webhooks.jsonl`) so a developer sees what the business would receive; with
//! neither a URL nor the sandbox, nothing is queued at all.

use callway_core::call_context::ContextStore;
use callway_core::outbound::{Outbox, OutboxConfig, Target};
use callway_core::Settings;
use std::time::Duration;
use webhook_svc::deliver::Deliverer;

#[tokio::test]
async fn the_sandbox_writes_business_webhooks_to_a_local_log() {
    let dir = tempfile::tempdir().unwrap();
    let env = |sandbox: &str| {
        vec![
            ("CALLWAY_SANDBOX".to_owned(), sandbox.to_owned()),
            (
                "CALLWAY_DATA_DIR".to_owned(),
                dir.path().to_string_lossy().into_owned(),
            ),
        ]
    };
    let production = Settings::from_sources(None, env("false")).unwrap();
    assert!(
        Target::from_settings(&production).unwrap().is_none(),
        "nothing sent"
    );
    assert!(
        callway_core::outbound::outbox_from_settings(&production, ContextStore::memory())
            .unwrap()
            .is_none()
    );

    let sandbox = Settings::from_sources(None, env("true")).unwrap();
    let outbox = Outbox::new(ContextStore::memory(), OutboxConfig::default());
    let worker = Deliverer::from_settings(&sandbox, Some(outbox.clone()))
        .unwrap()
        .expect("a worker in the sandbox")
        .spawn();
    outbox
        .enqueue(
            "msg_sandbox",
            r#"{"type":"lead.created","data":{"lead":{"first_name":"Marie"}}}"#.into(),
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .unwrap();
    let log = dir.path().join("business-webhooks.jsonl");
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.abort();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["webhook-id"], "msg_sandbox");
    assert_eq!(line["body"]["type"], "lead.created");
    assert_eq!(
        outbox.message("msg_sandbox").await.unwrap().unwrap().state,
        callway_core::outbound::MessageState::Delivered
    );
}
