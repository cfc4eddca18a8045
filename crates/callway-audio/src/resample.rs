//! 8 kHz ↔ 24 kHz PCM16 resampling (exact ratio 3) with a polyphase windowed-sinc FIR.
//!
//! Only needed where a feature wants PCM at OpenAI's 24 kHz (a wideband/PCM option, metering,
//! simulators); the phone fast path passes PCMU through. One low-pass prototype (97 taps at
//! 24 kHz, Kaiser β = 8, cutoff 3.6 kHz, ≈ 80 dB stop band from ≈ 4.3 kHz) serves both ways:
//! - up ×3: zero-stuff and filter with gain 3, computed as three 33-tap phases;
//! - down ÷3: filter and keep every third sample, computing only the kept ones.
//!
//! Each direction keeps its filter history, so a stream can be fed in 20 ms frames (or any
//! size) without clicks at frame edges. Group delay: 48 samples at 24 kHz (2 ms) each way,
//! so an 8 → 24 → 8 round trip is delayed by exactly [`ROUND_TRIP_DELAY_8K`] samples.

/// Taps of the prototype low-pass, at 24 kHz (odd: integer group delay).
pub const TAPS: usize = 97;
/// Group delay of either direction, in 24 kHz samples.
pub const DELAY_24K: usize = (TAPS - 1) / 2;
/// Delay of an 8 kHz → 24 kHz → 8 kHz round trip, in 8 kHz samples.
pub const ROUND_TRIP_DELAY_8K: usize = 2 * DELAY_24K / 3;

const RATIO: usize = 3;
const PHASE_TAPS: usize = TAPS.div_ceil(RATIO);
const CUTOFF_HZ: f64 = 3_600.0;
const RATE_HZ: f64 = 24_000.0;
const KAISER_BETA: f64 = 8.0;

/// Zeroth-order modified Bessel function of the first kind (series; converges fast here).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64).powi(2);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

/// The low-pass prototype, normalised to unity DC gain.
fn prototype() -> [f64; TAPS] {
    let mut h = [0.0; TAPS];
    let fc = CUTOFF_HZ / RATE_HZ; // cycles per sample
    let m = DELAY_24K as f64;
    let i0_beta = bessel_i0(KAISER_BETA);
    for (j, tap) in h.iter_mut().enumerate() {
        let t = j as f64 - m;
        let sinc = if t == 0.0 {
            2.0 * fc
        } else {
            (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
        };
        let r = t / m;
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
        *tap = sinc * window;
    }
    let sum: f64 = h.iter().sum();
    h.iter_mut().for_each(|x| *x /= sum);
    h
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

/// 8 kHz → 24 kHz. Every input sample yields exactly three output samples.
#[derive(Debug, Clone)]
pub struct Upsampler {
    /// `phases[p][k] = 3 · h[3k + p]`.
    phases: [[f32; PHASE_TAPS]; RATIO],
    /// Last `PHASE_TAPS` inputs, newest last.
    history: [f32; PHASE_TAPS],
}

impl Default for Upsampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler {
    pub fn new() -> Self {
        let h = prototype();
        let mut phases = [[0.0f32; PHASE_TAPS]; RATIO];
        for (p, phase) in phases.iter_mut().enumerate() {
            for (k, c) in phase.iter_mut().enumerate() {
                *c = h
                    .get(RATIO * k + p)
                    .map_or(0.0, |&v| (v * RATIO as f64) as f32);
            }
        }
        Upsampler {
            phases,
            history: [0.0; PHASE_TAPS],
        }
    }

    /// Appends `3 · input.len()` samples to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(input.len() * RATIO);
        for &x in input {
            self.history.copy_within(1.., 0);
            self.history[PHASE_TAPS - 1] = f32::from(x);
            for phase in &self.phases {
                // y[3m + p] = Σ_k 3·h[3k + p] · x[m − k]
                let acc: f32 = phase
                    .iter()
                    .zip(self.history.iter().rev())
                    .map(|(c, s)| c * s)
                    .sum();
                out.push(to_i16(acc));
            }
        }
    }

    /// Forgets the history (start of a new stream).
    pub fn reset(&mut self) {
        self.history = [0.0; PHASE_TAPS];
    }
}

/// 24 kHz → 8 kHz. Input of any length; one output per three inputs overall.
#[derive(Debug, Clone)]
pub struct Downsampler {
    taps: [f32; TAPS],
    /// Last `TAPS` inputs, newest last.
    history: [f32; TAPS],
    /// Inputs still to take before the next output (0..3).
    until_output: usize,
}

impl Default for Downsampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Downsampler {
    pub fn new() -> Self {
        let h = prototype();
        let mut taps = [0.0f32; TAPS];
        for (t, v) in taps.iter_mut().zip(h.iter()) {
            *t = *v as f32;
        }
        Downsampler {
            taps,
            history: [0.0; TAPS],
            until_output: 0,
        }
    }

    /// Appends the 8 kHz samples due for `input` to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        out.reserve(input.len() / RATIO + 1);
        for &x in input {
            self.history.copy_within(1.., 0);
            self.history[TAPS - 1] = f32::from(x);
            if self.until_output == 0 {
                // y[m] = Σ_j h[j] · v[3m − j]
                let acc: f32 = self
                    .taps
                    .iter()
                    .zip(self.history.iter().rev())
                    .map(|(c, s)| c * s)
                    .sum();
                out.push(to_i16(acc));
                self.until_output = RATIO - 1;
            } else {
                self.until_output -= 1;
            }
        }
    }

    /// Forgets the history (start of a new stream).
    pub fn reset(&mut self) {
        self.history = [0.0; TAPS];
        self.until_output = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(freq: f64, rate: f64, amplitude: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amplitude * 32767.0 * (2.0 * PI * freq * i as f64 / rate).sin()).round() as i16
            })
            .collect()
    }

    /// Power of `x` at `freq` (single DFT bin), normalised by length.
    fn bin_power(x: &[f64], freq: f64, rate: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &v) in x.iter().enumerate() {
            let w = 2.0 * PI * freq * i as f64 / rate;
            re += v * w.cos();
            im -= v * w.sin();
        }
        (re * re + im * im) / (x.len() as f64 * x.len() as f64)
    }

    fn up_in_frames(input: &[i16], frame: usize) -> Vec<i16> {
        let mut up = Upsampler::new();
        let mut out = Vec::new();
        for chunk in input.chunks(frame) {
            up.process(chunk, &mut out);
        }
        out
    }

    fn down_in_frames(input: &[i16], frame: usize) -> Vec<i16> {
        let mut down = Downsampler::new();
        let mut out = Vec::new();
        for chunk in input.chunks(frame) {
            down.process(chunk, &mut out);
        }
        out
    }

    #[test]
    fn tone_round_trip_has_high_snr_at_the_known_delay() {
        // 1 kHz is the reference; the others are not commensurate with the frame or the rates.
        for freq in [1000.0, 1234.5, 310.0, 2500.0] {
            let snr_db = round_trip_snr_db(freq);
            assert!(snr_db > 60.0, "{freq} Hz round-trip SNR {snr_db:.1} dB");
        }
    }

    fn round_trip_snr_db(freq: f64) -> f64 {
        let input = sine(freq, 8000.0, 0.5, 8000); // 1 s
        let up = up_in_frames(&input, 160); // 20 ms frames
        assert_eq!(up.len(), 3 * input.len());
        let back = down_in_frames(&up, 480);
        assert_eq!(back.len(), input.len());
        // Compare with the input delayed by the known group delay, after the start-up transient.
        let d = ROUND_TRIP_DELAY_8K;
        let (mut signal, mut noise) = (0.0f64, 0.0f64);
        for i in 200..input.len() {
            let want = f64::from(input[i - d]);
            let got = f64::from(back[i]);
            signal += want * want;
            noise += (got - want).powi(2);
        }
        10.0 * (signal / noise).log10()
    }

    #[test]
    fn upsampling_a_1khz_tone_leaves_no_images_above_4khz() {
        let input = sine(1000.0, 8000.0, 0.5, 8000);
        let up = up_in_frames(&input, 160);
        // 2400 samples = exactly 100 periods of 1 kHz at 24 kHz: no leakage between bins.
        let x: Vec<f64> = up[2400..4800].iter().map(|&s| f64::from(s)).collect();
        let tone = bin_power(&x, 1000.0, 24_000.0);
        // Amplitude kept (gain 3 compensates the zero-stuffing): 0.5 FS → (0.5·32767/2)² per bin.
        let expected = (0.5 * 32767.0 / 2.0f64).powi(2);
        assert!((10.0 * (tone / expected).log10()).abs() < 0.1);
        // Zero-stuffing images of 1 kHz sit at 7, 9, 15, 17 kHz (and 23 kHz).
        for image in [7000.0, 9000.0, 15000.0, 17000.0, 11000.0, 5000.0] {
            let rel_db = 10.0 * (bin_power(&x, image, 24_000.0) / tone).log10();
            assert!(rel_db < -70.0, "image at {image} Hz: {rel_db:.1} dB");
        }
        // And all the energy above 4 kHz together (every 10 Hz bin from 4.2 kHz to 12 kHz).
        let total = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let high: f64 = (420..=1200)
            .map(|k| 2.0 * bin_power(&x, k as f64 * 10.0, 24_000.0))
            .sum();
        let rel_db = 10.0 * (high / total).log10();
        assert!(rel_db < -70.0, "energy above 4 kHz: {rel_db:.1} dB");
    }

    #[test]
    fn downsampling_rejects_content_above_4khz() {
        // A 6 kHz tone at 24 kHz would alias to 2 kHz at 8 kHz without the filter.
        let input = sine(6000.0, 24_000.0, 0.5, 24_000);
        let out = down_in_frames(&input, 480);
        let x: Vec<f64> = out[800..].iter().map(|&s| f64::from(s)).collect();
        let level = 10.0
            * ((x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64)
                / (0.5f64 * 32767.0).powi(2)
                * 2.0)
                .log10();
        assert!(level < -70.0, "aliased residue {level:.1} dB");
    }

    #[test]
    fn frame_size_does_not_change_the_output() {
        let input = sine(440.0, 8000.0, 0.3, 1000);
        let whole = up_in_frames(&input, input.len());
        assert_eq!(up_in_frames(&input, 160), whole);
        assert_eq!(up_in_frames(&input, 7), whole);
        let down_whole = down_in_frames(&whole, whole.len());
        assert_eq!(down_in_frames(&whole, 480), down_whole);
        assert_eq!(down_in_frames(&whole, 13), down_whole);
    }

    #[test]
    fn full_scale_input_saturates_instead_of_wrapping() {
        let square: Vec<i16> = (0..800)
            .map(|i| if (i / 4) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let up = up_in_frames(&square, 160);
        // Gibbs overshoot must clamp, not wrap around to the opposite sign.
        for w in up.windows(2) {
            assert!((i32::from(w[0]) - i32::from(w[1])).abs() < 40_000);
        }
        let mut up2 = Upsampler::new();
        let mut out = Vec::new();
        up2.process(&[1000; 10], &mut out);
        up2.reset();
        out.clear();
        up2.process(&[0; 10], &mut out);
        assert!(out.iter().all(|&s| s == 0));
    }
}
