//! The REST API refuses what Telnyx refuses, with Telnyx's status codes, error codes and pointers.

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn missing_or_wrong_bearer_key_is_401_10009() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    let body = dial_body(json!({})).to_string();
    for key in [None, Some("KEYwrong"), Some("")] {
        let (status, v) = post(&sim, "/v2/calls", key, &body).await;
        assert_eq!(status, 401, "key {key:?}");
        assert_eq!(codes(&v), vec!["10009"]);
        assert_eq!(v["errors"][0]["title"], "Authentication failed");
    }
    let (status, v) = post(&sim, "/v2/calls/v3:abc/actions/hangup", Some("nope"), "{}").await;
    assert_eq!((status, codes(&v)), (401, vec!["10009".to_string()]));
    assert!(sim
        .recorded()
        .dials
        .iter()
        .all(|d| d.status == 401 && d.call_control_id.is_none()));
    sim.shutdown().await;
}

#[tokio::test]
async fn dial_shape_errors_are_422_with_codes_and_pointers() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;

    let (s, v) = dial(&sim, json!({})).await;
    assert_eq!(s, 422);
    assert_eq!(codes(&v), vec!["10004"; 3]);
    let mut p = pointers(&v);
    p.sort();
    assert_eq!(p, vec!["/connection_id", "/from", "/to"]);

    let cases = [
        (json!({"to": "0612345678"}), "10016", "/to"),
        (json!({"to": "+33 6 12 34 56 78"}), "10016", "/to"),
        (json!({"from": "33100000001"}), "10016", "/from"),
        (
            json!({"client_state": "not base64 at all!"}),
            "10015",
            "/client_state",
        ),
        (
            json!({"stream_url": "https://media.example.com/x"}),
            "10015",
            "/stream_url",
        ),
        (
            json!({"stream_url": "ws://127.0.0.1:9/x", "stream_bidirectional_mode": "pcm"}),
            "10032",
            "/stream_bidirectional_mode",
        ),
        (
            json!({"stream_url": "ws://127.0.0.1:9/x", "stream_bidirectional_codec": "pcmu"}),
            "10032",
            "/stream_bidirectional_codec",
        ),
        (
            json!({"stream_track": "left_track"}),
            "10032",
            "/stream_track",
        ),
        (
            json!({"stream_bidirectional_sampling_rate": 11025}),
            "10032",
            "/stream_bidirectional_sampling_rate",
        ),
        (
            json!({"answering_machine_detection": "premium_plus"}),
            "10032",
            "/answering_machine_detection",
        ),
        (json!({"timeout_secs": 2}), "10033", "/timeout_secs"),
        (
            json!({"time_limit_secs": 20_000}),
            "10033",
            "/time_limit_secs",
        ),
        (json!({"to": 33612345678u64}), "10015", "/to"),
        (json!({"webhook_url": "ftp://x"}), "10015", "/webhook_url"),
    ];
    for (extra, code, pointer) in cases {
        let (s, v) = dial(&sim, dial_body(extra.clone())).await;
        assert_eq!(s, 422, "{extra}");
        assert_eq!(codes(&v), vec![code.to_string()], "{extra}: {v}");
        assert_eq!(pointers(&v), vec![pointer.to_string()], "{extra}");
    }

    let (s, v) = dial(&sim, dial_body(json!({"connection_id": "999"}))).await;
    assert_eq!(
        (s, codes(&v), pointers(&v)),
        (422, vec!["10015".into()], vec!["/connection_id".into()])
    );
    assert_eq!(v["errors"][0]["title"], "Invalid value for connection_id");

    let (s, v) = dial(&sim, dial_body(json!({"from": "+33100000999"}))).await;
    assert_eq!(
        (s, codes(&v), pointers(&v)),
        (403, vec!["10010".into()], vec!["/from".into()])
    );

    let (s, v) = post(&sim, "/v2/calls", Some(KEY), "{not json").await;
    assert_eq!((s, codes(&v)), (400, vec!["10015".into()]));
    let (s, _) = post(&sim, "/v2/calls", Some(KEY), "[1,2]").await;
    assert_eq!(s, 400);

    // Nothing was dialled: no call, no webhook.
    let r = sim.recorded();
    assert!(r.dials.iter().all(|d| d.call_control_id.is_none()));
    assert!(r.webhooks.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn commands_check_the_call_and_its_state() {
    let hooks = WebhookReceiver::start().await;
    // Long enough a ring for the "not answered yet" checks on a busy machine.
    let mut cfg = sim_telnyx::SimConfig::new(KEY, CONN, vec![FROM.to_string()], hooks.url.clone());
    cfg.timing = sim_telnyx::Timing::fast();
    cfg.timing.ring = Duration::from_secs(2);
    let sim = sim_telnyx::TelnyxSim::start(cfg).await.expect("sim starts");
    sim.script_callee(
        TO,
        sim_telnyx::Callee::Human {
            speech_wav: Vec::new(),
            hang_up_after: None,
        },
    )
    .expect_err("an empty WAV is refused");

    let (s, v) = action(&sim, "v3:doesnotexist", "hangup", json!({})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90015".into()]));

    let (s, v) = dial(&sim, dial_body(json!({}))).await;
    assert_eq!(s, 200, "{v}");
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    assert!(ccid.starts_with("v3:"));
    assert_eq!(v["data"]["is_alive"], false);
    assert_eq!(v["data"]["record_type"], "call");
    assert!(v["data"]["call_leg_id"].is_string() && v["data"]["call_session_id"].is_string());

    // Ringing: streaming and speak need an answered call.
    let (s, v) = action(
        &sim,
        &ccid,
        "streaming_start",
        json!({"stream_url": "ws://127.0.0.1:9/x"}),
    )
    .await;
    assert_eq!((s, codes(&v)), (422, vec!["90034".into()]));
    let (s, v) = action(
        &sim,
        &ccid,
        "speak",
        json!({"payload": "Bonjour", "voice": "female"}),
    )
    .await;
    assert_eq!((s, codes(&v)), (422, vec!["90034".into()]));
    // Field validation comes with its own codes.
    let (s, v) = action(&sim, &ccid, "speak", json!({"payload": "Bonjour"})).await;
    assert_eq!(
        (s, codes(&v), pointers(&v)),
        (422, vec!["10004".into()], vec!["/voice".into()])
    );
    let (s, v) = action(
        &sim,
        &ccid,
        "client_state_update",
        json!({"client_state": "***"}),
    )
    .await;
    assert_eq!((s, codes(&v)), (422, vec!["10015".into()]));
    let (s, v) = action(&sim, &ccid, "streaming_start", json!({})).await;
    assert_eq!((s, codes(&v)), (422, vec!["10004".into()]));
    let (s, _) = action(&sim, &ccid, "fly_to_the_moon", json!({})).await;
    assert_eq!(s, 404);

    sim.wait_for(
        |r| r.events_for(&ccid).contains(&"call.answered".to_string()),
        WAIT,
    )
    .await
    .expect("answered");
    let mut app = AppWsServer::start(None).await;
    let (s, v) = action(
        &sim,
        &ccid,
        "streaming_start",
        json!({"stream_url": app.url, "stream_bidirectional_mode": "rtp"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"data": {"result": "ok"}}));
    let (_h, _uri, _socket) = app.accept(WAIT).await;
    let (s, v) = action(
        &sim,
        &ccid,
        "streaming_start",
        json!({"stream_url": "ws://127.0.0.1:9/y"}),
    )
    .await;
    assert_eq!(
        (s, codes(&v)),
        (422, vec!["90045".into()]),
        "one stream per call"
    );

    let get = http()
        .get(format!("{}/v2/calls/{ccid}", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("get");
    let v: serde_json::Value = get.json().await.expect("json");
    assert_eq!(v["data"]["is_alive"], true);

    let (s, _) = action(&sim, &ccid, "hangup", json!({"command_id": "h-1"})).await;
    assert_eq!(s, 200);
    // Same command_id inside the window: same answer, no second effect.
    let (s, v) = action(&sim, &ccid, "hangup", json!({"command_id": "h-1"})).await;
    assert_eq!((s, v), (200, json!({"data": {"result": "ok"}})));
    // A new command on the ended call: 90018.
    let (s, v) = action(&sim, &ccid, "hangup", json!({"command_id": "h-2"})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90018".into()]));
    let r = sim
        .wait_for(
            |r| r.events_for(&ccid).contains(&"call.hangup".to_string()),
            WAIT,
        )
        .await
        .expect("hangup");
    assert_eq!(
        r.events_for(&ccid)
            .iter()
            .filter(|e| *e == "call.hangup")
            .count(),
        1
    );
    let dup: Vec<bool> = r
        .commands
        .iter()
        .filter(|c| c.command == "hangup" && c.status == 200)
        .map(|c| c.duplicate)
        .collect();
    assert_eq!(dup, vec![false, true]);
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicate_dial_command_id_places_one_call() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    let body = dial_body(json!({"command_id": "0b6f0d1e-8c3a-4f0e-9e7b-1f2a3b4c5d6e"}));
    let (s1, v1) = dial(&sim, body.clone()).await;
    let (s2, v2) = dial(&sim, body).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(v1, v2, "the duplicate gets the same answer");
    let (s3, v3) = dial(&sim, dial_body(json!({"command_id": "another"}))).await;
    assert_eq!(s3, 200);
    assert_ne!(v3["data"]["call_control_id"], v1["data"]["call_control_id"]);
    let ccid = v1["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let r = sim
        .wait_for(
            |r| {
                r.webhooks
                    .iter()
                    .filter(|w| w.event_type == "call.initiated")
                    .count()
                    >= 2
            },
            WAIT,
        )
        .await
        .expect("two calls initiated");
    assert_eq!(
        r.events_for(&ccid)
            .iter()
            .filter(|e| *e == "call.initiated")
            .count(),
        1
    );
    assert_eq!(r.dials.iter().filter(|d| d.duplicate).count(), 1);
    sim.shutdown().await;
}

/// `speak` is checked against `SpeakRequest`: the language enum, "basic ⇒ en-US text only", the
/// voice forms. Refusals are 422 with Telnyx's error shape, and nothing is spoken.
#[tokio::test]
async fn speak_is_refused_as_telnyx_refuses_it() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    let (s, v) = dial(&sim, dial_body(json!({}))).await;
    assert_eq!(s, 200, "{v}");
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    sim.wait_for(
        |r| r.events_for(&ccid).contains(&"call.answered".to_string()),
        WAIT,
    )
    .await
    .expect("answered");

    // What Callway used to send: basic + fr-FR. Refused, pointing at the language.
    let (s, v) = action(
        &sim,
        &ccid,
        "speak",
        json!({"payload": "Bonjour", "voice": "female", "language": "fr-FR", "service_level": "basic"}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let e = &v["errors"][0];
    assert_eq!(e["code"], "10015");
    assert_eq!(e["title"], "Invalid value");
    assert_eq!(e["source"]["pointer"], "/language");
    assert!(e["detail"].as_str().expect("detail").contains("en-US"));
    assert_eq!(
        e["meta"]["url"],
        "https://developers.telnyx.com/docs/overview/errors/10015"
    );

    let refused = [
        (
            json!({"payload": "<speak>Hi</speak>", "voice": "male", "payload_type": "ssml", "service_level": "basic"}),
            "10015",
            "/payload_type",
        ),
        (
            json!({"payload": "Hi", "voice": "AWS.Polly.Joanna", "service_level": "basic"}),
            "10015",
            "/voice",
        ),
        (
            json!({"payload": "Bonjour", "voice": "AWS.Polly.Lea-Neural", "language": "fr"}),
            "10032",
            "/language",
        ),
        (
            json!({"payload": "Bonjour", "voice": "AWS.Polly.Lea-Neural", "language": "french"}),
            "10032",
            "/language",
        ),
        (
            json!({"payload": "Bonjour", "voice": "Lea"}),
            "10015",
            "/voice",
        ),
        (
            json!({"payload": "Bonjour", "voice": "Google.fr-FR-Wavenet-A"}),
            "10015",
            "/voice",
        ),
        (
            json!({"payload": "Bonjour", "voice": "AWS.Lea-Neural"}),
            "10015",
            "/voice",
        ),
        (
            json!({"payload": "Bonjour", "voice": "Rime.Opus.cove"}),
            "10015",
            "/voice",
        ),
        (
            json!({"payload": "Bonjour", "voice": "ElevenLabs.eleven_multilingual_v2.abc"}),
            "10015",
            "/voice",
        ),
        (
            json!({"payload": "Bonjour", "voice": 42}),
            "10015",
            "/voice",
        ),
        (
            json!({"payload": "Bonjour", "voice": "female", "service_level": "standard"}),
            "10032",
            "/service_level",
        ),
    ];
    for (body, code, pointer) in refused {
        let (s, v) = action(&sim, &ccid, "speak", body.clone()).await;
        assert_eq!(s, 422, "{body}: {v}");
        assert_eq!(codes(&v), vec![code.to_string()], "{body}: {v}");
        assert_eq!(pointers(&v), vec![pointer.to_string()], "{body}: {v}");
    }
    assert!(
        !sim.recorded()
            .events_for(&ccid)
            .contains(&"call.speak.started".to_string()),
        "a refused speak says nothing"
    );

    // What Callway sends now: premium, a French neural voice.
    let (s, v) = action(
        &sim,
        &ccid,
        "speak",
        json!({"payload": "Bonjour", "voice": "AWS.Polly.Lea-Neural", "language": "fr-FR",
               "service_level": "premium", "payload_type": "text", "target_legs": "self"}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"data": {"result": "ok"}})));
    sim.wait_for(
        |r| {
            r.events_for(&ccid)
                .contains(&"call.speak.ended".to_string())
        },
        WAIT,
    )
    .await
    .expect("spoken");
    sim.shutdown().await;
}

/// A fault knob for the app's failure paths: a valid command refused, nothing done.
#[tokio::test]
async fn an_armed_command_fault_refuses_valid_commands_then_disarms() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    let (_, v) = dial(&sim, dial_body(json!({}))).await;
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    sim.wait_for(
        |r| r.events_for(&ccid).contains(&"call.answered".to_string()),
        WAIT,
    )
    .await
    .expect("answered");
    sim.fail_next_commands("speak", sim_telnyx::CommandFault::Refused, 1);
    sim.fail_next_commands("hangup", sim_telnyx::CommandFault::Unavailable, 1);
    let speak = json!({"payload": "Bonjour", "voice": "AWS.Polly.Lea-Neural"});
    let (s, v) = action(&sim, &ccid, "speak", speak.clone()).await;
    assert_eq!((s, codes(&v)), (422, vec!["10015".into()]));
    let (s, v) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!((s, codes(&v)), (503, vec!["10007".into()]));
    let r = sim.recorded();
    assert!(!r.events_for(&ccid).contains(&"call.hangup".to_string()));
    assert!(!r
        .events_for(&ccid)
        .contains(&"call.speak.started".to_string()));
    // Disarmed after one use each.
    assert_eq!(action(&sim, &ccid, "speak", speak).await.0, 200);
    assert_eq!(action(&sim, &ccid, "hangup", json!({})).await.0, 200);
    sim.wait_for(
        |r| r.events_for(&ccid).contains(&"call.hangup".to_string()),
        WAIT,
    )
    .await
    .expect("hung up");
    sim.shutdown().await;
}
