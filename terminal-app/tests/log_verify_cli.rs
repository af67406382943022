//! `tessera log verify`, the real binary: exit codes (0 verified, 1 tampered, 2 unreadable or
//! wrong key), the human report naming the first bad line, `--json`, `--after`, and keys given
//! as a fingerprint or a key file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use audit_log::testkit::TestLog;
use audit_log::{AuditSigner, KeyPin};

const HSM: &str = "hsm-0123456789abcdef";

struct Files {
    dir: tempfile::TempDir,
    log: TestLog,
}

impl Files {
    fn new() -> Files {
        let log = TestLog::new(AuditSigner::from_secret_bytes(&[0x42; 32]), HSM, "bank-1");
        Files {
            dir: tempfile::tempdir().unwrap(),
            log,
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn key_file(&self) -> PathBuf {
        self.write(
            "audit.key",
            KeyPin::key_file(&self.log.signer().public()).as_bytes(),
        )
    }

    fn fingerprint(&self) -> String {
        self.log.signer().public().fingerprint().to_string()
    }
}

fn tessera(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["log", "verify"])
        .arg(file)
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_good_export_verifies_with_a_fingerprint_or_a_key_file() {
    let mut f = Files::new();
    f.log.append(120);
    let bytes = f.log.export(1, 120, 1);
    let file = f.write("export.jsonl", &bytes);
    let key = f.key_file();
    for key in [f.fingerprint(), key.display().to_string()] {
        let out = tessera(&["--key", &key], &file);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let report = text(&out.stdout);
        assert!(report.starts_with("verified: "), "{report}");
        assert!(
            report.contains("entries     1 to 120 (120 entries"),
            "{report}"
        );
        assert!(report.contains("partition's first entry"), "{report}");
    }
    let out = tessera(&["--key", &f.fingerprint(), "--json"], &file);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(json["export"]["entries"], 120);
    assert_eq!(json["export"]["start"], "genesis");
    assert_eq!(json["export"]["partition"], "bank-1");
}

#[test]
fn tampering_exits_1_and_names_the_line() {
    let mut f = Files::new();
    f.log.append(50);
    let bytes = f.log.export(1, 50, 1);
    let text_file = String::from_utf8(bytes).unwrap();
    let mut lines: Vec<&str> = text_file.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("{\"seq\":20,"))
        .unwrap();
    let edited = lines[i].replacen("\"time\":", "\"time\":1", 1);
    lines[i] = &edited;
    let file = f.write("edited.jsonl", format!("{}\n", lines.join("\n")).as_bytes());
    let out = tessera(&["--key", &f.fingerprint()], &file);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("line {}: entry 20 was altered", i + 1)),
        "{err}"
    );
    assert!(err.contains("[edited]"), "{err}");

    let out = tessera(&["--key", &f.fingerprint(), "--json"], &file);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verified"], false);
    assert_eq!(json["failure"]["kind"], "edited");
    assert_eq!(json["failure"]["line"], i as u64 + 1);
}

#[test]
fn unreadable_files_and_wrong_keys_exit_2() {
    let mut f = Files::new();
    f.log.append(10);
    let bytes = f.log.export(1, 10, 1);
    let file = f.write("export.jsonl", &bytes);
    let other = AuditSigner::from_secret_bytes(&[0x43; 32])
        .public()
        .fingerprint()
        .to_string();
    let out = tessera(&["--key", &other], &file);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not the pinned key"),
        "{}",
        text(&out.stderr)
    );

    let missing = f.dir.path().join("missing.jsonl");
    assert_eq!(
        tessera(&["--key", &f.fingerprint()], &missing)
            .status
            .code(),
        Some(2)
    );
    let not_export = f.write("notes.txt", b"hello\n");
    let out = tessera(&["--key", &f.fingerprint()], &not_export);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a Tessera log export"));
    // No key given and none pinned: said so, with what to do.
    let out = tessera(&[], &file);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--key"), "{}", text(&out.stderr));
    let out = tessera(&["--key", "not-a-key"], &file);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn after_links_consecutive_exports_and_refuses_another_partitions() {
    let mut f = Files::new();
    f.log.append(40);
    let bytes = f.log.export(1, 40, 1);
    let first = f.write("first.jsonl", &bytes);
    f.log.append(30);
    let bytes = f.log.export(41, 70, 2);
    let second = f.write("second.jsonl", &bytes);
    let first_arg = first.display().to_string();
    let out = tessera(
        &["--key", &f.fingerprint(), "--after", &first_arg, "--json"],
        &second,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["export"]["start"], "after-previous");

    let bytes = f.log.export(21, 70, 3);
    let overlapping = f.write("overlap.jsonl", &bytes);
    let out = tessera(
        &["--key", &f.fingerprint(), "--after", &first_arg],
        &overlapping,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("overlapping the previous export in entries 21 to 40"));

    let mut theirs = TestLog::new(AuditSigner::from_secret_bytes(&[0x42; 32]), HSM, "bank-2");
    theirs.append(40);
    let theirs = f.write("theirs.jsonl", &theirs.export(1, 40, 4));
    let theirs_arg = theirs.display().to_string();
    let out = tessera(
        &["--key", &f.fingerprint(), "--after", &theirs_arg],
        &second,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 1: ") && err.contains("[other-log]"),
        "{err}"
    );
}

#[test]
fn convert_writes_siem_records_only_of_a_verified_export() {
    let mut f = Files::new();
    f.log.append(30);
    let bytes = f.log.export(1, 30, 1);
    let file = f.write("export.jsonl", &bytes);
    let convert = |format: &str, out: &Path, file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["log", "convert"])
            .arg(file)
            .args(["--key", &f.fingerprint(), "--format", format, "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    for format in ["syslog", "cef"] {
        let out = f.dir.path().join(format!("records.{format}"));
        let run = convert(format, &out, &file);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
        let records = std::fs::read_to_string(&out).unwrap();
        assert_eq!(records.lines().count(), 30);
        let prefix = if format == "cef" {
            "CEF:0|Tessera|"
        } else {
            "<"
        };
        assert!(records.lines().all(|l| l.starts_with(prefix)), "{records}");
        // Never over an existing file.
        assert_eq!(convert(format, &out, &file).status.code(), Some(2));
    }
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 10);
    let cut = f.write("cut.jsonl", &cut);
    let out = f.dir.path().join("cut.cef");
    let run = convert("cef", &out, &cut);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("[cut-short]"),
        "{}",
        text(&run.stderr)
    );
    assert!(
        !out.exists(),
        "no records of an export that does not verify"
    );
}
