//! ITU-T G.711 mu-law (the classic Sun g711.c algorithm).

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// mu-law byte for silence.
pub const SILENCE: u8 = 0xFF;

/// Encodes one linear 16-bit sample.
pub fn encode_sample(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    // Segment = position of the highest set bit above bit 7.
    let segment = (31 - (pcm as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (pcm >> (segment + 3)) & 0x0F;
    !((sign | (segment << 4) | mantissa) as u8)
}

/// Decodes one mu-law byte to a linear 16-bit sample.
pub fn decode_sample(byte: u8) -> i16 {
    DECODE_TABLE[byte as usize]
}

const fn decode_const(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

static DECODE_TABLE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = decode_const(i as u8);
        i += 1;
    }
    table
};

/// Encodes a slice of samples.
pub fn encode(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode_sample(s)).collect()
}

/// Decodes a slice of mu-law bytes.
pub fn decode(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| decode_sample(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_from_g711() {
        assert_eq!(encode_sample(0), 0xFF);
        assert_eq!(decode_sample(0xFF), 0);
        assert_eq!(decode_sample(0x00), -32_124);
        assert_eq!(decode_sample(0x80), 32_124);
        assert_eq!(decode_sample(encode_sample(1000)), 988);
    }

    #[test]
    fn every_byte_round_trips_through_its_decoded_value() {
        for b in 0u8..=255 {
            let decoded = decode_sample(b);
            // 0x7F and 0xFF both decode to 0; encode picks the positive zero.
            let expected = if decoded == 0 { 0xFF } else { b };
            assert_eq!(encode_sample(decoded), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn sine_round_trip_keeps_g711_snr() {
        let samples: Vec<i16> = (0..8000)
            .map(|n| {
                (12_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let back = decode(&encode(&samples));
        let signal: f64 = samples.iter().map(|&s| (s as f64).powi(2)).sum();
        let noise: f64 = samples
            .iter()
            .zip(&back)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        let snr_db = 10.0 * (signal / noise).log10();
        // G.711 mu-law gives about 38 dB SNR for a loud sine.
        assert!(snr_db > 33.0, "snr {snr_db:.1} dB");
    }

    #[test]
    fn extremes_saturate_instead_of_wrapping() {
        assert_eq!(decode_sample(encode_sample(i16::MAX)), 32_124);
        assert_eq!(decode_sample(encode_sample(i16::MIN)), -32_124);
    }
}
