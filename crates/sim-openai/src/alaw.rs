//! G.711 A-law (`audio/pcma`). Mu-law lives in `callway_audio::mulaw`.

pub fn encode_sample(sample: i16) -> u8 {
    let mut pcm = sample as i32;
    let sign = if pcm >= 0 { 0x80 } else { 0x00 };
    if pcm < 0 {
        pcm = -pcm - 1;
    }
    let pcm = (pcm.min(32_767) >> 3) as u32;
    let byte = if pcm < 32 {
        (pcm >> 1) as u8
    } else {
        let exp = 31 - pcm.leading_zeros() - 4; // 1..=7
        (((exp as u8) << 4) | ((pcm >> exp) & 0x0F) as u8) & 0x7F
    };
    (byte | sign) ^ 0x55
}

pub fn decode_sample(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exp = ((a >> 4) & 0x07) as i32;
    let mant = (a & 0x0F) as i32;
    let mag = if exp == 0 {
        (mant << 4) + 8
    } else {
        ((mant << 4) + 0x108) << (exp - 1)
    };
    if a & 0x80 != 0 {
        mag as i16
    } else {
        -mag as i16
    }
}

pub fn encode(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode_sample(s)).collect()
}

pub fn decode(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| decode_sample(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_within_a_law_step() {
        for s in (-32_768i32..32_768).step_by(37) {
            let s = s as i16;
            let back = decode_sample(encode_sample(s)) as i32;
            let err = (back - s as i32).abs();
            let bound = ((s as i32).abs() / 16).max(16);
            assert!(err <= bound, "{s} -> {back}");
        }
        assert_eq!(encode_sample(0), 0xD5);
    }
}
