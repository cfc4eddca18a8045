//! Input audio: buffer accounting, energy VAD on decoded PCM, commits.

use super::{Engine, Rejection};
use crate::errors::FieldError;
use crate::ids::new_id;
use crate::scenario::Trigger;
use crate::session_config::AudioFormat;
use crate::validate as v;
use base64::Engine as _;
use callway_audio::level::rms_dbfs;
use serde_json::json;
use std::time::Duration;

const WINDOW_MS: u64 = 10;
const MAX_APPEND_BYTES: usize = 15 * 1024 * 1024;

/// Input buffer and VAD state, on the input audio timeline (ms since the first audio).
#[derive(Debug, Default)]
pub(crate) struct InputState {
    /// Samples not yet forming a whole 10 ms window, and their rate.
    pending: Vec<i16>,
    pending_rate: u32,
    /// Input timeline position (whole windows processed).
    cursor_ms: u64,
    /// Audio in the buffer since the last commit/clear, in microseconds.
    buffer_us: u64,
    total_us: u64,
    speech_run_ms: u64,
    silence_run_ms: u64,
    onset_ms: u64,
    speaking: bool,
    item_id: Option<String>,
}

impl InputState {
    pub(crate) fn clear(&mut self) {
        self.buffer_us = 0;
        self.reset_vad();
    }

    pub(crate) fn reset_vad(&mut self) {
        self.speech_run_ms = 0;
        self.silence_run_ms = 0;
        self.speaking = false;
        self.item_id = None;
    }
}

/// VAD threshold (0–1) as a dBFS level: 0.5 → -40 dBFS.
fn threshold_dbfs(threshold: f64) -> f64 {
    -70.0 + 60.0 * threshold
}

impl Engine {
    pub(super) fn on_append(&mut self, obj: &v::Obj, now: Duration) -> Result<(), Rejection> {
        let audio = v::string(v::required(obj, "audio", "")?, "audio")?;
        if audio.len() / 4 * 3 > MAX_APPEND_BYTES {
            return Err(FieldError::new(
                "invalid_value",
                "Invalid 'audio': audio chunk exceeds the maximum of 15 MiB per event.",
                Some("audio"),
            )
            .into());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(audio)
            .map_err(|_| {
                FieldError::new(
                    "invalid_value",
                    "Invalid 'audio'. Expected base64-encoded audio bytes.",
                    Some("audio"),
                )
            })?;
        let fmt = self.session.input_format;
        let pcm = match fmt {
            AudioFormat::Pcmu => callway_audio::mulaw::decode(&bytes),
            AudioFormat::Pcma => crate::alaw::decode(&bytes),
            AudioFormat::Pcm24k => bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
        };
        self.feed_audio(&pcm, fmt.rate(), now);
        Ok(())
    }

    /// Decoded input audio (appended, or from the WebRTC track).
    pub(crate) fn feed_audio(&mut self, pcm: &[i16], rate: u32, now: Duration) {
        if self.closed || rate == 0 {
            return;
        }
        let us = pcm.len() as u64 * 1_000_000 / rate as u64;
        self.input.total_us += us;
        self.input.buffer_us += us;
        let total_ms = self.input.total_us / 1000;
        self.record.update(|r| r.audio_in_ms = total_ms);
        if self.input.pending_rate != rate {
            self.input.pending.clear();
            self.input.pending_rate = rate;
        }
        self.input.pending.extend_from_slice(pcm);
        let win = (rate as u64 * WINDOW_MS / 1000) as usize;
        let mut max_db = f64::NEG_INFINITY;
        let mut levels = vec![];
        while self.input.pending.len() >= win {
            let w: Vec<i16> = self.input.pending.drain(..win).collect();
            let db = rms_dbfs(&w);
            max_db = max_db.max(db);
            levels.push(db);
        }
        if max_db.is_finite() {
            self.record.update(|r| {
                r.audio_in_max_dbfs =
                    Some(r.audio_in_max_dbfs.map_or(max_db, |m: f64| m.max(max_db)))
            });
        }
        for db in levels {
            self.vad_window(db, now);
            self.input.cursor_ms += WINDOW_MS;
        }
    }

    fn vad_window(&mut self, db: f64, now: Duration) {
        let Some(td) = self.session.turn_detection.clone() else {
            return;
        };
        let loud = db > threshold_dbfs(td.threshold);
        let cursor = self.input.cursor_ms;
        if !self.input.speaking {
            if !loud {
                self.input.speech_run_ms = 0;
                return;
            }
            if self.input.speech_run_ms == 0 {
                self.input.onset_ms = cursor;
            }
            self.input.speech_run_ms += WINDOW_MS;
            if self.input.speech_run_ms < self.opts.vad_min_speech_ms {
                return;
            }
            self.input.speaking = true;
            self.input.silence_run_ms = 0;
            let item_id = new_id("item_");
            self.input.item_id = Some(item_id.clone());
            let pad = if td.semantic { 0 } else { td.prefix_padding_ms };
            let start = self.input.onset_ms.saturating_sub(pad);
            self.emit(
                "input_audio_buffer.speech_started",
                json!({"audio_start_ms": start, "item_id": item_id}),
            );
            if td.interrupt_response {
                self.barge_in(now);
            }
        } else if loud {
            self.input.silence_run_ms = 0;
        } else {
            self.input.silence_run_ms += WINDOW_MS;
            if self.input.silence_run_ms < td.end_silence_ms() {
                return;
            }
            let item_id = self
                .input
                .item_id
                .clone()
                .unwrap_or_else(|| new_id("item_"));
            self.emit(
                "input_audio_buffer.speech_stopped",
                json!({"audio_end_ms": cursor + WINDOW_MS, "item_id": item_id}),
            );
            self.input.reset_vad();
            self.commit_buffer(item_id);
            if td.create_response {
                if self.response.is_some() {
                    let note = "user turn ended while a response was active (interrupt_response is off); no new response".to_string();
                    self.record.update(|r| r.scenario_mismatches.push(note));
                } else {
                    self.start_response(now, None);
                }
            }
        }
    }

    pub(super) fn on_commit(&mut self) -> Result<(), Rejection> {
        let ms = self.input.buffer_us as f64 / 1000.0;
        if ms < 100.0 {
            return Err(FieldError::new(
                "input_audio_buffer_commit_empty",
                format!("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {ms:.2}ms of audio."),
                None,
            )
            .into());
        }
        let item_id = self
            .input
            .item_id
            .clone()
            .unwrap_or_else(|| new_id("item_"));
        self.input.reset_vad();
        self.commit_buffer(item_id);
        Ok(())
    }

    /// Turns the buffer into a user message item.
    fn commit_buffer(&mut self, item_id: String) {
        let seconds = self.input.buffer_us as f64 / 1e6;
        self.input.buffer_us = 0;
        let previous = self.conv.last_id();
        self.emit(
            "input_audio_buffer.committed",
            json!({"previous_item_id": previous, "item_id": item_id}),
        );
        let transcript = self.expected_user_transcript();
        let item = json!({
            "id": item_id, "type": "message", "object": "realtime.item", "status": "completed",
            "role": "user", "content": [{"type": "input_audio", "transcript": null}]
        });
        self.conv.push(item.clone());
        self.emit(
            "conversation.item.added",
            json!({"previous_item_id": previous, "item": item}),
        );
        self.emit(
            "conversation.item.done",
            json!({"previous_item_id": previous, "item": item}),
        );
        if !self.session.transcription.is_null() {
            self.conv.set_user_transcript(&item_id, &transcript);
            self.emit(
                "conversation.item.input_audio_transcription.completed",
                json!({"item_id": item_id, "content_index": 0, "transcript": transcript,
                       "usage": {"type": "duration", "seconds": (seconds * 10.0).round() / 10.0}}),
            );
        }
        self.user_turns += 1;
        self.pending_user_turn = true;
    }

    /// The next scripted user utterance, if the next step is a user turn.
    fn expected_user_transcript(&self) -> String {
        match self.scenario.steps.get(self.step) {
            Some(s) if s.on == Trigger::UserTurn => s.expect_transcript.clone().unwrap_or_default(),
            _ => String::new(),
        }
    }
}
