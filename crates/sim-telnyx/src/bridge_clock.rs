//! The audio path of a `bridge` between two calls: every `Timing::frame_period` each party hears
//! the other's next frame, counted on the `BridgeRecord` (`BridgeLeg::heard_frames` /
//! `heard_voiced_frames`). It runs whether or not either leg has a media stream, and stops as
//! soon as the two entries are no longer bridged to each other (a leg ended or left).

use crate::state::{lock, Phase, Shared, Voice};
use callway_audio::{mulaw, FRAME_BYTES};
use std::sync::Arc;

/// Starts the clock of bridge `idx` between `leg` (the commanded call) and `with`.
pub(crate) fn spawn(shared: &Arc<Shared>, idx: usize, leg: String, with: String) {
    let s = shared.clone();
    let task = tokio::spawn(async move {
        let period = s.cfg.timing.frame_period;
        let mut ticker = tokio::time::interval(period);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some((leg_voice, with_voice)) = voices_while_bridged(&s, &leg, &with) else {
                return;
            };
            let to_with = frame_of(leg_voice.as_ref(), period);
            let to_leg = frame_of(with_voice.as_ref(), period);
            s.recorder.with(|r| {
                if let Some(b) = r.bridges.get_mut(idx) {
                    b.with.heard_frames += 1;
                    b.with.heard_voiced_frames += u64::from(voiced(&to_with));
                    b.leg.heard_frames += 1;
                    b.leg.heard_voiced_frames += u64::from(voiced(&to_leg));
                }
            });
        }
    });
    shared.track_task(task.abort_handle());
}

/// Both parties' voices, or `None` once the two legs are no longer bridged to each other.
fn voices_while_bridged(
    s: &Shared,
    leg: &str,
    with: &str,
) -> Option<(Option<Voice>, Option<Voice>)> {
    let calls = lock(&s.calls);
    let (a, b) = (calls.get(leg)?, calls.get(with)?);
    let linked = |c: &crate::state::CallEntry, other: &str| {
        c.phase == Phase::Answered && c.bridged && c.peer.as_deref() == Some(other)
    };
    (linked(a, with) && linked(b, leg)).then(|| (a.voice.clone(), b.voice.clone()))
}

/// What a party says now (PCMU), silence past the end of its audio.
fn frame_of(voice: Option<&Voice>, period: std::time::Duration) -> Vec<u8> {
    let mut frame = vec![mulaw::SILENCE; FRAME_BYTES];
    if let Some(v) = voice {
        let since = v.from.elapsed().as_millis() as u64;
        let pos = (since / period.as_millis().max(1) as u64) as usize * FRAME_BYTES;
        if pos < v.audio.len() {
            let end = (pos + FRAME_BYTES).min(v.audio.len());
            frame[..end - pos].copy_from_slice(&v.audio[pos..end]);
        }
    }
    frame
}

/// A frame with audible content (above about -40 dBFS).
fn voiced(frame: &[u8]) -> bool {
    mulaw::decode(frame).iter().any(|x| x.unsigned_abs() > 300)
}
