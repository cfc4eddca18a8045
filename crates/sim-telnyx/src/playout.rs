//! Sans-IO model of Telnyx playing the app's audio into the call: a queue of audio and marks,
//! drained one frame per tick (real time), marks echoed when the audio before them has played,
//! `clear` dropping the queue and returning the queued marks.

use std::collections::VecDeque;

enum Item {
    Audio(Vec<u8>),
    Mark(String),
}

/// What one tick played and which marks became due.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Bytes played during this frame period (empty = silence).
    pub played: Vec<u8>,
    /// Marks whose preceding audio has finished playing, in order.
    pub marks: Vec<String>,
}

pub struct Playout {
    queue: VecDeque<Item>,
    frame_bytes: usize,
    /// The last tick played audio: a frame is still "on the wire" for one period.
    playing: bool,
}

impl Playout {
    pub fn new(frame_bytes: usize) -> Self {
        Playout {
            queue: VecDeque::new(),
            frame_bytes: frame_bytes.max(1),
            playing: false,
        }
    }

    pub fn push_audio(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.queue.push_back(Item::Audio(bytes));
        }
    }

    /// Queues a mark. Returns it back at once when nothing is playing or queued.
    pub fn push_mark(&mut self, name: String) -> Option<String> {
        if self.queue.is_empty() && !self.playing {
            Some(name)
        } else {
            self.queue.push_back(Item::Mark(name));
            None
        }
    }

    /// Stops playback and drops queued audio. Returns the queued marks (to send back) and the
    /// number of audio bytes dropped.
    pub fn clear(&mut self) -> (Vec<String>, usize) {
        let mut marks = Vec::new();
        let mut dropped = 0;
        for item in self.queue.drain(..) {
            match item {
                Item::Audio(a) => dropped += a.len(),
                Item::Mark(m) => marks.push(m),
            }
        }
        self.playing = false;
        (marks, dropped)
    }

    /// Advances one frame period.
    pub fn tick(&mut self) -> Tick {
        let mut out = Tick::default();
        // Marks at the head follow audio that finished during the previous period.
        while let Some(Item::Mark(_)) = self.queue.front() {
            if let Some(Item::Mark(m)) = self.queue.pop_front() {
                out.marks.push(m);
            }
        }
        while out.played.len() < self.frame_bytes {
            let Some(Item::Audio(a)) = self.queue.front_mut() else {
                break;
            };
            let take = (self.frame_bytes - out.played.len()).min(a.len());
            out.played.extend(a.drain(..take));
            if a.is_empty() {
                self.queue.pop_front();
            }
        }
        self.playing = !out.played.is_empty();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_waits_for_the_audio_before_it() {
        let mut p = Playout::new(160);
        p.push_audio(vec![1; 320]);
        assert_eq!(p.push_mark("m1".into()), None);
        assert_eq!(p.tick().played.len(), 160);
        let t = p.tick();
        assert_eq!(t.played.len(), 160);
        assert!(t.marks.is_empty(), "the second frame is still playing");
        let t = p.tick();
        assert_eq!(t.marks, vec!["m1".to_string()]);
        assert!(t.played.is_empty());
        assert_eq!(p.push_mark("idle".into()), Some("idle".into()));
    }

    #[test]
    fn mark_during_the_last_frame_waits_one_period() {
        let mut p = Playout::new(160);
        p.push_audio(vec![1; 160]);
        p.tick();
        assert_eq!(p.push_mark("late".into()), None);
        assert_eq!(p.tick().marks, vec!["late".to_string()]);
    }

    #[test]
    fn clear_drops_audio_and_returns_marks() {
        let mut p = Playout::new(160);
        p.push_audio(vec![1; 1600]);
        p.push_mark("a".into());
        p.push_audio(vec![1; 1600]);
        p.push_mark("b".into());
        p.tick();
        let (marks, dropped) = p.clear();
        assert_eq!(marks, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(dropped, 3200 - 160);
        assert!(p.tick().played.is_empty());
    }

    #[test]
    fn short_chunks_fill_one_frame() {
        let mut p = Playout::new(160);
        p.push_audio(vec![1; 100]);
        p.push_audio(vec![2; 100]);
        let t = p.tick();
        assert_eq!(t.played.len(), 160);
        assert_eq!(p.tick().played.len(), 40);
    }
}
