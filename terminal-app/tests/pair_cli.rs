//! `tessera pair` and the reads of a paired partition, end to end: the real `tessera` binary
//! against the real `tessera-hsm serve` over loopback TCP. The pairing code goes in on
//! standard input (not a terminal here, so it is read as a line), as do the confirmation and
//! the soft card's passphrase; nothing secret is in an argument or the environment.
//!
//! `tessera-hsm` is the binary of the same build (`target/<profile>/tessera-hsm`); when it is
//! missing (`cargo test -p terminal-app` alone builds only this package's binaries) the test
//! builds it first.

#[path = "support/tessera_cli.rs"]
mod tessera_cli;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use terminal_app::cli::exit;
use terminal_app::state::StateDir;
use tessera_cli::{TESSERA, enrol, tessera, text};
use tessera_tests::hsm_process::{HsmDir, Serving, tessera_hsm};

const PASSPHRASE: &str = "a passphrase for the pairing test";

/// An HSM with partition p1 (soft cards allowed), serving on loopback TCP; the pairing code
/// and the fingerprint `tessera-hsm` printed.
fn serve_hsm(dir: &Path) -> (Serving, String, String, String) {
    let (hsm, code, fingerprint) = hsm_with_p1(dir);
    let serving = hsm.serve_tcp();
    let address = serving.address.clone();
    (serving, code, fingerprint, address)
}

/// An HSM with partition p1 (soft cards allowed), not yet serving; a pairing code and the
/// fingerprint `tessera-hsm` printed with it.
fn hsm_with_p1(dir: &Path) -> (HsmDir, String, String) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = tessera_hsm(Path::new(TESSERA), &workspace);
    let hsm = HsmDir::init(bin, dir.join("hsm"));
    let create = ["partition", "create", "p1", "--name", "Payments"];
    hsm.run(&[&create[..], &["--tier", "economy"]].concat());
    hsm.run(&["soft-cards", "allow"]);
    let (code, fingerprint) = hsm.pairing_code("p1");
    (hsm, code, fingerprint)
}

#[test]
fn pair_list_status_and_reads_against_the_real_tessera_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let (_serving, code, fingerprint, address) = serve_hsm(dir.path());
    let state = dir.path().join("state/tessera");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "version = 1\n[cards]\nallow_soft_cards = true\n").unwrap();
    let pair_args = [
        "pair",
        "--tcp",
        address.as_str(),
        "--partition",
        "p1",
        "--name",
        "pay",
    ];

    // Nothing paired yet: `tessera` says how to pair or try the demo.
    let out = tessera(&state, &config, &[], "");
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("tessera pair --tcp HOST:PORT"));
    assert!(text(&out.stdout).contains("tessera demo"));

    // A mistyped code is caught by its check symbols: nothing is spent or stored.
    let mut typo = code.clone().into_bytes();
    typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
    let out = tessera(&state, &config, &pair_args, &format!("{}\n", text(&typo)));
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::SETUP)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("mistyped"),
        "{}",
        text(&out.stderr)
    );

    // The real code, and the fingerprint confirmed: the pin is stored.
    let out = tessera(&state, &config, &pair_args, &format!("{code}\nyes\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("HSM key fingerprint: {fingerprint}")),
        "{shown}"
    );
    assert!(shown.contains("Paired: pay is partition p1"), "{shown}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("terminal.key")), 0o600);
    assert_eq!(mode(&state.join("paired.toml")), 0o600);

    // The code is spent: a second pairing with it fails at the HSM.
    let again = [&pair_args[..6], &["again"]].concat();
    let out = tessera(&state, &config, &again, &format!("{code}\nyes\n"));
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::LINK)),
        "{}",
        text(&out.stderr)
    );

    // `tessera` lists it; `tessera list --json` too.
    let out = tessera(&state, &config, &[], "");
    let listed = text(&out.stdout);
    let row = listed.lines().nth(1).unwrap();
    assert!(row.starts_with("pay "), "{listed}");
    assert!(row.contains(&format!("tcp:{address}")), "{listed}");
    assert!(row.contains(&fingerprint), "{listed}");
    let out = tessera(&state, &config, &["list", "--json"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["partitions"][0]["hsm_fingerprint"],
        fingerprint.as_str()
    );
    assert_eq!(json["partitions"].as_array().unwrap().len(), 1);

    // Status over a pinned session, no login needed.
    let out = tessera(&state, &config, &["status", "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["link"]["mode"], "pinned");
    assert_eq!(json["hsm_fingerprint"], fingerprint.as_str());
    assert_eq!(json["pso_set"], serde_json::Value::Null);
    // The HSM's id (derived from the key the terminal pinned) and the partition's tier come
    // with the status.
    let pinned = StateDir::open(&state).unwrap().paired().unwrap();
    let hsm_id = pinned.get("pay").unwrap().hsm_key.hsm_id();
    assert_eq!(json["hsm_id"], hsm_id.as_str());
    assert_eq!(json["tier"], "economy");
    // The log's status, counts only: the pairing is on record and nothing is exported yet.
    let log = &json["log"];
    let entries = log["entries"].as_u64().unwrap();
    assert!(entries >= 1, "{log}");
    assert_eq!(log["unexported"].as_u64(), Some(entries), "{log}");
    assert_eq!(log["confirmed_up_to"], serde_json::Value::Null, "{log}");
    assert!(log["capacity"].as_u64().unwrap() > entries, "{log}");
    assert_eq!(log["when_full"], "refuse", "{log}");
    assert_eq!(log["warning"], false, "{log}");
    let out = tessera(&state, &config, &["status"], "");
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("entries not exported     {entries}")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("HSM id                   {hsm_id}")),
        "{shown}"
    );
    assert!(
        shown.contains("service tier             economy"),
        "{shown}"
    );

    reads_after_a_login(&state, &config, dir.path());
}

/// With a PSO set enrolled: status shows it; the reads log in with the soft card, its
/// passphrase typed on standard input; a wrong passphrase is a card error.
fn reads_after_a_login(state: &Path, config: &Path, dir: &Path) {
    let card = enrol(state, dir, PASSPHRASE);
    let card = card.to_str().unwrap();
    let out = tessera(state, config, &["status"], "");
    let shown = text(&out.stdout);
    assert!(shown.contains("set 1: 1 of 1 cards"), "{shown}");
    assert!(shown.contains("soft card SOFT:0101 (Ada Test)"), "{shown}");

    let typed = format!("{PASSPHRASE}\n");
    let out = tessera(
        state,
        config,
        &["config", "show", "--json", "--soft", card],
        &typed,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["parameters"]["Key export"], "wrapped only");
    assert!(text(&out.stderr).contains("logged in (Ada Test)"));

    for (what, args) in [("keys", ["keys", "list"]), ("bin", ["bin", "list"])] {
        let out = tessera(
            state,
            config,
            &[args[0], args[1], "--json", "--soft", card],
            &typed,
        );
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["keys"], serde_json::json!([]), "{what}");
    }

    let out = tessera(
        state,
        config,
        &["log", "show", "--operation", "pairing.", "--soft", card],
        &typed,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stdout);
    assert!(log.contains("pairing.complete"), "{log}");
    assert!(!log.contains("quorum."), "filtered: {log}");
    let out = tessera(
        state,
        config,
        &["log", "show", "--json", "--limit", "3", "--soft", card],
        &typed,
    );
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count(), 3, "{lines}");
    for line in lines.lines() {
        audit_log::LogLine::from_canonical(line.as_bytes()).unwrap();
    }

    let out = tessera(
        state,
        config,
        &["keys", "list", "--soft", card],
        "not the passphrase\n",
    );
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::CARD)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("wrong PIN or passphrase"),
        "{}",
        text(&out.stderr)
    );
    // Without a card named, the read says how to log in.
    let out = tessera(state, config, &["keys", "list"], "");
    assert_eq!(out.status.code(), Some(i32::from(exit::SETUP)));
    assert!(
        text(&out.stderr).contains("--soft FILE"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pair_and_status_over_a_serial_line() {
    let line = tessera_tests::SocatPair::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (hsm, code, fingerprint) = hsm_with_p1(dir.path());
    let serving = hsm.serve_serial(line.b_str());
    assert_eq!(serving.address, line.b_str());
    let state = dir.path().join("state");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "version = 1\n").unwrap();
    let out = tessera(
        &state,
        &config,
        &["pair", "--serial", line.a_str(), "--partition", "p1"],
        &format!("{code}\nyes\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&fingerprint),
        "{}",
        text(&out.stdout)
    );
    // The name defaults to the partition's id; the session resumes on the same line (KK).
    let out = tessera(&state, &config, &["status", "--name", "p1"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("serial:{}", line.a_str())),
        "{shown}"
    );
    assert!(shown.contains("Noise KK with the pinned key"), "{shown}");
    assert!(shown.contains(&fingerprint), "{shown}");
    // Another name, not paired: its own exit status.
    let out = tessera(&state, &config, &["status", "--name", "nope"], "");
    assert_eq!(out.status.code(), Some(i32::from(exit::NOT_PAIRED)));
}

#[test]
fn terminals_listed_and_revoked_and_a_pairing_code_issued_against_the_real_tessera_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let (_serving, code, _fingerprint, address) = serve_hsm(dir.path());
    let state = dir.path().join("state/tessera");
    let other = dir.path().join("state/other");
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "version = 1\n[cards]\nallow_soft_cards = true\n").unwrap();
    let pair_as = |state: &Path, name: &str, code: &str| {
        let args = [
            "pair",
            "--tcp",
            address.as_str(),
            "--partition",
            "p1",
            "--name",
            name,
        ];
        tessera(state, &config, &args, &format!("{code}\nyes\n"))
    };
    let out = pair_as(&state, "pay", &code);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let card = enrol(&state, dir.path(), PASSPHRASE);
    let card = card.to_str().unwrap();
    let typed = format!("{PASSPHRASE}\n");

    // A new code over the link, after the PSO login; shown once, never as JSON.
    let out = tessera(
        &state,
        &config,
        &["pairing-code", "--json", "--soft", card],
        "",
    );
    assert_eq!(out.status.code(), Some(i32::from(exit::SETUP)));
    let out = tessera(&state, &config, &["pairing-code", "--soft", card], &typed);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let new_code = shown
        .lines()
        .find(|l| l.starts_with("    "))
        .expect("the code is on its own indented line")
        .trim()
        .to_owned();
    // It pairs a second terminal (its own state directory).
    let out = pair_as(&other, "pay", &new_code);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Both are listed; this one is marked.
    let list = |state: &Path| {
        let out = tessera(
            state,
            &config,
            &["terminals", "list", "--json", "--soft", card],
            &typed,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["terminals"]
            .as_array()
            .unwrap()
            .clone()
    };
    let terminals = list(&state);
    assert_eq!(terminals.len(), 2, "{terminals:?}");
    let own = terminals
        .iter()
        .find(|t| t["this_terminal"] == true)
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = terminals
        .iter()
        .find(|t| t["this_terminal"] == false)
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(terminals.iter().all(|t| t["paired_unix"].is_u64()));
    let out = tessera(
        &state,
        &config,
        &["terminals", "list", "--soft", card],
        &typed,
    );
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&own) && l.ends_with("this terminal")),
        "{table}"
    );

    // Revoking this terminal needs --this-terminal: refused at the HSM, nothing revoked.
    let out = tessera(
        &state,
        &config,
        &["terminals", "revoke", &own, "--soft", card],
        &typed,
    );
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit::REFUSED)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("say so explicitly"),
        "{}",
        text(&out.stderr)
    );
    // The other one is revoked: it can no longer connect, and the listing lost it.
    let out = tessera(
        &state,
        &config,
        &["terminals", "revoke", &theirs, "--soft", card],
        &typed,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Revoked terminal"));
    let out = tessera(&other, &config, &["status"], "");
    assert!(!out.status.success(), "a revoked terminal connected");
    assert_eq!(list(&state).len(), 1);

    // The log has both, and not the code.
    let out = tessera(
        &state,
        &config,
        &["log", "show", "--json", "--soft", card],
        &typed,
    );
    let log = text(&out.stdout);
    assert!(log.contains("terminal.revoke"), "{log}");
    assert!(log.contains("pairing.issue"), "{log}");
    assert!(!log.contains(&new_code), "{log}");
}
