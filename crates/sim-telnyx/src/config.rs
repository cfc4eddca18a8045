//! What a test (or the sandbox) controls: the account, the webhook target, faults and timing.

use std::net::SocketAddr;
use std::time::Duration;

/// The simulated Telnyx account and where its events go.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The only API key accepted as `Authorization: Bearer <key>`.
    pub api_key: String,
    /// The only valid Call Control App id (`connection_id`).
    pub connection_id: String,
    /// Numbers owned by the account (E.164). Dialling `from` anything else is refused.
    pub from_numbers: Vec<String>,
    /// The Call Control App's webhook URL (the app's `/api/telnyx/webhooks`).
    pub webhook_url: String,
    /// Ed25519 private seed that signs webhooks; the public key is `TelnyxSim::public_key_base64`.
    /// Random per `SimConfig::new` (each process, each simulator): a key fixed in the source
    /// would let anyone who read it forge webhooks to a sandbox. Tests that sign by hand set it.
    pub signing_seed: [u8; 32],
    /// Where the REST API listens (`127.0.0.1:0` in tests).
    pub bind: SocketAddr,
    /// Webhook faults to inject (all off by default).
    pub webhook_faults: WebhookFaults,
    /// Ring, detection and retry delays; the media frame period stays real-time.
    pub timing: Timing,
}

impl SimConfig {
    /// A config with sensible defaults: port 0 on loopback, a random signing seed, no faults,
    /// real timing.
    pub fn new(
        api_key: impl Into<String>,
        connection_id: impl Into<String>,
        from_numbers: Vec<String>,
        webhook_url: impl Into<String>,
    ) -> Self {
        SimConfig {
            api_key: api_key.into(),
            connection_id: connection_id.into(),
            from_numbers,
            webhook_url: webhook_url.into(),
            signing_seed: random_seed(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_faults: WebhookFaults::default(),
            timing: Timing::default(),
        }
    }
}

/// 32 bytes from the operating system's random source.
pub fn random_seed() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .expect("the operating system random source is unavailable");
    seed
}

/// Faults injected into webhook delivery. The genuine delivery always happens (with retries);
/// `forged_copy` and `stale_copy_age` add an extra, bad copy so an app that rejects them still
/// sees the call progress.
#[derive(Debug, Clone, Default)]
pub struct WebhookFaults {
    /// Deliver each genuine webhook twice (same `data.id`, fresh signature).
    pub duplicate: bool,
    /// Also deliver a copy whose `telnyx-timestamp` is this old (valid signature over the old
    /// timestamp): a replay / very late delivery. Sent before the genuine one.
    pub stale_copy_age: Option<Duration>,
    /// Also deliver a copy signed with a different key (forged). Sent before the genuine one.
    pub forged_copy: bool,
    /// Swap adjacent webhooks of a call (the second is delivered before the first).
    pub out_of_order: bool,
    /// Restrict the faults to these event types; empty means every event.
    pub only_events: Vec<String>,
}

impl WebhookFaults {
    pub(crate) fn applies_to(&self, event_type: &str) -> bool {
        self.only_events.is_empty() || self.only_events.iter().any(|e| e == event_type)
    }
}

/// Delays. Everything except `frame_period` may be shortened for tests; `frame_period` is the
/// media pacing (20 ms, real time) and bridges' latency maths depend on it.
#[derive(Debug, Clone)]
pub struct Timing {
    /// From `call.initiated` to `call.answered` for a callee who picks up.
    pub ring: Duration,
    /// From `call.initiated` to the `user_busy` / `call_rejected` hang-up.
    pub busy_after: Duration,
    /// For `Callee::NoAnswer`: when the ring timeout fires. `None` = the dial's `timeout_secs`.
    pub no_answer_after: Option<Duration>,
    /// Answering machine detection: time from answer to the detection verdict.
    pub amd_analysis: Duration,
    /// Media pacing: one 160-byte PCMU frame per period. Keep 20 ms.
    pub frame_period: Duration,
    /// A voicemail hangs up this long after its beep.
    pub voicemail_hang_up_after: Duration,
    /// Premium AMD: a machine whose beep never comes gets `call.machine.premium.greeting.ended`
    /// `no_beep_detected` this long after the answer ("timeout reached without beep").
    pub no_beep_after: Duration,
    /// Overrides the dial's `time_limit_secs` (from answer). `None` = the dial's value.
    pub time_limit: Option<Duration>,
    /// How long a `speak` or `playback_start` "plays" before its `.ended` webhook.
    pub speak_duration: Duration,
    /// A webhook not answered within this is a failed attempt (Telnyx: 2 s).
    pub webhook_timeout: Duration,
    /// Delays before each retry of a failed webhook (bounded: one retry per entry).
    pub webhook_retry_delays: Vec<Duration>,
    /// Window in which a repeated `command_id` is ignored (Telnyx: 60 s).
    pub dedupe_window: Duration,
    /// How long a `DialFault::PlaceThenTimeout` answer is held back.
    pub dial_hold: Duration,
    /// An inbound call nobody answers (or hangs up) is ended this long after `call.initiated`.
    /// Telnyx's Call Control App setting `first_command_timeout_secs` (default 30 s, schema
    /// `CallControlApplication`). Decision: the simulator always applies it (the spec's
    /// `first_command_timeout` defaults to false, but a parked call that rings forever makes no
    /// test and the real caller's network gives up too).
    pub first_command_timeout: Duration,
    /// For transfers with `audio_url` / `media_name`: how long the file "plays" to the agent
    /// between the agent's answer and the bridge (the simulator does not fetch it).
    pub transfer_announce: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ring: Duration::from_secs(3),
            busy_after: Duration::from_secs(1),
            no_answer_after: None,
            amd_analysis: Duration::from_millis(2500),
            frame_period: Duration::from_millis(20),
            voicemail_hang_up_after: Duration::from_secs(30),
            no_beep_after: Duration::from_secs(30),
            time_limit: None,
            speak_duration: Duration::from_secs(2),
            webhook_timeout: Duration::from_secs(2),
            webhook_retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
            ],
            dedupe_window: Duration::from_secs(60),
            dial_hold: Duration::from_secs(120),
            first_command_timeout: Duration::from_secs(30),
            transfer_announce: Duration::from_secs(2),
        }
    }
}

impl Timing {
    /// Short delays for tests; media pacing stays at 20 ms.
    pub fn fast() -> Self {
        Timing {
            ring: Duration::from_millis(100),
            busy_after: Duration::from_millis(50),
            no_answer_after: Some(Duration::from_millis(300)),
            amd_analysis: Duration::from_millis(150),
            frame_period: Duration::from_millis(20),
            voicemail_hang_up_after: Duration::from_millis(500),
            no_beep_after: Duration::from_millis(600),
            time_limit: None,
            speak_duration: Duration::from_millis(100),
            webhook_timeout: Duration::from_secs(2),
            webhook_retry_delays: vec![
                Duration::from_millis(20),
                Duration::from_millis(40),
                Duration::from_millis(80),
            ],
            dedupe_window: Duration::from_secs(60),
            dial_hold: Duration::from_secs(120),
            first_command_timeout: Duration::from_millis(800),
            transfer_announce: Duration::from_millis(100),
        }
    }
}

/// Premium answering machine detection's verdict (`call.machine.premium.detection.ended`
/// `result`, schema `CallMachinePremiumDetectionEnded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdVerdict {
    HumanResidence,
    HumanBusiness,
    Machine,
    Silence,
    FaxDetected,
    NotSure,
}

impl AmdVerdict {
    pub fn premium_result(self) -> &'static str {
        match self {
            AmdVerdict::HumanResidence => "human_residence",
            AmdVerdict::HumanBusiness => "human_business",
            AmdVerdict::Machine => "machine",
            AmdVerdict::Silence => "silence",
            AmdVerdict::FaxDetected => "fax_detected",
            AmdVerdict::NotSure => "not_sure",
        }
    }

    /// Standard AMD (`call.machine.detection.ended`) knows only human, machine and not_sure.
    pub fn standard_result(self) -> &'static str {
        match self {
            AmdVerdict::HumanResidence | AmdVerdict::HumanBusiness => "human",
            AmdVerdict::Machine | AmdVerdict::FaxDetected => "machine",
            AmdVerdict::Silence | AmdVerdict::NotSure => "not_sure",
        }
    }
}

/// `POST /v2/calls` faults: the call is really placed (ringing, webhooks, media stream), but
/// the answer is lost. Armed with `TelnyxSim::fail_next_dials`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialFault {
    /// Answers 500 with Telnyx's `10007` error body.
    PlaceThen500,
    /// Sends no answer for `Timing::dial_hold` (longer than any client timeout), then a late 200.
    PlaceThenTimeout,
}

/// A call command refused although its body is valid; nothing is done. Armed with
/// `TelnyxSim::fail_next_commands`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandFault {
    /// 422 with error `10015` (e.g. a `speak` the TTS provider would not take).
    Refused,
    /// 503 with error `10007`.
    Unavailable,
}

/// What happens when a number is dialled.
#[derive(Debug, Clone)]
pub enum Callee {
    /// Picks up after `Timing::ring`, says `speech_wav` (16-bit PCM mono WAV, **8 kHz only**),
    /// then stays silent; hangs up `hang_up_after` the answer if set.
    Human {
        speech_wav: Vec<u8>,
        hang_up_after: Option<Duration>,
    },
    /// An answering machine: picks up, plays the greeting (8 kHz WAV, or a built-in 1.5 s tone),
    /// a beep, then records silence and hangs up after `Timing::voicemail_hang_up_after`.
    /// Premium AMD says `machine` after `Timing::amd_analysis`, then `greeting.ended`
    /// `beep_detected` when the beep ends — unless the beep ends first, in which case
    /// `greeting.ended` is the only AMD webhook (the built-in greeting at `Timing::default()`).
    Voicemail { greeting_wav: Option<Vec<u8>> },
    /// Picks up and plays `audio_wav` (8 kHz WAV; `None`: silence, or fax tones for
    /// `FaxDetected`). Premium AMD reports `verdict` after `Timing::amd_analysis`. If
    /// `beep_after` is set, a beep ends that long after the answer (the audio is cut there):
    /// `greeting.ended` `beep_detected`, the only AMD webhook when it comes before the verdict. A `Machine` without a beep gets `greeting.ended`
    /// `no_beep_detected` after `Timing::no_beep_after`. Hangs up `hang_up_after` the answer.
    Answering {
        audio_wav: Option<Vec<u8>>,
        verdict: AmdVerdict,
        beep_after: Option<Duration>,
        hang_up_after: Option<Duration>,
    },
    /// Rings until the ring timeout: `call.hangup` with `timeout` (or `no_answer` when the dial
    /// had `retry_on_timeout: false`).
    NoAnswer,
    /// `call.hangup` with `user_busy` (SIP 486).
    Busy,
    /// The callee declines: `call.hangup` with `call_rejected` (SIP 603).
    Rejected,
    /// Picks up after `Timing::ring` and says each line at its time after the answer (silence
    /// between them); hangs up `hang_up_after` the answer if set. Lines must not overlap.
    Talks {
        lines: Vec<Line>,
        hang_up_after: Option<Duration>,
    },
}

/// One thing said at a given time after the answer: 16-bit PCM mono WAV, **8 kHz only**. The
/// words are for the OpenAI simulator's scenario; the simulator only plays the audio.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: Duration,
    pub wav: Vec<u8>,
}

impl Line {
    pub fn at(at: Duration, wav: Vec<u8>) -> Line {
        Line { at, wav }
    }
}

/// Who calls in with `TelnyxSim::ring_inbound`.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Waits for the app's answer (until `Timing::first_command_timeout`), then says
    /// `speech_wav` (8 kHz WAV) from the answer on; hangs up `hang_up_after` the answer if set.
    Human {
        speech_wav: Vec<u8>,
        hang_up_after: Option<Duration>,
    },
    /// Like `Human`, with each line said at its time after the answer.
    Talks {
        lines: Vec<Line>,
        hang_up_after: Option<Duration>,
    },
    /// Gives up `after` the call arrives if it is not answered by then: `call.hangup`
    /// `originator_cancel`, `hangup_source: caller`.
    HangsUpBeforeAnswer { after: Duration },
}

/// A human agent reached by `POST /v2/calls/{id}/actions/transfer` (scripted per number with
/// `TelnyxSim::script_agent`; an unscripted number does not answer).
#[derive(Debug, Clone)]
pub enum Agent {
    /// Picks up after `Timing::ring`, says `speech_wav` (8 kHz WAV; the bridged caller hears it
    /// from the bridge on), hangs up `hang_up_after` its answer if set.
    Answers {
        speech_wav: Vec<u8>,
        hang_up_after: Option<Duration>,
    },
    /// Rings until the transfer's `timeout_secs` (or `Timing::no_answer_after`): the agent leg
    /// ends with `timeout`; the original call stays up.
    NoAnswer,
    /// The agent's line is busy: the agent leg ends with `user_busy` (SIP 486).
    Busy,
}
