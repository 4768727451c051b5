//! What a strategy needs on the run's relay host: the transport says it, so the harness starts
//! coturn or the reflector from the transports' own answers instead of knowing their strategy
//! names.
//!
//! A transport overrides [`crate::VoiceTransport::relay_needs`] for the strategies that reach a
//! relay; the default is [`RelayNeeds::NONE`]. [`relay_needs_of`] answers for a call's strategy
//! list, `["auto"]` standing for every strategy `auto` may try.

use serde::{Deserialize, Serialize};

use crate::VoiceTransport;

/// The relay host's services (and ports) a strategy reaches. Plain flags, combined with
/// [`RelayNeeds::union`]; `Default` is [`RelayNeeds::NONE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayNeeds {
    /// TURN over UDP to coturn's UDP port (3478; also its STUN server).
    #[serde(default, skip_serializing_if = "is_false")]
    pub turn_udp: bool,
    /// TURN over TCP to coturn's TCP port (3478).
    #[serde(default, skip_serializing_if = "is_false")]
    pub turn_tcp: bool,
    /// TURN over TLS to coturn's TLS port (443).
    #[serde(default, skip_serializing_if = "is_false")]
    pub turn_tls: bool,
    /// The Telegram-like reflector's UDP ports on the relay host (`callwall-reflector`). Its
    /// clients find it at the relay's address, so it comes with the relay's credentials too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reflector: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl RelayNeeds {
    /// Nothing on the relay host.
    pub const NONE: RelayNeeds =
        RelayNeeds { turn_udp: false, turn_tcp: false, turn_tls: false, reflector: false };
    /// Every TURN port of coturn (UDP, TCP and TLS).
    pub const TURN_ALL: RelayNeeds =
        RelayNeeds { turn_udp: true, turn_tcp: true, turn_tls: true, reflector: false };
    /// The reflector.
    pub const REFLECTOR: RelayNeeds =
        RelayNeeds { turn_udp: false, turn_tcp: false, turn_tls: false, reflector: true };

    /// Both sets of needs.
    pub fn union(self, o: RelayNeeds) -> RelayNeeds {
        RelayNeeds {
            turn_udp: self.turn_udp || o.turn_udp,
            turn_tcp: self.turn_tcp || o.turn_tcp,
            turn_tls: self.turn_tls || o.turn_tls,
            reflector: self.reflector || o.reflector,
        }
    }

    /// Whether any TURN port is needed.
    pub fn turn(&self) -> bool {
        self.turn_udp || self.turn_tcp || self.turn_tls
    }

    /// Whether coturn must run: a TURN port is needed, or the reflector (whose clients get the
    /// relay's address from coturn's [`crate::RelayInfo`]).
    pub fn coturn(&self) -> bool {
        self.turn() || self.reflector
    }
}

/// The needs of a call that may try `strategies` over `t`: the union over the list, where
/// `["auto"]` stands for every strategy `auto` may try (its order and its race).
pub fn relay_needs_of(t: &dyn VoiceTransport, strategies: &[String]) -> RelayNeeds {
    let one = |s: &str| t.relay_needs(s);
    if strategies == ["auto"] {
        t.auto_order()
            .iter()
            .chain(t.auto_race().unwrap_or(&[]))
            .fold(RelayNeeds::NONE, |acc, s| acc.union(one(s)))
    } else {
        strategies.iter().fold(RelayNeeds::NONE, |acc, s| acc.union(one(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_and_classes() {
        let u = RelayNeeds { turn_tcp: true, ..RelayNeeds::NONE }.union(RelayNeeds::REFLECTOR);
        assert!(u.turn() && u.reflector && u.coturn() && !u.turn_udp);
        assert!(!RelayNeeds::NONE.coturn());
        assert!(RelayNeeds::REFLECTOR.coturn() && !RelayNeeds::REFLECTOR.turn());
        assert_eq!(RelayNeeds::default(), RelayNeeds::NONE);
        assert_eq!(serde_json::to_string(&RelayNeeds::NONE).unwrap(), "{}");
    }
}
