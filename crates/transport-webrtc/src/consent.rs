//! How long ICE keeps a connected call alive without an answer to its consent checks.
//!
//! webrtc-rs 0.21 has one pair of timeouts for two different things: while ICE is checking,
//! it gives up after `disconnected + failed`; once connected, it declares the connection
//! failed (and media stops for good) after `disconnected + failed` without a STUN message
//! from the peer. Only STUN counts there: its ICE handler passes media past the agent without
//! marking the remote candidate as seen, so a call whose voice flows but whose consent checks
//! (one per second) are lost three or four times in a row is torn down.
//!
//! Before, both were derived from the connect budget (`t/3 + t/2`, 3.3 s for 4 s), so a call
//! policed to 48 kbit/s (`scenarios/net-low-rate.toml`), where the policer drops about a
//! quarter of all packets, consent checks included, was cut about 3.4 s after it connected in
//! 1 to 8 calls of 10, depending on the load: an artefact of our setting, not what a browser
//! does. RFC 7675 §5.1 lets consent expire only after 30 s without a response, and browsers
//! keep media flowing until then. So the total is [`CONSENT_EXPIRY`]; the setup is still
//! bounded by the call's own connect budget (`wait_connected`), which is shorter.

use std::time::Duration;

/// RFC 7675 §5.1: consent expires 30 s after the last response to a consent check.
pub const CONSENT_EXPIRY: Duration = Duration::from_secs(30);
/// How often a connected agent sends a consent check (RFC 7675 asks for about 5 s on
/// average; one per second detects a lost path sooner in the short calls of a run).
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(1);

/// `(disconnected, failed, keepalive)` for `SettingEngineBuilder::with_ice_timeouts`, for a
/// call whose connect budget is `connect_timeout`: `disconnected` (a state that stops
/// nothing) follows the budget as before, and `disconnected + failed` is [`CONSENT_EXPIRY`].
pub fn ice_timeouts(connect_timeout: Duration) -> (Duration, Duration, Duration) {
    let disconnected =
        (connect_timeout / 3).clamp(Duration::from_millis(500), Duration::from_secs(5));
    (disconnected, CONSENT_EXPIRY.saturating_sub(disconnected), CONSENT_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_expires_after_thirty_seconds_whatever_the_budget() {
        for t in [1, 4, 8, 14, 60] {
            let (d, f, k) = ice_timeouts(Duration::from_secs(t));
            assert_eq!(d + f, CONSENT_EXPIRY, "budget {t} s");
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(5));
            assert_eq!(k, CONSENT_INTERVAL);
        }
        // The old derivation gave up 3.3 s after the last consent answer for a 4 s budget.
        let (d, f, _) = ice_timeouts(Duration::from_secs(4));
        assert!(d + f > Duration::from_secs(8), "longer than a default call");
    }
}
