//! For the command modules' tests: a session with an in-process HSM (the embedded default's
//! simulator) whose partition has a PSO set on soft cards.

use std::path::Path;
use std::sync::Arc;

use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::{PartitionId, ServiceTier};
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::server::{self, ServeOptions};
use hsm_link::transport::{FrameTransport, memory};
use partition_service::admin::AdminLink;
use partition_service::crypto::HsmKeys;
use partition_service::service::{Clock, Hsm, genesis};
use partition_service::store::Store;
use quorum::ceremony::Enrolment;
use quorum::{Argon2Params, Card as _, CardPolicy, Pin, SoftCard};

use crate::pair::AnyConnection;

/// The card policy of these tests (soft cards allowed by configuration).
pub(crate) const POLICY: CardPolicy = CardPolicy::allowed_by_configuration();

/// The passphrase of the test soft card `name` (its holder name too).
pub(crate) fn passphrase(name: &str) -> String {
    name.repeat(12)
}

/// A paired session with an in-process HSM whose partition `p` has an m-of-n PSO set
/// (`threshold` of `set`) on soft cards in `dir` named after their holders (serial `SOFT:name`,
/// passphrase [`passphrase`]), and soft cards `outside` in no set.
pub(crate) fn enrolled(dir: &Path, threshold: u8, set: &[&str], outside: &[&str]) -> AnyConnection {
    enrolled_with_hsm(dir, threshold, set, outside).0
}

/// [`enrolled`], and the HSM (for its public keys).
pub(crate) fn enrolled_with_hsm(
    dir: &Path,
    threshold: u8,
    set: &[&str],
    outside: &[&str],
) -> (AnyConnection, Arc<Hsm>) {
    enrolled_on(dir, "p", threshold, set, outside)
}

/// [`enrolled_with_hsm`] with the partition named `partition` (a second HSM of a migration).
pub(crate) fn enrolled_on(
    dir: &Path,
    partition: &str,
    threshold: u8,
    set: &[&str],
    outside: &[&str],
) -> (AnyConnection, Arc<Hsm>) {
    let hsm = Arc::new(Hsm::with_parts(
        HsmKeys::generate().unwrap(),
        Store::in_memory().unwrap(),
        Clock::system(),
    ));
    let partition = PartitionId::new(partition).unwrap();
    hsm.create_partition(
        partition.clone(),
        &partition.as_str().to_uppercase(),
        ServiceTier::Economy,
    )
    .unwrap();
    hsm.set_soft_cards_allowed(true).unwrap();
    let code = hsm.issue_pairing_code(&partition, genesis()).unwrap();
    let (near, mut far) = memory::pair();
    let served = Arc::clone(&hsm);
    std::thread::spawn(move || {
        let hsm = served;
        let admin = AdminLink::new(Arc::clone(&hsm));
        let options = ServeOptions::default();
        server::serve_connection(&mut far, hsm.keys().identity(), &options, &*hsm, &admin)
    });
    let near: Box<dyn FrameTransport> = Box::new(near);
    let terminal = StaticKeypair::generate().unwrap();
    let mode = ClientMode::Pairing(code);
    let mut conn =
        client::connect(near, &terminal, partition, mode, ConnectOptions::default()).unwrap();
    let mut enrolment = Enrolment::begin(&mut conn, threshold, set.len() as u8).unwrap();
    for name in set.iter().chain(outside) {
        let pin = Pin::from_slice(passphrase(name).as_bytes());
        let path = dir.join(name);
        let serial = format!("SOFT:{name}");
        let params = Argon2Params::production();
        let card = SoftCard::create(&path, Some(name), &serial, &pin, params, POLICY).unwrap();
        if set.contains(name) {
            let mut verified = card.verify(&pin).map_err(|(_, e)| e).unwrap();
            enrolment.add_card(&mut verified).unwrap();
        }
    }
    enrolment.finish(&mut conn).unwrap();
    (conn, hsm)
}
