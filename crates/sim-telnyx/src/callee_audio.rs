//! The callee's side of the audio: scripted WAV speech or built-in tones, as 8 kHz PCMU.

use crate::config::{Agent, AmdVerdict, Callee, Caller, Line};
use callway_audio::{mulaw, wav, PCMU_RATE_HZ};
use std::time::Duration;

/// A callee script with its audio already encoded.
#[derive(Debug, Clone)]
pub(crate) enum Script {
    Human {
        speech: Vec<u8>,
        hang_up_after: Option<Duration>,
    },
    Voicemail {
        greeting: Vec<u8>,
    },
    Answering {
        audio: Vec<u8>,
        verdict: AmdVerdict,
        beep_after: Option<Duration>,
        hang_up_after: Option<Duration>,
    },
    NoAnswer,
    Busy,
    Rejected,
}

impl Script {
    pub fn from_callee(callee: Callee) -> anyhow::Result<Script> {
        Ok(match callee {
            Callee::Human {
                speech_wav,
                hang_up_after,
            } => Script::Human {
                speech: wav_to_pcmu(&speech_wav)?,
                hang_up_after,
            },
            Callee::Voicemail { greeting_wav } => Script::Voicemail {
                greeting: match greeting_wav {
                    Some(w) => wav_to_pcmu(&w)?,
                    None => tone(300.0, 0.25, Duration::from_millis(1500)),
                },
            },
            Callee::Answering {
                audio_wav,
                verdict,
                beep_after,
                hang_up_after,
            } => Script::Answering {
                audio: match (audio_wav, verdict) {
                    (Some(w), _) => wav_to_pcmu(&w)?,
                    (None, AmdVerdict::FaxDetected) => fax_tones(),
                    (None, _) => Vec::new(),
                },
                verdict,
                beep_after,
                hang_up_after,
            },
            Callee::NoAnswer => Script::NoAnswer,
            Callee::Busy => Script::Busy,
            Callee::Rejected => Script::Rejected,
            Callee::Talks {
                lines,
                hang_up_after,
            } => Script::Human {
                speech: lines_to_pcmu(&lines)?,
                hang_up_after,
            },
        })
    }

    /// An agent leg is an outbound call with a person (or nobody) at the end.
    pub fn from_agent(agent: Agent) -> anyhow::Result<Script> {
        Ok(match agent {
            Agent::Answers {
                speech_wav,
                hang_up_after,
            } => Script::Human {
                speech: wav_to_pcmu(&speech_wav)?,
                hang_up_after,
            },
            Agent::NoAnswer => Script::NoAnswer,
            Agent::Busy => Script::Busy,
        })
    }

    /// The default callee: a person who picks up and says "something" (a 1 s 440 Hz tone).
    pub fn default_human() -> Script {
        Script::Human {
            speech: tone(440.0, 0.3, Duration::from_secs(1)),
            hang_up_after: None,
        }
    }
}

/// An inbound caller with its audio already encoded.
#[derive(Debug, Clone)]
pub(crate) enum CallerScript {
    Talks {
        speech: Vec<u8>,
        hang_up_after: Option<Duration>,
    },
    HangsUpBeforeAnswer {
        after: Duration,
    },
}

impl CallerScript {
    pub fn from_caller(caller: Caller) -> anyhow::Result<CallerScript> {
        Ok(match caller {
            Caller::Human {
                speech_wav,
                hang_up_after,
            } => CallerScript::Talks {
                speech: wav_to_pcmu(&speech_wav)?,
                hang_up_after,
            },
            Caller::Talks {
                lines,
                hang_up_after,
            } => CallerScript::Talks {
                speech: lines_to_pcmu(&lines)?,
                hang_up_after,
            },
            Caller::HangsUpBeforeAnswer { after } => CallerScript::HangsUpBeforeAnswer { after },
        })
    }
}

/// Places each line at its time (PCMU, silence between). Overlapping lines are refused: a test
/// that gives times wants them kept.
pub(crate) fn lines_to_pcmu(lines: &[Line]) -> anyhow::Result<Vec<u8>> {
    let bytes_per_ms = PCMU_RATE_HZ as usize / 1000;
    let mut sorted: Vec<&Line> = lines.iter().collect();
    sorted.sort_by_key(|l| l.at);
    let mut out = Vec::new();
    for l in sorted {
        let start = l.at.as_millis() as usize * bytes_per_ms;
        if start < out.len() {
            anyhow::bail!(
                "line at {:?} starts before the previous line ends ({} ms)",
                l.at,
                out.len() / bytes_per_ms
            );
        }
        out.resize(start, mulaw::SILENCE);
        out.extend(wav_to_pcmu(&l.wav)?);
    }
    Ok(out)
}

/// Only 8 kHz input is accepted: no resampler is used here.
pub(crate) fn wav_to_pcmu(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let w = wav::parse(bytes).map_err(|e| anyhow::anyhow!("callee WAV: {e}"))?;
    if w.sample_rate != PCMU_RATE_HZ {
        anyhow::bail!(
            "callee WAV must be 8000 Hz (got {} Hz); resample it first",
            w.sample_rate
        );
    }
    Ok(mulaw::encode(&w.samples))
}

/// A sine tone as PCMU. `amplitude` is a fraction of full scale.
pub(crate) fn tone(freq_hz: f64, amplitude: f64, len: Duration) -> Vec<u8> {
    let n = (len.as_secs_f64() * PCMU_RATE_HZ as f64) as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / PCMU_RATE_HZ as f64;
            (amplitude * 32_767.0 * (2.0 * std::f64::consts::PI * freq_hz * t).sin()) as i16
        })
        .collect();
    mulaw::encode(&samples)
}

/// A calling fax machine's CNG tone: 1100 Hz for 0.5 s every 3 s (ITU-T T.30), 30 s of it.
pub(crate) fn fax_tones() -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..10 {
        out.extend(tone(1100.0, 0.4, Duration::from_millis(500)));
        out.extend(vec![mulaw::SILENCE; callway_audio::FRAME_BYTES * 125]);
    }
    out
}

/// The voicemail beep: 1 kHz for 400 ms.
pub(crate) fn beep() -> Vec<u8> {
    tone(1000.0, 0.5, Duration::from_millis(400))
}

pub(crate) fn pcmu_duration(bytes: usize) -> Duration {
    Duration::from_millis(callway_audio::pcmu_ms(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use callway_audio::wav::{to_bytes, Wav};

    fn wav_ms(ms: usize) -> Vec<u8> {
        to_bytes(&Wav {
            sample_rate: 8000,
            samples: vec![4000; ms * 8],
        })
    }

    #[test]
    fn lines_are_placed_at_their_times_and_may_not_overlap() {
        let lines = vec![
            Line::at(Duration::from_millis(500), wav_ms(100)),
            Line::at(Duration::from_millis(100), wav_ms(200)),
        ];
        let pcmu = lines_to_pcmu(&lines).expect("placed");
        assert_eq!(pcmu.len(), 600 * 8);
        let voiced: Vec<bool> = pcmu.iter().map(|b| *b != mulaw::SILENCE).collect();
        assert!(!voiced[..800].iter().any(|v| *v) && voiced[800..2400].iter().all(|v| *v));
        assert!(!voiced[2400..4000].iter().any(|v| *v) && voiced[4000..].iter().all(|v| *v));
        let overlapping = vec![
            Line::at(Duration::ZERO, wav_ms(300)),
            Line::at(Duration::from_millis(200), wav_ms(100)),
        ];
        assert!(lines_to_pcmu(&overlapping).is_err());
        let callee = Callee::Talks {
            lines,
            hang_up_after: None,
        };
        assert!(
            matches!(Script::from_callee(callee), Ok(Script::Human { speech, .. }) if speech == pcmu)
        );
    }
}
