//! Speech-like synthetic audio for the simulated model: voiced syllables (a harmonic series with
//! two moving formants, gliding pitch, a syllable envelope and short gaps), or a WAV file.
//! Deterministic, audible, and clearly not silence (about -20 dBFS RMS while voiced).

use std::f64::consts::PI;

/// Synthesises `text` at `rate` Hz: about `ms_per_char` milliseconds per character, 0.3–20 s.
pub fn synth_speech(text: &str, rate: u32, ms_per_char: u32) -> Vec<i16> {
    let chars = text.chars().count().max(1) as u64;
    let ms = (chars * ms_per_char.max(1) as u64).clamp(300, 20_000);
    let n = (rate as u64 * ms / 1000) as usize;
    let rate_f = rate as f64;
    let nyquist_guard = (rate_f / 2.0 - 300.0).min(3_400.0);
    let syllable_s = 0.18;
    let mut out = Vec::with_capacity(n);
    let mut phase = 0.0f64;
    for i in 0..n {
        let t = i as f64 / rate_f;
        let syl = (t / syllable_s) as u64;
        let pos = (t / syllable_s).fract();
        // Gap at the end of each syllable, raised-cosine attack/decay inside it.
        let env = if pos > 0.82 {
            0.0
        } else {
            (PI * pos / 0.82).sin().powf(0.6)
        };
        // Pitch glides around 140 Hz, different per syllable.
        let f0 = 125.0 + 25.0 * ((syl as f64) * 1.7).sin() + 10.0 * (2.0 * PI * 3.0 * t).sin();
        phase += 2.0 * PI * f0 / rate_f;
        // Vowel formants per syllable.
        let (f1, f2) = match syl % 4 {
            0 => (700.0, 1_200.0),
            1 => (400.0, 2_000.0),
            2 => (550.0, 900.0),
            _ => (300.0, 2_300.0),
        };
        let mut s = 0.0;
        let mut k = 1.0;
        while k * f0 < nyquist_guard {
            let f = k * f0;
            let w = (-((f - f1) / 180.0).powi(2)).exp()
                + 0.6 * (-((f - f2) / 250.0).powi(2)).exp()
                + 0.08 / k;
            s += w * (k * phase).sin();
            k += 1.0;
        }
        out.push((s * env * 0.16 * 32_767.0).clamp(-32_767.0, 32_767.0) as i16);
    }
    out
}

/// Linear-interpolation resampler; good enough for simulated output and VAD input.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || samples.is_empty() {
        return samples.to_vec();
    }
    let n = (samples.len() as u64 * to as u64 / from as u64) as usize;
    let step = from as f64 / to as f64;
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let frac = x - j as f64;
            let a = samples[j.min(samples.len() - 1)] as f64;
            let b = samples[(j + 1).min(samples.len() - 1)] as f64;
            (a + (b - a) * frac) as i16
        })
        .collect()
}

/// Reads a WAV file and converts it to `rate` Hz.
pub fn load_wav(path: &std::path::Path, rate: u32) -> anyhow::Result<Vec<i16>> {
    let bytes = std::fs::read(path)?;
    let wav = callway_audio::wav::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(resample(&wav.samples, wav.sample_rate, rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use callway_audio::level::rms_dbfs;

    #[test]
    fn synthetic_speech_is_audible_with_pauses_and_scales_with_text() {
        let short = synth_speech("Bonjour", 8_000, 60);
        let long = synth_speech("Bonjour, je suis l'agent IA de Callway.", 8_000, 60);
        assert!(long.len() > short.len());
        assert_eq!(long.len(), 8 * 60 * 39);
        let level = rms_dbfs(&long);
        assert!(level > -30.0 && level < -6.0, "{level}");
        // Syllable gaps: some 10 ms windows are silent.
        assert!(long.chunks(80).any(|w| rms_dbfs(w) < -60.0));
        let wide = synth_speech("Bonjour", 48_000, 60);
        assert_eq!(wide.len(), 6 * short.len());
    }

    #[test]
    fn resample_keeps_duration_and_level() {
        let tone: Vec<i16> = (0..8_000)
            .map(|i| ((i as f64 * 2.0 * PI * 300.0 / 8_000.0).sin() * 10_000.0) as i16)
            .collect();
        let up = resample(&tone, 8_000, 48_000);
        assert_eq!(up.len(), 48_000);
        assert!((rms_dbfs(&up) - rms_dbfs(&tone)).abs() < 0.5);
    }
}
