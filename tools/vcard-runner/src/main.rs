//! `vcard-runner`: one virtual OpenPGP card on a vpcd reader port, for PC/SC tests.
//!
//! The card is Nitrokey's `opcard` (the OpenPGP card application Nitrokey ships in its devices)
//! on Trussed's virtual platform, with file-backed internal and external stores so that PINs,
//! keys and data objects survive a restart. It speaks vpcd's TCP protocol (the `vpicc` crate) to
//! the `vpcd` reader driver of a running pcscd, which then shows it as an inserted card.
//!
//! ```text
//! vcard-runner --port 35970 --state target/pcsc/card0 --serial 7E550001 [--ready-file PATH]
//! ```
//!
//! Dev-only test tool, LGPL-3.0-only because it links opcard: never a dependency of a product
//! crate. `scripts/pcsc-up` builds and starts it; `tools/README.md` describes it.
//!
//! Differences from `trussed::virt::with_platform` that matter for tests:
//! - the platform RNG is the operating system's (`OsRng`), not the constant seed `[42; 32]`
//!   that would give every card the same keys;
//! - the Trussed service runs synchronously inside the client's syscall (no polling thread);
//! - `TCP_QUICKACK` is set before every read, or Nagle in vpcd against our delayed ACK costs
//!   about 40 ms per APDU;
//! - the connection is retried every 500 ms, so a card may start before pcscd and survives a
//!   pcscd restart.

use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use iso7816::command::class::Class;
use iso7816::{Instruction, Status};
use rand_core::OsRng;
use trussed::ClientImplementation;
use trussed::backend::{Backend as _, BackendId};
use trussed::pipe::{ServiceEndpoint, TrussedChannel};
use trussed::platform::{Platform, Syscall};
use trussed::serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl};
use trussed::service::{Service, ServiceResources};
use trussed::types::{Context, CoreContext};
use trussed::virt::{StorageConfig, Store, StoreConfig, UserInterface};
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::Error;
use trussed_core::api::{Reply, Request, reply, request};
use trussed_core::types::Location;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

/// Largest command (after chaining) and response the card handles: opcard's extended-length limit.
const APDU_SIZE: usize = 7609;
/// Trussed client id; opcard's files live under it, so it must stay the same across restarts.
const CLIENT_ID: &str = "opcard";
/// OpenPGP manufacturer id 0xFFFF: "test card" in the OpenPGP card registry.
const MANUFACTURER: [u8; 2] = [0xFF, 0xFF];
/// Size of each littlefs image that `StorageConfig::filesystem` expects (512 × 128).
const STORE_FILE_LEN: u64 = 512 * 128;
/// Delay between two connection attempts to vpcd.
const RETRY: Duration = Duration::from_millis(500);
/// ATR of an OpenPGP card 3.x with opcard's historical bytes (`00 31 F5 73 C0 01 60 00 90 00`);
/// the last byte is the check byte (XOR of all bytes after `3B`). T=1 only.
const ATR: &[u8] = &[
    0x3B, 0xDA, 0x18, 0xFF, 0x81, 0xB1, 0xFE, 0x75, 0x1F, 0x03, 0x00, 0x31, 0xF5, 0x73, 0xC0, 0x01,
    0x60, 0x00, 0x90, 0x00, 0x1C,
];

// ---------------------------------------------------------------------------------------------
// Trussed platform: OS randomness, the virtual store and user interface.

/// A Trussed platform like `trussed::virt::Platform`, but with the operating system's RNG.
struct OsPlatform<'a> {
    rng: OsRng,
    store: Store<'a>,
    ui: UserInterface,
}

impl<'a> Platform for OsPlatform<'a> {
    type R = OsRng;
    type S = Store<'a>;
    type UI = UserInterface;

    fn rng(&mut self) -> &mut OsRng {
        &mut self.rng
    }

    fn store(&self) -> Store<'a> {
        self.store
    }

    fn user_interface(&mut self) -> &mut UserInterface {
        &mut self.ui
    }
}

// ---------------------------------------------------------------------------------------------
// Backend dispatch: the Auth backend (PINs) and the Staging backend (wrap-key-to-file, chunked).

/// The custom backends.
#[derive(Debug)]
enum BackendIds {
    Auth,
    Staging,
}

/// The extensions opcard uses, with the ids the client and the service agree on.
#[derive(Debug)]
enum ExtensionIds {
    Auth,
    WrapKeyToFile,
    Chunked,
}

impl From<ExtensionIds> for u8 {
    fn from(id: ExtensionIds) -> u8 {
        match id {
            ExtensionIds::Auth => 0,
            ExtensionIds::WrapKeyToFile => 1,
            ExtensionIds::Chunked => 2,
        }
    }
}

impl TryFrom<u8> for ExtensionIds {
    type Error = Error;

    fn try_from(id: u8) -> Result<Self, Error> {
        match id {
            0 => Ok(Self::Auth),
            1 => Ok(Self::WrapKeyToFile),
            2 => Ok(Self::Chunked),
            _ => Err(Error::FunctionNotSupported),
        }
    }
}

/// Order in which a request tries the backends: Staging, Auth, then Trussed's core.
const BACKENDS: &[BackendId<BackendIds>] = &[
    BackendId::Custom(BackendIds::Staging),
    BackendId::Custom(BackendIds::Auth),
    BackendId::Core,
];

struct Dispatch {
    auth: AuthBackend,
    staging: StagingBackend,
}

impl Dispatch {
    fn new() -> Self {
        Self {
            auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
            staging: StagingBackend::new(),
        }
    }
}

#[derive(Default)]
struct DispatchContext {
    auth: AuthContext,
    staging: StagingContext,
}

impl ExtensionDispatch for Dispatch {
    type BackendId = BackendIds;
    type Context = DispatchContext;
    type ExtensionId = ExtensionIds;

    fn core_request<P: Platform>(
        &mut self,
        backend: &BackendIds,
        ctx: &mut Context<DispatchContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            BackendIds::Auth => {
                self.auth
                    .request(&mut ctx.core, &mut ctx.backends.auth, request, resources)
            }
            BackendIds::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &BackendIds,
        extension: &ExtensionIds,
        ctx: &mut Context<DispatchContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        match (backend, extension) {
            (BackendIds::Auth, ExtensionIds::Auth) => {
                ExtensionImpl::<AuthExtension>::extension_request_serialized(
                    &mut self.auth,
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::WrapKeyToFile) => {
                ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (BackendIds::Staging, ExtensionIds::Chunked) => {
                ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

impl ExtensionId<AuthExtension> for Dispatch {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Auth;
}

impl ExtensionId<WrapKeyToFileExtension> for Dispatch {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::WrapKeyToFile;
}

impl ExtensionId<ChunkedExtension> for Dispatch {
    type Id = ExtensionIds;
    const ID: ExtensionIds = ExtensionIds::Chunked;
}

// ---------------------------------------------------------------------------------------------
// Synchronous service: the client's syscall runs the service on the pending request.

/// Owns the Trussed service and the card's endpoint; a syscall processes the request at once.
struct InlineService<'a, P: Platform> {
    service: Service<P, Dispatch>,
    endpoint: ServiceEndpoint<'a, BackendIds, DispatchContext>,
}

impl<P: Platform> Syscall for InlineService<'_, P> {
    fn syscall(&mut self) {
        self.service
            .process(std::slice::from_mut(&mut self.endpoint));
    }
}

// ---------------------------------------------------------------------------------------------
// APDU adapter: command chaining, long responses with 61xx and GET RESPONSE, resets.

struct VirtualCard<C: opcard::Client> {
    card: opcard::Card<C>,
    /// Command being assembled from a chain (CLA bit 0x10 set on all but the last).
    chain: Option<iso7816::Command<APDU_SIZE>>,
    /// Rest of a long response, served by GET RESPONSE.
    pending: Vec<u8>,
}

impl<C: opcard::Client> VirtualCard<C> {
    fn new(card: opcard::Card<C>) -> Self {
        Self {
            card,
            chain: None,
            pending: Vec::new(),
        }
    }

    /// Forgets chained commands, pending responses and the card's volatile state (verified
    /// PINs): what a real card does on a reset or power cycle.
    fn reset_all(&mut self) {
        self.chain = None;
        self.pending.clear();
        self.card.reset();
    }

    /// Takes at most `le` bytes (0 = 256) of the pending response and appends the status word.
    fn next_chunk(&mut self, le: usize) -> Vec<u8> {
        let le = if le == 0 { 256 } else { le };
        let n = le.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..n).collect();
        let sw = match self.pending.len() {
            0 => Status::Success,
            rest => Status::MoreAvailable(u8::try_from(rest).unwrap_or(0)),
        };
        out.extend_from_slice(&<[u8; 2]>::from(sw));
        out
    }

    fn status(sw: Status) -> Vec<u8> {
        <[u8; 2]>::from(sw).to_vec()
    }

    fn handle(&mut self, apdu: &[u8]) -> Vec<u8> {
        let command = match iso7816::Command::<APDU_SIZE>::try_from(apdu) {
            Ok(command) => command,
            Err(_) => {
                self.chain = None;
                self.pending.clear();
                return Self::status(Status::WrongLength);
            }
        };

        if command.instruction() == Instruction::GetResponse && self.chain.is_none() {
            if self.pending.is_empty() {
                return Self::status(Status::ConditionsOfUseNotSatisfied);
            }
            return self.next_chunk(command.expected());
        }
        self.pending.clear();

        let class: Class = command.class();
        let command = match self.chain.take() {
            Some(mut first) => {
                if first.extend_from_command(&command).is_err() {
                    return Self::status(Status::WrongLength);
                }
                first
            }
            None => command,
        };
        if class.chain().not_the_last() {
            self.chain = Some(command);
            return Self::status(Status::Success);
        }

        let mut reply = heapless::Vec::<u8, APDU_SIZE>::new();
        let result = self.card.handle(command.as_view(), reply.as_mut_view());
        match result {
            Ok(()) => {
                self.pending.extend_from_slice(&reply);
                // Extended APDUs get the whole response; short ones at most Le (0 = 256) bytes
                // at a time, the rest with 61xx and GET RESPONSE.
                let le = if command.extended {
                    self.pending.len().max(1)
                } else {
                    command.expected().min(256)
                };
                self.next_chunk(le)
            }
            Err(sw) => Self::status(sw),
        }
    }
}

impl<C: opcard::Client> vpicc::VSmartCard for VirtualCard<C> {
    fn atr(&self) -> &[u8] {
        ATR
    }

    fn power_on(&mut self) {
        self.reset_all();
    }

    fn power_off(&mut self) {
        self.reset_all();
    }

    fn reset(&mut self) {
        self.reset_all();
    }

    fn execute(&mut self, msg: &[u8]) -> Vec<u8> {
        self.handle(msg)
    }
}

// ---------------------------------------------------------------------------------------------
// Transport: connect to vpcd, serve commands, reconnect on errors.

fn serve<C: opcard::Client>(args: &Args, card: &mut VirtualCard<C>) -> ! {
    let mut ready_written = false;
    let mut refused_logged = false;
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, args.port)) {
            Ok(stream) => {
                refused_logged = false;
                eprintln!(
                    "vcard-runner[{}]: connected to vpcd on 127.0.0.1:{}",
                    args.serial_hex, args.port
                );
                if !ready_written {
                    if let Some(path) = &args.ready_file
                        && let Err(e) = File::create(path)
                    {
                        eprintln!(
                            "vcard-runner: cannot write ready file {}: {e}",
                            path.display()
                        );
                    }
                    ready_written = true;
                }
                let error = run_connection(stream, card);
                eprintln!(
                    "vcard-runner[{}]: connection to vpcd ended ({error}); reconnecting",
                    args.serial_hex
                );
                card.reset_all();
            }
            Err(e) => {
                if !refused_logged {
                    eprintln!(
                        "vcard-runner[{}]: cannot connect to vpcd on 127.0.0.1:{} ({e}); retrying every {} ms",
                        args.serial_hex,
                        args.port,
                        RETRY.as_millis()
                    );
                    refused_logged = true;
                }
            }
        }
        sleep(RETRY);
    }
}

/// Serves one vpcd connection until it fails; returns the error.
fn run_connection<C: opcard::Client>(
    stream: TcpStream,
    card: &mut VirtualCard<C>,
) -> std::io::Error {
    // Our responses go out in one write; vpcd's commands come as two (length, then data), so
    // without QUICKACK our delayed ACK holds vpcd's second write back ~40 ms under Nagle.
    // Linux clears QUICKACK again after some ACKs: set it before every read.
    if let Err(e) = stream.set_nodelay(true) {
        return e;
    }
    let socket = match stream.try_clone() {
        Ok(socket) => socket,
        Err(e) => return e,
    };
    let mut connection = vpicc::Connection::from(stream);
    loop {
        if let Err(e) = rustix::net::sockopt::set_tcp_quickack(&socket, true) {
            return e.into();
        }
        if let Err(e) = connection.poll(card) {
            return e;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command line and store.

struct Args {
    port: u16,
    state: PathBuf,
    serial: [u8; 4],
    serial_hex: String,
    ready_file: Option<PathBuf>,
}

const USAGE: &str = "usage: vcard-runner --port N --state DIR --serial HEX8 [--ready-file PATH]\n\
  --port N           vpcd TCP port on 127.0.0.1 (vpcd's default is 35963)\n\
  --state DIR        card state (internal.lfs, external.lfs), created if missing; one runner per DIR\n\
  --serial HEX8      card serial, 8 hex digits (4 bytes), distinct per card; manufacturer is FFFF (test card)\n\
  --ready-file PATH  created once the card is first connected to vpcd";

fn parse_args() -> Result<Args, String> {
    let mut port = None;
    let mut state = None;
    let mut serial = None;
    let mut ready_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--port" => {
                port = Some(
                    value
                        .parse::<u16>()
                        .map_err(|e| format!("--port {value}: {e}"))?,
                )
            }
            "--state" => state = Some(PathBuf::from(value)),
            "--serial" => serial = Some(value),
            "--ready-file" => ready_file = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    let serial_hex = serial.ok_or("--serial is required")?.to_ascii_uppercase();
    let bytes =
        parse_hex(&serial_hex).ok_or_else(|| format!("--serial {serial_hex}: not 8 hex digits"))?;
    Ok(Args {
        port: port.ok_or("--port is required")?,
        state: state.ok_or("--state is required")?,
        serial: bytes,
        serial_hex,
        ready_file,
    })
}

fn parse_hex(s: &str) -> Option<[u8; 4]> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok().map(u32::to_be_bytes)
}

/// Checks the store files before Trussed mounts them: a file of the wrong size would make
/// `StorageConfig::filesystem` panic without saying which file or what to do.
fn check_store_file(path: &Path) -> Result<(), String> {
    match fs::metadata(path) {
        Ok(meta) if meta.len() != STORE_FILE_LEN => Err(format!(
            "{} has {} bytes, expected {STORE_FILE_LEN}: the card state is damaged; delete its directory to start a fresh card",
            path.display(),
            meta.len()
        )),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("vcard-runner: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = fs::create_dir_all(&args.state) {
        eprintln!("vcard-runner: cannot create {}: {e}", args.state.display());
        return ExitCode::from(1);
    }
    // One runner per state directory: two would corrupt each other's littlefs images.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(args.state.join("lock"));
    let lock = match lock {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!(
                "vcard-runner: cannot open {}/lock: {e}",
                args.state.display()
            );
            return ExitCode::from(1);
        }
    };
    if lock.try_lock().is_err() {
        eprintln!(
            "vcard-runner: {} is in use by another runner",
            args.state.display()
        );
        return ExitCode::from(1);
    }

    let internal = args.state.join("internal.lfs");
    let external = args.state.join("external.lfs");
    for path in [&internal, &external] {
        if let Err(e) = check_store_file(path) {
            eprintln!("vcard-runner: {e}");
            return ExitCode::from(1);
        }
    }

    // opcard keeps keys and data objects in the external store, PINs, salt and the RNG state in
    // the internal one: both on files. Volatile (verified-PIN state etc.) stays in RAM.
    let mut store = StoreConfig {
        internal: StorageConfig::filesystem(internal),
        external: StorageConfig::filesystem(external),
        volatile: StorageConfig::ram(),
    };
    store.with_store(|store| {
        let platform = OsPlatform {
            rng: OsRng,
            store,
            ui: UserInterface::new(),
        };
        let channel = TrussedChannel::new();
        let (requester, responder) = channel.split().expect("a new channel splits");
        let context = CoreContext::new(CLIENT_ID.try_into().expect("valid client id"));
        let syscall = InlineService {
            service: Service::with_dispatch(platform, Dispatch::new()),
            endpoint: ServiceEndpoint::new(responder, context, BACKENDS),
        };
        let client = ClientImplementation::<_, Dispatch>::new(requester, syscall, None);

        let mut options = opcard::Options::default();
        options.manufacturer = MANUFACTURER;
        options.serial = args.serial;
        let mut card = VirtualCard::new(opcard::Card::new(client, options));
        eprintln!(
            "vcard-runner[{}]: OpenPGP card FFFF:{} with state in {}",
            args.serial_hex,
            args.serial_hex,
            args.state.display()
        );
        serve(&args, &mut card)
    })
}
