//! `tessera log verify FILE [--after PREVIOUS_EXPORT] [--key AUDIT_KEY] [--json]`: proves an
//! exported log complete, unaltered and the HSM's, with no HSM and no network, or names the
//! first bad line and why. `tessera log convert … --format syslog|cef --out FILE` verifies the
//! same way, then writes the entries as SIEM records.
//!
//! The audit key is the caller's, never the file's: `--key` gives its fingerprint (as the HSM
//! showed it, the eight groups of four hex digits or all 64) or an audit key file; without
//! `--key` it is the key pinned for the file's HSM in the terminal's state
//! ([`PinnedAuditKeys`]). With `--after`, the previous export is verified first and this one
//! must continue it (an overlap is named; a gap, another partition's export or the wrong order
//! is a failure).
//!
//! Exit codes, for scripts:
//!
//! | code | meaning |
//! |---|---|
//! | [`EXIT_VERIFIED`] (0) | verified |
//! | [`EXIT_TAMPERED`] (1) | tampered: a line was edited, removed, reordered or inserted, a signature does not verify, the file was cut short, or it is another partition's log |
//! | [`EXIT_UNVERIFIABLE`] (2) | unreadable (no such file, not an export, an unknown format version) or the wrong key (the file names another audit key than the pinned one, no key pinned, a bad `--key`), and command-line errors |

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use audit_log::{
    AuditKey, ExportHeader, ExportReport, ExportVerifier, FaultKind, KeyPin, Link, LogError,
    MAX_LINE_LEN, SiemFormat, Start, convert_export, verify_export,
};
use serde::Serialize;

use crate::state::{PairedList, PairedPartition};

/// Exit code: the export verified.
pub const EXIT_VERIFIED: i32 = 0;
/// Exit code: the export was tampered with (the report names the first bad line).
pub const EXIT_TAMPERED: i32 = 1;
/// Exit code: the export could not be read, or not checked with the pinned key.
pub const EXIT_UNVERIFIABLE: i32 = 2;

/// `tessera log …`.
#[derive(clap::Subcommand, Debug)]
pub enum LogCommand {
    /// Verifies an exported log file against the HSM's audit key, offline. Exit codes: 0
    /// verified, 1 tampered, 2 unreadable or wrong key.
    Verify(VerifyArgs),
    /// Verifies an exported log like `verify`, then writes one syslog (RFC 5424) or CEF record
    /// per entry to a new file, for a SIEM. The records carry no proof: keep the export.
    Convert(ConvertArgs),
}

/// The arguments of `tessera log convert`.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// What to verify, and with which key.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// `syslog` (RFC 5424) or `cef`.
    #[arg(long, value_name = "FORMAT", value_parser = ["syslog", "cef"])]
    pub format: String,
    /// The file to create (an existing file is never overwritten).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// The arguments of `tessera log verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The export file (JSON Lines).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The export before this one: proves that nothing between the two was dropped.
    #[arg(long, value_name = "PREVIOUS_EXPORT")]
    pub after: Option<PathBuf>,
    /// The HSM's audit key: its fingerprint (as the HSM showed it) or an audit key file.
    /// Without it, the key pinned for the file's HSM when this terminal was paired.
    #[arg(long, value_name = "AUDIT_KEY")]
    pub key: Option<String>,
    /// The report as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

/// Where the audit keys pinned at pairing are kept: the terminal's paired list
/// ([`PairedList`]), or [`NoPinnedKeys`] where there is none.
pub trait PinnedAuditKeys {
    /// The audit key pinned for the HSM with this id and the partition, if any.
    fn lookup(&self, hsm_id: &str, partition: &str) -> Pinned;
}

/// What the terminal's state holds for an export's HSM and partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// The audit key pinned at pairing.
    Key(KeyPin),
    /// Paired with that HSM, by a terminal that did not get its audit key then (a pairing
    /// from before HSMs sent it): pair again, or give `--key`.
    NoAuditKey {
        /// The paired partition's name in this terminal.
        name: String,
    },
    /// This terminal is not paired with that HSM: its key is unknown here.
    Unknown,
    /// The terminal's state could not be read: why.
    Unreadable(String),
}

/// No keys pinned: `--key` is required.
#[derive(Debug, Clone, Copy)]
pub struct NoPinnedKeys;

impl PinnedAuditKeys for NoPinnedKeys {
    fn lookup(&self, _hsm_id: &str, _partition: &str) -> Pinned {
        Pinned::Unknown
    }
}

/// The paired partitions: the one of that HSM and partition, else another partition of the
/// same HSM (whose one audit key signs every partition's log). The HSM's id is computed from
/// the link key pinned with it, never read from the file or stored beside the key.
impl PinnedAuditKeys for PairedList {
    fn lookup(&self, hsm_id: &str, partition: &str) -> Pinned {
        let same_hsm: Vec<&PairedPartition> = self
            .partitions()
            .iter()
            .filter(|p| p.hsm_key.hsm_id() == hsm_id)
            .collect();
        let exact = same_hsm.iter().find(|p| p.partition.as_str() == partition);
        let with_key = exact
            .filter(|p| p.audit_key.is_some())
            .or_else(|| same_hsm.iter().find(|p| p.audit_key.is_some()));
        match (
            with_key.and_then(|p| p.audit_key),
            exact.or(same_hsm.first()),
        ) {
            (Some(bytes), _) => match AuditKey::from_bytes(&bytes) {
                Ok(key) => Pinned::Key(KeyPin::Key(key)),
                Err(e) => Pinned::Unreadable(format!("the audit key pinned for {hsm_id}: {e}")),
            },
            (None, Some(p)) => Pinned::NoAuditKey {
                name: p.name.clone(),
            },
            (None, None) => Pinned::Unknown,
        }
    }
}

/// The terminal's paired list, or why it could not be read.
impl PinnedAuditKeys for Result<PairedList, String> {
    fn lookup(&self, hsm_id: &str, partition: &str) -> Pinned {
        match self {
            Ok(list) => list.lookup(hsm_id, partition),
            Err(problem) => Pinned::Unreadable(problem.clone()),
        }
    }
}

/// What the command prints and its exit code; the binary prints and exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code ([`EXIT_VERIFIED`], [`EXIT_TAMPERED`] or [`EXIT_UNVERIFIABLE`]).
    pub code: i32,
    /// For standard output.
    pub stdout: String,
    /// For standard error.
    pub stderr: String,
}

/// Runs a `tessera log` command.
pub fn run(command: &LogCommand, pinned: &dyn PinnedAuditKeys) -> CommandOutput {
    match command {
        LogCommand::Verify(args) => verify(args, pinned),
        LogCommand::Convert(args) => convert(args, pinned),
    }
}

/// Verifies, then converts: records only of an export that verified.
fn convert(args: &ConvertArgs, pinned: &dyn PinnedAuditKeys) -> CommandOutput {
    let report = match verify_files(&args.verify, pinned) {
        Ok((_, report)) => report,
        Err(failure) => return failed_output(&args.verify, &failure),
    };
    let format = match args.format.as_str() {
        "cef" => SiemFormat::Cef,
        _ => SiemFormat::Syslog,
    };
    let written = open(&args.verify.file).and_then(|input| {
        let output = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&args.out)
            .map_err(|e| LogError::Write {
                problem: format!("{}: {e}", args.out.display()),
            })?;
        let mut output = std::io::BufWriter::with_capacity(1 << 20, output);
        let n = convert_export(
            BufReader::with_capacity(1 << 20, input),
            format,
            &mut output,
        )?;
        std::io::Write::flush(&mut output).map_err(|e| LogError::Write {
            problem: format!("{}: {e}", args.out.display()),
        })?;
        Ok(n)
    });
    match written {
        Ok(n) => CommandOutput {
            code: EXIT_VERIFIED,
            stdout: format!(
                "verified {} (entries {} to {}); wrote {n} {} records to {}\n",
                args.verify.file.display(),
                report.header().from,
                report.header().to,
                args.format,
                args.out.display()
            ),
            stderr: String::new(),
        },
        Err(error) => CommandOutput {
            code: EXIT_UNVERIFIABLE,
            stdout: String::new(),
            stderr: format!("tessera: {error}\n"),
        },
    }
}

/// One failed verification: which file, and the error.
struct Failure {
    file: PathBuf,
    error: LogError,
}

fn verify(args: &VerifyArgs, pinned: &dyn PinnedAuditKeys) -> CommandOutput {
    match verify_files(args, pinned) {
        Ok((pin, report)) => verified_output(args, &pin, &report),
        Err(failure) => failed_output(args, &failure),
    }
}

fn verify_files(
    args: &VerifyArgs,
    pinned: &dyn PinnedAuditKeys,
) -> Result<(KeyPin, ExportReport), Failure> {
    let fail = |file: &Path| {
        let file = file.to_path_buf();
        move |error| Failure { file, error }
    };
    let header = read_header(&args.file);
    let pin = match &args.key {
        Some(key) => parse_key(key).map_err(fail(&args.file))?,
        None => pinned_key(header.as_ref(), pinned).map_err(fail(&args.file))?,
    };
    let mut verifier = ExportVerifier::new(pin.clone());
    if let Some(previous) = &args.after {
        // Watch the entries this export starts after and ends at, so an overlap is checked.
        let watch = header.map(|h| [h.from - 1, h.to]).into_iter().flatten();
        let prev = open(previous)
            .and_then(|f| verify_export(f, ExportVerifier::new(pin.clone()).watching(watch)))
            .map_err(fail(previous))?;
        verifier = verifier.after(prev.as_previous());
    }
    let report = open(&args.file)
        .and_then(|f| verify_export(f, verifier))
        .map_err(fail(&args.file))?;
    Ok((pin, report))
}

/// The key pinned for the export's HSM and partition, or why there is none.
fn pinned_key(
    header: Option<&ExportHeader>,
    pinned: &dyn PinnedAuditKeys,
) -> Result<KeyPin, LogError> {
    let Some(h) = header else {
        return Err(LogError::NoPin {
            problem: "the file has no readable export header naming its HSM, so no pinned key \
                      applies: pass --key with the HSM's audit key fingerprint or key file"
                .into(),
        });
    };
    let problem = match pinned.lookup(&h.hsm, &h.partition) {
        Pinned::Key(pin) => return Ok(pin),
        Pinned::NoAuditKey { name } => format!(
            "no audit key pinned for {name} (HSM {}): it was paired before HSMs sent their \
             audit key; re-pair or pass --key",
            h.hsm
        ),
        Pinned::Unknown => format!(
            "unknown key: this terminal is not paired with HSM {} (partition {}), so no audit \
             key is pinned for it; pass --key with that HSM's audit key fingerprint or key file",
            h.hsm, h.partition
        ),
        Pinned::Unreadable(why) => format!("the pinned audit keys: {why}; or pass --key"),
    };
    Err(LogError::NoPin { problem })
}

/// A `--key` argument: a fingerprint (32 to 64 hex digits) or a key file.
pub fn parse_key(key: &str) -> Result<KeyPin, LogError> {
    let looks_like_fingerprint = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, ' ' | ':'));
    if looks_like_fingerprint && !Path::new(key).exists() {
        return KeyPin::from_fingerprint(key);
    }
    let mut bytes = Vec::new();
    File::open(key)
        .and_then(|f| f.take(4096).read_to_end(&mut bytes))
        .map_err(|e| LogError::BadPin {
            problem: format!(
                "{key:?} is neither a fingerprint (32 to 64 hex digits) nor a readable key \
                 file: {e}"
            ),
        })?;
    KeyPin::from_key_file(&bytes)
}

fn open(path: &Path) -> Result<File, LogError> {
    File::open(path).map_err(|e| LogError::Read {
        problem: format!("{}: {e}", path.display()),
    })
}

/// The file's header, if it has a readable one (verification reports any problem with it).
fn read_header(path: &Path) -> Option<ExportHeader> {
    let file = File::open(path).ok()?;
    let mut line = Vec::new();
    BufReader::new(file)
        .take(MAX_LINE_LEN as u64 + 1)
        .read_until(b'\n', &mut line)
        .ok()?;
    ExportHeader::from_canonical(line.strip_suffix(b"\n")?).ok()
}

fn exit_code(kind: FaultKind) -> i32 {
    if kind.is_tampering() {
        EXIT_TAMPERED
    } else {
        EXIT_UNVERIFIABLE
    }
}

/// The `--json` report.
#[derive(Serialize)]
struct JsonReport<'a> {
    file: String,
    verified: bool,
    exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<JsonFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    export: Option<JsonExport<'a>>,
}

#[derive(Serialize)]
struct JsonFailure {
    /// The file that failed (this export, or the one given with --after).
    file: String,
    kind: &'static str,
    line: Option<u64>,
    problem: String,
}

#[derive(Serialize)]
struct JsonExport<'a> {
    id: String,
    hsm: &'a str,
    partition: &'a str,
    audit_key_fingerprint: String,
    from: u64,
    to: u64,
    entries: u64,
    checkpoints: u64,
    lines: u64,
    last_hash: String,
    signed_at_unix_ms: u64,
    start: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    overlap: Option<[u64; 2]>,
}

fn start_text(report: &ExportReport) -> (&'static str, String) {
    let h = report.header();
    match report.start() {
        Start::Genesis => ("genesis", "from the partition's first entry".into()),
        Start::Anchor { seq } => (
            "anchor",
            format!("from the HSM's signed checkpoint over entry {seq}"),
        ),
        Start::Previous(Link::Consecutive) => (
            "after-previous",
            format!("right after the previous export (entry {})", h.from - 1),
        ),
        Start::Previous(Link::Overlapping { first, last }) => (
            "overlaps-previous",
            format!("overlapping the previous export in entries {first} to {last}, which agree"),
        ),
        Start::Unanchored { seq, .. } => (
            "unanchored",
            format!(
                "after entry {seq}, which this file does not prove: verify with --after the \
                 previous export to prove nothing before it was dropped"
            ),
        ),
    }
}

fn verified_output(args: &VerifyArgs, pin: &KeyPin, report: &ExportReport) -> CommandOutput {
    let h = report.header();
    let (start, start_line) = start_text(report);
    let stdout = if args.json {
        let overlap = match report.start() {
            Start::Previous(Link::Overlapping { first, last }) => Some([first, last]),
            _ => None,
        };
        let json = JsonReport {
            file: args.file.display().to_string(),
            verified: true,
            exit_code: EXIT_VERIFIED,
            failure: None,
            export: Some(JsonExport {
                id: h.export.to_string(),
                hsm: &h.hsm,
                partition: &h.partition,
                audit_key_fingerprint: audit_log::Hash(h.key.fingerprint().0).to_string(),
                from: h.from,
                to: h.to,
                entries: report.entries(),
                checkpoints: report.log().checkpoints(),
                lines: report.lines(),
                last_hash: report.end().hash.to_string(),
                signed_at_unix_ms: report.end().time_unix_ms,
                start,
                overlap,
            }),
        };
        to_json(&json)
    } else {
        format!(
            "verified: {}\n  export      {} of partition {} on {}\n  entries     {} to {} \
             ({} entries, {} signed checkpoints, closed by the HSM's signature)\n  audit key   \
             {} (pinned: {pin})\n  starts      {start_line}\n",
            args.file.display(),
            h.export,
            h.partition,
            h.hsm,
            h.from,
            h.to,
            report.entries(),
            report.log().checkpoints(),
            h.key.fingerprint(),
        )
    };
    CommandOutput {
        code: EXIT_VERIFIED,
        stdout,
        stderr: String::new(),
    }
}

fn failed_output(args: &VerifyArgs, failure: &Failure) -> CommandOutput {
    let kind = failure.error.kind();
    let code = exit_code(kind);
    let problem = match &failure.error {
        LogError::Verification { fault, .. } => fault.to_string(),
        other => other.to_string(),
    };
    let line = failure.error.line();
    let which = if failure.file == args.file {
        String::new()
    } else {
        " (the previous export)".into()
    };
    let located = line.map_or(String::new(), |n| format!("line {n}: "));
    let verdict = if code == EXIT_TAMPERED {
        "NOT VERIFIED (tampered)"
    } else {
        "NOT VERIFIED (cannot check)"
    };
    let text = format!(
        "{verdict}: {}{which}: {located}{problem} [{kind}]\n",
        failure.file.display()
    );
    if args.json {
        let json = JsonReport {
            file: args.file.display().to_string(),
            verified: false,
            exit_code: code,
            failure: Some(JsonFailure {
                file: failure.file.display().to_string(),
                kind: kind.as_str(),
                line,
                problem,
            }),
            export: None,
        };
        CommandOutput {
            code,
            stdout: to_json(&json),
            stderr: String::new(),
        }
    } else {
        CommandOutput {
            code,
            stdout: String::new(),
            stderr: text,
        }
    }
}

fn to_json(value: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail; an empty object would say so if it did.
    let mut text = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}
