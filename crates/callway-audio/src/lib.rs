//! Audio helpers for the phone leg. The bridge itself passes PCMU through untouched; these exist
//! for the places that need PCM: simulators (VAD, recording what the app sent), metering, tests.

pub mod level;
pub mod mulaw;
pub mod resample;
pub mod wav;

/// Telnyx and OpenAI `audio/pcmu` both run at 8 kHz.
pub const PCMU_RATE_HZ: u32 = 8_000;
/// 20 ms of PCMU: 160 samples, one byte each (RFC 3551 default packetisation).
pub const FRAME_BYTES: usize = 160;
/// Duration of one frame in milliseconds.
pub const FRAME_MS: u64 = 20;

/// Milliseconds of audio in `bytes` of 8 kHz PCMU.
pub fn pcmu_ms(bytes: usize) -> u64 {
    bytes as u64 * 1000 / PCMU_RATE_HZ as u64
}
