//! `tessera open`, and `tessera` alone in a terminal: the TUI against a paired partition.

use terminal_app::Error;
use terminal_app::config::TerminalConfig;
use terminal_app::pair;
use terminal_app::state::StateDir;

/// The TUI against a paired partition: chosen from the list (`which` is `None`), or the one
/// named (or the only one).
pub(crate) fn tui_paired(
    state: &dyn Fn() -> Result<StateDir, Error>,
    which: Option<Option<&str>>,
    config: &TerminalConfig,
    key: Option<&str>,
    idle_lock: u64,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use terminal_app::tui::{chooser, paired, theme::Theme};
    if !paired::is_terminal() {
        anyhow::bail!(
            "the TUI needs a terminal; without one, `tessera list` lists the paired partitions \
             and `tessera status`, `tessera keys list` … read them"
        );
    }
    let state = state()?;
    let list = state.paired()?;
    let entry = match which {
        Some(name) => pair::choose(&list, name)?.clone(),
        None => {
            let theme = Theme::for_terminal(Theme::no_color_from_env());
            match chooser::choose(&list, &theme).context("the TUI failed")? {
                Some(i) => list.partitions()[i].clone(),
                None => return Ok(()),
            }
        }
    };
    let given = key.map(paired::parse_audit_key).transpose()?;
    let audit_key = paired::audit_key(&entry, given)?;
    let options = paired::PairedOptions {
        idle_lock_secs: idle_lock,
        policy: config.card_policy(),
        soft_card_dir: config.cards.soft_card_dir.clone(),
        end_on_card_removal: !config.cards.keep_session_on_card_removal,
        firmware_root: config.firmware.root.clone(),
        drive_allow: config.backup.allow.clone(),
    };
    paired::run_paired(state.path().to_owned(), entry, audit_key, options).context("the TUI failed")
}
