//! The model: everything the screen shows, as plain data. It holds progress and results, never
//! a PIN (the runtime's zeroizing buffer does, until the worker takes it) nor a share.

use hsm_link::domain::HolderName;
use hsm_link::message::OfficerRole;

use crate::flows::config::ConfigFlow;
use crate::flows::dashboard::DashboardFlow;
use crate::flows::keys::KeysFlow;
use crate::flows::login::LoginFlow;
use crate::flows::logs::LogsFlow;

/// How long a logged-in session may stay idle before the terminal locks it, unless configured.
pub const DEFAULT_IDLE_LOCK_MS: u64 = 5 * 60 * 1000;

/// The screens (modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// Before a login: who the terminal talks to, the demo's holders and PINs, the roles.
    Welcome,
    /// A login ceremony, card by card.
    Login,
    /// After a login: the partition at a glance and the menu.
    Dashboard,
    /// The partition's configuration.
    Configuration,
    /// The partition's keys.
    Keys,
    /// The bin of invalidated keys.
    Bin,
    /// The partition log.
    Logs,
    /// The application's credentials.
    Credentials,
    /// Cards: a share drill.
    Cards,
    /// Cards: a re-share (from the Cards screen).
    Reshare,
    /// Cards: revoke a lost card (from the Cards screen).
    Revoke,
    /// Cards: change or unblock a PIN (from the Cards screen; no login needed).
    Pin,
    /// Cards: enrol a card set (from the Cards screen).
    Enrol,
    /// Cards: set up a new card (from the Cards screen).
    NewCard,
    /// Backups to drives, and restore.
    Backup,
    /// The partition's paired terminals (from the Credentials screen).
    Terminals,
    /// The terminal's own firmware (also before a login).
    Firmware,
    /// The menu's "Log export": the Logs screen opened at its export panel.
    LogExport,
}

/// One entry of the dashboard's menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MenuEntry {
    /// Where it leads.
    pub screen: Screen,
    /// Its title.
    pub title: &'static str,
}

/// The dashboard's menu, numbered from 1.
pub const MENU: [MenuEntry; 9] = [
    MenuEntry {
        screen: Screen::Configuration,
        title: "Configuration",
    },
    MenuEntry {
        screen: Screen::Keys,
        title: "Keys",
    },
    MenuEntry {
        screen: Screen::Bin,
        title: "Bin",
    },
    MenuEntry {
        screen: Screen::Logs,
        title: "Logs",
    },
    MenuEntry {
        screen: Screen::Backup,
        title: "Backup",
    },
    MenuEntry {
        screen: Screen::LogExport,
        title: "Log export",
    },
    MenuEntry {
        screen: Screen::Firmware,
        title: "Firmware",
    },
    MenuEntry {
        screen: Screen::Cards,
        title: "Cards",
    },
    MenuEntry {
        screen: Screen::Credentials,
        title: "Credentials",
    },
];

/// The welcome screen's roles, numbered from 1.
pub const ROLES: [(OfficerRole, &str); 3] = [
    (
        OfficerRole::Pso,
        "Log in as PSO (partition security officers)",
    ),
    (OfficerRole::Auditor, "Log in as auditor (read-only)"),
    (
        OfficerRole::DeviceSo,
        "Log in as device SO (four eyes: two people)",
    ),
];

/// An overlay over the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// The keys of this screen.
    Help,
    /// Quit while logged in?
    ConfirmQuit,
    /// The session was locked after an idle time.
    Locked {
        /// The idle time, in seconds.
        idle_secs: u64,
    },
}

/// How bad a notice is. Each level also has a word, so no state depends on colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Information.
    Info,
    /// Done.
    Ok,
    /// Needs attention.
    Warn,
    /// Refused or failed.
    Error,
}

impl Level {
    /// The word that says the level without colour.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Info => "note",
            Level::Ok => "done",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

/// A line of feedback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// How bad.
    pub level: Level,
    /// What happened and what to do.
    pub text: String,
}

impl Notice {
    /// A notice of `level`.
    pub fn new(level: Level, text: impl Into<String>) -> Notice {
        Notice {
            level,
            text: text.into(),
        }
    }
}

/// The link's state as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Setting up (the demo builds its HSM and cards).
    Connecting,
    /// Up.
    Up,
    /// Gone: why.
    Lost(String),
}

/// Who is logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The role.
    pub role: OfficerRole,
    /// The holders the HSM logged.
    pub holders: Vec<HolderName>,
}

/// The HSM and partition this terminal talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The partition's id.
    pub partition_id: String,
    /// The partition's name.
    pub partition_name: String,
    /// The HSM's id.
    pub hsm_id: String,
    /// The HSM key's fingerprint as pinned.
    pub hsm_fingerprint: String,
    /// The service tier.
    pub tier: String,
    /// How the link runs, e.g. `in-memory (embedded demo HSM)`.
    pub transport: String,
}

/// A demo card as the welcome screen lists it, with its PIN (demo cards only: their PINs are
/// public by design, printed in the README).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoCard {
    /// Which set: `PSO`, `auditor`.
    pub set: &'static str,
    /// The holder.
    pub holder: &'static str,
    /// The serial.
    pub serial: &'static str,
    /// The demo PIN (a soft card passphrase).
    pub pin: &'static str,
}

/// The whole model.
#[derive(Clone, Debug)]
pub struct Model {
    /// What the terminal talks to.
    pub target: Target,
    /// The demo's cards, shown on the first screen (empty outside the demo).
    pub demo_cards: Vec<DemoCard>,
    /// The screen.
    pub screen: Screen,
    /// An overlay, if any.
    pub overlay: Option<Overlay>,
    /// The selected row of the welcome screen's and the dashboard's menus.
    pub menu: usize,
    /// The link.
    pub link: LinkState,
    /// The login, once the HSM accepted it.
    pub session: Option<Session>,
    /// Milliseconds since start, as the last tick said.
    pub now_ms: u64,
    /// When the user last pressed a key.
    pub last_activity_ms: u64,
    /// Idle time after which a session is locked.
    pub idle_lock_ms: u64,
    /// The last notice (shown above the footer).
    pub notice: Option<Notice>,
    /// The login flow.
    pub login: LoginFlow,
    /// The dashboard.
    pub dashboard: DashboardFlow,
    /// The configuration flow.
    pub config: ConfigFlow,
    /// The key list.
    pub keys: KeysFlow,
    /// The bin.
    pub bin: KeysFlow,
    /// The log.
    pub logs: LogsFlow,
    /// The credentials screen.
    pub credentials: crate::flows::credentials::CredentialsFlow,
    /// The cards screen (a share drill).
    pub drill: crate::flows::drill::DrillFlow,
    /// The re-share.
    pub reshare: crate::flows::reshare::ReshareFlow,
    /// The revocation of a lost card.
    pub revoke: crate::flows::revoke::RevokeFlow,
    /// The PIN screen.
    pub pin: crate::flows::pin::PinFlow,
    /// The enrolment screen.
    pub enrol: crate::flows::enrol::EnrolFlow,
    /// The new card screen.
    pub newcard: crate::flows::newcard::NewCardFlow,
    /// The Backup screen.
    pub backup: crate::flows::backup::BackupFlow,
    /// The terminal's firmware (its device root is set by whoever builds the model).
    pub firmware: crate::flows::firmware::FirmwareFlow,
    /// Directories offered as drives beside the removable drives found (laptop mode): the
    /// demo's drive directory, or those the user named.
    pub drive_dirs: Vec<std::path::PathBuf>,
    /// Set when the user quit.
    pub quitting: bool,
    /// The paired terminals screen.
    pub terminals: crate::flows::terminals::TerminalsFlow,
    /// What a paired HSM and real card readers add (off in the demo).
    pub paired: super::paired::PairedSession,
    /// What the welcome screen says while the link is being set up (the demo: whether its
    /// fixture is being built or opened); a generic line when `None`.
    pub setup_note: Option<String>,
    /// Whether Esc on the welcome screen goes back to a list of partitions (the demo's).
    pub partition_list: bool,
}

impl Model {
    /// A fresh model for `target`, before the worker reported.
    pub fn new(target: Target, demo_cards: Vec<DemoCard>) -> Model {
        Model {
            target,
            demo_cards,
            screen: Screen::Welcome,
            overlay: None,
            menu: 0,
            link: LinkState::Connecting,
            session: None,
            now_ms: 0,
            last_activity_ms: 0,
            idle_lock_ms: DEFAULT_IDLE_LOCK_MS,
            notice: None,
            login: LoginFlow::default(),
            dashboard: DashboardFlow::default(),
            config: ConfigFlow::default(),
            keys: KeysFlow::new(hsm_link::message::KeyFilter::Active),
            bin: KeysFlow::new(hsm_link::message::KeyFilter::Invalidated),
            logs: LogsFlow::default(),
            credentials: Default::default(),
            drill: Default::default(),
            reshare: Default::default(),
            revoke: Default::default(),
            pin: Default::default(),
            enrol: Default::default(),
            newcard: Default::default(),
            backup: Default::default(),
            firmware: Default::default(),
            drive_dirs: Vec::new(),
            quitting: false,
            terminals: Default::default(),
            paired: Default::default(),
            setup_note: None,
            partition_list: false,
        }
    }

    /// Milliseconds left before the idle lock, while logged in.
    pub fn lock_in_ms(&self) -> Option<u64> {
        self.session.as_ref()?;
        let idle = self.now_ms.saturating_sub(self.last_activity_ms);
        Some(self.idle_lock_ms.saturating_sub(idle))
    }

    /// A notice for the status line.
    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notice = Some(Notice::new(level, text));
    }
}
