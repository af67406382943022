//! The reads a logged-in officer (PSO or auditor) makes from the command line: the
//! configuration, the keys, the bin and the log, as text or JSON. Pages are fetched until the
//! HSM says there are no more (or the caller's limit is reached).

use audit_log::{LogLine, Role};
use hsm_link::domain::{KeyId, KeyObjectSummary, KeyState, Parameter};
use hsm_link::message::{
    AdminRequest, AdminResponse, KeyFilter, LogQuery, MAX_KEYS_PER_PAGE, MAX_LOG_LINES_PER_PAGE,
    OutcomeFilter,
};
use quorum::ceremony::Link as _;
use serde_json::json;

use super::list::utc;
use super::{Shown, printable};
use crate::error::Error;
use crate::pair::AnyConnection;

/// `tessera config show`: every parameter with its value, and the revision.
pub fn config_show(conn: &mut AnyConnection) -> Result<Shown, Error> {
    let AdminResponse::Config(config) = conn.admin(AdminRequest::GetConfig)? else {
        return Err(Error::UnexpectedAnswer {
            request: "GetConfig",
        });
    };
    let mut text = format!("configuration revision {}\n", config.revision);
    let mut parameters = serde_json::Map::new();
    for parameter in Parameter::ALL {
        let value = config.value_text(parameter);
        text.push_str(&format!("  {:<28} {value}\n", parameter.label()));
        parameters.insert(parameter.label().to_owned(), json!(value));
    }
    let json = json!({ "revision": config.revision, "parameters": parameters });
    Ok(Shown { text, json })
}

/// `tessera keys list` (`bin = false`) or `tessera bin list` (`bin = true`).
pub fn keys(conn: &mut AnyConnection, bin: bool) -> Result<Shown, Error> {
    let filter = if bin {
        KeyFilter::Invalidated
    } else {
        KeyFilter::Active
    };
    let mut keys: Vec<KeyObjectSummary> = Vec::new();
    let mut after: Option<KeyId> = None;
    loop {
        let AdminResponse::Keys { keys: page, more } = conn.admin(AdminRequest::ListKeys {
            filter,
            after,
            limit: MAX_KEYS_PER_PAGE as u32,
        })?
        else {
            return Err(Error::UnexpectedAnswer {
                request: "ListKeys",
            });
        };
        after = page.last().map(|k| k.id);
        keys.extend(page);
        if !more || after.is_none() {
            break;
        }
    }
    let mut text = format!(
        "{:>8}  {:<32} {:<9} {:>7}  {:<22} {}\n",
        "id",
        "label",
        "type",
        "bytes",
        "created",
        if bin { "in the bin since" } else { "flags" }
    );
    for k in &keys {
        let last = match k.state {
            KeyState::Invalidated { invalidated_unix } => utc(invalidated_unix),
            KeyState::Active => flags(k),
        };
        text.push_str(&format!(
            "{:>8}  {:<32} {:<9} {:>7}  {:<22} {last}\n",
            k.id,
            printable(k.label.as_str()),
            k.kind.as_str(),
            k.size_bytes,
            utc(k.created_unix),
        ));
    }
    text.push_str(&format!(
        "{} {}\n",
        keys.len(),
        if bin { "keys in the bin" } else { "keys" }
    ));
    let json = json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() });
    Ok(Shown { text, json })
}

fn flags(k: &KeyObjectSummary) -> String {
    let a = &k.attributes;
    [
        (a.extractable, "extractable"),
        (a.sensitive, "sensitive"),
        (a.modifiable, "modifiable"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}

fn key_json(k: &KeyObjectSummary) -> serde_json::Value {
    json!({
        "id": k.id.0,
        "label": k.label.as_str(),
        "type": k.kind.as_str(),
        "size_bytes": k.size_bytes,
        "created_unix": k.created_unix,
        "extractable": k.attributes.extractable,
        "sensitive": k.attributes.sensitive,
        "modifiable": k.attributes.modifiable,
        "invalidated_unix": match k.state {
            KeyState::Invalidated { invalidated_unix } => Some(invalidated_unix),
            KeyState::Active => None,
        },
    })
}

/// The filters of `tessera log show`, as on the log screen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// First sequence number (from 1).
    pub from_seq: Option<u64>,
    /// Last sequence number.
    pub to_seq: Option<u64>,
    /// Only this role (`pso`, `auditor`, `device-so`, `technical-user` …).
    pub role: Option<String>,
    /// Only operations starting with this (`config.`).
    pub operation: Option<String>,
    /// Only entries in which this holder took part.
    pub holder: Option<String>,
    /// Only `ok`, `refused` or `failed`.
    pub outcome: Option<String>,
    /// At most this many lines.
    pub limit: Option<u64>,
}

impl LogFilter {
    fn query(&self) -> Result<LogQuery, Error> {
        let role = self
            .role
            .as_deref()
            .map(|name| {
                Role::from_name(name).ok_or_else(|| {
                    let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                    Error::Usage(format!(
                        "--role {name:?} is not a role: one of {}",
                        names.join(", ")
                    ))
                })
            })
            .transpose()?;
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some("ok") => Some(OutcomeFilter::Ok),
            Some("refused") => Some(OutcomeFilter::Refused),
            Some("failed") => Some(OutcomeFilter::Failed),
            Some(other) => {
                return Err(Error::Usage(format!(
                    "--outcome {other:?} is not an outcome: ok, refused or failed"
                )));
            }
        };
        Ok(LogQuery {
            from_seq: self.from_seq.unwrap_or(1),
            to_seq: self.to_seq,
            limit: MAX_LOG_LINES_PER_PAGE as u32,
            role,
            operation_prefix: self.operation.clone(),
            holder: self.holder.clone(),
            outcome,
        })
    }
}

/// `tessera log show`: the log's entries (and checkpoints) that pass `filter`, page by page.
/// JSON is the canonical lines themselves (JSON Lines, as exported).
pub fn log_show(conn: &mut AnyConnection, filter: &LogFilter) -> Result<(String, String), Error> {
    let mut query = filter.query()?;
    let limit = filter.limit.unwrap_or(u64::MAX);
    let (mut text, mut lines, mut count) = (String::new(), String::new(), 0u64);
    'pages: loop {
        let AdminResponse::LogPage(page) = conn.admin(AdminRequest::ReadLog {
            query: query.clone(),
        })?
        else {
            return Err(Error::UnexpectedAnswer { request: "ReadLog" });
        };
        for line in &page.lines {
            if count == limit {
                break 'pages;
            }
            count += 1;
            lines.push_str(line);
            lines.push('\n');
            text.push_str(&entry_text(line));
        }
        match page.next_seq {
            Some(next) if next > query.from_seq => query.from_seq = next,
            _ => break,
        }
    }
    Ok((text, lines))
}

/// One log line for people: `12  2026-12-04 09:30:00 UTC  pso (Ada, Ben)  config.change
/// partition  ok`; a checkpoint as `checkpoint after 12`.
fn entry_text(line: &str) -> String {
    match LogLine::from_canonical(line.as_bytes()) {
        Ok(LogLine::Entry(e)) => format!(
            "{:>6}  {}  {} ({})  {}  {}  {}\n",
            e.seq(),
            utc(e.time_unix_ms() / 1000),
            e.actor().role.as_str(),
            printable(&e.actor().holders.join(", ")),
            printable(e.operation().as_str()),
            printable(e.object().unwrap_or("-")),
            match e.outcome().reason() {
                Some(reason) => format!("{}: {}", e.outcome().result_name(), printable(reason)),
                None => e.outcome().result_name().to_owned(),
            }
        ),
        Ok(LogLine::Checkpoint(c)) => format!("        checkpoint after entry {}\n", c.seq),
        Err(e) => format!("        (a line that does not parse: {e})\n"),
    }
}
