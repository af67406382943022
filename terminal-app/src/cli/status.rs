//! `tessera status`: a pinned session with a paired partition, and what the HSM tells a
//! terminal without a login (the active PSO card set, public values only; the log's fill level
//! and what is not exported yet, counts only).

use hsm_link::message::{AdminRequest, AdminResponse, LogStatus};
use quorum::ceremony::{ActiveSet, Link, LinkError};
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
    // An HSM that does not answer the request shows no log block; a lost link fails.
    let log = match conn.admin(AdminRequest::GetLogStatus) {
        Ok(AdminResponse::LogStatus(log)) => Some(log),
        Ok(_) | Err(LinkError::Refused(_)) => None,
        Err(e) => return Err(e.into()),
    };
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
    // The HSM's id and the tier come with the log's status; an HSM that does not answer it
    // leaves them out.
    if let Some(log) = &log {
        line("HSM id", log.hsm_id());
        line("service tier", log.tier.as_str().to_owned());
    }
    let set_json = set_block(set.as_ref(), &mut line);
    let log_json = match &log {
        None => {
            line("log", "not reported by this HSM".to_owned());
            serde_json::Value::Null
        }
        Some(log) => log_block(log, &mut line),
    };
    let json = json!({
        "name": entry.name,
        "partition": entry.partition.as_str(),
        "address": entry.address.to_string(),
        "link": { "state": "established", "mode": "pinned", "protocol_version": version },
        "hsm_fingerprint": fingerprint.to_string(),
        "hsm_id": log.as_ref().map(LogStatus::hsm_id),
        "tier": log.as_ref().map(|l| l.tier.as_str()),
        "pso_set": set_json,
        "log": log_json,
    });
    Ok(Shown { text, json })
}

/// The PSO set's lines (its number, m of n, each card) and its JSON (null before one is
/// enrolled).
fn set_block(set: Option<&ActiveSet>, line: &mut impl FnMut(&str, String)) -> serde_json::Value {
    match set {
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
    }
}

/// The log's lines (entries, not yet exported, limit with a warning from the dashboard's
/// level, policy) and its JSON.
fn log_block(log: &LogStatus, line: &mut impl FnMut(&str, String)) -> serde_json::Value {
    let percent = log.percent_full();
    let warning = percent >= crate::flows::dashboard::LOG_WARN_PERCENT;
    line(
        "log entries",
        format!(
            "{} stored, last #{}",
            log.entries,
            log.last_seq.map_or("—".to_owned(), |s| s.to_string())
        ),
    );
    line("entries not exported", log.unexported.to_string());
    let mark = if warning {
        " — nearly full: export now"
    } else {
        ""
    };
    line(
        "log limit",
        format!(
            "{} entries ({} kept in reserve); {percent} % full{mark}",
            log.capacity, log.reserve
        ),
    );
    line("when the log is full", log.when_full.to_string());
    json!({
        "entries": log.entries,
        "last_seq": log.last_seq,
        "unexported": log.unexported,
        "confirmed_up_to": log.confirmed_up_to,
        "capacity": log.capacity,
        "reserve": log.reserve,
        "percent_full": percent,
        "warning": warning,
        "when_full": match log.when_full {
            hsm_link::message::FullLogPolicy::Refuse => "refuse",
            hsm_link::message::FullLogPolicy::PruneConfirmed => "prune-confirmed",
        },
    })
}
