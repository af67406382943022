//! The embedded default: an in-process partition service (the reference HSM, its store in
//! memory) on the other end of an in-memory link, and three demo officer cards (soft cards,
//! passphrase-sealed, in a temporary directory that is removed afterwards).
//!
//! Until the TUI exists, the demo walks through what an operator will do on screen and reports
//! it: pairing, enrolling a 2-of-3 PSO set with the recovery secret shared among the cards, a
//! PSO login with two cards, the configuration, a share drill, and a verified log export.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{Parameter, PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::{PublicKey, StaticKeypair};
use hsm_link::message::{
    AdminRequest, AdminResponse, CardSignature, LogQuery, OfficerRole, Request, Response,
    login_message,
};
use hsm_link::server::{self, ServeOptions};
use hsm_link::transport::memory::{self, MemoryTransport};
use partition_service::admin::AdminLink;
use partition_service::crypto::HsmKeys;
use partition_service::service::{Clock, Hsm, genesis};
use partition_service::store::Store;
use quorum::ceremony::{Enrolment, ceremony_id_text};
use quorum::{
    Argon2Params, Card, CardPolicy, Pin, ShareContext, SoftCard, VerifiedCard, verify_share,
};

/// The demo partition's id.
pub const DEMO_PARTITION: &str = "demo-partition";

/// The demo's card policy: soft cards allowed (its demo cards are soft cards, labelled so).
pub const DEMO_CARD_POLICY: CardPolicy = CardPolicy::embedded_demo();

/// The demo cards: holder, serial, passphrase. Soft cards, labelled so everywhere.
const DEMO_CARDS: [(&str, &str, &str); 3] = [
    ("Ada Demo", "SOFT:0001", "ada's demo passphrase"),
    ("Ben Demo", "SOFT:0002", "ben's demo passphrase"),
    ("Cleo Demo", "SOFT:0003", "cleo's demo passphrase"),
];

type Session = (
    Connection<MemoryTransport>,
    std::thread::JoinHandle<Result<server::SessionSummary, hsm_link::Error>>,
);

fn serve(
    hsm: &Arc<Hsm>,
) -> (
    MemoryTransport,
    std::thread::JoinHandle<Result<server::SessionSummary, hsm_link::Error>>,
) {
    let (near, mut far) = memory::pair();
    let hsm = Arc::clone(hsm);
    let handle = std::thread::spawn(move || {
        let admin = AdminLink::new(Arc::clone(&hsm));
        server::serve_connection(
            &mut far,
            hsm.keys().identity(),
            &ServeOptions::default(),
            &*hsm,
            &admin,
        )
    });
    (near, handle)
}

fn admin(
    conn: &mut Connection<MemoryTransport>,
    request: AdminRequest,
) -> anyhow::Result<AdminResponse> {
    match conn.call(Request::Admin(request))? {
        Response::Admin(r) => Ok(r),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// Runs the demo and returns its report. `params` sets the soft cards' passphrase stretching
/// (production strength in the binary); `test_cards` opens cards made with
/// [`Argon2Params::insecure_for_tests`] (unit tests only).
pub fn run_demo(
    link_test_bytes: u64,
    params: Argon2Params,
    test_cards: bool,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let hsm = Arc::new(Hsm::with_parts(
        HsmKeys::generate()?,
        Store::in_memory()?,
        Clock::system(),
    ));
    let partition = PartitionId::new(DEMO_PARTITION)?;
    hsm.create_partition(partition.clone(), "Demo partition", ServiceTier::Economy)?;
    // The demo's cards are soft cards: its HSM, like its terminal (DEMO_CARD_POLICY), accepts
    // them. A production HSM does not by default.
    hsm.set_soft_cards_allowed(true)?;
    let code = hsm.issue_pairing_code(&partition, genesis())?;
    let terminal = StaticKeypair::generate()?;
    writeln!(
        out,
        "Tessera terminal — embedded default: an in-process HSM simulator (not a certified HSM)"
    )?;
    writeln!(out, "  HSM id                     {}", hsm.keys().hsm_id())?;
    writeln!(
        out,
        "  HSM key fingerprint        {}",
        hsm.keys().identity_public().fingerprint()
    )?;
    writeln!(
        out,
        "  audit key fingerprint      {}",
        hsm.keys().audit_fingerprint()
    )?;
    writeln!(
        out,
        "  terminal key fingerprint   {}",
        terminal.public().fingerprint()
    )?;
    writeln!(
        out,
        "  soft cards                 accepted by this demo HSM and terminal only ({DEMO_CARD_POLICY})"
    )?;

    // 1. Pairing with the one-time code.
    let (t, server) = serve(&hsm);
    let mut conn = client::connect(
        t,
        &terminal,
        partition.clone(),
        ClientMode::Pairing(code),
        ConnectOptions::default(),
    )
    .context("pairing with the embedded HSM failed")?;
    let pinned = conn.session().remote_key();
    writeln!(
        out,
        "Paired over Noise XXpsk3 (protocol version {}); the pairing code is spent.",
        conn.session().version()
    )?;
    writeln!(
        out,
        "  HSM key as the terminal pinned it   {}",
        pinned.fingerprint()
    )?;
    for key in hsm.partition(&partition)?.pairing.terminals {
        writeln!(
            out,
            "  terminal key as the HSM pinned it   {}",
            key.fingerprint()
        )?;
    }

    // 2. Enrolment of a 2-of-3 PSO set on the demo (soft) cards.
    let dir = tempfile::tempdir()?;
    let cards = enrol(&mut conn, dir.path(), params, &mut out)?;
    conn.close()?;
    server.join().expect("embedded HSM thread")?;

    // 3. A pinned session (Noise KK) and a PSO login with two of the three cards.
    let (mut conn, server) = pinned_session(&hsm, &terminal, &partition, pinned)?;
    let holders = login(&mut conn, &partition, dir.path(), &cards[..2], test_cards)?;
    writeln!(
        out,
        "Logged in as PSO over Noise KK with 2 of 3 cards: {}",
        holders.join(", ")
    )?;

    // 4. The configuration, as the TUI will show it.
    let AdminResponse::Config(config) = admin(&mut conn, AdminRequest::GetConfig)? else {
        bail!("no configuration")
    };
    writeln!(
        out,
        "Partition {partition} (economy tier), configuration revision {}:",
        config.revision
    )?;
    for parameter in Parameter::ALL {
        writeln!(
            out,
            "  {:<28} {}",
            parameter.label(),
            config.value_text(parameter)
        )?;
    }

    // 5. A drill: the third card still yields a valid share, checked against the commitments.
    let AdminResponse::CardSets { pso: Some(set), .. } =
        admin(&mut conn, AdminRequest::GetCardSets)?
    else {
        bail!("no PSO set")
    };
    let (holder, serial, passphrase) = cards[2];
    let card = open_card(dir.path(), serial, test_cards)?;
    let mut verified = card
        .verify(&Pin::from_slice(passphrase.as_bytes()))
        .map_err(|(_, e)| e)?;
    let ctx = ShareContext {
        partition: partition.clone(),
        set_number: set.set_number,
        share_index: 3,
        card_serial: serial.to_string(),
    };
    let share = verified.read_share(&ctx)?;
    let commitments = hsm
        .partition(&partition)?
        .pso
        .and_then(|s| s.recovery)
        .map(|r| quorum::Commitments::from_bytes(&r.commitments))
        .transpose()?
        .context("the HSM holds no commitments")?;
    verify_share(&commitments, &share)?;
    writeln!(
        out,
        "Drill: the soft card of {holder} still yields a valid share (checked against the HSM's commitments)."
    )?;

    // 6. The log, exported and verified against the pinned audit key.
    let mut export = Vec::new();
    conn.call_download(
        Request::Admin(AdminRequest::ExportLog {
            query: LogQuery::from(1, 0),
        }),
        &mut export,
    )?;
    let report = audit_log::verify_log(
        hsm.audit_key(),
        Some((0, audit_log::genesis_hash(partition.as_str()))),
        &export,
    )?;
    writeln!(
        out,
        "Log export: {} entries, {} signed checkpoints, verified against the audit key.",
        report.entries(),
        report.checkpoints()
    )?;

    // 7. Link throughput.
    let link = conn.link_test(link_test_bytes)?;
    conn.close()?;
    let summary = server.join().expect("embedded HSM thread")?;
    writeln!(
        out,
        "Link test: {} bytes verified in {:.1} ms ({} requests served in this session).",
        link.bytes,
        link.elapsed.as_secs_f64() * 1e3,
        summary.requests
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Still to come behind this command: the TUI itself (with the card ceremonies the quorum \
         crate already runs, on soft cards and on OpenPGP cards over PC/SC), USB backups, log \
         audit and export to drives, firmware images."
    )?;
    Ok(out)
}

fn pinned_session(
    hsm: &Arc<Hsm>,
    terminal: &StaticKeypair,
    partition: &PartitionId,
    pinned: PublicKey,
) -> anyhow::Result<Session> {
    let (t, server) = serve(hsm);
    let conn = client::connect(
        t,
        terminal,
        partition.clone(),
        ClientMode::Pinned { hsm: pinned },
        ConnectOptions::default(),
    )
    .context("the pinned session with the embedded HSM failed")?;
    Ok((conn, server))
}

fn open_card(dir: &Path, serial: &str, test_cards: bool) -> anyhow::Result<SoftCard> {
    let path = dir.join(format!("{}.card", serial.replace(':', "-")));
    Ok(if test_cards {
        SoftCard::open_test_card(&path)?
    } else {
        SoftCard::open(&path, DEMO_CARD_POLICY)?
    })
}

/// Creates the three demo soft cards and enrols them as a 2-of-3 PSO set through the enrol
/// ceremony ([`Enrolment`]): the HSM opens the ceremony, the recovery secret is split, a share is
/// sealed to each card, read back and checked, and the set is registered under the ceremony's
/// id.
fn enrol(
    conn: &mut Connection<MemoryTransport>,
    dir: &Path,
    params: Argon2Params,
    out: &mut String,
) -> anyhow::Result<[(&'static str, &'static str, &'static str); 3]> {
    let mut enrolment =
        Enrolment::begin(conn, 2, 3).context("opening the enrol ceremony at the HSM")?;
    for (holder, serial, passphrase) in DEMO_CARDS {
        let path = dir.join(format!("{}.card", serial.replace(':', "-")));
        let pin = Pin::from_slice(passphrase.as_bytes());
        let card = SoftCard::create(&path, Some(holder), serial, &pin, params, DEMO_CARD_POLICY)?;
        let mut verified = card.verify(&pin).map_err(|(_, e)| e)?;
        enrolment
            .add_card(&mut verified)
            .with_context(|| format!("enrolling the demo soft card {serial} of {holder}"))?;
    }
    let registered = enrolment
        .finish(conn)
        .context("registering the demo PSO set")?;
    writeln!(
        out,
        "Enrolled a 2-of-3 PSO set on three soft cards (demo cards, labelled as such):"
    )?;
    writeln!(
        out,
        "  enrol ceremony             {}",
        ceremony_id_text(&registered.ceremony)
    )?;
    for (holder, serial, _) in DEMO_CARDS {
        writeln!(out, "  soft card {serial}  {holder}")?;
    }
    writeln!(
        out,
        "  recovery secret split with Feldman commitments; every share read back and checked; secret wiped"
    )?;
    writeln!(
        out,
        "  quorum backup key (X-Wing) registered, fingerprint {}",
        hex(&registered.backup_public.fingerprint()[..8])
    )?;
    Ok(DEMO_CARDS)
}

fn login(
    conn: &mut Connection<MemoryTransport>,
    partition: &PartitionId,
    dir: &Path,
    cards: &[(&str, &str, &str)],
    test_cards: bool,
) -> anyhow::Result<Vec<String>> {
    let AdminResponse::Challenge { nonce, .. } = admin(
        conn,
        AdminRequest::LoginChallenge {
            role: OfficerRole::Pso,
        },
    )?
    else {
        bail!("no login challenge")
    };
    let message = login_message(
        conn.session().channel_binding(),
        &nonce,
        partition,
        OfficerRole::Pso,
    );
    let mut signatures = Vec::new();
    for (_, serial, passphrase) in cards {
        let card = open_card(dir, serial, test_cards)?;
        let mut verified = card
            .verify(&Pin::from_slice(passphrase.as_bytes()))
            .map_err(|(_, e)| e)?;
        signatures.push(CardSignature {
            signing_key: verified.info().signing_public,
            signature: verified.sign(&message)?,
        });
    }
    match admin(
        conn,
        AdminRequest::Login {
            role: OfficerRole::Pso,
            signatures,
        },
    )? {
        AdminResponse::LoggedIn { holders, .. } => {
            Ok(holders.iter().map(|h| h.as_str().to_string()).collect())
        }
        other => bail!("login answered with {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_pairs_enrols_logs_in_and_verifies_its_log() {
        let report = run_demo(100_000, Argon2Params::insecure_for_tests(), true).unwrap();
        let line = |label: &str| {
            report
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("no line {label:?} in\n{report}"))
                .trim_start()[label.len()..]
                .trim()
                .to_string()
        };
        let hsm = line("HSM key fingerprint");
        let terminal = line("terminal key fingerprint");
        assert_ne!(hsm, terminal);
        assert_eq!(line("HSM key as the terminal pinned it"), hsm);
        assert_eq!(line("terminal key as the HSM pinned it"), terminal);
        assert_eq!(
            line("Logged in as PSO over Noise KK with 2 of 3 cards:"),
            "Ada Demo, Ben Demo"
        );
        assert_eq!(line("Key export"), "wrapped only");
        assert!(line("Drill:").contains("Cleo Demo"));
        assert!(line("Log export:").contains("verified against the audit key"));
        assert!(line("Link test:").starts_with("100000 bytes verified"));
        assert!(report.contains("not a certified HSM"));
        let ceremony = line("enrol ceremony");
        assert_eq!(ceremony.len(), 32, "{ceremony}");
        assert!(
            ceremony.bytes().all(|b| b.is_ascii_hexdigit()),
            "{ceremony}"
        );
        for (holder, serial, _) in DEMO_CARDS {
            assert_eq!(line(&format!("soft card {serial}")), holder);
        }
        assert!(line("Enrolled a 2-of-3 PSO set").contains("soft cards"));
        assert!(line("soft cards").contains("embedded demo"));
    }
}
