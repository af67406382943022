//! `tessera status`: a pinned session with a paired partition, and what the HSM tells a
//! terminal without a login (the active PSO card set, public values only).

use quorum::ceremony::ActiveSet;
use serde_json::json;

use super::{Shown, printable};
use crate::error::Error;
use crate::pair::AnyConnection;
use crate::state::PairedPartition;

/// The session's state and the partition's PSO set. `conn` is a pinned session with `entry`.
pub fn status(conn: &mut AnyConnection, entry: &PairedPartition) -> Result<Shown, Error> {
    let session = conn.session();
    let version = session.version();
    let fingerprint = session.remote_key().fingerprint();
    let set = ActiveSet::fetch(conn)?;
    let mut text = String::new();
    let mut line = |label: &str, value: String| {
        text.push_str(&format!("{label:<24} {value}\n"));
    };
    line("name", printable(&entry.name));
    line("partition", entry.partition.to_string());
    line("address", printable(&entry.address.to_string()));
    line(
        "link",
        format!("established, Noise KK with the pinned key, protocol version {version}"),
    );
    line("HSM fingerprint", fingerprint.to_string());
    let set_json = match &set {
        None => {
            line("PSO card set", "none enrolled yet".to_owned());
            serde_json::Value::Null
        }
        Some(set) => {
            line(
                "PSO card set",
                format!(
                    "set {}: {} of {} cards",
                    set.set_number,
                    set.threshold,
                    set.cards.len()
                ),
            );
            for card in &set.cards {
                let kind = if card.soft_card { "soft card" } else { "card" };
                line(
                    "",
                    format!(
                        "{kind} {} ({})",
                        printable(card.serial.as_str()),
                        printable(card.holder.as_str())
                    ),
                );
            }
            json!({
                "set_number": set.set_number,
                "threshold": set.threshold,
                "cards": set.cards.iter().map(|c| json!({
                    "holder": c.holder.as_str(),
                    "serial": c.serial.as_str(),
                    "soft_card": c.soft_card,
                })).collect::<Vec<_>>(),
            })
        }
    };
    let json = json!({
        "name": entry.name,
        "partition": entry.partition.as_str(),
        "address": entry.address.to_string(),
        "link": { "state": "established", "mode": "pinned", "protocol_version": version },
        "hsm_fingerprint": fingerprint.to_string(),
        "pso_set": set_json,
    });
    Ok(Shown { text, json })
}
