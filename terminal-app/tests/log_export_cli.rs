//! `tessera log export` end to end: the real `tessera` binary against the real `tessera-hsm
//! serve` over loopback TCP. The file is written to a directory, read back and verified
//! against the audit key `tessera-hsm init` printed, and only then confirmed at the HSM: a
//! file that does not verify confirms nothing. `tessera log verify` accepts what was written,
//! and consecutive exports link.

#[path = "support/tessera_cli.rs"]
mod tessera_cli;

use std::path::{Path, PathBuf};

use terminal_app::state::StateDir;
use tessera_cli::{TESSERA, enrol, tessera, text};
use tessera_tests::hsm_process::{HsmDir, Serving, tessera_hsm};

const PASSPHRASE: &str = "a passphrase for the export test";

/// The workspace's root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// "confirmed exported up to N" as `tessera-hsm partition show` prints it.
fn confirmed_at_hsm(hsm: &HsmDir) -> String {
    let shown = hsm.run(&["partition", "show", "p1"]);
    shown
        .lines()
        .find_map(|l| l.split("confirmed exported up to ").nth(1))
        .unwrap_or_else(|| panic!("{shown}"))
        .trim()
        .to_owned()
}

/// A running `tessera-hsm serve` with partition `p1` (soft cards allowed), and a terminal
/// paired with it as `pay`.
struct Paired {
    hsm: HsmDir,
    serving: Serving,
    state: PathBuf,
    config: PathBuf,
    /// The audit key fingerprint `tessera-hsm init` printed.
    audit: String,
    /// What `tessera pair` printed.
    pair_stdout: String,
    untouched: String,
}

fn serve_and_pair(dir: &Path) -> Paired {
    let bin = tessera_hsm(Path::new(TESSERA), &workspace());
    let (hsm, audit, code) = HsmDir::with_partition(bin, dir.join("hsm"), "p1", "Pay");
    let untouched = confirmed_at_hsm(&hsm);
    let serving = hsm.serve_tcp();
    let address = serving.address.clone();
    let state = dir.join("state");
    let config = dir.join("tessera.toml");
    std::fs::write(&config, "version = 1\n[cards]\nallow_soft_cards = true\n").unwrap();
    let args = [
        "pair",
        "--tcp",
        &address,
        "--partition",
        "p1",
        "--name",
        "pay",
    ];
    let out = tessera(&state, &config, &args, &format!("{code}\nyes\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    Paired {
        hsm,
        serving,
        state,
        config,
        audit,
        pair_stdout: text(&out.stdout),
        untouched,
    }
}

#[test]
fn an_export_is_confirmed_only_after_it_was_read_back_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let Paired {
        hsm,
        serving,
        state,
        config,
        audit,
        untouched,
        ..
    } = serve_and_pair(dir.path());
    let card = enrol(&state, dir.path(), PASSPHRASE);
    let card = card.to_str().unwrap();
    let typed = format!("{PASSPHRASE}\n");
    let drive = dir.path().join("drive");
    std::fs::create_dir(&drive).unwrap();
    let drive_s = drive.to_str().unwrap();
    let export = |key: &str| {
        let args = [
            "log", "export", "--to", drive_s, "--key", key, "--json", "--soft", card,
        ];
        tessera(&state, &config, &args, &typed)
    };

    let names = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&drive)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // A `--key` other than the key pinned at pairing is refused before anything is exported.
    let out = export(&"ab".repeat(32));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not the audit key pinned"),
        "{}",
        text(&out.stderr)
    );
    assert!(names().is_empty());

    // Verified against another key (a pinned key that is not this HSM's): the file is kept
    // as `.failed`, nothing is confirmed.
    let paired = state.join("paired.toml");
    let genuine = std::fs::read_to_string(&paired).unwrap();
    let wrong = audit_log::AuditSigner::from_secret_bytes(&[0x33; 32]).public();
    let swapped: String = genuine
        .lines()
        .map(|l| match l.starts_with("audit_key") {
            true => format!("audit_key = \"{}\"\n", hex::encode(wrong.to_bytes())),
            false => format!("{l}\n"),
        })
        .collect();
    assert_ne!(swapped, genuine);
    std::fs::write(&paired, swapped).unwrap();
    let args = ["log", "export", "--to", drive_s, "--json", "--soft", card];
    let out = tessera(&state, &config, &args, &typed);
    std::fs::write(&paired, genuine).unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not verify"),
        "{}",
        text(&out.stderr)
    );
    let listed = names();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].ends_with(".jsonl.failed"), "{listed:?}");

    // With the audit key `tessera-hsm init` printed: written, verified, confirmed. The
    // export starts at 1: the failed one confirmed nothing.
    let out = export(&audit);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["from"], 1);
    assert_eq!(first["confirmed"], true);
    let to = first["to"].as_u64().unwrap();
    assert_eq!(first["entries"].as_u64(), Some(to));
    let file = first["file"].as_str().unwrap().to_owned();
    assert!(file.ends_with(&format!("-1-{to}.jsonl")), "{file}");
    assert!(!names().iter().any(|n| n.ends_with(".partial")));
    let verify = |file: &str, after: Option<&str>| {
        let mut args = vec!["log", "verify", file, "--key", &audit];
        if let Some(after) = after {
            args.extend(["--after", after]);
        }
        tessera(&state, &config, &args, "")
    };
    let out = verify(&file, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Since the last: it continues right after the confirmed entry and links to the first.
    let out = export(&audit);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["from"].as_u64(), Some(to + 1));
    let last = second["to"].as_u64().unwrap();
    let out = verify(second["file"].as_str().unwrap(), Some(&file));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The HSM's own record (read with the server stopped): confirmed up to the last export.
    drop(serving);
    assert_eq!(untouched, "nothing");
    assert_eq!(confirmed_at_hsm(&hsm), last.to_string());
}

/// The audit key travels with the pairing: export, `log verify` and `backup verify` need no
/// `--key`; another HSM's file is an unknown key; a paired list from before (no audit key)
/// still loads and says what to do.
#[test]
fn the_audit_key_pinned_at_pairing_verifies_without_key() {
    let dir = tempfile::tempdir().unwrap();
    let Paired {
        serving,
        state,
        config,
        audit,
        pair_stdout,
        ..
    } = serve_and_pair(dir.path());
    assert!(
        pair_stdout.contains(&format!("audit key fingerprint: {audit}")),
        "{pair_stdout}"
    );
    let entry = StateDir::open(&state)
        .unwrap()
        .paired()
        .unwrap()
        .get("pay")
        .unwrap()
        .clone();
    let pinned = audit_log::AuditKey::from_bytes(&entry.audit_key.expect("pinned")).unwrap();
    assert_eq!(pinned.fingerprint().to_string(), audit);

    let card = enrol(&state, dir.path(), PASSPHRASE);
    let card = card.to_str().unwrap();
    let drive = dir.path().join("drive");
    std::fs::create_dir(&drive).unwrap();
    let args = [
        "log",
        "export",
        "--to",
        drive.to_str().unwrap(),
        "--json",
        "--soft",
        card,
    ];
    let out = tessera(&state, &config, &args, &format!("{PASSPHRASE}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(export["confirmed"], true);
    let file = export["file"].as_str().unwrap().to_owned();
    // A backup, checked offline against the same pinned key.
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let args = [
        "backup",
        "create",
        "--to",
        backups.to_str().unwrap(),
        "--soft",
        card,
    ];
    let out = tessera(&state, &config, &args, &format!("{PASSPHRASE}\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    drop(serving);
    let backup = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.to_string_lossy().ends_with(".partial"))
        .unwrap();
    let backup = backup.to_str().unwrap();
    let out = tessera(&state, &config, &["backup", "verify", backup], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let verify = |file: &str| tessera(&state, &config, &["log", "verify", file], "");
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("pinned: {}", pinned.fingerprint())),
        "{}",
        text(&out.stdout)
    );

    // Another HSM's export, signed with its own key: nothing here is pinned for it.
    let signer = audit_log::AuditSigner::from_secret_bytes(&[0x51; 32]);
    let mut other = audit_log::testkit::TestLog::new(signer, "hsm-00000000000000ff", "p1");
    other.append(5);
    let foreign = dir.path().join("foreign.jsonl");
    std::fs::write(&foreign, other.export(1, 5, 1)).unwrap();
    let out = verify(foreign.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unknown key"),
        "{}",
        text(&out.stderr)
    );

    // A paired list written before the audit key was pinned: it loads, and says what to do.
    let paired = state.join("paired.toml");
    let old: String = std::fs::read_to_string(&paired)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("audit_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&paired, old).unwrap();
    let out = tessera(&state, &config, &["list"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("pay"), "{}", text(&out.stdout));
    let out = verify(&file);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no audit key pinned for pay")
            && text(&out.stderr).contains("re-pair or pass --key"),
        "{}",
        text(&out.stderr)
    );
    let out = tessera(&state, &config, &["backup", "verify", backup], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("re-pair or pass --key"),
        "{}",
        text(&out.stderr)
    );
    let out = tessera(
        &state,
        &config,
        &["log", "verify", &file, "--key", &audit],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
