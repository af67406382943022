//! The PC/SC test stack as the card tests and the quorum benchmark use it: the run directory
//! `scripts/pcsc-up` writes (`readers.tsv`), its lock (one user of the cards at a time), and a
//! factory reset of a card. Used by quorum's `tests/pcsc.rs`, `tests/pcsc_ceremony.rs` and
//! `benches/quorum.rs`, terminal-app's `tests/card_cli.rs` and firmware-image's `tests/pcsc.rs`.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use card_backend_pcsc::PcscBackend;
use openpgp_card::state::Open;

/// The stack's run directory (`TESSERA_PCSC_DIR`, or `target/pcsc`).
pub fn pcsc_dir() -> PathBuf {
    match std::env::var_os("TESSERA_PCSC_DIR") {
        Some(dir) => PathBuf::from(dir),
        // This crate, like every user of it, sits one level below the repository's root.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pcsc"),
    }
}

/// The stack's cards as `readers.tsv` lists them, with the stack's lock held until dropped.
pub struct Stack {
    rows: Vec<(String, String, String)>,
    table: PathBuf,
    _lock: File,
}

impl Stack {
    /// Reads `readers.tsv` and takes the lock. The error says what to run when the stack is
    /// not up.
    pub fn lock() -> Result<Stack, String> {
        let dir = pcsc_dir();
        let table = dir.join("readers.tsv");
        let text = std::fs::read_to_string(&table).map_err(|e| {
            format!(
                "{}: {e}; these tests need the PC/SC test stack: run scripts/pcsc-up first \
                 (scripts/test does), then run the tests again",
                table.display()
            )
        })?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .expect("open target/pcsc/lock");
        lock.lock().expect("lock target/pcsc/lock");
        let rows = text
            .lines()
            .skip(1)
            .map(|line| {
                let row: Vec<&str> = line.split('\t').collect();
                (row[0].to_owned(), row[1].to_owned(), row[3].to_owned())
            })
            .collect();
        Ok(Stack {
            rows,
            table,
            _lock: lock,
        })
    }

    /// Card `index`: its reader and serial (`FFFF:…`), if the stack has it.
    pub fn card(&self, index: usize) -> Option<(String, String)> {
        let (number, reader, serial) = self.rows.get(index)?;
        assert_eq!(
            *number,
            index.to_string(),
            "malformed {}",
            self.table.display()
        );
        Some((reader.clone(), format!("FFFF:{serial}")))
    }

    /// Card `index`, or a panic that says how many cards the stack lists.
    pub fn expect_card(&self, index: usize) -> (String, String) {
        self.card(index).unwrap_or_else(|| {
            panic!(
                "{} lists {} cards; this test needs {}: run scripts/pcsc-up 6",
                self.table.display(),
                self.rows.len(),
                index + 1
            )
        })
    }
}

/// Factory reset with `openpgp-card` directly (block both PINs, TERMINATE DF, ACTIVATE FILE):
/// keys, data objects, holder and PINs back to the defaults. Waits (polling) up to 10 s for the
/// card to be present.
pub fn factory_reset(reader: &str) {
    let name = CString::new(reader).unwrap();
    let context =
        pcsc::Context::establish(pcsc::Scope::User).expect("PC/SC context (is pcscd running?)");
    let deadline = Instant::now() + Duration::from_secs(10);
    let handle = loop {
        match context.connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY) {
            Ok(handle) => break handle,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("no card in \"{reader}\" after 10 s: {e}; run scripts/pcsc-up 6"),
        }
    };
    let backend = PcscBackend::from_pcsc_card(&name, pcsc::ShareMode::Exclusive, handle).unwrap();
    let mut card = openpgp_card::Card::<Open>::new(backend).unwrap();
    let mut tx = card.transaction().unwrap();
    tx.factory_reset().unwrap();
}
