//! The accepted range of every workload parameter, in one place. Values outside are almost
//! always typos, or would make a run take minutes or gigabytes.

use callwall_units::{Bytes, Duration, Rate};

use crate::ParamError;

/// An inclusive range.
#[derive(Debug, Clone, Copy)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

pub const MESSAGE_COUNT: Range<u32> = Range { min: 1, max: 1000 };
pub const MESSAGE_SIZE: Range<Bytes> = Range { min: Bytes::new(32), max: Bytes::new(64 * 1024) };
pub const MESSAGE_INTERVAL: Range<Duration> =
    Range { min: Duration::from_millis(10), max: Duration::from_secs(60) };
pub const VOICE_NOTE_LENGTH: Range<Duration> =
    Range { min: Duration::from_secs(1), max: Duration::from_secs(600) };
pub const VOICE_NOTE_BITRATE: Range<Rate> =
    Range { min: Rate::from_bits_per_sec(6_000), max: Rate::from_bits_per_sec(510_000) };
pub const WEB_PAGE_SIZE: Range<Bytes> = Range { min: Bytes::new(1), max: Bytes::new(8 << 20) };
pub const WEB_OBJECTS: Range<u32> = Range { min: 0, max: 200 };
pub const WEB_OBJECT_SIZE: Range<Bytes> = Range { min: Bytes::new(1), max: Bytes::new(8 << 20) };
pub const VIDEO_BITRATE: Range<Rate> =
    Range { min: Rate::from_bits_per_sec(32_000), max: Rate::from_bits_per_sec(50_000_000) };
pub const VIDEO_DURATION: Range<Duration> =
    Range { min: Duration::from_secs(1), max: Duration::from_secs(600) };
pub const VIDEO_CHUNK: Range<Duration> =
    Range { min: Duration::from_millis(250), max: Duration::from_secs(10) };
/// Largest body a server accepts or sends in one response (bounds server memory).
pub const MAX_BODY: u64 = 32 << 20;

fn out_of_range(
    key: &'static str,
    got: impl std::fmt::Display,
    lo: impl std::fmt::Display,
    hi: impl std::fmt::Display,
) -> ParamError {
    ParamError { key, message: format!("{got} is out of range; use {lo} to {hi}") }
}

pub(crate) fn check_count(key: &'static str, v: u32, r: Range<u32>) -> Result<(), ParamError> {
    if v < r.min || v > r.max {
        return Err(out_of_range(key, v, r.min, r.max));
    }
    Ok(())
}

pub(crate) fn check_bytes(key: &'static str, v: Bytes, r: Range<Bytes>) -> Result<(), ParamError> {
    if v.get() < r.min.get() || v.get() > r.max.get() {
        return Err(out_of_range(key, v, r.min, r.max));
    }
    Ok(())
}

pub(crate) fn check_duration(
    key: &'static str,
    v: Duration,
    r: Range<Duration>,
) -> Result<(), ParamError> {
    if v < r.min || v > r.max {
        return Err(out_of_range(key, v, r.min, r.max));
    }
    Ok(())
}

pub(crate) fn check_rate(key: &'static str, v: Rate, r: Range<Rate>) -> Result<(), ParamError> {
    if v.bits_per_sec() < r.min.bits_per_sec() || v.bits_per_sec() > r.max.bits_per_sec() {
        return Err(out_of_range(key, v, r.min, r.max));
    }
    Ok(())
}
