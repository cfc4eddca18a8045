//! When to call a missed callback again: after configurable delays (default 10 minutes, then
//! 2 hours; 3 attempts at most), only inside calling hours (default weekdays 9:00–20:00,
//! Europe/Paris), never after the person declined or once a call was completed. Pure: time is
//! an input, so the schedule is tested without a clock. The durable queue that fires it is
//! `outbound::queue` (`keys::Queue::Retry`).

use crate::lead::CallbackStatus;
use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use std::time::Duration;

/// Weekdays and a daily window, in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct CallingHours {
    pub tz: Tz,
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for CallingHours {
    fn default() -> Self {
        CallingHours {
            tz: chrono_tz::Europe::Paris,
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default(),
        }
    }
}

impl CallingHours {
    /// From `CALLWAY_CALLING_HOURS` (`Mon-Fri 09:00-20:00`, or `Mon,Wed 10:00-12:00`) and
    /// `CALLWAY_CALLING_TZ` (an IANA name).
    pub fn parse(spec: &str, tz: &str) -> Result<Self, String> {
        let tz: Tz = tz
            .parse()
            .map_err(|_| format!("unknown time zone {tz:?}"))?;
        let (days, window) = spec
            .trim()
            .split_once(' ')
            .ok_or("expected `Mon-Fri 09:00-20:00`")?;
        let day = |s: &str| -> Result<Weekday, String> {
            s.parse::<Weekday>()
                .map_err(|_| format!("unknown day {s:?}"))
        };
        let mut list = Vec::new();
        for part in days.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (mut d, end) = (day(a)?, day(b)?);
                    loop {
                        list.push(d);
                        if d == end {
                            break;
                        }
                        d = d.succ();
                    }
                }
                None => list.push(day(part)?),
            }
        }
        let (a, b) = window
            .trim()
            .split_once('-')
            .ok_or("expected a window like 09:00-20:00")?;
        // `24:00` closes at the end of the day.
        let time = |s: &str| match s.trim() {
            "24:00" => NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999)
                .ok_or_else(|| "bad time".to_owned()),
            s => NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("bad time {s:?}")),
        };
        let (start, end) = (time(a)?, time(b)?);
        if start >= end {
            return Err("the window must start before it ends".into());
        }
        Ok(CallingHours {
            tz,
            days: list,
            start,
            end,
        })
    }

    /// `at` itself when it is inside calling hours, otherwise the next opening.
    pub fn next_open(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(&self.tz);
        for offset in 0..8 {
            let date = local.date_naive() + chrono::Duration::days(offset);
            if !self.days.contains(&date.weekday()) {
                continue;
            }
            // A window start that does not exist that day (a DST gap) moves to the next day.
            let Some(open) = self
                .tz
                .from_local_datetime(&date.and_time(self.start))
                .earliest()
            else {
                continue;
            };
            let Some(close) = self
                .tz
                .from_local_datetime(&date.and_time(self.end))
                .latest()
            else {
                continue;
            };
            let (open, close) = (open.with_timezone(&Utc), close.with_timezone(&Utc));
            if at < open {
                return open;
            }
            if at < close {
                return at;
            }
        }
        // No calling day at all in a week: configured empty; never reached with a valid config.
        at + chrono::Duration::days(7)
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.next_open(at) == at
    }
}

/// Where a live call goes when the person asks for a human (`CALLWAY_TRANSFER_NUMBER`), and
/// when someone is there to answer (`CALLWAY_TRANSFER_HOURS`, in `CALLWAY_CALLING_TZ`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferTarget {
    pub number: String,
    pub hours: CallingHours,
}

impl TransferTarget {
    /// `None` when no number is configured (warm transfer off).
    pub fn from_settings(s: &crate::Settings) -> Result<Option<Self>, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let Some(raw) = &s.callway_transfer_number else {
            return Ok(None);
        };
        let number =
            crate::phone::PhoneE164::from_stored(raw, raw).map_err(|_| ConfigError::Invalid {
                name: "CALLWAY_TRANSFER_NUMBER",
                reason: "expected an E.164 number such as +33123456789".into(),
            })?;
        let hours = CallingHours::parse(&s.callway_transfer_hours, &s.callway_calling_tz).map_err(
            |reason| ConfigError::Invalid {
                name: "CALLWAY_TRANSFER_HOURS",
                reason,
            },
        )?;
        Ok(Some(TransferTarget {
            number: number.as_e164().to_owned(),
            hours,
        }))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before attempt 2, 3, … ; attempts = this length + 1 at most.
    pub delays: Vec<Duration>,
    pub max_attempts: u8,
    pub hours: CallingHours,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delays: vec![Duration::from_secs(600), Duration::from_secs(7200)],
            max_attempts: 3,
            hours: CallingHours::default(),
        }
    }
}

impl RetryPolicy {
    /// From the settings (`CALLWAY_RETRY_DELAYS_SECS`, `CALLWAY_MAX_CALL_ATTEMPTS`,
    /// `CALLWAY_CALLING_HOURS`, `CALLWAY_CALLING_TZ`).
    pub fn from_settings(s: &crate::Settings) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let delays = s
            .callway_retry_delays_secs
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().parse::<u64>().map(Duration::from_secs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ConfigError::Invalid {
                name: "CALLWAY_RETRY_DELAYS_SECS",
                reason: "expected seconds separated by commas, e.g. 600,7200".into(),
            })?;
        let hours = CallingHours::parse(&s.callway_calling_hours, &s.callway_calling_tz).map_err(
            |reason| ConfigError::Invalid {
                name: "CALLWAY_CALLING_HOURS",
                reason,
            },
        )?;
        Ok(RetryPolicy {
            delays,
            max_attempts: s.callway_max_call_attempts.clamp(1, 10),
            hours,
        })
    }

    /// When attempt `done + 1` should be dialled after attempt `done` ended at `ended_at` with
    /// `outcome` (hang-up cause `cause`); `None`: no more attempts.
    pub fn next_attempt(
        &self,
        done: u8,
        outcome: CallbackStatus,
        cause: &str,
        ended_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let missed = matches!(
            outcome,
            CallbackStatus::NoAnswer | CallbackStatus::Busy | CallbackStatus::Voicemail
        );
        // `call_rejected`: the person declined the call; a refusal is not a missed call.
        if !missed || cause == "call_rejected" || done >= self.max_attempts {
            return None;
        }
        let delay = *self.delays.get(usize::from(done).checked_sub(1)?)?;
        let due = ended_at + chrono::Duration::from_std(delay).ok()?;
        Some(self.hours.next_open(due))
    }

    /// Whether a message left on a voicemail should say we will call again.
    pub fn will_retry(&self, done: u8) -> bool {
        done < self.max_attempts && usize::from(done) <= self.delays.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn missed_calls_are_retried_on_schedule_inside_calling_hours_only() {
        let p = RetryPolicy::default();
        // Monday 2026-11-30 10:00 Paris = 09:00 UTC: +10 min, inside the window.
        let t = utc("2026-11-30T09:00:00Z");
        assert_eq!(
            p.next_attempt(1, CallbackStatus::NoAnswer, "timeout", t),
            Some(utc("2026-11-30T09:10:00Z"))
        );
        // The second retry two hours after the second attempt.
        assert_eq!(
            p.next_attempt(2, CallbackStatus::Voicemail, "normal_clearing", t),
            Some(utc("2026-11-30T11:00:00Z"))
        );
        // No fourth attempt, nothing after a completed call or a declined one.
        assert_eq!(
            p.next_attempt(3, CallbackStatus::Busy, "user_busy", t),
            None
        );
        assert_eq!(
            p.next_attempt(1, CallbackStatus::Completed, "normal_clearing", t),
            None
        );
        assert_eq!(
            p.next_attempt(1, CallbackStatus::Failed, "not_found", t),
            None
        );
        assert_eq!(
            p.next_attempt(1, CallbackStatus::NoAnswer, "call_rejected", t),
            None
        );
        // Friday 19:55 Paris (+10 min = 20:05, closed) → Monday 09:00 Paris.
        let friday = utc("2026-12-04T18:55:00Z");
        assert_eq!(
            p.next_attempt(1, CallbackStatus::NoAnswer, "timeout", friday),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        // Before opening on a weekday → that day's opening.
        assert_eq!(
            p.hours.next_open(utc("2026-12-01T05:00:00Z")),
            utc("2026-12-01T08:00:00Z")
        );
        // Summer time: Paris is UTC+2 in July.
        assert_eq!(
            p.hours.next_open(utc("2026-07-04T12:00:00Z")),
            utc("2026-07-06T07:00:00Z")
        );
    }

    #[test]
    fn calling_hours_parse_and_refuse_nonsense() {
        let always = CallingHours::parse("Mon-Sun 00:00-24:00", "UTC").unwrap();
        assert!(always.is_open(utc("2026-12-06T23:59:59Z")));
        let h = CallingHours::parse("Mon,Wed-Thu 10:00-12:30", "Europe/Paris").unwrap();
        assert_eq!(h.days, vec![Weekday::Mon, Weekday::Wed, Weekday::Thu]);
        assert!(h.is_open(utc("2026-12-02T10:00:00Z")));
        assert!(!h.is_open(utc("2026-12-01T10:00:00Z")));
        for bad in [
            "Mon-Fri",
            "Xyz 09:00-10:00",
            "Mon 12:00-09:00",
            "Mon 9h-10h",
        ] {
            assert!(CallingHours::parse(bad, "Europe/Paris").is_err(), "{bad}");
        }
        assert!(CallingHours::parse("Mon 09:00-10:00", "Mars/Olympus").is_err());
    }
}
