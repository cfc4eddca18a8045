//! Outbound playback bookkeeping: re-chunking agent audio into fixed Telnyx frames, marks, and
//! the "how much of this item did the caller actually hear" maths used by barge-in.
//!
//! Model: Telnyx plays what we send in order, in real time, from a queue. Positions are ms on
//! that queue since the last `clear`. A mark echo at time `t` says "the queue has played up to
//! the mark's position at `t`"; between echoes the play head is estimated as the last echo plus
//! the time elapsed since (the Twilio sample's idea), never beyond what was sent, and restarted
//! from `now` when audio is sent into a queue believed empty.

use std::collections::VecDeque;
use std::time::Instant;

use callway_audio::mulaw::SILENCE;

use super::telnyx_frames;

/// PCMU at 8 kHz: 8 bytes per millisecond.
pub const PCMU_BYTES_PER_MS: u64 = 8;
const MAX_MARKS: usize = 512;
const MAX_ITEMS: usize = 64;

#[derive(Debug, Clone)]
struct QueuedItem {
    item_id: String,
    response_id: String,
    /// Queue position of the item's first frame.
    start_ms: u64,
    /// Bytes received from OpenAI for this item (the truncation bound).
    received_bytes: u64,
    /// Ms of this item sent to Telnyx, tail padding included.
    sent_ms: u64,
}

impl QueuedItem {
    fn received_ms(&self) -> u64 {
        self.received_bytes / PCMU_BYTES_PER_MS
    }
}

#[derive(Debug, Clone)]
struct PendingMark {
    name: String,
    item_id: String,
    /// Ms of the item (not padding) that will have played when this mark echoes.
    item_end_ms: u64,
    /// Queue position of the mark.
    pos_ms: u64,
}

/// A mark echo matched one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkAck {
    pub item_id: String,
    /// Ms of that item confirmed played.
    pub item_played_ms: u64,
}

/// What a barge-in cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    pub item_id: String,
    pub response_id: String,
    /// Ms of the item heard: estimate clamped to the audio received for it.
    pub audio_end_ms: u64,
    /// Ms of the item sent to Telnyx.
    pub sent_ms: u64,
}

/// Outbound queue state for one call.
#[derive(Debug)]
pub struct Playback {
    frame_bytes: usize,
    frame_ms: u64,
    mark_every_ms: u64,
    pending: Vec<u8>,
    queue_end_ms: u64,
    acked_ms: u64,
    anchor_ms: u64,
    anchor_at: Instant,
    last_mark_ms: u64,
    marks: VecDeque<PendingMark>,
    items: VecDeque<QueuedItem>,
    mark_seq: u64,
    frames_sent: u64,
}

impl Playback {
    /// `frame_bytes` of PCMU per outbound message; a mark every `mark_every_ms` of audio.
    pub fn new(frame_bytes: usize, mark_every_ms: u64, now: Instant) -> Self {
        let frame_bytes = frame_bytes.max(PCMU_BYTES_PER_MS as usize);
        Playback {
            frame_bytes,
            frame_ms: frame_bytes as u64 / PCMU_BYTES_PER_MS,
            mark_every_ms: mark_every_ms.max(1),
            pending: Vec::with_capacity(frame_bytes),
            queue_end_ms: 0,
            acked_ms: 0,
            anchor_ms: 0,
            anchor_at: now,
            last_mark_ms: 0,
            marks: VecDeque::new(),
            items: VecDeque::new(),
            mark_seq: 0,
            frames_sent: 0,
        }
    }

    /// Queues agent audio for `item_id`; full frames (and due marks) are written to `sink` as
    /// Telnyx JSON text frames. Returns how many media frames were written.
    pub fn push(
        &mut self,
        response_id: &str,
        item_id: &str,
        audio: &[u8],
        now: Instant,
        sink: &mut Vec<String>,
    ) -> usize {
        let same = self
            .items
            .back()
            .is_some_and(|it| it.item_id == item_id && it.response_id == response_id);
        if !same {
            self.finish_item(now, sink);
            if self.items.len() >= MAX_ITEMS {
                self.items.pop_front();
            }
            self.items.push_back(QueuedItem {
                item_id: item_id.to_owned(),
                response_id: response_id.to_owned(),
                start_ms: self.queue_end_ms,
                received_bytes: 0,
                sent_ms: 0,
            });
        }
        if let Some(item) = self.items.back_mut() {
            item.received_bytes += audio.len() as u64;
        }
        self.pending.extend_from_slice(audio);
        let mut frames = 0;
        // Frames are encoded from the buffer in place; what is left moves to the front once.
        let mut at = 0;
        while self.pending.len() - at >= self.frame_bytes {
            let frame = telnyx_frames::media_audio(&self.pending[at..at + self.frame_bytes]);
            self.send_frame(frame, now, sink);
            at += self.frame_bytes;
            frames += 1;
        }
        self.pending.drain(..at);
        frames
    }

    /// Ends the current item: pads and sends the tail (Telnyx wants ≥ 20 ms per message) and
    /// sends a mark after it. Returns how many media frames were written (0 or 1).
    pub fn finish_item(&mut self, now: Instant, sink: &mut Vec<String>) -> usize {
        let mut frames = 0;
        if !self.pending.is_empty() {
            let mut frame = std::mem::take(&mut self.pending);
            frame.resize(self.frame_bytes, SILENCE);
            self.send_frame(telnyx_frames::media_audio(&frame), now, sink);
            frames = 1;
        }
        self.push_mark(sink);
        frames
    }

    /// `frame` is the Telnyx `media` frame of `frame_bytes` of audio.
    fn send_frame(&mut self, frame: String, now: Instant, sink: &mut Vec<String>) {
        if self.estimate(now) >= self.queue_end_ms {
            // The queue has (probably) run dry: this frame starts playing now.
            self.anchor_ms = self.queue_end_ms;
            self.anchor_at = now;
        }
        sink.push(frame);
        self.frames_sent += 1;
        self.queue_end_ms += self.frame_ms;
        if let Some(item) = self.items.back_mut() {
            item.sent_ms += self.frame_ms;
        }
        if self.queue_end_ms - self.last_mark_ms >= self.mark_every_ms {
            self.push_mark(sink);
        }
    }

    fn push_mark(&mut self, sink: &mut Vec<String>) {
        if self.queue_end_ms == self.last_mark_ms {
            return;
        }
        let Some(item) = self.items.back() else {
            return;
        };
        self.mark_seq += 1;
        let name = format!("cw-{}", self.mark_seq);
        sink.push(telnyx_frames::mark(&name));
        if self.marks.len() >= MAX_MARKS {
            self.marks.pop_front();
        }
        self.marks.push_back(PendingMark {
            name,
            item_id: item.item_id.clone(),
            item_end_ms: item.sent_ms.min(item.received_ms()),
            pos_ms: self.queue_end_ms,
        });
        self.last_mark_ms = self.queue_end_ms;
    }

    /// A mark echo from Telnyx. Unknown names (e.g. marks flushed by a `clear`) give `None`.
    pub fn on_mark(&mut self, name: &str, now: Instant) -> Option<MarkAck> {
        let idx = self.marks.iter().position(|m| m.name == name)?;
        let mark = self.marks.drain(..=idx).next_back()?;
        self.acked_ms = self.acked_ms.max(mark.pos_ms);
        self.anchor_ms = mark.pos_ms;
        self.anchor_at = now;
        while self.items.len() > 1
            && self
                .items
                .front()
                .is_some_and(|it| it.start_ms + it.sent_ms <= self.acked_ms)
        {
            self.items.pop_front();
        }
        Some(MarkAck {
            item_id: mark.item_id,
            item_played_ms: mark.item_end_ms,
        })
    }

    /// Estimated play-head position on the queue at `now`.
    pub fn estimate(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.anchor_at).as_millis() as u64;
        (self.anchor_ms + elapsed)
            .max(self.acked_ms)
            .min(self.queue_end_ms)
    }

    /// True when audio was sent (or is waiting to be) whose playing Telnyx has not confirmed.
    pub fn has_unconfirmed_audio(&self) -> bool {
        !self.pending.is_empty() || self.acked_ms < self.queue_end_ms
    }

    /// Everything sent has been confirmed played and nothing is waiting.
    pub fn is_drained(&self) -> bool {
        !self.has_unconfirmed_audio()
    }

    /// Barge-in: works out what the caller heard of the item under the play head, then forgets
    /// the whole queue (the caller sends Telnyx `clear`). `None` when no audio was sent.
    pub fn interrupt(&mut self, now: Instant) -> Option<Interruption> {
        let head = self.estimate(now);
        let cut = self
            .items
            .iter()
            .find(|it| it.sent_ms > 0 && head < it.start_ms + it.sent_ms)
            .or_else(|| self.items.iter().rev().find(|it| it.sent_ms > 0))
            .map(|it| Interruption {
                item_id: it.item_id.clone(),
                response_id: it.response_id.clone(),
                audio_end_ms: head.saturating_sub(it.start_ms).min(it.received_ms()),
                sent_ms: it.sent_ms,
            });
        self.pending.clear();
        self.marks.clear();
        self.items.clear();
        self.queue_end_ms = 0;
        self.acked_ms = 0;
        self.anchor_ms = 0;
        self.anchor_at = now;
        self.last_mark_ms = 0;
        cut
    }

    /// Media frames sent since the call started.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }

    /// Marks sent and not yet echoed.
    pub fn marks_outstanding(&self) -> usize {
        self.marks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn marks(sink: &[String]) -> Vec<String> {
        sink.iter()
            .filter_map(|f| {
                let v: serde_json::Value = serde_json::from_str(f).ok()?;
                Some(v["mark"]["name"].as_str()?.to_owned())
            })
            .collect()
    }

    #[test]
    fn rechunks_into_fixed_frames_and_pads_the_tail() {
        let t = Instant::now();
        let mut p = Playback::new(160, 200, t);
        let mut sink = Vec::new();
        assert_eq!(p.push("r", "i", &[1u8; 100], t, &mut sink), 0);
        assert_eq!(p.push("r", "i", &[2u8; 300], t, &mut sink), 2);
        assert_eq!(p.finish_item(t, &mut sink), 1);
        let payloads: Vec<Vec<u8>> = sink
            .iter()
            .filter_map(|f| {
                let v: serde_json::Value = serde_json::from_str(f).ok()?;
                B64.decode(v["media"]["payload"].as_str()?).ok()
            })
            .collect();
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() == 160));
        let all: Vec<u8> = payloads.concat();
        assert_eq!(&all[..100], &[1u8; 100][..]);
        assert_eq!(&all[100..400], &[2u8; 300][..]);
        assert!(all[400..].iter().all(|&b| b == SILENCE));
        assert_eq!(marks(&sink), vec!["cw-1"]);
    }

    #[test]
    fn marks_every_interval_and_echoes_advance_the_play_head() {
        let t = Instant::now();
        let mut p = Playback::new(160, 200, t);
        let mut sink = Vec::new();
        p.push("r", "i", &[0u8; 8000], t, &mut sink); // 1000 ms
        assert_eq!(marks(&sink), vec!["cw-1", "cw-2", "cw-3", "cw-4", "cw-5"]);
        assert!(p.has_unconfirmed_audio());
        let ack = p.on_mark("cw-2", t + ms(450)).expect("ours");
        assert_eq!(ack.item_played_ms, 400);
        assert_eq!(p.estimate(t + ms(450)), 400);
        assert_eq!(p.estimate(t + ms(550)), 500);
        assert_eq!(p.on_mark("nope", t), None);
        assert_eq!(p.marks_outstanding(), 3);
        p.on_mark("cw-5", t + ms(1100));
        assert!(p.is_drained());
    }

    #[test]
    fn interruption_is_clamped_to_audio_received() {
        let t = Instant::now();
        let mut p = Playback::new(160, 200, t);
        let mut sink = Vec::new();
        p.push("r", "i", &[0u8; 7996], t, &mut sink); // 999.5 ms received
        p.finish_item(t, &mut sink); // 1000 ms sent (padded)
        p.on_mark("cw-2", t + ms(450));
        let cut = p.interrupt(t + ms(10_000)).expect("audio was sent");
        assert_eq!(cut.audio_end_ms, 999);
        assert_eq!(cut.sent_ms, 1000);
        // Everything is forgotten: no second truncation.
        assert_eq!(p.interrupt(t + ms(10_001)), None);
        assert!(p.is_drained());
    }

    #[test]
    fn the_item_under_the_play_head_is_the_one_cut() {
        let t = Instant::now();
        let mut p = Playback::new(160, 200, t);
        let mut sink = Vec::new();
        p.push("r1", "a", &[0u8; 1600], t, &mut sink); // 200 ms
        p.push("r2", "b", &[0u8; 1600], t, &mut sink); // 200 ms, queued behind
        let cut = p.interrupt(t + ms(150)).expect("cut");
        assert_eq!((cut.item_id.as_str(), cut.audio_end_ms), ("a", 150));
    }

    #[test]
    fn a_drained_queue_restarts_the_clock() {
        let t = Instant::now();
        let mut p = Playback::new(160, 200, t);
        let mut sink = Vec::new();
        p.push("r1", "a", &[0u8; 1600], t, &mut sink);
        // Five seconds of silence later, a new item starts playing when sent.
        let later = t + ms(5000);
        p.push("r2", "b", &[0u8; 1600], later, &mut sink);
        let cut = p.interrupt(later + ms(50)).expect("cut");
        assert_eq!((cut.item_id.as_str(), cut.audio_end_ms), ("b", 50));
    }
}
