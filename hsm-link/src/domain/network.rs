//! The partition's IP allow-list (seed 002 §4.3, "IP ACL"): single addresses and CIDR networks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::DomainError;
use super::bounded::BoundedVec;

/// Most entries an IP allow-list may hold. Merge neighbouring addresses into a network when a
/// list would be longer.
pub const MAX_ALLOW_LIST_ENTRIES: usize = 256;

/// An IPv4 or IPv6 network in CIDR form: an address and a prefix length. A single address is a
/// network with the full prefix (`/32` or `/128`).
///
/// Checked on construction and on deserialisation: the prefix fits the address family (0 to 32
/// for IPv4, 0 to 128 for IPv6) and no bit after the prefix is set (`10.0.0.1/8` is refused with
/// a hint to write `10.0.0.0/8`, because it is more likely a typo than a network).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawIpNetwork")]
pub struct IpNetwork {
    addr: IpAddr,
    prefix_len: u8,
}

/// The unchecked wire form of [`IpNetwork`].
#[derive(Deserialize)]
struct RawIpNetwork {
    addr: IpAddr,
    prefix_len: u8,
}

impl TryFrom<RawIpNetwork> for IpNetwork {
    type Error = DomainError;
    fn try_from(raw: RawIpNetwork) -> Result<Self, Self::Error> {
        IpNetwork::new(raw.addr, raw.prefix_len)
    }
}

impl IpNetwork {
    /// The network `addr/prefix_len`; refuses a prefix too long for the address family and an
    /// address with bits set after the prefix.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, DomainError> {
        let max = max_prefix(addr);
        if prefix_len > max {
            return Err(DomainError::NetworkPrefixTooLong {
                addr,
                prefix_len,
                max,
            });
        }
        let network = mask(addr, prefix_len);
        if network != addr {
            return Err(DomainError::NetworkHostBitsSet {
                addr,
                prefix_len,
                network,
            });
        }
        Ok(IpNetwork { addr, prefix_len })
    }

    /// The network holding exactly one address (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Self {
        IpNetwork {
            addr,
            prefix_len: max_prefix(addr),
        }
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// True when `addr` lies in this network. An IPv4 network never contains an IPv6 address
    /// and the reverse, except that an IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, as a
    /// dual-stack socket reports an IPv4 peer) is checked as the IPv4 address it carries (so
    /// IPv4 entries match it and IPv6 entries do not).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        let same_family = matches!(
            (self.addr, addr),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        );
        same_family && mask(addr, self.prefix_len) == self.addr
    }

    /// True when every address of `other` lies in this network.
    pub fn covers(&self, other: &IpNetwork) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.addr)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with every bit after the first `prefix_len` cleared (`prefix_len` within the family's
/// width).
fn mask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let keep = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & keep))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let keep = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
    }
}

/// Written as `192.0.2.7` for a single address and `10.0.0.0/8` for a wider network.
impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix_len == max_prefix(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix_len)
        }
    }
}

/// Reads `192.0.2.7`, `10.0.0.0/8`, `2001:db8::1` or `2001:db8::/32`.
impl FromStr for IpNetwork {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || DomainError::NetworkSyntax {
            text: s.chars().take(64).collect(),
        };
        match s.trim().split_once('/') {
            None => s
                .trim()
                .parse::<IpAddr>()
                .map(IpNetwork::host)
                .map_err(|_| syntax()),
            Some((addr, prefix)) => {
                let addr = addr.parse::<IpAddr>().map_err(|_| syntax())?;
                // Only plain decimal digits: `u8::from_str` would also take a leading `+`.
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(syntax());
                }
                let prefix_len = prefix.parse::<u8>().map_err(|_| syntax())?;
                IpNetwork::new(addr, prefix_len)
            }
        }
    }
}

/// The partition's IP allow-list: the source addresses the application (technical user) may
/// connect from. At most [`MAX_ALLOW_LIST_ENTRIES`] entries, no entry twice.
///
/// **An empty list allows every address.** The seed's "IP ACL" is a restriction a subscriber
/// asks for ("can be restricted to the source IP-addresses indicated by the customer"); a
/// partition whose order names none is not restricted. To take a partition off the network,
/// turn every API provider off instead ([`super::ApiProviders::is_offline`]): that is the seed's
/// way and cannot be mistaken for "no restriction".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BoundedVec<IpNetwork, MAX_ALLOW_LIST_ENTRIES>",
    into = "Vec<IpNetwork>"
)]
pub struct IpAllowList(Vec<IpNetwork>);

impl IpAllowList {
    /// The empty list: every address allowed.
    pub fn allow_all() -> Self {
        IpAllowList(Vec::new())
    }

    /// A list of `entries`, in the order given; refuses more than [`MAX_ALLOW_LIST_ENTRIES`]
    /// entries and an entry given twice.
    pub fn new(entries: Vec<IpNetwork>) -> Result<Self, DomainError> {
        if entries.len() > MAX_ALLOW_LIST_ENTRIES {
            return Err(DomainError::AllowListTooLong { len: entries.len() });
        }
        for (i, entry) in entries.iter().enumerate() {
            if entries[..i].contains(entry) {
                return Err(DomainError::AllowListDuplicate { entry: *entry });
            }
        }
        Ok(IpAllowList(entries))
    }

    /// The entries in order.
    pub fn entries(&self) -> &[IpNetwork] {
        &self.0
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty list, which allows every address.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when a connection from `addr` is allowed: the list is empty, or an entry contains
    /// `addr` (see [`IpNetwork::contains`] for IPv4-mapped IPv6 addresses).
    pub fn allows(&self, addr: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|net| net.contains(addr))
    }

    /// True when `self` may allow an address that `old` did not: `self` is empty while `old`
    /// was not, or an entry of `self` is not covered by a single entry of `old`.
    ///
    /// Conservative: a new entry covered only by the union of several old entries (two `/25`
    /// halves replaced by their `/24`) counts as a widening, so an operator is asked once too
    /// often rather than once too few.
    pub fn widens(&self, old: &IpAllowList) -> bool {
        if old.is_empty() {
            return false;
        }
        if self.is_empty() {
            return true;
        }
        self.0
            .iter()
            .any(|new| !old.0.iter().any(|old| old.covers(new)))
    }
}

impl TryFrom<BoundedVec<IpNetwork, MAX_ALLOW_LIST_ENTRIES>> for IpAllowList {
    type Error = DomainError;
    fn try_from(value: BoundedVec<IpNetwork, MAX_ALLOW_LIST_ENTRIES>) -> Result<Self, Self::Error> {
        IpAllowList::new(value.0)
    }
}

impl From<IpAllowList> for Vec<IpNetwork> {
    fn from(value: IpAllowList) -> Self {
        value.0
    }
}

/// Written as the entries separated by `, `, or `any address` for the empty list.
impl fmt::Display for IpAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("any address");
        }
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Reads a comma-separated list (the seed's form for the order), e.g.
/// `192.0.2.7, 10.0.0.0/8`; an empty or blank string is the empty list (every address).
impl FromStr for IpAllowList {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(IpAllowList::allow_all());
        }
        let mut entries = Vec::new();
        for part in s.split(',') {
            if entries.len() == MAX_ALLOW_LIST_ENTRIES {
                return Err(DomainError::AllowListTooLong {
                    len: s.split(',').count(),
                });
            }
            entries.push(part.parse::<IpNetwork>()?);
        }
        IpAllowList::new(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_networks_contain_their_addresses_only() {
        let n = net("10.1.0.0/16");
        assert!(n.contains(ip("10.1.0.0")));
        assert!(n.contains(ip("10.1.255.255")));
        assert!(!n.contains(ip("10.2.0.0")));
        assert!(!n.contains(ip("10.0.255.255")));
        assert!(
            !n.contains(ip("::a01:0")),
            "IPv6 address in an IPv4 network"
        );
        assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped peer");

        let host = net("192.0.2.7/32");
        assert_eq!(host, IpNetwork::host(ip("192.0.2.7")));
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.6")));
        assert!(!host.contains(ip("192.0.2.8")));

        let all = net("0.0.0.0/0");
        assert!(all.contains(ip("0.0.0.0")));
        assert!(all.contains(ip("255.255.255.255")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn ipv6_networks_contain_their_addresses_only() {
        let n = net("2001:db8::/32");
        assert!(n.contains(ip("2001:db8::1")));
        assert!(n.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!n.contains(ip("2001:db9::")));
        assert!(
            !n.contains(ip("32.1.13.184")),
            "IPv4 address in an IPv6 network"
        );

        let host = net("2001:db8::7/128");
        assert!(host.contains(ip("2001:db8::7")));
        assert!(!host.contains(ip("2001:db8::8")));

        let all = net("::/0");
        assert!(all.contains(ip("::")));
        assert!(all.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!all.contains(ip("10.0.0.1")));
    }

    #[test]
    fn bad_networks_are_refused() {
        assert_eq!(
            IpNetwork::new(ip("10.0.0.0"), 33),
            Err(DomainError::NetworkPrefixTooLong {
                addr: ip("10.0.0.0"),
                prefix_len: 33,
                max: 32
            })
        );
        assert!(matches!(
            IpNetwork::new(ip("::"), 129),
            Err(DomainError::NetworkPrefixTooLong { max: 128, .. })
        ));
        assert_eq!(
            IpNetwork::new(ip("10.0.0.1"), 8),
            Err(DomainError::NetworkHostBitsSet {
                addr: ip("10.0.0.1"),
                prefix_len: 8,
                network: ip("10.0.0.0")
            })
        );
        assert!(IpNetwork::new(ip("2001:db8::1"), 64).is_err());
        for text in [
            "",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "host.example",
            "10.0.0.0/8/8",
        ] {
            assert!(text.parse::<IpNetwork>().is_err(), "{text:?} parsed");
        }
        let err = IpNetwork::new(ip("10.0.0.1"), 8).unwrap_err().to_string();
        assert!(err.contains("10.0.0.0/8"), "{err}");
    }

    #[test]
    fn networks_deserialise_checked() {
        #[derive(Serialize)]
        struct Raw {
            addr: IpAddr,
            prefix_len: u8,
        }
        let good = postcard::to_stdvec(&Raw {
            addr: ip("10.0.0.0"),
            prefix_len: 8,
        })
        .unwrap();
        assert_eq!(
            postcard::from_bytes::<IpNetwork>(&good).unwrap(),
            net("10.0.0.0/8")
        );
        for (addr, prefix_len) in [("10.0.0.0", 40), ("10.0.0.1", 8), ("::", 200)] {
            let bad = postcard::to_stdvec(&Raw {
                addr: ip(addr),
                prefix_len,
            })
            .unwrap();
            assert!(postcard::from_bytes::<IpNetwork>(&bad).is_err());
        }
    }

    #[test]
    fn allow_list_rules() {
        let empty = IpAllowList::allow_all();
        assert!(empty.allows(ip("203.0.113.9")));
        assert!(empty.allows(ip("2001:db8::1")));

        let list: IpAllowList = "192.0.2.7, 10.0.0.0/8, 2001:db8::/32".parse().unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.allows(ip("192.0.2.7")));
        assert!(list.allows(ip("10.200.1.1")));
        assert!(list.allows(ip("2001:db8::99")));
        assert!(!list.allows(ip("192.0.2.8")));
        assert!(!list.allows(ip("2001:db9::1")));
        assert_eq!(list.to_string(), "192.0.2.7, 10.0.0.0/8, 2001:db8::/32");
        assert_eq!(empty.to_string(), "any address");

        assert_eq!(
            "10.0.0.0/8, 10.0.0.0/8".parse::<IpAllowList>(),
            Err(DomainError::AllowListDuplicate {
                entry: net("10.0.0.0/8")
            })
        );
        let too_many: Vec<_> = (0..=MAX_ALLOW_LIST_ENTRIES as u32)
            .map(|i| IpNetwork::host(IpAddr::V4(Ipv4Addr::from(i))))
            .collect();
        assert_eq!(
            IpAllowList::new(too_many.clone()),
            Err(DomainError::AllowListTooLong { len: 257 })
        );
        assert!(IpAllowList::new(too_many[..256].to_vec()).is_ok());
    }

    #[test]
    fn widening_is_detected() {
        let list = |s: &str| s.parse::<IpAllowList>().unwrap();
        let old = list("10.0.0.0/8");
        assert!(!list("10.1.0.0/16").widens(&old), "narrowed");
        assert!(!list("10.0.0.0/8").widens(&old), "same");
        assert!(list("10.0.0.0/7").widens(&old), "wider network");
        assert!(list("10.1.0.0/16, 192.0.2.1").widens(&old), "new address");
        assert!(list("").widens(&old), "emptied");
        assert!(!list("10.0.0.0/8").widens(&list("")), "restricted");
        assert!(!list("").widens(&list("")), "unchanged empty");
    }

    #[test]
    fn over_long_list_is_refused_on_deserialise() {
        let entries: Vec<_> = (0..=MAX_ALLOW_LIST_ENTRIES as u32)
            .map(|i| IpNetwork::host(IpAddr::V4(Ipv4Addr::from(i))))
            .collect();
        let bytes = postcard::to_stdvec(&entries).unwrap();
        assert!(postcard::from_bytes::<IpAllowList>(&bytes).is_err());
        let bytes = postcard::to_stdvec(&entries[..256]).unwrap();
        assert_eq!(
            postcard::from_bytes::<IpAllowList>(&bytes).unwrap().len(),
            256
        );
        let dup = postcard::to_stdvec(&vec![net("10.0.0.0/8"), net("10.0.0.0/8")]).unwrap();
        assert!(postcard::from_bytes::<IpAllowList>(&dup).is_err());
    }
}
