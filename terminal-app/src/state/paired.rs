//! `paired.toml`: the HSM partitions this terminal is paired with.
//!
//! ```toml
//! version = 1
//!
//! [[partition]]
//! name = "payments"                       # this terminal's name for it, unique
//! address = "tcp:hsm1.example:7700"       # or "serial:/dev/ttyUSB0"
//! partition = "p1"
//! hsm_key = "<64 hex digits>"             # the HSM's X25519 link key, pinned at pairing
//! audit_key = "<64 hex digits>"           # the HSM's Ed25519 audit key, pinned at pairing
//! paired = 1764806400                     # Unix time
//! last_seen = 1764810000                  # Unix time of the last session, when there was one
//! ```
//!
//! Rules: `version` is required and must be [`PAIRED_VERSION`]; unknown keys are refused; at
//! most [`MAX_PAIRED`] partitions, names of 1 to [`MAX_NAME_LEN`] printable characters and
//! unique; addresses of at most [`MAX_ADDRESS_LEN`] bytes; the file at most
//! [`MAX_PAIRED_LEN`] bytes. The HSM's fingerprint and id are computed from `hsm_key`, never
//! stored beside it (two values that could disagree).
//!
//! `audit_key` is the key the HSM sent inside the pairing session, with its proof that it knew
//! the code; logs and backups of that HSM are verified against it. An entry without it (a
//! pairing from before HSMs sent it) still loads: verifying then says "no audit key pinned:
//! re-pair or pass --key".

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hex::encode as hex;
use hsm_link::domain::PartitionId;
use hsm_link::keys::{Fingerprint, PublicKey};
use serde::{Deserialize, Serialize};

/// The format version this build reads and writes.
pub const PAIRED_VERSION: i64 = 1;
/// The largest file read.
pub const MAX_PAIRED_LEN: u64 = 256 * 1024;
/// Most partitions in the list.
pub const MAX_PAIRED: usize = 256;
/// Longest name, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// Longest address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 256;

/// Where an HSM's admin link is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// TCP: `host:port`.
    Tcp(String),
    /// A serial line: its device.
    Serial(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(host_port) => write!(f, "tcp:{host_port}"),
            Address::Serial(device) => write!(f, "serial:{}", device.display()),
        }
    }
}

impl FromStr for Address {
    type Err = String;

    /// `tcp:HOST:PORT` or `serial:DEVICE`.
    fn from_str(text: &str) -> Result<Address, String> {
        if text.len() > MAX_ADDRESS_LEN || text.chars().any(char::is_control) {
            return Err(format!(
                "an address is at most {MAX_ADDRESS_LEN} bytes without control characters"
            ));
        }
        if let Some(host_port) = text.strip_prefix("tcp:") {
            let port = host_port
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            return match port {
                Some((host, Ok(_))) if !host.is_empty() => Ok(Address::Tcp(host_port.to_owned())),
                _ => Err(format!("{text:?}: a TCP address is tcp:HOST:PORT")),
            };
        }
        match text.strip_prefix("serial:") {
            Some(device) if device.starts_with('/') => Ok(Address::Serial(PathBuf::from(device))),
            _ => Err(format!(
                "{text:?}: an address is tcp:HOST:PORT or serial:/dev/DEVICE"
            )),
        }
    }
}

/// A partition this terminal is paired with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairedPartition {
    /// This terminal's name for it (unique in the list).
    pub name: String,
    /// Where its HSM is reached.
    pub address: Address,
    /// The partition.
    pub partition: PartitionId,
    /// The HSM's link key, pinned at pairing.
    pub hsm_key: PublicKey,
    /// The HSM's audit public key (Ed25519), when known: logs are verified against it.
    pub audit_key: Option<[u8; 32]>,
    /// When it was paired (Unix time).
    pub paired_unix: u64,
    /// When a session last reached it (Unix time).
    pub last_seen_unix: Option<u64>,
}

impl PairedPartition {
    /// The HSM key's fingerprint, as both ends show it.
    pub fn fingerprint(&self) -> Fingerprint {
        self.hsm_key.fingerprint()
    }
}

/// The paired partitions, in the order they were paired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairedList {
    partitions: Vec<PairedPartition>,
}

/// Why `paired.toml` was refused. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairedError {
    /// Not UTF-8, not TOML, an unknown key or a value of the wrong type.
    #[error(
        "{}, line {line}: {message}; fix the line, or move the file away and pair again",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No `version`, or another one.
    #[error(
        "{} is not a paired-partitions file of version {PAIRED_VERSION} (found {found}): use a \
         terminal that reads it, or move it away and pair again", path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found, or `none`.
        found: String,
    },
    /// An entry whose values are not valid.
    #[error("{}, partition {index} ({name:?}): {problem}", path.display())]
    Entry {
        /// The file.
        path: PathBuf,
        /// The entry's position (from 1).
        index: usize,
        /// Its name as written.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// More partitions than [`MAX_PAIRED`].
    #[error("{} lists more than {MAX_PAIRED} partitions", path.display())]
    TooMany {
        /// The file.
        path: PathBuf,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: i64,
    #[serde(default, rename = "partition")]
    partitions: Vec<EntryV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    name: String,
    address: String,
    partition: String,
    hsm_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_key: Option<String>,
    paired: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<u64>,
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<toml::Value>,
}

impl PairedList {
    /// The partitions, in the order they were paired.
    pub fn partitions(&self) -> &[PairedPartition] {
        &self.partitions
    }

    /// The partition named `name`.
    pub fn get(&self, name: &str) -> Option<&PairedPartition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// Adds a partition, or replaces the one of the same name (a pairing again). Refused (with
    /// what to do) when the list is full or the name is not valid.
    pub fn upsert(&mut self, entry: PairedPartition) -> Result<(), String> {
        check_name(&entry.name)?;
        if let Some(old) = self.partitions.iter_mut().find(|p| p.name == entry.name) {
            *old = entry;
            return Ok(());
        }
        if self.partitions.len() >= MAX_PAIRED {
            return Err(format!(
                "this terminal knows {MAX_PAIRED} partitions already: forget one first"
            ));
        }
        self.partitions.push(entry);
        Ok(())
    }

    /// Notes a session with `name` at `now` (Unix time). Whether it is in the list.
    pub fn seen(&mut self, name: &str, now: u64) -> bool {
        match self.partitions.iter_mut().find(|p| p.name == name) {
            Some(p) => {
                p.last_seen_unix = Some(now);
                true
            }
            None => false,
        }
    }

    /// Parses the file's bytes; `path` only names it in errors.
    pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<PairedList, PairedError> {
        let text = std::str::from_utf8(bytes).map_err(|e| PairedError::Invalid {
            path: path.to_owned(),
            line: line_of(&bytes[..e.valid_up_to()]),
            message: "not UTF-8 text".to_owned(),
        })?;
        let invalid = |e: toml::de::Error| PairedError::Invalid {
            path: path.to_owned(),
            line: e
                .span()
                .map_or(1, |s| line_of(&text.as_bytes()[..s.start.min(text.len())])),
            message: e.message().trim().to_owned(),
        };
        let probe: VersionProbe = toml::from_str(text).map_err(invalid)?;
        match probe.version {
            Some(toml::Value::Integer(PAIRED_VERSION)) => {}
            other => {
                return Err(PairedError::Version {
                    path: path.to_owned(),
                    found: other.map_or_else(|| "none".to_owned(), |v| v.to_string()),
                });
            }
        }
        let file: FileV1 = toml::from_str(text).map_err(invalid)?;
        if file.partitions.len() > MAX_PAIRED {
            return Err(PairedError::TooMany {
                path: path.to_owned(),
            });
        }
        let mut list = PairedList::default();
        for (i, entry) in file.partitions.into_iter().enumerate() {
            let name = entry.name.clone();
            let bad = |problem: String| PairedError::Entry {
                path: path.to_owned(),
                index: i + 1,
                name: name.chars().take(MAX_NAME_LEN).collect(),
                problem,
            };
            let entry = entry.check().map_err(bad)?;
            if list.get(&entry.name).is_some() {
                return Err(bad("a second partition of the same name".to_owned()));
            }
            list.partitions.push(entry);
        }
        Ok(list)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let file = FileV1 {
            version: PAIRED_VERSION,
            partitions: self
                .partitions
                .iter()
                .map(|p| EntryV1 {
                    name: p.name.clone(),
                    address: p.address.to_string(),
                    partition: p.partition.as_str().to_owned(),
                    hsm_key: hex(p.hsm_key.0),
                    audit_key: p.audit_key.as_ref().map(hex),
                    paired: p.paired_unix,
                    last_seen: p.last_seen_unix,
                })
                .collect(),
        };
        let body = toml::to_string(&file).expect("the list always serialises");
        format!("# The HSM partitions this terminal is paired with (tessera pair).\n{body}")
    }
}

impl EntryV1 {
    fn check(self) -> Result<PairedPartition, String> {
        check_name(&self.name)?;
        Ok(PairedPartition {
            address: self.address.parse()?,
            partition: PartitionId::new(self.partition).map_err(|e| e.to_string())?,
            hsm_key: PublicKey(key_hex(&self.hsm_key, "hsm_key")?),
            audit_key: self
                .audit_key
                .map(|k| key_hex(&k, "audit_key"))
                .transpose()?,
            paired_unix: self.paired,
            last_seen_unix: self.last_seen,
            name: self.name,
        })
    }
}

/// A name is 1 to [`MAX_NAME_LEN`] characters, none of them a control character.
fn check_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(format!(
            "a name is 1 to {MAX_NAME_LEN} characters without control characters"
        ));
    }
    Ok(())
}

fn key_hex(text: &str, field: &str) -> Result<[u8; 32], String> {
    let bytes = text.as_bytes();
    let digit = |b: u8| (b as char).to_digit(16);
    if bytes.len() != 64 || !bytes.iter().all(|&b| digit(b).is_some()) {
        return Err(format!("{field} is not 64 hex digits"));
    }
    let mut key = [0u8; 32];
    for (k, pair) in key.iter_mut().zip(bytes.chunks(2)) {
        // Both are hex digits, checked above.
        *k = (digit(pair[0]).unwrap_or(0) * 16 + digit(pair[1]).unwrap_or(0)) as u8;
    }
    Ok(key)
}

fn line_of(before: &[u8]) -> usize {
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> PairedPartition {
        PairedPartition {
            name: name.to_owned(),
            address: "tcp:127.0.0.1:7700".parse().unwrap(),
            partition: PartitionId::new("p1").unwrap(),
            hsm_key: PublicKey([7; 32]),
            audit_key: Some([9; 32]),
            paired_unix: 1_764_806_400,
            last_seen_unix: None,
        }
    }

    fn parse(text: &str) -> Result<PairedList, PairedError> {
        PairedList::parse_bytes(text.as_bytes(), Path::new("paired.toml"))
    }

    #[test]
    fn the_list_round_trips_through_its_file() {
        let mut list = PairedList::default();
        list.upsert(entry("payments")).unwrap();
        let mut serial = entry("vault");
        serial.address = "serial:/dev/ttyUSB0".parse().unwrap();
        serial.audit_key = None;
        list.upsert(serial).unwrap();
        assert!(list.seen("vault", 1_764_810_000));
        assert!(!list.seen("nothing", 1));
        let text = list.to_toml();
        assert!(text.contains("version = 1"), "{text}");
        assert!(text.contains("[[partition]]"), "{text}");
        assert!(text.contains("address = \"serial:/dev/ttyUSB0\""), "{text}");
        assert_eq!(parse(&text).unwrap(), list);
        // Pairing again under a name replaces the entry.
        let mut again = entry("payments");
        again.hsm_key = PublicKey([8; 32]);
        list.upsert(again).unwrap();
        assert_eq!(list.partitions().len(), 2);
        assert_eq!(list.get("payments").unwrap().hsm_key, PublicKey([8; 32]));
        assert_eq!(
            list.get("payments").unwrap().fingerprint(),
            PublicKey([8; 32]).fingerprint()
        );
    }

    #[test]
    fn refusals_name_the_file_the_line_or_the_entry() {
        let e = parse("[[partition]]\n").unwrap_err();
        assert!(matches!(e, PairedError::Version { .. }), "{e:?}");
        let e = parse("version = 2\n").unwrap_err();
        assert!(e.to_string().contains("found 2"), "{e}");
        let e = parse("version = 1\nextra = 1\n").unwrap_err();
        assert!(matches!(e, PairedError::Invalid { line: 2, .. }), "{e:?}");
        let good = PairedList {
            partitions: vec![entry("a")],
        }
        .to_toml();
        for (from, to, says) in [
            ("tcp:127.0.0.1:7700", "tcp:nowhere", "tcp:HOST:PORT"),
            ("tcp:127.0.0.1:7700", "udp:x:1", "serial:/dev/DEVICE"),
            ("\"p1\"", "\"p 1\"", "partition"),
            (&hex([7; 32]), "00", "hsm_key is not 64 hex digits"),
            ("name = \"a\"", "name = \"\"", "1 to 64 characters"),
        ] {
            let text = good.replacen(from, to, 1);
            assert_ne!(text, good, "{from}");
            let e = parse(&text).unwrap_err();
            assert!(matches!(e, PairedError::Entry { index: 1, .. }), "{e:?}");
            assert!(e.to_string().contains("paired.toml"), "{e}");
            assert!(
                e.to_string().to_lowercase().contains(&says.to_lowercase()),
                "{says}: {e}"
            );
        }
        let body = good.split_once("[[partition]]").unwrap().1;
        let twice = format!("{good}\n[[partition]]{body}");
        let e = parse(&twice).unwrap_err();
        assert!(e.to_string().contains("same name"), "{e}");
        let e = PairedList::parse_bytes(b"version = 1\n# \xff\n", Path::new("p")).unwrap_err();
        assert!(matches!(e, PairedError::Invalid { line: 2, .. }), "{e:?}");
    }

    #[test]
    fn an_entry_paired_before_audit_keys_were_sent_still_loads() {
        let old = format!(
            "version = 1\n\n[[partition]]\nname = \"pay\"\naddress = \"tcp:127.0.0.1:7700\"\n\
             partition = \"p1\"\nhsm_key = \"{}\"\npaired = 1764806400\n",
            hex([7; 32])
        );
        let list = parse(&old).unwrap();
        let entry = list.get("pay").unwrap();
        assert_eq!(entry.audit_key, None);
        assert_eq!(entry.hsm_key, PublicKey([7; 32]));
        // Written back, it stays without one (nothing invented).
        assert!(!list.to_toml().contains("audit_key"));
    }

    #[test]
    fn the_list_is_bounded() {
        let mut list = PairedList::default();
        for i in 0..MAX_PAIRED {
            list.upsert(entry(&format!("p{i}"))).unwrap();
        }
        assert!(
            list.upsert(entry("one more"))
                .unwrap_err()
                .contains("forget one")
        );
        let full = list.to_toml();
        let body = full.split_once("[[partition]]").unwrap().1;
        let body = body.split("[[partition]]").next().unwrap();
        let text = format!(
            "{full}\n[[partition]]{}",
            body.replacen("\"p0\"", "\"extra\"", 1)
        );
        let e = parse(&text).unwrap_err();
        assert!(matches!(e, PairedError::TooMany { .. }), "{e:?}");
    }
}
