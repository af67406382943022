//! Shared set-up for the partition service's scenario tests: a real HSM in a temporary data
//! directory, served over the in-memory link, and officers whose card keys the test holds
//! (Ed25519 keys standing in for cards until the quorum issue brings real ones).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    AdminError, AdminRequest, AdminResponse, CardSignature, OfficerRole, RecoveryPublic,
    RemoteError, Request, Response, login_message,
};
use hsm_link::server::{self, ServeOptions, SessionSummary};
use hsm_link::transport::memory::{self, MemoryTransport};
use partition_service::admin::AdminLink;
use partition_service::service::{Clock, Hsm, genesis};

/// An officer card held by the test.
pub struct Card {
    pub holder: String,
    pub serial: String,
    pub key: SigningKey,
}

impl Card {
    pub fn new(holder: &str, serial: &str) -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        Card {
            holder: holder.into(),
            serial: serial.into(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn description(&self) -> CardDescription {
        CardDescription {
            holder: HolderName::new(self.holder.clone()).unwrap(),
            serial: CardSerial::new(self.serial.clone()).unwrap(),
            signing_key: self.key.verifying_key().to_bytes(),
            soft_card: true,
        }
    }
}

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
    pub dir: tempfile::TempDir,
    pub hsm: Arc<Hsm>,
    pub partition: PartitionId,
    /// Seconds added to the system clock, to make time pass.
    pub clock_offset: Arc<AtomicU64>,
    /// A copy of the first paired terminal's key, to reconnect with it.
    pub first_terminal: std::sync::Mutex<Option<StaticKeypair>>,
}

impl Fixture {
    pub fn new(tier: ServiceTier) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Hsm::init(dir.path()).unwrap();
        let clock_offset = Arc::new(AtomicU64::new(0));
        let offset = Arc::clone(&clock_offset);
        let system = Clock::system();
        let clock = Clock::from_fn(move || system.now_ms() + offset.load(Ordering::SeqCst) * 1000);
        let hsm = Arc::new(Hsm::open(dir.path(), clock).unwrap());
        let partition = PartitionId::new("bank-1").unwrap();
        hsm.create_partition(partition.clone(), "Bank payments", tier)
            .unwrap();
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
        let (near, mut far) = memory::pair();
        let hsm = Arc::clone(&self.hsm);
        let handle = thread::spawn(move || {
            let admin = AdminLink::new(Arc::clone(&hsm));
            let identity = hsm.keys().identity();
            server::serve_connection(&mut far, identity, &ServeOptions::default(), &*hsm, &admin)
        });
        (near, handle)
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
        let (t, server) = self.serve();
        let conn = client::connect(
            t,
            &key,
            self.partition.clone(),
            ClientMode::Pairing(code),
            ConnectOptions::default(),
        )
        .unwrap();
        Terminal {
            conn,
            key,
            server: Some(server),
            partition: self.partition.clone(),
        }
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
        let (t, server) = self.serve();
        let conn = client::connect(
            t,
            &key,
            self.partition.clone(),
            ClientMode::Pinned {
                hsm: self.hsm.keys().identity_public(),
            },
            ConnectOptions::default(),
        )
        .unwrap();
        Terminal {
            conn,
            key,
            server: Some(server),
            partition: self.partition.clone(),
        }
    }
}

/// A terminal session.
pub struct Terminal {
    pub conn: Connection<MemoryTransport>,
    pub key: StaticKeypair,
    pub server: Option<thread::JoinHandle<Result<SessionSummary, hsm_link::Error>>>,
    pub partition: PartitionId,
}

impl Terminal {
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
    t.admin(AdminRequest::RegisterCardSet {
        set: Box::new(set),
        recovery: Some(Box::new(recovery())),
    })
    .unwrap();
    (f, t, cards)
}
