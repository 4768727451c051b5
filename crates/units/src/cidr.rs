//! [`Cidr`]: an IPv4 or IPv6 address with a prefix length, the one address-range type of the
//! workspace (topology interface addresses and routes, censor policy conditions).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address with its prefix length, e.g. `10.1.0.2/24` (an interface address keeps its host
/// bits; [`Cidr::network`] clears them). Serializes as its string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (0..=32 or 0..=128).
    pub prefix_len: u8,
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl Cidr {
    /// A single address: `/32` or `/128`.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, prefix_len: if addr.is_ipv4() { 32 } else { 128 } }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix_len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix_len))),
        }
    }

    /// Whether `ip` is inside this prefix (never across address families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let m = mask32(self.prefix_len);
                u32::from(a) & m == u32::from(b) & m
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let m = mask128(self.prefix_len);
                u128::from(a) & m == u128::from(b) & m
            }
            _ => false,
        }
    }

    /// Whether two prefixes share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let (shorter, longer) =
            if self.prefix_len <= other.prefix_len { (self, other) } else { (other, self) };
        shorter.contains(longer.addr)
    }

    /// Whether the whole prefix lies in 10.0.0.0/8 or fd00::/8 (the only ranges callwall
    /// uses).
    pub fn in_allowed_range(&self) -> bool {
        let r = match self.addr {
            IpAddr::V4(_) => Cidr { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), prefix_len: 8 },
            IpAddr::V6(_) => {
                Cidr { addr: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)), prefix_len: 8 }
            }
        };
        r.contains(self.addr) && self.prefix_len >= r.prefix_len
    }

    /// Parses `address/prefix` with the prefix required (an interface address or a route), e.g.
    /// `10.1.0.2/24`.
    pub fn parse_with_prefix(s: &str) -> Result<Cidr, CidrError> {
        let (a, l) = s.split_once('/').ok_or_else(|| CidrError::NoPrefix(s.to_string()))?;
        let addr: IpAddr = a.parse().map_err(|_| CidrError::NotAnAddress(a.to_string()))?;
        let prefix_len: u8 = l.parse().map_err(|_| CidrError::NotAPrefix(l.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(CidrError::PrefixTooLong { prefix_len, max });
        }
        Ok(Cidr { addr, prefix_len })
    }
}

/// Why an address or CIDR was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// [`Cidr::parse_with_prefix`]: no `/prefix`.
    #[error("{0:?} is not a CIDR; write it as address/prefix, e.g. 10.1.0.2/24")]
    NoPrefix(String),
    /// [`Cidr::parse_with_prefix`]: the part before `/` is not an IP address.
    #[error("{0:?} is not an IP address")]
    NotAnAddress(String),
    /// [`Cidr::parse_with_prefix`]: the part after `/` is not a number.
    #[error("{0:?} is not a prefix length")]
    NotAPrefix(String),
    /// [`Cidr::parse_with_prefix`]: the prefix is longer than the address.
    #[error("prefix length {prefix_len} is more than {max}")]
    PrefixTooLong { prefix_len: u8, max: u8 },
    /// [`Cidr::from_str`](std::str::FromStr): neither an IP nor a CIDR.
    #[error("invalid address {0:?}: write an IP (\"10.3.0.2\") or a CIDR (\"10.3.0.0/24\", \"fd00:3::/64\")")]
    Invalid(String),
}

/// Parses an IP (`"10.3.0.2"`, a single address) or a CIDR (`"10.3.0.0/24"`, `"fd00:3::/64"`).
impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let bad = || CidrError::Invalid(s.to_string());
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = len.unwrap_or(max);
        if prefix_len > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix_len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_and_parses_both_forms() {
        let c: Cidr = "10.3.0.0/24".parse().unwrap();
        assert!(c.contains("10.3.0.77".parse().unwrap()));
        assert!(!c.contains("10.4.0.1".parse().unwrap()));
        assert!(!c.contains("fd00::1".parse().unwrap()));
        assert_eq!("10.3.0.2".parse::<Cidr>().unwrap().prefix_len, 32);
        assert_eq!("10.0.0.0/33".parse::<Cidr>(), Err(CidrError::Invalid("10.0.0.0/33".into())));
        assert_eq!(
            Cidr::parse_with_prefix("10.1.0.2"),
            Err(CidrError::NoPrefix("10.1.0.2".into()))
        );
        assert_eq!(
            Cidr::parse_with_prefix("10.1.0.2/40"),
            Err(CidrError::PrefixTooLong { prefix_len: 40, max: 32 })
        );
        let a = Cidr::parse_with_prefix("10.1.0.2/24").unwrap();
        assert_eq!(a.network().to_string(), "10.1.0.0");
        assert!(a.overlaps(&"10.1.0.0/16".parse().unwrap()));
        assert!(a.in_allowed_range());
        assert!(!"192.168.0.0/24".parse::<Cidr>().unwrap().in_allowed_range());
        assert!(!"10.0.0.0/7".parse::<Cidr>().unwrap().in_allowed_range());
    }
}
