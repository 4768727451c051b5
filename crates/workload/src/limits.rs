//! How a workload parameter is checked against its accepted range (each kind's ranges are in
//! its module in [`crate::kinds`]). Values outside are almost always typos, or would make a
//! run take minutes or gigabytes.

use callwall_units::{Bytes, Duration, Rate};

use crate::ParamError;

/// An inclusive range.
#[derive(Debug, Clone, Copy)]
pub struct Range<T> {
    pub min: T,
    pub max: T,
}

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
