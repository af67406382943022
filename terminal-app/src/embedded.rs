//! The embedded default: an in-process HSM on the other end of an in-memory link.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use hsm_link::client::{self, ConnectOptions};
use hsm_link::domain::PartitionId;
use hsm_link::handshake::client::ClientMode;
use hsm_link::keys::StaticKeypair;
use hsm_link::message::{Request, Response};
use hsm_link::server::{self, ServeOptions};
use hsm_link::transport::memory;
use hsm_link::trust::MemoryTrustStore;

/// The demo partition's id.
pub(crate) const DEMO_PARTITION: &str = "demo-partition";

/// Pairs a fresh terminal key with a fresh in-process HSM, reconnects with the pinned keys, and
/// returns what an operator would read: fingerprints, protocol version, link figures, and what
/// is still to come.
pub(crate) fn run_demo(link_test_bytes: u64) -> anyhow::Result<String> {
    let partition = PartitionId::new(DEMO_PARTITION)?;
    let trust = Arc::new(MemoryTrustStore::default());
    trust.add_partition(partition.clone());
    let code = trust
        .issue_pairing_code(&partition)
        .context("the OS random number generator failed")?;
    let hsm = Arc::new(StaticKeypair::generate()?);
    let terminal = StaticKeypair::generate()?;

    let mut out = String::new();
    writeln!(
        out,
        "Tessera terminal — embedded default (in-process HSM simulator)"
    )?;
    writeln!(
        out,
        "  HSM key fingerprint       {}",
        hsm.public().fingerprint()
    )?;
    writeln!(
        out,
        "  terminal key fingerprint  {}",
        terminal.public().fingerprint()
    )?;
    writeln!(out, "  one-time pairing code     {}", &*code.display())?;

    // First contact: pairing with the one-time code.
    let (near, far) = memory::pair();
    let server = spawn_server(far, &hsm, &trust);
    let conn = client::connect(
        near,
        &terminal,
        partition.clone(),
        ClientMode::Pairing(code),
        ConnectOptions::default(),
    )
    .context("pairing with the embedded HSM failed")?;
    let pinned_hsm = conn.session().remote_key();
    let binding = *conn.session().channel_binding();
    conn.close()?;
    server.join().expect("embedded HSM thread")?;
    writeln!(
        out,
        "Paired over Noise XXpsk3; the pairing code is now spent."
    )?;
    writeln!(
        out,
        "  HSM key as the terminal pinned it  {}",
        pinned_hsm.fingerprint()
    )?;
    for key in trust.pinned_terminals(&partition) {
        writeln!(
            out,
            "  terminal key as the HSM pinned it  {}",
            key.fingerprint()
        )?;
    }

    // Every later session: Noise KK with both keys pinned.
    let (near, far) = memory::pair();
    let server = spawn_server(far, &hsm, &trust);
    let mut conn = client::connect(
        near,
        &terminal,
        partition,
        ClientMode::Pinned { hsm: pinned_hsm },
        ConnectOptions::default(),
    )
    .context("the pinned session with the embedded HSM failed")?;
    let Response::SessionInfo(info) = conn.call(Request::SessionInfo)? else {
        anyhow::bail!("the HSM answered SessionInfo with something else");
    };
    anyhow::ensure!(
        *conn.session().channel_binding() != binding,
        "two sessions shared a handshake hash"
    );
    let report = conn.link_test(link_test_bytes)?;
    conn.close()?;
    let summary = server.join().expect("embedded HSM thread")?;
    writeln!(out, "Pinned session over Noise KK.")?;
    writeln!(out, "  protocol version          {}", info.protocol_version)?;
    writeln!(out, "  partition                 {}", info.partition)?;
    writeln!(out, "  HSM sees terminal         {}", info.terminal)?;
    writeln!(out, "  terminal sees HSM         {}", info.hsm)?;
    writeln!(
        out,
        "  link test                 {} bytes verified in {:.1} ms ({} requests served)",
        report.bytes,
        report.elapsed.as_secs_f64() * 1e3,
        summary.requests
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Still to come: the partition service (configuration, keys, bin, audit log), m-of-n card \
         login with demo cards, USB backups, firmware images, and the TUI itself. This command \
         stays the way to start them."
    )?;
    Ok(out)
}

fn spawn_server(
    mut transport: memory::MemoryTransport,
    hsm: &Arc<StaticKeypair>,
    trust: &Arc<MemoryTrustStore>,
) -> std::thread::JoinHandle<Result<server::SessionSummary, hsm_link::Error>> {
    let (hsm, trust) = (Arc::clone(hsm), Arc::clone(trust));
    std::thread::spawn(move || {
        server::serve_connection(
            &mut transport,
            &hsm,
            &ServeOptions::default(),
            &*trust,
            &server::NoAdministration,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_pairs_and_both_sides_agree_on_fingerprints() {
        let report = run_demo(100_000).unwrap();
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
        assert_eq!(line("HSM sees terminal"), terminal);
        assert_eq!(line("terminal sees HSM"), hsm);
        assert_eq!(line("protocol version"), "1");
        assert!(line("link test").starts_with("100000 bytes verified"));
    }
}
