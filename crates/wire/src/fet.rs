//! The Great Firewall's test for fully encrypted traffic, as published by Wu et al., "How the
//! Great Firewall of China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023,
//! section 4 (Algorithm 1). It looks at the first data packet of a TCP connection from the
//! client; a packet that meets any exemption is let through, others are treated as fully
//! encrypted (the GFW then blocks with probability about 0.26; that is policy, not here).

/// The exemptions, in the order the paper lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exemption {
    /// Ex1: average popcount per byte <= 3.4.
    PopcountLow,
    /// Ex1: average popcount per byte >= 4.6.
    PopcountHigh,
    /// Ex2: the first six bytes are printable ASCII (0x20-0x7e).
    PrintablePrefix,
    /// Ex3: more than half of the bytes are printable.
    PrintableFraction,
    /// Ex4: more than 20 contiguous printable bytes.
    PrintableRun,
    /// Ex5: starts like a TLS record: `16-17 03 00-09`.
    TlsLike,
    /// Ex5: starts like an HTTP request: `GET `, `PUT `, `POST ` or `HEAD `.
    HttpLike,
}

impl Exemption {
    pub const fn name(self) -> &'static str {
        match self {
            Exemption::PopcountLow => "popcount-low",
            Exemption::PopcountHigh => "popcount-high",
            Exemption::PrintablePrefix => "printable-prefix",
            Exemption::PrintableFraction => "printable-fraction",
            Exemption::PrintableRun => "printable-run",
            Exemption::TlsLike => "tls-like",
            Exemption::HttpLike => "http-like",
        }
    }
}

/// What the test says about one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetOutcome {
    Exempt(Exemption),
    /// No exemption applies: the GFW would treat the connection as fully encrypted.
    FullyEncrypted,
}

impl FetOutcome {
    pub const fn is_fully_encrypted(self) -> bool {
        matches!(self, FetOutcome::FullyEncrypted)
    }
}

const fn printable(b: u8) -> bool {
    matches!(b, 0x20..=0x7e)
}

/// Runs the test on a first data packet. None for an empty payload (no data packet yet).
pub fn fet(payload: &[u8]) -> Option<FetOutcome> {
    if payload.is_empty() {
        return None;
    }
    let n = payload.len() as u64;
    let bits: u64 = payload.iter().map(|b| u64::from(b.count_ones())).sum();
    // Ex1, in integers: bits / n <= 3.4  <=>  10 * bits <= 34 * n.
    if 10 * bits <= 34 * n {
        return Some(FetOutcome::Exempt(Exemption::PopcountLow));
    }
    if 10 * bits >= 46 * n {
        return Some(FetOutcome::Exempt(Exemption::PopcountHigh));
    }
    // Ex2.
    if payload.len() >= 6 && payload[..6].iter().all(|b| printable(*b)) {
        return Some(FetOutcome::Exempt(Exemption::PrintablePrefix));
    }
    // Ex3.
    let count = payload.iter().filter(|b| printable(**b)).count() as u64;
    if 2 * count > n {
        return Some(FetOutcome::Exempt(Exemption::PrintableFraction));
    }
    // Ex4.
    let mut run = 0;
    for b in payload {
        run = if printable(*b) { run + 1 } else { 0 };
        if run > 20 {
            return Some(FetOutcome::Exempt(Exemption::PrintableRun));
        }
    }
    // Ex5.
    if let [0x16 | 0x17, 0x03, 0x00..=0x09, ..] = payload {
        return Some(FetOutcome::Exempt(Exemption::TlsLike));
    }
    for p in [&b"GET "[..], b"PUT ", b"POST ", b"HEAD "] {
        if payload.starts_with(p) {
            return Some(FetOutcome::Exempt(Exemption::HttpLike));
        }
    }
    Some(FetOutcome::FullyEncrypted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes from a fixed xorshift stream: high entropy, popcount near 4.
    fn random_looking(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Keep clear of printable runs: force the top bit on some bytes.
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn random_payload_is_fully_encrypted() {
        let p = random_looking(300);
        assert_eq!(fet(&p), Some(FetOutcome::FullyEncrypted));
    }

    #[test]
    fn each_exemption() {
        assert_eq!(fet(&[0u8; 50]), Some(FetOutcome::Exempt(Exemption::PopcountLow)));
        assert_eq!(fet(&[0xffu8; 50]), Some(FetOutcome::Exempt(Exemption::PopcountHigh)));
        // Printable prefix, then random.
        let mut p = b"abcdef".to_vec();
        p.extend_from_slice(&random_looking(200));
        assert_eq!(fet(&p), Some(FetOutcome::Exempt(Exemption::PrintablePrefix)));
        // Mostly printable but interleaved with 0x80+x so no 6-byte prefix or 21 run; popcount
        // kept mid-range.
        let p: Vec<u8> =
            (0..200).map(|i| if i % 3 == 2 { 0x9c } else { b'M' + (i % 7) as u8 }).collect();
        assert_eq!(fet(&p), Some(FetOutcome::Exempt(Exemption::PrintableFraction)));
        // A 21-byte printable run inside random data.
        let mut p = random_looking(40);
        p[0] = 0x8f;
        p.extend_from_slice(b"ABCDEFGHIJKLMNOPQRSTU");
        p.extend_from_slice(&random_looking(200)[..]);
        assert_eq!(fet(&p), Some(FetOutcome::Exempt(Exemption::PrintableRun)));
        // TLS-like header then random.
        let mut p = vec![0x17, 0x03, 0x03];
        p.extend_from_slice(&random_looking(200));
        assert_eq!(fet(&p), Some(FetOutcome::Exempt(Exemption::TlsLike)));
        // 20-byte run is not enough.
        let mut p = random_looking(40);
        p[0] = 0x8f;
        p.extend_from_slice(b"ABCDEFGHIJKLMNOPQRST");
        p.push(0x8f);
        p.extend_from_slice(&random_looking(200)[..]);
        assert_eq!(fet(&p), Some(FetOutcome::FullyEncrypted));
        assert_eq!(fet(&[]), None);
    }

    #[test]
    fn http_like_needs_the_other_tests_to_fail_first() {
        // "POST " followed by random data: the prefix is 5 printable bytes, not 6, since the
        // sixth is random and made non-printable here.
        let mut p = b"POST ".to_vec();
        p.push(0x80);
        p.extend_from_slice(&random_looking(200));
        assert_eq!(fet(&p), Some(FetOutcome::Exempt(Exemption::HttpLike)));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = fet(&bytes);
        }
    }
}
