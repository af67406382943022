//! The reads a logged-in officer (PSO or auditor) makes from the command line: the
//! configuration, the keys, the bin and the log, as text or JSON. Pages are fetched until the
//! HSM says there are no more (or the caller's limit is reached).

use audit_log::{LogLine, Role};
use hsm_link::domain::{KeyObjectSummary, KeyState, Parameter};
use hsm_link::message::{
    AdminRequest, AdminResponse, KeyCursor, KeyFilter, KeyPosition, KeyQuery, LogQuery,
    MAX_KEYS_PER_PAGE, MAX_LOG_LINES_PER_PAGE, OutcomeFilter,
};
use quorum::ceremony::Link;
use serde_json::json;

use super::list::utc;
use super::{Shown, printable};
use crate::error::Error;

/// `tessera config show`: every parameter with its value, and the revision.
pub fn config_show(conn: &mut (impl Link + ?Sized)) -> Result<Shown, Error> {
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
pub fn keys(conn: &mut (impl Link + ?Sized), bin: bool) -> Result<Shown, Error> {
    let filter = if bin {
        KeyFilter::Invalidated
    } else {
        KeyFilter::Active
    };
    let mut keys: Vec<KeyObjectSummary> = Vec::new();
    let mut query = KeyQuery {
        count: false,
        ..KeyQuery::first(filter, MAX_KEYS_PER_PAGE as u32)
    };
    loop {
        let AdminResponse::Keys {
            keys: page, more, ..
        } = conn.admin(AdminRequest::ListKeys(query.clone()))?
        else {
            return Err(Error::UnexpectedAnswer {
                request: "ListKeys",
            });
        };
        let Some(last) = page.last() else { break };
        query.from = KeyCursor::After(KeyPosition::of(last));
        keys.extend(page);
        if !more {
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
pub fn log_show(
    conn: &mut (impl Link + ?Sized),
    filter: &LogFilter,
) -> Result<(String, String), Error> {
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

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use hsm_link::message::OfficerRole;
    use zeroize::Zeroizing;

    use super::*;
    use crate::cli::login::{CardChoice, login};
    use crate::cli::testing::{POLICY, enrolled, passphrase};

    fn entries(lines: &str) -> Vec<audit_log::Entry> {
        lines
            .lines()
            .filter_map(|l| match LogLine::from_canonical(l.as_bytes()).unwrap() {
                LogLine::Entry(e) => Some(e),
                LogLine::Checkpoint(_) => None,
            })
            .collect()
    }

    #[test]
    fn reads_need_a_login_then_show_config_keys_and_a_filtered_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = enrolled(dir.path(), 1, &["ada"], &[]);
        // Before a login the HSM refuses, typed (and logs the refusal).
        let e = config_show(&mut conn).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Refused(hsm_link::message::RemoteError::Admin(
                    hsm_link::message::AdminError::NotLoggedIn { .. }
                ))
            ),
            "{e:?}"
        );
        let choice = CardChoice {
            readers: Vec::new(),
            soft: vec![dir.path().join("ada")],
        };
        let mut ask = |_: &str| Ok(Zeroizing::new(passphrase("ada").into_bytes()));
        login(
            &mut conn,
            OfficerRole::Pso,
            &choice,
            POLICY,
            &mut ask,
            false,
            &mut Vec::new(),
        )
        .unwrap();

        let shown = config_show(&mut conn).unwrap();
        assert_eq!(shown.json["revision"], 0);
        assert_eq!(shown.json["parameters"]["Key export"], "wrapped only");
        assert_eq!(
            shown.json["parameters"].as_object().unwrap().len(),
            Parameter::ALL.len()
        );
        assert!(
            shown.text.starts_with("configuration revision 0\n"),
            "{}",
            shown.text
        );
        for bin in [false, true] {
            let shown = keys(&mut conn, bin).unwrap();
            assert_eq!(shown.json["keys"], json!([]));
            assert!(shown.text.ends_with(if bin {
                "0 keys in the bin\n"
            } else {
                "0 keys\n"
            }));
        }

        let (_, all) = log_show(&mut conn, &LogFilter::default()).unwrap();
        let all = entries(&all);
        assert!(
            all.iter().any(|e| e.operation().as_str() == "login"),
            "{all:?}"
        );
        let refused = LogFilter {
            outcome: Some("refused".to_owned()),
            ..LogFilter::default()
        };
        let (text, lines) = log_show(&mut conn, &refused).unwrap();
        let refused = entries(&lines);
        assert!(!refused.is_empty(), "the refused read is logged");
        assert!(
            refused
                .iter()
                .all(|e| e.outcome().result_name() == "refused"),
            "{lines}"
        );
        assert!(text.contains("refused: "), "{text}");
        let pso = LogFilter {
            role: Some("pso".to_owned()),
            limit: Some(1),
            ..LogFilter::default()
        };
        let (_, lines) = log_show(&mut conn, &pso).unwrap();
        assert_eq!(lines.lines().count(), 1, "{lines}");
        assert!(
            entries(&lines).iter().all(|e| e.actor().role == Role::Pso),
            "{lines}"
        );

        for bad in [
            LogFilter {
                role: Some("admin".to_owned()),
                ..LogFilter::default()
            },
            LogFilter {
                outcome: Some("maybe".to_owned()),
                ..LogFilter::default()
            },
        ] {
            let e = log_show(&mut conn, &bad).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{e:?}");
            assert_eq!(e.exit_code(), crate::cli::exit::SETUP);
        }
    }
}
