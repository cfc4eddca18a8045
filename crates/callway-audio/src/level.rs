//! Signal levels, for metering and for tests that must tell speech from silence.

/// RMS level of linear samples in dBFS (full scale = 0 dB). Silence gives `f64::NEG_INFINITY`.
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| (s as f64).powi(2)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms == 0.0 {
        f64::NEG_INFINITY
    } else {
        20.0 * (rms / 32_768.0).log10()
    }
}

/// RMS level of mu-law bytes in dBFS.
pub fn pcmu_dbfs(bytes: &[u8]) -> f64 {
    rms_dbfs(&crate::mulaw::decode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_square_is_zero_db_and_silence_is_minus_infinity() {
        assert!((rms_dbfs(&[i16::MIN; 10]) - 0.0).abs() < 0.01);
        assert_eq!(rms_dbfs(&[0; 10]), f64::NEG_INFINITY);
        assert_eq!(pcmu_dbfs(&[crate::mulaw::SILENCE; 160]), f64::NEG_INFINITY);
    }

    #[test]
    fn half_amplitude_is_about_minus_six_db() {
        let level = rms_dbfs(&[16_384; 100]);
        assert!((level + 6.02).abs() < 0.05, "{level}");
    }
}
