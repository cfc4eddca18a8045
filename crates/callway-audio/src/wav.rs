//! Minimal RIFF/WAVE reader and writer for 16-bit PCM mono, enough for test fixtures and
//! recordings. Anything else is refused with a clear error rather than misread.

use std::io::Write;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    #[error("truncated WAV file")]
    Truncated,
}

/// Decoded 16-bit PCM audio, mono.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, WavError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(WavError::Truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, WavError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(WavError::Truncated)
}

/// Parses a 16-bit PCM WAV. Stereo input is mixed down to mono.
pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32_at(bytes, at + 4)? as usize;
        let body = at + 8;
        if id == b"fmt " {
            fmt = Some((
                u16_at(bytes, body)?,
                u16_at(bytes, body + 2)?,
                u32_at(bytes, body + 4)?,
                u16_at(bytes, body + 14)?,
            ));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or(WavError::Truncated)?;
            // 0xFFFE is WAVE_FORMAT_EXTENSIBLE, which sox writes for plain PCM too.
            if !(format == 1 || format == 0xFFFE) || bits != 16 {
                return Err(WavError::Unsupported(format!(
                    "format {format}, {bits} bits"
                )));
            }
            if channels == 0 {
                return Err(WavError::Unsupported("0 channels".into()));
            }
            let end = body
                .checked_add(len)
                .ok_or(WavError::Truncated)?
                .min(bytes.len());
            let frame = 2 * channels as usize;
            let samples = bytes[body..end]
                .chunks_exact(frame)
                .map(|f| {
                    let sum: i32 = f
                        .chunks_exact(2)
                        .map(|s| i16::from_le_bytes([s[0], s[1]]) as i32)
                        .sum();
                    (sum / channels as i32) as i16
                })
                .collect();
            return Ok(Wav {
                sample_rate: rate,
                samples,
            });
        }
        at = body + len + (len & 1);
    }
    Err(WavError::Truncated)
}

/// Serialises mono 16-bit PCM as a WAV file.
pub fn to_bytes(wav: &Wav) -> Vec<u8> {
    let data_len = (wav.samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    let mut put = |b: &[u8]| out.write_all(b).expect("writing to a Vec cannot fail");
    put(b"RIFF");
    put(&(36 + data_len).to_le_bytes());
    put(b"WAVEfmt ");
    put(&16u32.to_le_bytes());
    put(&1u16.to_le_bytes());
    put(&1u16.to_le_bytes());
    put(&wav.sample_rate.to_le_bytes());
    put(&(wav.sample_rate * 2).to_le_bytes());
    put(&2u16.to_le_bytes());
    put(&16u16.to_le_bytes());
    put(b"data");
    put(&data_len.to_le_bytes());
    for s in &wav.samples {
        put(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let wav = Wav {
            sample_rate: 8000,
            samples: vec![0, 1, -1, i16::MAX, i16::MIN],
        };
        assert_eq!(parse(&to_bytes(&wav)).unwrap(), wav);
        assert_eq!(parse(b"hello world, not audio"), Err(WavError::NotWave));
        let mut truncated = to_bytes(&wav);
        truncated.truncate(30);
        assert_eq!(parse(&truncated), Err(WavError::Truncated));
    }
}
