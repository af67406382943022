//! The in-memory "serve and log in" fixture: a real HSM in a temporary data directory, served
//! over the in-memory link ([`serve_session`]), and officers whose card keys the test holds
//! (Ed25519 keys standing in for cards). Used by partition-service's scenario tests (through
//! their `tests/common/mod.rs`) and benchmark, and by quorum's ceremony tests and benchmark.

use hsm_link::domain::CeremonyId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use ed25519_dalek::{Signer, SigningKey};
use hsm_link::client::{self, ConnectOptions, Connection};
use hsm_link::domain::{
    CardDescription, CardSerial, CardSetDescription, CardSetKind, HolderName, PartitionId,
    ServiceTier,
};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{
    AdminError, AdminRequest, AdminResponse, CardSignature, CeremonyKind, OfficerRole,
    RecoveryPublic, RemoteError, Request, Response, drill_message, enrolment_message,
    login_message,
};
use hsm_link::server::{self, ServeOptions, SessionSummary};
use hsm_link::transport::FrameTransport;
use hsm_link::transport::memory::{self, MemoryTransport};
use partition_service::admin::AdminLink;
use partition_service::service::{Clock, Hsm, genesis};

/// A served session's thread: what it returns when the session ends.
pub type Server = thread::JoinHandle<Result<SessionSummary, hsm_link::Error>>;

/// Serves one session of `hsm` over the in-memory link in a thread; returns the terminal's end
/// of the link and the thread.
pub fn serve_session(hsm: &Arc<Hsm>) -> (MemoryTransport, Server) {
    let (near, mut far) = memory::pair();
    let hsm = Arc::clone(hsm);
    let handle = thread::spawn(move || {
        let admin = AdminLink::new(Arc::clone(&hsm));
        let identity = hsm.keys().identity();
        server::serve_connection(&mut far, identity, &ServeOptions::default(), &*hsm, &admin)
    });
    (near, handle)
}

/// Allows soft cards at `hsm` (the tests' cards are labelled soft cards) and creates partition
/// `id` of `tier` there; its id.
pub fn with_partition(hsm: &Hsm, id: &str, label: &str, tier: ServiceTier) -> PartitionId {
    hsm.set_soft_cards_allowed(true).unwrap();
    let partition = PartitionId::new(id).unwrap();
    hsm.create_partition(partition.clone(), label, tier)
        .unwrap();
    partition
}

/// An officer card held by the test.
pub struct Card {
    /// The holder's name.
    pub holder: String,
    /// The card's serial.
    pub serial: String,
    /// The card's signing key.
    pub key: SigningKey,
}

/// Every test card's key, so that a test can have the cards a set names sign their proofs of
/// possession (see [`Terminal::proofs`]).
static CARD_KEYS: Mutex<Vec<SigningKey>> = Mutex::new(Vec::new());

impl Card {
    /// A card with a fresh random key.
    pub fn new(holder: &str, serial: &str) -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let key = SigningKey::from_bytes(&seed);
        CARD_KEYS.lock().unwrap().push(key.clone());
        Card {
            holder: holder.into(),
            serial: serial.into(),
            key,
        }
    }

    /// The card as a set registration describes it (a soft card).
    pub fn description(&self) -> CardDescription {
        CardDescription {
            holder: HolderName::new(self.holder.clone()).unwrap(),
            serial: CardSerial::new(self.serial.clone()).unwrap(),
            signing_key: self.key.verifying_key().to_bytes(),
            soft_card: true,
        }
    }
}

/// A card set of `kind`, number `number`, `threshold`-of-`cards`.
pub fn card_set(
    kind: CardSetKind,
    number: u32,
    threshold: u8,
    cards: &[&Card],
) -> CardSetDescription {
    CardSetDescription {
        kind,
        set_number: number,
        threshold,
        cards: cards.iter().map(|c| c.description()).collect(),
    }
}

/// Recovery parts of the shape the quorum crate writes, for a set of threshold `m`.
pub fn recovery_for(m: u8) -> RecoveryPublic {
    let mut commitments = vec![1, m];
    for i in 0..m {
        commitments.push(0x02);
        commitments.extend([i + 1; 32]);
    }
    RecoveryPublic {
        backup_public_key: vec![7; 1216],
        commitments,
    }
}

/// Recovery parts for a 2-of-n set.
pub fn recovery() -> RecoveryPublic {
    recovery_for(2)
}

/// An HSM with one partition, in a temporary directory.
pub struct Fixture {
    /// The HSM's data directory.
    pub dir: tempfile::TempDir,
    /// The HSM.
    pub hsm: Arc<Hsm>,
    /// Its one partition (`bank-1`).
    pub partition: PartitionId,
    /// Seconds added to the system clock, to make time pass.
    pub clock_offset: Arc<AtomicU64>,
    /// A copy of the first paired terminal's key, to reconnect with it.
    pub first_terminal: std::sync::Mutex<Option<StaticKeypair>>,
}

impl Fixture {
    /// An HSM with partition `bank-1` of `tier`, soft cards allowed, its clock advanced by
    /// [`Fixture::clock_offset`].
    pub fn new(tier: ServiceTier) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Hsm::init(dir.path()).unwrap();
        let clock_offset = Arc::new(AtomicU64::new(0));
        let offset = Arc::clone(&clock_offset);
        let system = Clock::system();
        let clock = Clock::from_fn(move || system.now_ms() + offset.load(Ordering::SeqCst) * 1000);
        let hsm = Arc::new(Hsm::open(dir.path(), clock).unwrap());
        let partition = with_partition(&hsm, "bank-1", "Bank payments", tier);
        Fixture {
            dir,
            hsm,
            partition,
            clock_offset,
            first_terminal: std::sync::Mutex::new(None),
        }
    }

    /// Serves one session in a thread; returns the terminal's transport end.
    pub fn serve(
        &self,
    ) -> (
        MemoryTransport,
        thread::JoinHandle<Result<SessionSummary, hsm_link::Error>>,
    ) {
        serve_session(&self.hsm)
    }

    /// Pairs a new terminal; returns its key.
    pub fn pair(&self) -> Terminal {
        let key = StaticKeypair::generate().unwrap();
        self.first_terminal.lock().unwrap().get_or_insert_with(|| {
            StaticKeypair::from_secret(zeroize::Zeroizing::new(*key.secret_bytes()))
        });
        let code = self
            .hsm
            .issue_pairing_code(&self.partition, genesis())
            .unwrap();
        Terminal::connect(&self.hsm, &self.partition, key, ClientMode::Pairing(code))
    }

    /// A session for a terminal without pairing anew when the log is full: pairing is logged,
    /// so this reuses a terminal paired earlier in the test (the first one paired).
    pub fn pair_existing_or_new(&self) -> Terminal {
        let record = self.hsm.partition(&self.partition).unwrap();
        let key = self.first_terminal.lock().unwrap().take();
        match (key, record.pairing.first_terminal) {
            (Some(key), Some(_)) => self.reconnect(key),
            _ => self.pair(),
        }
    }

    /// A new pinned session for a paired terminal key.
    pub fn reconnect(&self, key: StaticKeypair) -> Terminal {
        let mode = ClientMode::Pinned {
            hsm: self.hsm.keys().identity_public(),
        };
        Terminal::connect(&self.hsm, &self.partition, key, mode)
    }
}

/// A terminal session: over the in-memory link to an HSM in this process, or over any link
/// ([`Terminal::over`]: TCP to a real `tessera-hsm`).
pub struct Terminal<T: FrameTransport = MemoryTransport> {
    /// The terminal's end of the session.
    pub conn: Connection<T>,
    /// The terminal's key.
    pub key: StaticKeypair,
    /// The thread serving the session.
    pub server: Option<thread::JoinHandle<Result<SessionSummary, hsm_link::Error>>>,
    /// The partition the session is for.
    pub partition: PartitionId,
}

impl Terminal {
    /// A session of the terminal with `key` to `partition` at `hsm`, served in a thread, the
    /// handshake done in `mode`.
    pub fn connect(
        hsm: &Arc<Hsm>,
        partition: &PartitionId,
        key: StaticKeypair,
        mode: ClientMode,
    ) -> Terminal {
        let (t, server) = serve_session(hsm);
        let conn =
            client::connect(t, &key, partition.clone(), mode, ConnectOptions::default()).unwrap();
        Terminal {
            conn,
            key,
            server: Some(server),
            partition: partition.clone(),
        }
    }
}

impl<T: FrameTransport> Terminal<T> {
    /// A session already connected over `conn` (served elsewhere: no server thread).
    pub fn over(conn: Connection<T>, key: StaticKeypair, partition: PartitionId) -> Terminal<T> {
        Terminal {
            conn,
            key,
            server: None,
            partition,
        }
    }

    /// Sends an admin request; its answer or the HSM's refusal (a link failure panics).
    pub fn admin(&mut self, request: AdminRequest) -> Result<AdminResponse, RemoteError> {
        match self.conn.call(Request::Admin(request)) {
            Ok(Response::Admin(r)) => Ok(r),
            Ok(other) => panic!("not an admin response: {other:?}"),
            Err(hsm_link::Error::Remote(e)) => Err(e),
            Err(e) => panic!("link failed: {e}"),
        }
    }

    /// The admin error of a refused request.
    pub fn refused(&mut self, request: AdminRequest) -> AdminError {
        match self.admin(request) {
            Err(RemoteError::Admin(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Logs in with `cards` as `role`.
    pub fn login(
        &mut self,
        role: OfficerRole,
        cards: &[&Card],
    ) -> Result<AdminResponse, RemoteError> {
        let AdminResponse::Challenge { nonce, .. } =
            self.admin(AdminRequest::LoginChallenge { role })?
        else {
            panic!("no challenge")
        };
        let message = login_message(
            self.conn.session().channel_binding(),
            &nonce,
            &self.partition,
            role,
        );
        let signatures = cards
            .iter()
            .map(|c| CardSignature {
                signing_key: c.key.verifying_key().to_bytes(),
                signature: c.key.sign(&message).to_bytes(),
            })
            .collect();
        self.admin(AdminRequest::Login { role, signatures })
    }

    /// The proofs of possession for registering `set` in ceremony `id` over this session, one
    /// per card in the set's order, signed by the test cards the set names (a key no test card
    /// holds gets an all-zero signature).
    pub fn proofs(&self, id: &CeremonyId, set: &CardSetDescription) -> Vec<CardSignature> {
        let keys = CARD_KEYS.lock().unwrap();
        set.cards
            .iter()
            .map(|card| {
                let message = enrolment_message(
                    self.conn.session().channel_binding(),
                    id,
                    &self.partition,
                    set.kind,
                    set.set_number,
                    card,
                );
                let signature = keys
                    .iter()
                    .find(|k| k.verifying_key().to_bytes() == card.signing_key)
                    .map_or([0; 64], |k| k.sign(&message).to_bytes());
                CardSignature {
                    signing_key: card.signing_key,
                    signature,
                }
            })
            .collect()
    }

    /// The registration of `set` in ceremony `id`, every card's proof signed.
    pub fn in_ceremony(
        &self,
        id: CeremonyId,
        set: CardSetDescription,
        recovery: Option<RecoveryPublic>,
        revoked: Option<&str>,
        left: &[&str],
    ) -> AdminRequest {
        AdminRequest::RegisterCardSetInCeremony {
            ceremony: id,
            proofs: self.proofs(&id, &set),
            set: Box::new(set),
            recovery: recovery.map(Box::new),
            replaces_revoked: revoked.map(|s| CardSerial::new(s).unwrap()),
            old_shares_left: left.iter().map(|s| CardSerial::new(*s).unwrap()).collect(),
            leftover_shares: Vec::new(),
        }
    }

    /// A share drill report for the card with `serial` in PSO set `set_number`, signed by
    /// `card` over this session.
    pub fn drill(&self, card: &Card, serial: &str, set_number: u32, ok: bool) -> AdminRequest {
        let card_serial = CardSerial::new(serial).unwrap();
        let message = drill_message(
            self.conn.session().channel_binding(),
            &self.partition,
            set_number,
            &card_serial,
            ok,
        );
        AdminRequest::ReportDrill {
            card_serial,
            ok,
            signature: card.key.sign(&message).to_bytes(),
        }
    }

    /// Opens a ceremony of `kind`; its id.
    pub fn begin(&mut self, kind: CeremonyKind) -> Result<CeremonyId, RemoteError> {
        match self.admin(AdminRequest::BeginCeremony { kind })? {
            AdminResponse::Ceremony { id, .. } => Ok(id),
            other => panic!("not a ceremony: {other:?}"),
        }
    }

    /// Registers `set` in a fresh ceremony of `kind` (the first error, of the opening or of
    /// the registration).
    pub fn register(
        &mut self,
        kind: CeremonyKind,
        set: CardSetDescription,
        recovery: Option<RecoveryPublic>,
    ) -> Result<AdminResponse, RemoteError> {
        let id = self.begin(kind)?;
        let request = self.in_ceremony(id, set, recovery, None, &[]);
        self.admin(request)
    }

    /// The admin error of a refused [`Terminal::register`].
    pub fn register_refused(
        &mut self,
        kind: CeremonyKind,
        set: CardSetDescription,
        recovery: Option<RecoveryPublic>,
    ) -> AdminError {
        match self.register(kind, set, recovery) {
            Err(RemoteError::Admin(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

impl Terminal {
    /// Closes the session; the server's summary of it.
    pub fn close(mut self) -> SessionSummary {
        let server = self.server.take().unwrap();
        self.conn.close().unwrap();
        server.join().unwrap().unwrap()
    }
}

/// A fixture with a registered 2-of-3 PSO set, and the three cards.
pub fn with_psos(tier: ServiceTier) -> (Fixture, Terminal, [Card; 3]) {
    let f = Fixture::new(tier);
    let mut t = f.pair();
    let cards = [
        Card::new("Alice Meier", "A-1"),
        Card::new("Bruno Rossi", "B-2"),
        Card::new("Chiara Bianchi", "C-3"),
    ];
    let set = card_set(CardSetKind::Pso, 1, 2, &[&cards[0], &cards[1], &cards[2]]);
    t.register(CeremonyKind::Enrol, set, Some(recovery()))
        .unwrap();
    (f, t, cards)
}
