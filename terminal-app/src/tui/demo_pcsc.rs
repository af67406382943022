//! `tessera demo --pcsc`: the demo HSM (in process, its store in memory) with a 2-of-3 PSO set on
//! the virtual OpenPGP cards that `scripts/pcsc-up` runs behind the real pcscd, instead of soft
//! cards; the worker's card reader is the same [`PcscReader`] as against a paired HSM.
//!
//! Only readers whose name starts with [`VIRTUAL_READER_PREFIX`] are touched, never a real card:
//! the first three of them. A card without keys gets them (generated on the card with the
//! factory admin PIN) and a holder name; every card is enrolled with the factory user PIN
//! ([`DEMO_PIN`], said on the first screen), which overwrites its share object.

use std::sync::Arc;

use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::{PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::server::{self, ServeOptions};
use hsm_link::transport::memory::{self, MemoryTransport};
use partition_service::admin::AdminLink;
use partition_service::crypto::HsmKeys;
use partition_service::service::{Clock, Hsm, genesis};
use partition_service::store::Store;
use quorum::card::{Card, Pin};
use quorum::ceremony::Enrolment;
use quorum::pcsc::{FACTORY_ADMIN_PIN, FACTORY_USER_PIN};
use quorum::{CardPolicy, PcscCard};

use super::model::{Level, Model, Target};
use super::pcsc_reader::PcscReader;
use super::worker::Worker;

/// The readers `scripts/pcsc-up` makes: `Tessera vcard K 00 0S`.
pub const VIRTUAL_READER_PREFIX: &str = "Tessera vcard";

/// The PIN of the demo's cards: the OpenPGP factory user PIN.
pub const DEMO_PIN: &str = "123456";

/// The demo partition's id.
pub const PARTITION: &str = "demo-partition";

/// Holders of the three PSO cards, in reader order.
pub const HOLDERS: [&str; 3] = ["Ada Card", "Ben Card", "Cleo Card"];

/// Runs `tessera demo --pcsc`: the HSM is made at once, the cards are prepared and enrolled on
/// the worker thread after the first frame.
pub fn run(idle_lock_secs: u64) -> std::io::Result<()> {
    let hsm = Arc::new(Hsm::with_parts(
        HsmKeys::generate().map_err(std::io::Error::other)?,
        Store::in_memory().map_err(std::io::Error::other)?,
        Clock::system(),
    ));
    let partition = PartitionId::new(PARTITION).map_err(std::io::Error::other)?;
    hsm.create_partition(partition.clone(), "Demo partition", ServiceTier::Economy)
        .map_err(std::io::Error::other)?;
    let target = Target {
        partition_id: PARTITION.to_owned(),
        partition_name: "Demo partition".to_owned(),
        hsm_id: hsm.keys().hsm_id().to_string(),
        hsm_fingerprint: hsm.keys().identity_public().fingerprint().to_string(),
        tier: ServiceTier::Economy.as_str().to_owned(),
        transport: "in-memory link · demo HSM (a simulator) · virtual OpenPGP cards behind pcscd"
            .to_owned(),
    };
    let mut model = Model::new(target, Vec::new());
    model.idle_lock_ms = idle_lock_secs.saturating_mul(1000);
    // One line at 80 columns: the PIN first.
    model.notify(
        Level::Info,
        format!("Card PIN {DEMO_PIN} · PSO set: Ada, Ben, Cleo Card, any two"),
    );
    let theme = super::theme::Theme::for_terminal(super::theme::Theme::no_color_from_env());
    super::run(model, move || build(&hsm, partition), theme)
}

/// The first three virtual readers.
pub fn virtual_readers() -> Result<Vec<String>, String> {
    let readers: Vec<String> = quorum::pcsc::list_readers()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| r.starts_with(VIRTUAL_READER_PREFIX))
        .take(HOLDERS.len())
        .collect();
    if readers.len() < HOLDERS.len() {
        return Err(format!(
            "`tessera demo --pcsc` needs {} virtual card readers (\"{VIRTUAL_READER_PREFIX} …\"), \
             found {}: run scripts/pcsc-up first, or `tessera demo` for soft cards",
            HOLDERS.len(),
            readers.len()
        ));
    }
    Ok(readers)
}

/// Gives the card in `reader` keys and a holder when it has none; the card, verified with the
/// demo PIN.
fn prepare(reader: &str, holder: &str) -> Result<quorum::VerifiedPcscCard, String> {
    let failed = |e: &dyn std::fmt::Display| format!("the card in \"{reader}\": {e}");
    let mut card = PcscCard::open(reader).map_err(|e| failed(&e))?;
    if !card.has_keys() {
        let mut admin = card
            .admin(&Pin::from_slice(FACTORY_ADMIN_PIN))
            .map_err(|(_, e)| {
                failed(&format!(
                    "{e}; it has no keys and its admin PIN is not the factory one: run \
                     scripts/pcsc-up again for fresh cards"
                ))
            })?;
        admin.set_ecc_algorithms().map_err(|e| failed(&e))?;
        admin.generate_keys().map_err(|e| failed(&e))?;
        admin.set_holder(holder).map_err(|e| failed(&e))?;
        card = admin.finish().map_err(|e| failed(&e))?;
    }
    card.verify(&Pin::from_slice(FACTORY_USER_PIN))
        .map_err(|(_, e)| {
            failed(&format!(
                "{e}; the demo uses the factory PIN {DEMO_PIN}: run scripts/pcsc-up again for \
                 fresh cards"
            ))
        })
}

/// Pairs, enrols the cards as the PSO set, and opens the pinned session the TUI uses.
fn build(hsm: &Arc<Hsm>, partition: PartitionId) -> Result<Worker, String> {
    let text = |e: &dyn std::fmt::Display| format!("setting up the demo HSM failed: {e}");
    let readers = virtual_readers()?;
    let terminal = StaticKeypair::generate().map_err(|e| text(&e))?;
    let code = hsm
        .issue_pairing_code(&partition, genesis())
        .map_err(|e| text(&e))?;
    let mut conn = client::connect(
        serve(hsm),
        &terminal,
        partition.clone(),
        ClientMode::Pairing(code),
        ConnectOptions::default(),
    )
    .map_err(|e| text(&e))?;
    let pinned = conn.session().remote_key();
    let mut enrolment = Enrolment::begin(&mut conn, 2, 3).map_err(|e| text(&e))?;
    for (reader, holder) in readers.iter().zip(HOLDERS) {
        // Each card is dropped (reset, its PIN forgotten) before the next is opened.
        let mut card = prepare(reader, holder)?;
        enrolment.add_card(&mut card).map_err(|e| text(&e))?;
    }
    enrolment.finish(&mut conn).map_err(|e| text(&e))?;
    conn.close().map_err(|e| text(&e))?;
    let conn = client::connect(
        serve(hsm),
        &terminal,
        partition,
        ClientMode::Pinned { hsm: pinned },
        ConnectOptions::default(),
    )
    .map_err(|e| text(&e))?;
    let reader = PcscReader::new(None, CardPolicy::hardware_only());
    Ok(Worker::new(
        Box::new(conn),
        Box::new(reader),
        hsm.audit_key(),
    ))
}

/// One session with the in-process HSM over the in-memory link, served on its own thread.
fn serve(hsm: &Arc<Hsm>) -> MemoryTransport {
    let (near, mut far) = memory::pair();
    let hsm = Arc::clone(hsm);
    std::thread::spawn(move || {
        let admin = AdminLink::new(Arc::clone(&hsm));
        let _ = server::serve_connection(
            &mut far,
            hsm.keys().identity(),
            &ServeOptions::default(),
            &*hsm,
            &admin,
        );
    });
    near
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_pin_is_the_factory_pin() {
        assert_eq!(DEMO_PIN.as_bytes(), FACTORY_USER_PIN);
    }
}
