//! The Noise layer: IK handshake and the stateless transport session with explicit nonces.
//!
//! No I/O here: the UDP and TCP adapters move the bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use callwall_transport::TransportError;
use snow::{HandshakeState, StatelessTransportState};

use crate::wire::{Packet, INIT_PAYLOAD_LEN, TAG_LEN};

/// The Noise protocol name (Noise spec §8).
pub const PARAMS: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Largest Noise message (Noise spec §3).
pub const MAX_MSG: usize = 65535;

fn builder() -> Result<snow::Builder<'static>, TransportError> {
    let params = PARAMS.parse().map_err(|e| TransportError::Handshake(format!("{e:?}")))?;
    Ok(snow::Builder::new(params))
}

fn hs_err(what: &str, e: snow::Error) -> TransportError {
    TransportError::Handshake(format!("{what}: {e}"))
}

/// A fresh X25519 static keypair: `(private, public)`.
pub fn keypair() -> Result<(Vec<u8>, Vec<u8>), TransportError> {
    let kp = builder()?.generate_keypair().map_err(|e| hs_err("generating a keypair", e))?;
    Ok((kp.private, kp.public))
}

/// A TAI64N timestamp (12 bytes), as WireGuard puts in its initiation.
pub fn tai64n(now: SystemTime) -> [u8; INIT_PAYLOAD_LEN] {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = [0u8; INIT_PAYLOAD_LEN];
    out[..8].copy_from_slice(&(0x4000_0000_0000_000a_u64.wrapping_add(d.as_secs())).to_be_bytes());
    out[8..].copy_from_slice(&d.subsec_nanos().to_be_bytes());
    out
}

/// The initiator's side of the handshake, kept so it can be replayed.
///
/// snow's handshake state is spent by a failed `read_message`, so a forged or corrupted
/// message 2 would otherwise kill the attempt. The initiator keeps its keys and payload and
/// rebuilds the identical state (same ephemeral key, so the same message 1) for each message 2
/// it tries.
pub struct Initiator {
    static_private: Vec<u8>,
    ephemeral_private: Vec<u8>,
    remote_public: Vec<u8>,
    payload: [u8; INIT_PAYLOAD_LEN],
    /// IK message 1, kept for retransmission.
    pub msg1: Vec<u8>,
}

impl Initiator {
    /// Starts IK towards the responder's static `remote_public`, with fresh static and
    /// ephemeral keys of our own, and writes message 1 (with a TAI64N payload).
    pub fn start(remote_public: &[u8]) -> Result<Initiator, TransportError> {
        let (static_private, _) = keypair()?;
        let (ephemeral_private, _) = keypair()?;
        let mut init = Initiator {
            static_private,
            ephemeral_private,
            remote_public: remote_public.to_vec(),
            payload: tai64n(SystemTime::now()),
            msg1: Vec::new(),
        };
        let (_, msg1) = init.build()?;
        init.msg1 = msg1;
        Ok(init)
    }

    fn build(&self) -> Result<(HandshakeState, Vec<u8>), TransportError> {
        let mut hs = builder()?
            .local_private_key(&self.static_private)
            .remote_public_key(&self.remote_public)
            .fixed_ephemeral_key_for_testing_only(&self.ephemeral_private)
            .build_initiator()
            .map_err(|e| hs_err("building the initiator", e))?;
        let mut buf = vec![0u8; MAX_MSG];
        let n = hs
            .write_message(&self.payload, &mut buf)
            .map_err(|e| hs_err("writing message 1", e))?;
        buf.truncate(n);
        Ok((hs, buf))
    }

    /// Reads message 2; on success the handshake is done. A failure leaves `self` usable.
    pub fn finish(&self, msg2: &[u8]) -> Result<StatelessTransportState, TransportError> {
        let (mut hs, _) = self.build()?;
        let mut buf = vec![0u8; MAX_MSG];
        hs.read_message(msg2, &mut buf).map_err(|e| hs_err("reading message 2", e))?;
        hs.into_stateless_transport_mode().map_err(|e| hs_err("switching to transport mode", e))
    }
}

/// The responder's answer to one message 1.
pub struct Responded {
    pub msg2: Vec<u8>,
    pub state: StatelessTransportState,
}

/// Reads IK message 1 with our static `private` key and writes message 2 (empty payload).
pub fn respond(private: &[u8], msg1: &[u8]) -> Result<Responded, TransportError> {
    let mut hs = builder()?
        .local_private_key(private)
        .build_responder()
        .map_err(|e| hs_err("building the responder", e))?;
    let mut payload = vec![0u8; MAX_MSG];
    hs.read_message(msg1, &mut payload).map_err(|e| hs_err("reading message 1", e))?;
    let mut buf = vec![0u8; MAX_MSG];
    let n = hs.write_message(&[], &mut buf).map_err(|e| hs_err("writing message 2", e))?;
    buf.truncate(n);
    let state =
        hs.into_stateless_transport_mode().map_err(|e| hs_err("switching to transport mode", e))?;
    Ok(Responded { msg2: buf, state })
}

/// Anti-replay window over the last [`ReplayWindow::SIZE`] counters (RFC 6479's idea, as in
/// WireGuard §5.4.6): a counter is accepted once, and not if it is older than the window.
#[derive(Debug, Default, Clone)]
pub struct ReplayWindow {
    /// One past the highest counter accepted.
    top: u64,
    /// Bit i set: counter `top - 1 - i` was accepted.
    bits: u128,
}

impl ReplayWindow {
    pub const SIZE: u64 = 128;

    /// Whether `c` is new and within the window (does not record it).
    pub fn check(&self, c: u64) -> bool {
        if c >= self.top {
            return true;
        }
        let age = self.top - 1 - c;
        age < Self::SIZE && self.bits & (1u128 << age) == 0
    }

    /// Records `c` as accepted.
    pub fn mark(&mut self, c: u64) {
        if c >= self.top {
            let shift = c - self.top + 1;
            self.bits = if shift >= Self::SIZE { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = c + 1;
        } else {
            let age = self.top - 1 - c;
            if age < Self::SIZE {
                self.bits |= 1u128 << age;
            }
        }
    }
}

/// Counters of what a session dropped or passed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub received: u64,
    /// Data packets whose counter was already seen or too old.
    pub replayed: u64,
    /// Data packets that failed authentication, or were for another receiver index.
    pub undecryptable: u64,
    /// Datagrams that did not parse as this framing.
    pub malformed: u64,
}

/// An established session: seals and opens data packets with explicit nonces, so loss and
/// reordering cost nothing but the lost packets.
pub struct Session {
    state: StatelessTransportState,
    pub local_index: u32,
    pub remote_index: u32,
    next_counter: u64,
    replay: ReplayWindow,
    pub stats: Stats,
}

impl Session {
    pub fn new(state: StatelessTransportState, local_index: u32, remote_index: u32) -> Session {
        Session {
            state,
            local_index,
            remote_index,
            next_counter: 0,
            replay: ReplayWindow::default(),
            stats: Stats::default(),
        }
    }

    /// Encrypts one frame into a data packet; `None` if it is too large for a Noise message.
    pub fn seal(&mut self, frame: &[u8]) -> Option<Packet> {
        let mut ct = vec![0u8; frame.len() + TAG_LEN];
        let counter = self.next_counter;
        let n = self.state.write_message(counter, frame, &mut ct).ok()?;
        ct.truncate(n);
        self.next_counter += 1;
        self.stats.sent += 1;
        Some(Packet::Data { receiver: self.remote_index, counter, ct })
    }

    /// Decrypts a data packet addressed to us; drops (and counts) replays and forgeries.
    pub fn open(&mut self, receiver: u32, counter: u64, ct: &[u8]) -> Option<Vec<u8>> {
        if receiver != self.local_index || ct.len() < TAG_LEN {
            self.stats.undecryptable += 1;
            return None;
        }
        if !self.replay.check(counter) {
            self.stats.replayed += 1;
            return None;
        }
        let mut out = vec![0u8; ct.len()];
        match self.state.read_message(counter, ct, &mut out) {
            Ok(n) => {
                // Only authenticated counters move the window.
                self.replay.mark(counter);
                out.truncate(n);
                self.stats.received += 1;
                Some(out)
            }
            Err(_) => {
                self.stats.undecryptable += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IK_MSG1_LEN, IK_MSG2_LEN};

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert!(w.check(0));
        w.mark(0);
        assert!(!w.check(0));
        w.mark(5);
        assert!(w.check(3) && !w.check(5));
        w.mark(3);
        assert!(!w.check(3));
        w.mark(500);
        assert!(!w.check(5), "older than the window");
        assert!(w.check(499) && w.check(373));
        assert!(!w.check(372));
    }

    #[test]
    fn ik_handshake_sizes_and_transport() {
        let (private, public) = keypair().unwrap();
        let init = Initiator::start(&public).unwrap();
        assert_eq!(init.msg1.len(), IK_MSG1_LEN);
        assert_eq!(init.build().unwrap().1, init.msg1, "message 1 is reproducible");
        let resp = respond(&private, &init.msg1).unwrap();
        assert_eq!(resp.msg2.len(), IK_MSG2_LEN);
        assert!(init.finish(&[0u8; IK_MSG2_LEN]).is_err());
        let mut forged = resp.msg2.clone();
        forged[40] ^= 1;
        assert!(init.finish(&forged).is_err());
        // Still good after the forgeries.
        let state = init.finish(&resp.msg2).unwrap();
        let mut a = Session::new(state, 1, 2);
        let mut b = Session::new(resp.state, 2, 1);
        let p0 = a.seal(b"hello").unwrap();
        let p1 = a.seal(b"world").unwrap();
        // Out of order is fine; a replay is dropped; a wrong receiver is dropped.
        let Packet::Data { receiver, counter, ct } = p1 else { panic!() };
        assert_eq!(b.open(receiver, counter, &ct).as_deref(), Some(&b"world"[..]));
        assert_eq!(b.open(receiver, counter, &ct), None);
        assert_eq!(b.stats.replayed, 1);
        let Packet::Data { receiver, counter, mut ct } = p0 else { panic!() };
        assert_eq!(b.open(9, counter, &ct), None);
        ct[0] ^= 1;
        assert_eq!(b.open(receiver, counter, &ct), None);
        assert_eq!(b.stats.undecryptable, 2);
        ct[0] ^= 1;
        assert_eq!(b.open(receiver, counter, &ct).as_deref(), Some(&b"hello"[..]));
        // And back.
        let Packet::Data { receiver, counter, ct } = b.seal(b"back").unwrap() else { panic!() };
        assert_eq!(a.open(receiver, counter, &ct).as_deref(), Some(&b"back"[..]));
    }

    #[test]
    fn wrong_key_fails_handshake() {
        let (_, public) = keypair().unwrap();
        let (other_private, _) = keypair().unwrap();
        let init = Initiator::start(&public).unwrap();
        assert!(respond(&other_private, &init.msg1).is_err());
    }
}
