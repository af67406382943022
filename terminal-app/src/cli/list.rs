//! The paired partitions, as `tessera` shows them without a TUI.

use serde_json::json;

use super::{Shown, printable};
use crate::state::PairedList;
pub(crate) use hex::encode as hex;

/// What `tessera` shows with no partition paired.
pub const NOTHING_PAIRED: &str = "\
This terminal is paired with no HSM partition yet.
  Pair with one:  tessera pair --tcp HOST:PORT --partition ID [--name NAME]
                  (or --serial DEVICE), with the one-time code `tessera-hsm pairing-code` printed
  Try the demo:   tessera demo
";

/// The paired partitions: name, address, partition, HSM fingerprint, paired and last seen.
pub fn paired(list: &PairedList) -> Shown {
    let partitions = list.partitions();
    let json = json!({
        "partitions": partitions.iter().map(|p| json!({
            "name": p.name,
            "address": p.address.to_string(),
            "partition": p.partition.as_str(),
            "hsm_fingerprint": p.fingerprint().to_string(),
            "hsm_key": hex(p.hsm_key.0),
            "audit_key": p.audit_key.as_ref().map(hex),
            "paired_unix": p.paired_unix,
            "last_seen_unix": p.last_seen_unix,
        })).collect::<Vec<_>>(),
    });
    if partitions.is_empty() {
        return Shown {
            text: NOTHING_PAIRED.to_owned(),
            json,
        };
    }
    let mut text = format!(
        "{:<20} {:<28} {:<20} {:<40} {:<20} {}\n",
        "name", "address", "partition", "HSM fingerprint", "paired", "last seen"
    );
    for p in partitions {
        text.push_str(&format!(
            "{:<20} {:<28} {:<20} {:<40} {:<20} {}\n",
            printable(&p.name),
            printable(&p.address.to_string()),
            p.partition,
            p.fingerprint(),
            utc(p.paired_unix),
            p.last_seen_unix.map_or_else(|| "never".to_owned(), utc)
        ));
    }
    Shown { text, json }
}

/// `2026-12-04 09:30:00 UTC`.
pub fn utc(unix: u64) -> String {
    let Some(t) = i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
    else {
        return format!("{unix} (Unix time, beyond the calendar)");
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use hsm_link::domain::PartitionId;
    use hsm_link::keys::PublicKey;

    use super::*;
    use crate::state::PairedPartition;

    #[test]
    fn nothing_paired_says_how_to_pair_or_try_the_demo() {
        let shown = paired(&PairedList::default());
        assert!(shown.text.contains("tessera pair --tcp HOST:PORT"));
        assert!(shown.text.contains("tessera demo"));
        assert_eq!(shown.json, json!({ "partitions": [] }));
    }

    #[test]
    fn each_partition_shows_its_address_fingerprint_and_times() {
        let mut list = PairedList::default();
        list.upsert(PairedPartition {
            name: "payments".to_owned(),
            address: "tcp:127.0.0.1:7700".parse().unwrap(),
            partition: PartitionId::new("p1").unwrap(),
            hsm_key: PublicKey([7; 32]),
            audit_key: None,
            paired_unix: 1_764_840_600,
            last_seen_unix: None,
        })
        .unwrap();
        let shown = paired(&list);
        let row = shown.text.lines().nth(1).unwrap();
        assert!(row.starts_with("payments "), "{row}");
        assert!(row.contains("tcp:127.0.0.1:7700"), "{row}");
        assert!(
            row.contains(&PublicKey([7; 32]).fingerprint().to_string()),
            "{row}"
        );
        assert!(row.contains("2025-12-04 09:30:00 UTC"), "{row}");
        assert!(row.ends_with("never"), "{row}");
        let p = &shown.json["partitions"][0];
        assert_eq!(p["partition"], "p1");
        assert_eq!(p["last_seen_unix"], serde_json::Value::Null);
        assert_eq!(p["hsm_key"], "07".repeat(32));
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }
}
