//! Inbound ordering: Telnyx does not guarantee frame order, so media frames are released in
//! `sequence_number` order. The sequence is stream-wide (every event carries one), so non-media
//! events are fed in as placeholders and do not leave gaps. A real gap holds later frames for at
//! most `window` frames or `wait`, then is skipped; duplicates and frames behind the release
//! point are dropped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What happened to an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Accepted,
    Duplicate,
    Late,
}

#[derive(Debug)]
struct Slot<T> {
    item: Option<T>,
    arrived: Instant,
}

/// A small reorder buffer keyed by sequence number.
#[derive(Debug)]
pub struct Reorder<T> {
    next: Option<u64>,
    pending: BTreeMap<u64, Slot<T>>,
    window: usize,
    wait: Duration,
    gaps_skipped: u64,
}

impl<T> Reorder<T> {
    pub fn new(window: usize, wait: Duration) -> Self {
        Reorder {
            next: None,
            pending: BTreeMap::new(),
            window: window.max(1),
            wait,
            gaps_skipped: 0,
        }
    }

    /// Sets the next expected sequence number (e.g. the `start` frame's number + 1), unless
    /// frames were already seen.
    pub fn expect(&mut self, seq: u64) {
        if self.next.is_none() && self.pending.is_empty() {
            self.next = Some(seq);
        }
    }

    /// Whether `seq` is the next number with nothing held, in which case it is taken (the
    /// caller forwards its frame at once): what [`Reorder::offer`] then [`Reorder::release`]
    /// would do, without holding the frame.
    pub fn take_in_order(&mut self, seq: u64) -> bool {
        let next = *self.next.get_or_insert(seq);
        if seq != next || !self.pending.is_empty() {
            return false;
        }
        self.next = Some(seq + 1);
        true
    }

    /// Offers a frame (`None` for a non-media event that only occupies its number).
    pub fn offer(&mut self, seq: u64, item: Option<T>, now: Instant) -> Offer {
        let next = *self.next.get_or_insert(seq);
        if seq < next {
            return Offer::Late;
        }
        if self.pending.contains_key(&seq) {
            return Offer::Duplicate;
        }
        self.pending.insert(seq, Slot { item, arrived: now });
        Offer::Accepted
    }

    /// Releases every frame that is in order, skipping gaps that waited too long.
    pub fn release(&mut self, now: Instant, out: &mut Vec<T>) {
        loop {
            let Some(next) = self.next else { return };
            let Some((&first, slot)) = self.pending.iter().next() else {
                return;
            };
            if first != next {
                let overdue = now.saturating_duration_since(slot.arrived) >= self.wait;
                if self.pending.len() <= self.window && !overdue {
                    return;
                }
                self.gaps_skipped += first - next;
            }
            if let Some(slot) = self.pending.remove(&first) {
                out.extend(slot.item);
            }
            self.next = Some(first + 1);
        }
    }

    /// When a held frame's gap should be given up on, if any frame is held.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.values().next().map(|s| s.arrived + self.wait)
    }

    /// Sequence numbers given up on so far.
    pub fn gaps_skipped(&self) -> u64 {
        self.gaps_skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-order shortcut takes exactly what offer-then-release would release at once.
    #[test]
    fn taking_in_order_matches_offer_and_release() {
        let now = Instant::now();
        let mut fast = Reorder::new(4, std::time::Duration::from_millis(60));
        let mut slow = Reorder::new(4, std::time::Duration::from_millis(60));
        for seq in [5u64, 6, 8, 7, 9, 9, 4, 10] {
            let mut out = Vec::new();
            let took = fast.take_in_order(seq);
            if took {
                out.push(seq);
            } else {
                let _ = fast.offer(seq, Some(seq), now);
            }
            fast.release(now, &mut out);
            let mut want = Vec::new();
            let _ = slow.offer(seq, Some(seq), now);
            slow.release(now, &mut want);
            assert_eq!(out, want, "seq {seq}");
        }
    }

    fn run(r: &mut Reorder<u64>, seqs: &[u64], now: Instant) -> Vec<u64> {
        let mut out = Vec::new();
        for &s in seqs {
            r.offer(s, Some(s), now);
            r.release(now, &mut out);
        }
        out
    }

    #[test]
    fn fixes_small_shuffles() {
        let t = Instant::now();
        let mut r = Reorder::new(3, Duration::from_millis(60));
        r.expect(2);
        assert_eq!(run(&mut r, &[3, 2, 5, 4, 6], t), vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn drops_duplicates_and_late_frames() {
        let t = Instant::now();
        let mut r = Reorder::new(3, Duration::from_millis(60));
        r.expect(1);
        assert_eq!(r.offer(1, Some(1), t), Offer::Accepted);
        assert_eq!(r.offer(3, Some(3), t), Offer::Accepted);
        assert_eq!(r.offer(3, Some(3), t), Offer::Duplicate);
        let mut out = Vec::new();
        r.release(t, &mut out);
        assert_eq!(out, vec![1]);
        assert_eq!(r.offer(1, Some(1), t), Offer::Late);
    }

    #[test]
    fn skips_a_gap_after_the_window_or_the_wait() {
        let t = Instant::now();
        let mut r = Reorder::new(2, Duration::from_millis(60));
        r.expect(1);
        // 2 is missing: 3 and 4 wait (window 2), 5 overflows the window.
        assert_eq!(run(&mut r, &[1, 3, 4], t), vec![1]);
        assert_eq!(run(&mut r, &[5], t), vec![3, 4, 5]);
        assert_eq!(r.gaps_skipped(), 1);
        // 6 is missing; 7 waits until the deadline passes.
        assert_eq!(run(&mut r, &[7], t), Vec::<u64>::new());
        assert_eq!(r.deadline(), Some(t + Duration::from_millis(60)));
        let mut out = Vec::new();
        r.release(t + Duration::from_millis(60), &mut out);
        assert_eq!(out, vec![7]);
        // A straggler behind the release point is late.
        assert_eq!(r.offer(6, Some(6), t), Offer::Late);
    }

    #[test]
    fn placeholders_fill_the_sequence() {
        let t = Instant::now();
        let mut r: Reorder<u64> = Reorder::new(3, Duration::from_millis(60));
        r.expect(2);
        let mut out = Vec::new();
        r.offer(2, Some(2), t);
        r.offer(3, None, t); // e.g. a mark echo
        r.offer(4, Some(4), t);
        r.release(t, &mut out);
        assert_eq!(out, vec![2, 4]);
        assert_eq!(r.gaps_skipped(), 0);
        assert_eq!(r.deadline(), None);
    }
}
