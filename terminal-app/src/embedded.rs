//! The embedded default: an in-process partition service (the reference HSM, its store in
//! memory) on the other end of an in-memory link, and three demo officer cards (soft cards,
//! passphrase-sealed, in a temporary directory that is removed afterwards). Only in builds with
//! the `embedded` feature (the default); a hardened device's build leaves the simulator out.
//!
//! Until the TUI exists, the demo walks through what an operator will do on screen and reports
//! it, step by step, running the same flows a real HSM would see: pairing with a one-time code,
//! enrolling a 2-of-3 PSO set ([`Enrolment`]), a PSO login card by card ([`LoginCeremony`]), the
//! configuration, a share drill whose report the card signs and the HSM logs ([`Drill`]), and a
//! log export verified against the audit key, in which the drill is on record.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use audit_log::LogLine;
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{Parameter, PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::{PublicKey, StaticKeypair};
use hsm_link::message::{AdminRequest, AdminResponse, LogQuery, OfficerRole, Request};
use hsm_link::server::{self, ServeOptions, SessionSummary};
use hsm_link::transport::memory::{self, MemoryTransport};
use partition_service::admin::AdminLink;
use partition_service::crypto::HsmKeys;
use partition_service::service::{Clock, Hsm, ServiceError, genesis};
use partition_service::store::Store;
use quorum::ceremony::{CardRef, Drill, Enrolment, Link as _, LoginCeremony};
use quorum::{Argon2Params, Card as _, CardPolicy, Pin, SoftCard, VerifiedSoftCard};

use crate::error::{CardName, Error};
use hex::encode as hex;

/// The demo partition's id.
pub const DEMO_PARTITION: &str = "demo-partition";

/// The demo's card policy: soft cards allowed (its demo cards are soft cards, labelled so).
pub const DEMO_CARD_POLICY: CardPolicy = CardPolicy::embedded_demo();

/// The log operation of a share drill report (as the HSM logs it).
pub const DRILL_OPERATION: &str = "quorum.drill";

/// A demo card: holder, serial, passphrase.
#[derive(Clone, Copy, Debug)]
pub struct DemoCard {
    /// The holder's name.
    pub holder: &'static str,
    /// The soft card's serial.
    pub serial: &'static str,
    /// Its passphrase (a demo's: printed in the README).
    pub passphrase: &'static str,
}

/// The demo cards. Soft cards, labelled so everywhere.
pub const DEMO_CARDS: [DemoCard; 3] = [
    DemoCard {
        holder: "Ada Demo",
        serial: "SOFT:0001",
        passphrase: "ada's demo passphrase",
    },
    DemoCard {
        holder: "Ben Demo",
        serial: "SOFT:0002",
        passphrase: "ben's demo passphrase",
    },
    DemoCard {
        holder: "Cleo Demo",
        serial: "SOFT:0003",
        passphrase: "cleo's demo passphrase",
    },
];

impl DemoCard {
    /// The card as errors and the transcript name it.
    pub fn name(&self) -> CardName {
        CardName::of(CardRef {
            holder: Some(self.holder.to_owned()),
            serial: self.serial.to_owned(),
            soft: true,
        })
    }

    fn path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.card", self.serial.replace(':', "-")))
    }
}

/// How the demo runs.
#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    /// Bytes moved through the link test at the end.
    pub link_test_bytes: u64,
    /// The soft cards' passphrase stretching (production strength in the binary).
    pub params: Argon2Params,
    /// Open the cards as test cards (made with [`Argon2Params::insecure_for_tests`]; unit
    /// tests only).
    pub test_cards: bool,
}

/// What the demo did: the transcript an operator reads, and the log it exported.
#[derive(Debug)]
pub struct DemoReport {
    /// One line per step.
    pub transcript: String,
    /// The partition log as exported (JSON Lines, ending with a signed checkpoint), verified.
    pub exported_log: Vec<u8>,
}

/// The transcript being written. Writing to a `String` cannot fail.
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn line(&mut self, line: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(line);
        self.0.push('\n');
    }
}

type Server = JoinHandle<Result<SessionSummary, hsm_link::Error>>;
type Conn = Connection<MemoryTransport>;

/// The demo's world: the in-process HSM, its partition, the terminal's key, the cards'
/// directory.
struct Demo {
    hsm: Arc<Hsm>,
    partition: PartitionId,
    terminal: StaticKeypair,
    cards: tempfile::TempDir,
    options: DemoOptions,
    out: Transcript,
}

/// Runs the demo and returns its report.
pub fn run_demo(options: DemoOptions) -> Result<DemoReport, Error> {
    let mut demo = Demo::start(options)?;
    let pinned = demo.pair_and_enrol()?;
    let (mut conn, server) = demo.connect(ClientMode::Pinned { hsm: pinned })?;
    demo.login(&mut conn)?;
    demo.show_config(&mut conn)?;
    demo.drill(&mut conn)?;
    let exported_log = demo.export_log(&mut conn)?;
    demo.link_test(conn, server)?;
    demo.out.line(format_args!(""));
    demo.out.line(format_args!(
        "Still to come behind this command: the TUI itself (with the card ceremonies the quorum \
         crate already runs, on soft cards and on OpenPGP cards over PC/SC), USB backups, log \
         audit and export to drives, firmware images."
    ));
    Ok(DemoReport {
        transcript: demo.out.0,
        exported_log,
    })
}

/// The in-process HSM's end of one connection, on its own thread.
fn serve(hsm: &Arc<Hsm>) -> (MemoryTransport, Server) {
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

/// Waits for the HSM's end of a connection to finish.
fn join(server: Server) -> Result<SessionSummary, Error> {
    // The HSM's thread returns its errors; a panic there is a bug in the simulator.
    Ok(server.join().expect("the embedded HSM's thread panicked")?)
}

impl Demo {
    /// Creates the HSM (keys and store in memory), the demo partition and the terminal's key,
    /// and writes the transcript's heading.
    fn start(options: DemoOptions) -> Result<Demo, Error> {
        let keys = HsmKeys::generate().map_err(ServiceError::from)?;
        let store = Store::in_memory().map_err(ServiceError::from)?;
        let hsm = Arc::new(Hsm::with_parts(keys, store, Clock::system()));
        let partition = PartitionId::new(DEMO_PARTITION).map_err(ServiceError::from)?;
        hsm.create_partition(partition.clone(), "Demo partition", ServiceTier::Economy)?;
        // The demo's cards are soft cards: its HSM, like its terminal (DEMO_CARD_POLICY),
        // accepts them. A production HSM does not by default.
        hsm.set_soft_cards_allowed(true)?;
        let cards = tempfile::tempdir().map_err(|e| {
            Error::io(
                "creating a directory for the demo cards in",
                std::env::temp_dir(),
                e,
            )
        })?;
        let terminal = StaticKeypair::generate()?;
        let mut out = Transcript::default();
        out.line(format_args!(
            "Tessera terminal — embedded default: an in-process HSM simulator (not a certified HSM)"
        ));
        out.line(format_args!(
            "  HSM id                     {}",
            hsm.keys().hsm_id()
        ));
        out.line(format_args!(
            "  HSM key fingerprint        {}",
            hsm.keys().identity_public().fingerprint()
        ));
        out.line(format_args!(
            "  audit key fingerprint      {}",
            hsm.keys().audit_fingerprint()
        ));
        out.line(format_args!(
            "  terminal key fingerprint   {}",
            terminal.public().fingerprint()
        ));
        out.line(format_args!(
            "  soft cards                 accepted by this demo HSM and terminal only ({DEMO_CARD_POLICY})"
        ));
        Ok(Demo {
            hsm,
            partition,
            terminal,
            cards,
            options,
            out,
        })
    }

    /// Opens a connection to the in-process HSM.
    fn connect(&self, mode: ClientMode) -> Result<(Conn, Server), Error> {
        let (transport, server) = serve(&self.hsm);
        let conn = client::connect(
            transport,
            &self.terminal,
            self.partition.clone(),
            mode,
            ConnectOptions::default(),
        )?;
        Ok((conn, server))
    }

    /// Pairs with the one-time code (Noise XXpsk3), enrols the demo cards, and returns the HSM
    /// key the terminal pinned.
    fn pair_and_enrol(&mut self) -> Result<PublicKey, Error> {
        let code = self.hsm.issue_pairing_code(&self.partition, genesis())?;
        let (mut conn, server) = self.connect(ClientMode::Pairing(code))?;
        let pinned = conn.session().remote_key();
        self.out.line(format_args!(
            "Paired over Noise XXpsk3 (protocol version {}); the pairing code is spent.",
            conn.session().version()
        ));
        self.out.line(format_args!(
            "  HSM key as the terminal pinned it   {}",
            pinned.fingerprint()
        ));
        for key in self.hsm.partition(&self.partition)?.pairing.terminals {
            self.out.line(format_args!(
                "  terminal key as the HSM pinned it   {}",
                key.fingerprint()
            ));
        }
        self.enrol(&mut conn)?;
        conn.close()?;
        join(server)?;
        Ok(pinned)
    }

    /// Creates the three demo soft cards and enrols them as a 2-of-3 PSO set through the enrol
    /// ceremony: the HSM opens it, the recovery secret is split, a share is sealed to each
    /// card, read back and checked, and the set is registered under the ceremony's id.
    fn enrol(&mut self, conn: &mut Conn) -> Result<(), Error> {
        let mut enrolment = Enrolment::begin(conn, 2, 3)?;
        for card in DEMO_CARDS {
            let pin = Pin::from_slice(card.passphrase.as_bytes());
            let soft = SoftCard::create(
                &card.path(self.cards.path()),
                Some(card.holder),
                card.serial,
                &pin,
                self.options.params,
                DEMO_CARD_POLICY,
            )?;
            let mut verified = soft
                .verify(&pin)
                .map_err(|(_, e)| Error::card(card.name(), e))?;
            enrolment.add_card(&mut verified)?;
        }
        let registered = enrolment.finish(conn)?;
        self.out.line(format_args!(
            "Enrolled a 2-of-3 PSO set on three soft cards (demo cards, labelled as such):"
        ));
        self.out.line(format_args!(
            "  enrol ceremony             {}",
            registered.ceremony
        ));
        for card in DEMO_CARDS {
            self.out
                .line(format_args!("  soft card {}  {}", card.serial, card.holder));
        }
        self.out.line(format_args!(
            "  recovery secret split with Feldman commitments; every share read back and checked; secret wiped"
        ));
        self.out.line(format_args!(
            "  quorum backup key (X-Wing) registered, fingerprint {}",
            hex(&registered.backup_public.fingerprint()[..8])
        ));
        Ok(())
    }

    /// Opens a demo card and checks its passphrase.
    fn verify(&self, card: &DemoCard) -> Result<VerifiedSoftCard, Error> {
        let path = card.path(self.cards.path());
        let soft = if self.options.test_cards {
            SoftCard::open_test_card(&path)?
        } else {
            SoftCard::open(&path, DEMO_CARD_POLICY)?
        };
        let pin = Pin::from_slice(card.passphrase.as_bytes());
        soft.verify(&pin)
            .map_err(|(_, e)| Error::card(card.name(), e))
    }

    /// A PSO login through the login ceremony: the HSM's challenge, bound to this session,
    /// signed card by card by two of the three cards.
    fn login(&mut self, conn: &mut Conn) -> Result<(), Error> {
        let mut login = LoginCeremony::start(conn, OfficerRole::Pso)?;
        self.out.line(format_args!(
            "PSO login over Noise KK (pinned keys): the HSM's challenge, bound to this session, \
             needs {} of the {} cards of the PSO set",
            login.progress().need,
            login.cards().len()
        ));
        for card in &DEMO_CARDS[..2] {
            let mut verified = self.verify(card)?;
            let progress = login.present(&mut verified)?;
            self.out.line(format_args!(
                "  {}: passphrase accepted, challenge signed — {progress}",
                card.name()
            ));
        }
        let holders = login.submit(conn)?;
        let holders: Vec<&str> = holders.iter().map(|h| h.as_str()).collect();
        self.out.line(format_args!(
            "Logged in as PSO over Noise KK with 2 of 3 cards: {}",
            holders.join(", ")
        ));
        Ok(())
    }

    /// The configuration, as the TUI will show it.
    fn show_config(&mut self, conn: &mut Conn) -> Result<(), Error> {
        let AdminResponse::Config(config) = conn.admin(AdminRequest::GetConfig)? else {
            return Err(Error::UnexpectedAnswer {
                request: "GetConfig",
            });
        };
        self.out.line(format_args!(
            "Partition {} (economy tier), configuration revision {}:",
            self.partition, config.revision
        ));
        for parameter in Parameter::ALL {
            self.out.line(format_args!(
                "  {:<28} {}",
                parameter.label(),
                config.value_text(parameter)
            ));
        }
        Ok(())
    }

    /// A share drill with the third card: its share is checked against the commitments the HSM
    /// holds, and the card signs the report, which the HSM logs.
    fn drill(&mut self, conn: &mut Conn) -> Result<(), Error> {
        let drill = Drill::begin(conn)?;
        let card = &DEMO_CARDS[2];
        let mut verified = self.verify(card)?;
        let outcome = drill.run(conn, &mut verified)?;
        if let Some(problem) = outcome.problem {
            return Err(problem.into());
        }
        self.out.line(format_args!(
            "Drill: the soft card of {} yields a valid share (checked against the HSM's \
             commitments); the card signed the report{}.",
            card.holder,
            if outcome.reported {
                " and the HSM logged it"
            } else {
                ", which the HSM did not log (drill reports rationed)"
            }
        ));
        Ok(())
    }

    /// Exports the whole log, verifies it against the audit key and finds the drill in it.
    fn export_log(&mut self, conn: &mut Conn) -> Result<Vec<u8>, Error> {
        let mut export = Vec::new();
        conn.call_download(
            Request::Admin(AdminRequest::ExportLog {
                query: LogQuery::from(1, 0),
            }),
            &mut export,
        )?;
        let pin =
            audit_log::KeyPin::from_fingerprint(&self.hsm.audit_key().fingerprint().to_string())
                .map_err(Error::LogVerify)?;
        let report = audit_log::verify_export(&export[..], audit_log::ExportVerifier::new(pin))
            .map_err(Error::LogVerify)?;
        self.out.line(format_args!(
            "Log export: {} entries, {} signed checkpoints, verified against the audit key.",
            report.entries(),
            report.log().checkpoints()
        ));
        if let Some(drill) = drill_entries(&export).last() {
            self.out
                .line(format_args!("  the drill on record: {drill}"));
        }
        Ok(export)
    }

    /// Moves bytes through the link and checks them; ends the session.
    fn link_test(&mut self, mut conn: Conn, server: Server) -> Result<(), Error> {
        let link = conn.link_test(self.options.link_test_bytes)?;
        conn.close()?;
        let summary = join(server)?;
        self.out.line(format_args!(
            "Link test: {} bytes verified in {:.1} ms ({} requests served in this session).",
            link.bytes,
            link.elapsed.as_secs_f64() * 1e3,
            summary.requests
        ));
        Ok(())
    }
}

/// The drill reports in an exported log, one line each: `entry 12: quorum.drill card SOFT:0003
/// by pso (Cleo Demo), share valid`.
pub fn drill_entries(log: &[u8]) -> Vec<String> {
    log.split(|&b| b == b'\n')
        .filter_map(|line| match LogLine::from_canonical(line) {
            Ok(LogLine::Entry(entry)) if entry.operation().as_str() == DRILL_OPERATION => {
                Some(format!(
                    "entry {}: {} {} by {} ({}), {}",
                    entry.seq(),
                    DRILL_OPERATION,
                    entry.object().unwrap_or("-"),
                    entry.role().as_str(),
                    entry.details().get("holder").map_or("-", String::as_str),
                    entry
                        .details()
                        .get("result")
                        .map_or(entry.outcome().result_name(), String::as_str),
                ))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> DemoReport {
        run_demo(DemoOptions {
            link_test_bytes: 100_000,
            params: Argon2Params::insecure_for_tests(),
            test_cards: true,
        })
        .unwrap()
    }

    #[test]
    fn the_demo_pairs_enrols_logs_in_drills_and_verifies_its_log() {
        let DemoReport {
            transcript: report,
            exported_log,
        } = run();
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
        // The login, card by card, through the login ceremony.
        assert!(line("PSO login over Noise KK").contains("needs 2 of the 3 cards"));
        assert!(line("soft card SOFT:0001 (Ada Demo):").ends_with("1 of 2 — insert the next card"));
        assert!(line("soft card SOFT:0002 (Ben Demo):").ends_with("2 of 2 — complete"));
        assert_eq!(
            line("Logged in as PSO over Noise KK with 2 of 3 cards:"),
            "Ada Demo, Ben Demo"
        );
        assert_eq!(line("Key export"), "wrapped only");
        let drill = line("Drill:");
        assert!(drill.contains("Cleo Demo"), "{drill}");
        assert!(drill.contains("the HSM logged it"), "{drill}");
        assert!(line("Log export:").contains("verified against the audit key"));
        assert!(line("Link test:").starts_with("100000 bytes verified"));
        assert!(report.contains("not a certified HSM"));
        let ceremony = line("enrol ceremony");
        assert_eq!(ceremony.len(), 32, "{ceremony}");
        assert!(
            ceremony.bytes().all(|b| b.is_ascii_hexdigit()),
            "{ceremony}"
        );
        for card in DEMO_CARDS {
            assert_eq!(line(&format!("soft card {}", card.serial)), card.holder);
        }
        assert!(line("Enrolled a 2-of-3 PSO set").contains("soft cards"));
        assert!(line("soft cards").contains("embedded demo"));

        // The drill is in the exported log: reported by the card, logged at the HSM, under the
        // PSO login.
        let drills = drill_entries(&exported_log);
        assert_eq!(drills.len(), 1, "{drills:?}");
        assert!(
            drills[0].contains("card SOFT:0003 by pso (Cleo Demo), share valid"),
            "{drills:?}"
        );
        assert_eq!(line("the drill on record:"), drills[0]);
    }

    #[test]
    fn no_drill_in_a_log_without_one() {
        assert!(drill_entries(b"").is_empty());
        assert!(drill_entries(b"not a log line\n{}\n").is_empty());
    }
}
