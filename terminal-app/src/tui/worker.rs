//! The worker thread: it owns the link and the cards, runs each [`Command`] to the end and
//! sends [`Event`]s back, so that the screen never waits on a card, an Argon2 run or the HSM.

use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use audit_log::AuditKey;
use hsm_link::message::{AdminRequest, AdminResponse, RemoteError};
use quorum::card::{Card, CardInfo, Pin, VerifiedCard};
use quorum::ceremony::{Link, LinkError};
use quorum::error::CardError;

use super::message::{Command, Event, SlotView};
use crate::flows;

/// A card in a reader, before its PIN: an object-safe face of [`quorum::card::Card`].
pub trait InsertedCard: Send {
    /// Who the card belongs to, before its PIN.
    fn info(&self) -> CardInfo;
    /// Checks the PIN on the card; a wrong PIN hands the card back.
    #[allow(clippy::type_complexity)]
    fn verify(
        self: Box<Self>,
        pin: &Pin,
    ) -> Result<Box<dyn VerifiedCard + Send>, (Box<dyn InsertedCard>, CardError)>;
}

impl<C> InsertedCard for C
where
    C: Card + Send + 'static,
    C::Verified: Send + 'static,
{
    fn info(&self) -> CardInfo {
        Card::info(self)
    }

    fn verify(
        self: Box<Self>,
        pin: &Pin,
    ) -> Result<Box<dyn VerifiedCard + Send>, (Box<dyn InsertedCard>, CardError)> {
        match Card::verify(*self, pin) {
            Ok(verified) => Ok(Box::new(verified)),
            Err((card, e)) => Err((Box::new(card), e)),
        }
    }
}

/// Where cards come from: card readers, or the demo's soft cards.
pub trait CardReader: Send {
    /// The slots, as shown.
    fn slots(&self) -> Vec<SlotView>;
    /// The card in `slot`, opened (not yet verified).
    fn insert(&mut self, slot: usize) -> Result<Box<dyn InsertedCard>, String>;
    /// Reader events: the cards within reach when they changed since the last call (card
    /// readers; the demo's soft cards never change).
    fn poll(&mut self) -> Option<super::pcsc_reader::ReaderReport> {
        None
    }
    /// The cards within reach now, as a reader event reports them (sent once the worker is
    /// ready, so that the model knows which cards are in a reader before any login).
    fn report(&self) -> Option<super::pcsc_reader::ReaderReport> {
        None
    }
    /// The card in `slot`, opened for a PIN change or unblock.
    fn pin_card(&mut self, slot: usize) -> Result<Box<dyn flows::pin::PinCard>, String> {
        let _ = slot;
        Err("this terminal's card readers cannot change PINs".to_owned())
    }
    /// The OpenPGP card in `slot`, opened for a set-up (whatever its keys).
    fn openpgp_card(&mut self, slot: usize) -> Result<quorum::PcscCard, String> {
        let _ = slot;
        Err(
            "this terminal reaches no OpenPGP card through PC/SC: set the card up on a \
             terminal with a card reader"
                .to_owned(),
        )
    }
    /// The card in `slot` as it reported itself after a PIN change, an unblock or a set-up
    /// (its tries left read from the card again): the slot shows it from now on. The cards
    /// within reach when that changed what the slots show (card readers; soft cards have no
    /// counter to show).
    fn card_changed(
        &mut self,
        slot: usize,
        info: &CardInfo,
    ) -> Option<super::pcsc_reader::ReaderReport> {
        let _ = (slot, info);
        None
    }
    /// A new soft card for `holder`, sealed under `passphrase`, in the soft card directory; it
    /// joins the slots. Its identity and file.
    fn create_soft_card(
        &mut self,
        holder: &str,
        passphrase: &Pin,
    ) -> Result<(CardInfo, std::path::PathBuf), flows::newcard::NewCardError> {
        let _ = (holder, passphrase);
        Err(flows::newcard::NewCardError::Other(
            "this terminal has no soft card directory".to_owned(),
        ))
    }
}

/// Opens the link again after it was lost (a paired HSM; the demo has none).
pub type Reconnect = Box<dyn FnMut() -> Result<Box<dyn Link + Send>, String> + Send>;

/// How often the worker polls the card readers while no command comes.
pub const READER_POLL: std::time::Duration = std::time::Duration::from_millis(400);

/// What the worker owns.
pub struct Worker {
    pub(crate) link: Box<dyn Link + Send>,
    pub(crate) reader: Box<dyn CardReader>,
    pub(crate) audit_key: AuditKey,
    pub(crate) login: flows::login::LoginWork,
    pub(crate) logs: flows::logs::LogWork,
    pub(crate) drill: flows::drill::DrillWork,
    pub(crate) reshare: flows::reshare::ReshareWork,
    pub(crate) revoke: flows::revoke::RevokeWork,
    pub(crate) pin: flows::pin::PinWork,
    pub(crate) enrol: flows::enrol::EnrolWork,
    pub(crate) newcard: flows::newcard::NewCardWork,
    pub(crate) backup: flows::backup::BackupWork,
    /// Opens the link again (`Command::Reconnect`), where it can be.
    reconnect: Option<Reconnect>,
    /// The events channel, for progress sent while a command runs (set by [`spawn`]).
    pub(crate) events: Option<Sender<Event>>,
}

impl Worker {
    /// A worker over `link` with cards from `reader`; log checkpoints are checked against the
    /// pinned `audit_key` (never a key the log carries).
    pub fn new(
        link: Box<dyn Link + Send>,
        reader: Box<dyn CardReader>,
        audit_key: AuditKey,
    ) -> Worker {
        let log_id = link.partition().as_str().to_owned();
        Worker {
            link,
            reader,
            audit_key,
            login: flows::login::LoginWork::default(),
            logs: flows::logs::LogWork::new(&log_id),
            drill: flows::drill::DrillWork::default(),
            reshare: flows::reshare::ReshareWork::default(),
            revoke: flows::revoke::RevokeWork::default(),
            pin: flows::pin::PinWork::default(),
            enrol: flows::enrol::EnrolWork::default(),
            newcard: flows::newcard::NewCardWork::default(),
            backup: flows::backup::BackupWork::default(),
            reconnect: None,
            events: None,
        }
    }

    /// This worker can open its link again after it was lost, with `reconnect`.
    pub fn with_reconnect(mut self, reconnect: Reconnect) -> Worker {
        self.reconnect = Some(reconnect);
        self
    }

    /// `Command::Reconnect`: a fresh link, and everything of the old session forgotten.
    fn reconnect(&mut self) -> Vec<Event> {
        let Some(reconnect) = self.reconnect.as_mut() else {
            return vec![Event::LinkLost(
                "this link cannot be opened again: start the terminal again".to_owned(),
            )];
        };
        // The old link is let go first: a serial line takes one session at a time.
        let partition = self.link.partition().clone();
        self.link = Box::new(Gone { partition });
        match reconnect() {
            Ok(link) => {
                let log_id = link.partition().as_str().to_owned();
                self.link = link;
                self.login = flows::login::LoginWork::default();
                self.logs = flows::logs::LogWork::new(&log_id);
                self.drill = flows::drill::DrillWork::default();
                self.reshare = flows::reshare::ReshareWork::default();
                self.revoke = flows::revoke::RevokeWork::default();
                vec![Event::Ready {
                    slots: self.slots(),
                }]
            }
            Err(reason) => vec![Event::LinkLost(reason)],
        }
    }

    /// The audit key the log is verified against (pinned, never one the log carries).
    pub fn audit_key(&self) -> AuditKey {
        self.audit_key
    }

    /// The slots to show.
    pub fn slots(&self) -> Vec<SlotView> {
        self.reader.slots()
    }

    /// Runs one command to its end.
    pub fn handle(&mut self, command: Command) -> Vec<Event> {
        match command {
            Command::Login(step) => {
                flows::login::work(&mut *self.link, &mut *self.reader, &mut self.login, step)
            }
            Command::Logout => match self.link.admin(AdminRequest::Logout) {
                Ok(_) => vec![Event::LoggedOut],
                Err(e) => vec![link_failure(e)],
            },
            Command::Refresh => vec![flows::dashboard::work(self)],
            Command::LoadConfig => vec![
                flows::config::work(&mut *self.link, command),
                flows::config::drills(&mut *self.link),
            ],
            Command::ApplyConfig { .. } => vec![flows::config::work(&mut *self.link, command)],
            Command::Keys { .. } | Command::Restore(_) | Command::Purge(_) => {
                vec![flows::keys::work(&mut *self.link, command)]
            }
            Command::Log(query) => vec![flows::logs::work(self, query)],
            Command::ResetCredentials => vec![flows::credentials::work(&mut *self.link)],
            Command::Drill(step) => vec![flows::drill::work(
                &mut *self.link,
                &mut *self.reader,
                &mut self.drill,
                step,
            )],
            Command::Reshare(step) => {
                flows::reshare::work(&mut *self.link, &mut *self.reader, &mut self.reshare, step)
            }
            Command::Revoke(step) => {
                flows::revoke::work(&mut *self.link, &mut *self.reader, &mut self.revoke, step)
            }
            Command::Backup(step) => flows::backup::work(self, step),
            Command::Reconnect => self.reconnect(),
            Command::Terminals(step) => vec![flows::terminals::work(&mut *self.link, step)],
            Command::Firmware(step) => flows::firmware::work(step, self.events.as_ref()),
            Command::LogExport(step) => vec![flows::log_export::work(self, step)],
            Command::Pin(step) => flows::pin::work(&mut *self.reader, &mut self.pin, step),
            Command::NewCard(step) => {
                flows::newcard::work(&mut *self.reader, &mut self.newcard, step)
            }
            Command::Enrol(step) => {
                flows::enrol::work(&mut *self.link, &mut *self.reader, &mut self.enrol, step)
            }
        }
    }

    /// One administration request.
    pub(crate) fn admin(&mut self, request: AdminRequest) -> Result<AdminResponse, LinkError> {
        self.link.admin(request)
    }
}

/// The link while a new one is being opened: every request finds it closed.
struct Gone {
    partition: hsm_link::domain::PartitionId,
}

impl Link for Gone {
    fn admin(&mut self, _request: AdminRequest) -> Result<AdminResponse, LinkError> {
        Err(LinkError::Failed(hsm_link::Error::Transport(
            hsm_link::transport::TransportError::Closed,
        )))
    }

    fn channel_binding(&self) -> [u8; 32] {
        [0; 32]
    }

    fn partition(&self) -> &hsm_link::domain::PartitionId {
        &self.partition
    }
}

/// The event for a request that failed: the link is gone, or the HSM's reason.
pub(crate) fn link_failure(e: LinkError) -> Event {
    match e {
        LinkError::Failed(e) => Event::LinkLost(e.to_string()),
        other => Event::Failed(refusal_text(&other)),
    }
}

/// The HSM's reason as shown: its typed refusal's message, else the link error's.
pub(crate) fn refusal_text(e: &LinkError) -> String {
    match e {
        LinkError::Refused(RemoteError::Admin(admin)) => admin.to_string(),
        other => other.to_string(),
    }
}

/// Starts the worker thread: `setup` builds the worker (the demo fixture runs here, after the
/// first frame), then commands are run in order until the command channel closes.
pub fn spawn(
    setup: impl FnOnce() -> Result<Worker, String> + Send + 'static,
    commands: Receiver<Command>,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tessera-worker".into())
        .spawn(move || {
            let mut worker = match setup() {
                Ok(worker) => Worker {
                    events: Some(events.clone()),
                    ..worker
                },
                Err(reason) => {
                    let _ = events.send(Event::SetupFailed(reason));
                    return;
                }
            };
            if events
                .send(Event::Ready {
                    slots: worker.slots(),
                })
                .is_err()
            {
                return;
            }
            if let Some(report) = worker.reader.report()
                && events.send(Event::Readers(report)).is_err()
            {
                return;
            }
            loop {
                let found = match commands.recv_timeout(READER_POLL) {
                    Ok(command) => worker.handle(command),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => worker
                        .reader
                        .poll()
                        .map(Event::Readers)
                        .into_iter()
                        .collect(),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                };
                for event in found {
                    if events.send(event).is_err() {
                        return;
                    }
                }
            }
        })
}
