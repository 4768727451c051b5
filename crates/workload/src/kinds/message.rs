//! `message`: a chat session. Both sides send `count` messages of `size` bytes every
//! `interval` over one WebSocket-over-TLS connection; each message gets a delivery receipt.
//!
//! Verdict: `ok` when every message arrived and the latency p95 is at most
//! [`P95_OK_MS`]; `failed` when none arrived; `degraded` otherwise (some lost, or late).

use callwall_units::{Bytes, Duration};
use serde::{Deserialize, Serialize};

use super::{KindParams, Serves};
use crate::limits::{check_bytes, check_count, check_duration, Range};
use crate::{Kind, MessageFigures, Outcome, ParamError};

/// Parameters of a chat session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessageParams {
    pub count: u32,
    pub size: Bytes,
    pub interval: Duration,
}

impl Default for MessageParams {
    fn default() -> Self {
        // Short chat lines: a few dozen to a few hundred bytes each, one every half second.
        MessageParams { count: 20, size: Bytes::new(200), interval: Duration::from_millis(500) }
    }
}

pub const COUNT: Range<u32> = Range { min: 1, max: 1000 };
pub const SIZE: Range<Bytes> = Range { min: Bytes::new(32), max: Bytes::new(64 * 1024) };
pub const INTERVAL: Range<Duration> =
    Range { min: Duration::from_millis(10), max: Duration::from_secs(60) };

/// Delivery latency p95 up to which a chat feels instant, ms. Messengers show a "sent" tick
/// within a second on a working network.
pub const P95_OK_MS: f64 = 1000.0;
/// Fraction of messages that must arrive for `ok`.
pub const DELIVERED_OK: f64 = 1.0;

impl KindParams for MessageParams {
    type Figures = MessageFigures;
    const KIND: Kind = Kind::Message;
    const SERVES: Serves = Serves::Message;

    fn validate(&self) -> Result<(), ParamError> {
        check_count("count", self.count, COUNT)?;
        check_bytes("size", self.size, SIZE)?;
        check_duration("interval", self.interval, INTERVAL)
    }

    fn empty_figures(&self) -> MessageFigures {
        MessageFigures { count: self.count, ..Default::default() }
    }

    fn judge(&self, f: &MessageFigures) -> Outcome {
        if f.delivered_up + f.delivered_down == 0 {
            return Outcome::Failed;
        }
        let fast = f.latency_p95_ms.is_some_and(|l| l <= P95_OK_MS);
        if f.delivered_fraction(self.count) >= DELIVERED_OK && fast {
            Outcome::Ok
        } else {
            Outcome::Degraded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(up: u32, down: u32, p95: Option<f64>) -> MessageFigures {
        MessageFigures {
            count: 20,
            sent_up: 20,
            delivered_up: up,
            sent_down: 20,
            delivered_down: down,
            latency_p50_ms: p95.map(|x| x / 2.0),
            latency_p95_ms: p95,
            latency_max_ms: p95,
            connect_ms: Some(5.0),
        }
    }

    #[test]
    fn messages() {
        let p = MessageParams::default();
        assert_eq!(p.judge(&msg(20, 20, Some(3.0))), Outcome::Ok);
        assert_eq!(p.judge(&msg(20, 20, Some(1500.0))), Outcome::Degraded);
        assert_eq!(p.judge(&msg(20, 5, Some(3.0))), Outcome::Degraded);
        assert_eq!(p.judge(&msg(0, 0, None)), Outcome::Failed);
    }

    #[test]
    fn limits_name_the_key() {
        let p = MessageParams { count: 0, ..Default::default() };
        assert_eq!(p.validate().unwrap_err().key, "count");
    }
}
