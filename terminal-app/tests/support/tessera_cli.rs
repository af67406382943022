//! The real `tessera` binary run as a process against a given state directory and
//! configuration (never the user's: `TESSERA_CONFIG` is removed), its input as text; and the
//! first officer set enrolled through a terminal paired as `pay`. Included with `#[path]` by
//! the command-line tests that need it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hsm_link::message::OfficerRole;
use quorum::ceremony::{Enrolment, LoginCeremony};
use quorum::{Argon2Params, Card as _, CardPolicy, Pin, SoftCard};
use terminal_app::pair;
use terminal_app::state::StateDir;
use tessera_tests::process::output_with_stdin;

/// The binary of this build.
pub(crate) const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

/// Runs `tessera` with `args` (and the state directory and configuration), `stdin` as its
/// input.
pub(crate) fn tessera(state: &Path, config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(TESSERA);
    command
        .arg("--state-dir")
        .arg(state)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TESSERA_CONFIG");
    output_with_stdin(&mut command, stdin)
}

/// Output as text (the binary writes UTF-8).
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Enrols a 1-of-1 PSO set on a new soft card (`ada.card` in `dir`, locked with
/// `passphrase`) through the terminal's own identity (the first
/// terminal paired may enrol the first set), then logs in with it; the card's file.
pub(crate) fn enrol(state: &Path, dir: &Path, passphrase: &str) -> PathBuf {
    let state = StateDir::open(state).unwrap();
    let entry = state.paired().unwrap().get("pay").unwrap().clone();
    let mut conn = pair::connect_pinned(&state, &entry, pair::now_unix()).unwrap();
    let path = dir.join("ada.card");
    let pin = Pin::from_slice(passphrase.as_bytes());
    let card = SoftCard::create(
        &path,
        Some("Ada Test"),
        "SOFT:0101",
        &pin,
        Argon2Params::production(),
        CardPolicy::allowed_by_configuration(),
    )
    .unwrap();
    let mut verified = card.verify(&pin).map_err(|(_, e)| e).unwrap();
    let mut enrolment = Enrolment::begin(&mut conn, 1, 1).unwrap();
    enrolment.add_card(&mut verified).unwrap();
    enrolment.finish(&mut conn).unwrap();
    // The login works from the library too (the CLI's path is the same ceremony).
    let mut login = LoginCeremony::start(&mut conn, OfficerRole::Pso).unwrap();
    login.present(&mut verified).unwrap();
    login.submit(&mut conn).unwrap();
    conn.close().unwrap();
    path
}
