//! What is generated from the command line's definitions ([`super::args`]): the completion
//! scripts and the manual page (with the exit statuses). They need no configuration and no
//! state.

use clap::CommandFactory;
use terminal_app::cli::exit;

use super::args::Cli;

/// The completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page, from the command line's definitions: the synopsis, the options, the
/// commands (each has a page of its own: `command`), and the exit statuses.
pub(crate) fn man_page(command: &[String]) -> Result<String, String> {
    let mut page = Cli::command();
    for (i, name) in command.iter().enumerate() {
        let sub = page.find_subcommand(name).cloned().ok_or_else(|| {
            format!(
                "`tessera man {}`: there is no command {name:?} there (see `tessera man`)",
                command.join(" ")
            )
        })?;
        let path = &command[..=i];
        page = sub
            .name(format!("tessera-{}", path.join("-")))
            .bin_name(format!("tessera {}", path.join(" ")))
            .version(env!("CARGO_PKG_VERSION"));
    }
    let man = clap_mangen::Man::new(page.clone());
    let mut out = Vec::new();
    let written: std::io::Result<()> = (|| {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
        if page.has_subcommands() {
            man.render_subcommands_section(&mut out)?;
        }
        out.extend_from_slice(exit_status_section().as_bytes());
        man.render_version_section(&mut out)
    })();
    written.map_err(|e| format!("writing the manual page: {e}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The EXIT STATUS section of the manual page, from the same table as `tessera --help`.
fn exit_status_section() -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    for line in exit::EXIT_CODES_HELP.lines().skip(1) {
        if let Some((code, text)) = line.trim().split_once(char::is_whitespace) {
            roff.push_str(&format!(
                ".TP\n\\fB{code}\\fR\n{}\n",
                roff_text(text.trim())
            ));
        }
    }
    roff
}

/// `text` as a roff text line: backslashes and dashes escaped, no leading control character.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_man_page_names_every_command_and_exit_status_and_each_has_a_page() {
        let page = man_page(&[]).unwrap();
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            let roff = format!("tessera\\-{}(1)", name.replace('-', "\\-"));
            assert!(page.contains(&roff), "{roff} missing");
            if name == "help" {
                continue;
            }
            let own = man_page(&[name.to_owned()]).unwrap();
            assert!(own.contains(&format!(".TH tessera-{name} 1")), "{own}");
            for nested in sub.get_subcommands().filter(|n| n.get_name() != "help") {
                let path = [name.to_owned(), nested.get_name().to_owned()];
                assert!(man_page(&path).unwrap().contains(".SH OPTIONS"));
            }
        }
        assert!(page.contains(".SH \"EXIT STATUS\""));
        for code in 0..=exit::NOT_IN_BUILD {
            assert!(page.contains(&format!("\\fB{code}\\fR\n")), "status {code}");
        }
        assert!(
            man_page(&["nosuch".to_owned()])
                .unwrap_err()
                .contains("nosuch")
        );
    }

    #[test]
    fn the_completion_scripts_name_the_commands_and_bash_parses_its_own() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let script = completions(shell);
            assert!(
                script.contains("demo") && script.contains("reset"),
                "{shell}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tessera.bash");
        std::fs::write(&file, completions(clap_complete::Shell::Bash)).unwrap();
        let checked = std::process::Command::new("bash")
            .arg("-n")
            .arg(&file)
            .output()
            .expect("bash runs");
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}
