//! `tessera demo`: the embedded default's TUI (soft cards, or `--pcsc` the virtual OpenPGP
//! cards) and its printed walk-through (`--transcript`).

use terminal_app::Error;

/// The embedded demo's transcript.
#[cfg(feature = "embedded")]
pub(crate) fn demo(link_test_bytes: u64) -> Result<String, Error> {
    use terminal_app::embedded::{DemoOptions, run_demo};
    let report = run_demo(DemoOptions {
        link_test_bytes,
        params: quorum::Argon2Params::production(),
        test_cards: false,
    })?;
    Ok(report.transcript)
}

/// This build has no embedded default.
#[cfg(not(feature = "embedded"))]
pub(crate) fn demo(_link_test_bytes: u64) -> Result<String, Error> {
    Err(Error::EmbeddedNotBuilt)
}

/// The TUI against the embedded demo HSM, its state in `demo_dir`; it needs a terminal.
#[cfg(feature = "embedded")]
pub(crate) fn tui_demo(
    idle_lock: u64,
    demo_dir: &std::path::Path,
    reset: bool,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::IsTerminal;
    use terminal_app::tui::demo;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "`tessera demo` opens a full-screen TUI and needs a terminal; without one, \
             run `tessera demo --transcript` for the printed walk-through"
        );
    }
    if reset {
        println!(
            "tessera demo --reset: removing the demo state in {}: the demo HSM (its keys, \
             partition, configuration, keys and log), the soft cards, the demo terminal's key \
             and pin, the demo drive directory and the demo's firmware device.",
            demo_dir.display()
        );
        demo::reset(demo_dir).map_err(anyhow::Error::msg)?;
    }
    terminal_app::tui::run_demo(idle_lock, quorum::Argon2Params::production(), demo_dir)
        .context("the TUI failed")
}

/// `tessera demo --pcsc`: the TUI against the embedded demo HSM with the virtual OpenPGP cards.
#[cfg(feature = "embedded")]
pub(crate) fn tui_demo_pcsc(idle_lock: u64) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if !terminal_app::tui::paired::is_terminal() {
        anyhow::bail!("`tessera demo --pcsc` opens a full-screen TUI and needs a terminal");
    }
    terminal_app::tui::demo_pcsc::run(idle_lock).context("the TUI failed")
}

/// This build has no embedded default.
#[cfg(not(feature = "embedded"))]
pub(crate) fn tui_demo_pcsc(_idle_lock: u64) -> anyhow::Result<()> {
    Err(Error::EmbeddedNotBuilt.into())
}

/// This build has no embedded default.
#[cfg(not(feature = "embedded"))]
pub(crate) fn tui_demo(
    _idle_lock: u64,
    _demo_dir: &std::path::Path,
    _reset: bool,
) -> anyhow::Result<()> {
    Err(Error::EmbeddedNotBuilt.into())
}
