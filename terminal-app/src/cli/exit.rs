//! The `tessera` process's exit statuses, one per kind of outcome a script acts on
//! ([`crate::Error::exit_code`] maps every error to one). `tessera --help` and the README list
//! them ([`EXIT_CODES_HELP`]).

/// Done.
pub const OK: u8 = 0;
/// Any failure not listed below.
pub const FAILURE: u8 = 1;
/// The command line was not understood (clap's own status).
pub const USAGE: u8 = 2;
/// The configuration, the state directory or what was typed cannot be used.
pub const SETUP: u8 = 3;
/// No such paired partition, none paired, or which one is ambiguous.
pub const NOT_PAIRED: u8 = 4;
/// The HSM could not be reached, the link failed, or another session took over.
pub const LINK: u8 = 5;
/// The HSM refused (role, policy, stale configuration revision …).
pub const REFUSED: u8 = 6;
/// A card: wrong PIN, blocked, not in the set, presented twice, or unusable.
pub const CARD: u8 = 7;
/// The HSM throttles logins or drill reports: try again later.
pub const THROTTLED: u8 = 8;
/// The operator did not confirm the HSM's fingerprint: nothing was pinned.
pub const NOT_CONFIRMED: u8 = 9;
/// This build lacks the feature asked for (the embedded default).
pub const NOT_IN_BUILD: u8 = 10;

/// The exit statuses as `tessera --help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0   done
  1   any other failure
  2   the command line was not understood
  3   the configuration, the state directory or what was typed cannot be used
  4   no such paired partition, none paired, or several and none chosen (--name)
  5   the HSM could not be reached, the link failed, or another session took over
  6   the HSM refused (role, policy, stale configuration revision)
  7   a card: wrong PIN, blocked, not in the set, presented twice, or unusable
  8   the HSM throttles logins or drill reports: try again later
  9   the HSM's fingerprint was not confirmed: nothing was pinned
  10  this build lacks the embedded default";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_lists_every_status_once() {
        for code in [
            OK,
            FAILURE,
            USAGE,
            SETUP,
            NOT_PAIRED,
            LINK,
            REFUSED,
            CARD,
            THROTTLED,
            NOT_CONFIRMED,
            NOT_IN_BUILD,
        ] {
            let lines = EXIT_CODES_HELP
                .lines()
                .filter(|l| l.split_whitespace().next() == Some(&code.to_string()))
                .count();
            assert_eq!(lines, 1, "status {code}");
        }
    }
}
