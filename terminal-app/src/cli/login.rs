//! An officer login from the command line, through `quorum`'s login ceremony: the cards are
//! named in arguments (`--card READER`, `--soft FILE`: not secrets), and each card's PIN or
//! passphrase is asked for as the card's turn comes, never taken from arguments or the
//! environment. A wrong PIN is asked again while the card has tries left when `retry` is set
//! (an operator at a terminal); otherwise it ends the command with the tries left
//! ([`Error::WrongPin`]). A blocked card, a card of another set and the same card twice end it
//! with their own typed errors.

use std::io::Write;
use std::path::PathBuf;

use hsm_link::message::OfficerRole;
use quorum::ceremony::{CardRef, Link, LoginCeremony};
use quorum::{CardPolicy, PcscCard, Pin, SoftCard, VerifiedCard as _};
use zeroize::Zeroizing;

use crate::error::{CardName, Error};

/// The cards to log in with, in the order they are presented.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardChoice {
    /// PC/SC readers, each with an OpenPGP card.
    pub readers: Vec<String>,
    /// Soft card files (refused unless the configuration allows soft cards).
    pub soft: Vec<PathBuf>,
}

/// Asks for a card's PIN or passphrase; the question names the card.
pub type AskPin<'a> = dyn FnMut(&str) -> Result<Zeroizing<Vec<u8>>, Error> + 'a;

/// Logs in as `role` with the cards of `choice`, asking each one's PIN with `ask` and telling
/// the progress on `progress`; the holders the HSM logged in.
pub fn login(
    conn: &mut (impl Link + ?Sized),
    role: OfficerRole,
    choice: &CardChoice,
    policy: CardPolicy,
    ask: &mut AskPin<'_>,
    retry: bool,
    progress: &mut dyn Write,
) -> Result<Vec<String>, Error> {
    if choice.readers.is_empty() && choice.soft.is_empty() {
        return Err(Error::Usage(
            "this needs an officer login: name the cards with --card READER (see `tessera card \
             list`) or --soft FILE; each PIN is asked on the terminal"
                .to_owned(),
        ));
    }
    let mut login = LoginCeremony::start(conn, role)?;
    let _ = writeln!(
        progress,
        "login: {} of the {} cards of the set must sign",
        login.progress().need,
        login.cards().len()
    );
    for reader in &choice.readers {
        let card = PcscCard::open(reader).map_err(|source| Error::OpenReader {
            reader: super::printable(reader),
            source,
        })?;
        let mut verified = verify(card, "PIN", ask, retry, progress)?;
        let step = login.present(&mut verified)?;
        let _ = writeln!(progress, "login: {} signed — {step}", verified.info());
    }
    for path in &choice.soft {
        let card = SoftCard::open(path, policy)?;
        let mut verified = verify(card, "passphrase", ask, retry, progress)?;
        let step = login.present(&mut verified)?;
        let _ = writeln!(progress, "login: {} signed — {step}", verified.info());
    }
    let holders = login.submit(conn)?;
    Ok(holders.iter().map(|h| h.as_str().to_owned()).collect())
}

/// Asks for `card`'s PIN (`secret` names it: PIN or passphrase) and checks it; with `retry`,
/// asks again after a wrong one while the card has tries left.
pub(crate) fn verify<C: quorum::Card>(
    mut card: C,
    secret: &str,
    ask: &mut AskPin<'_>,
    retry: bool,
    progress: &mut dyn Write,
) -> Result<C::Verified, Error> {
    loop {
        let info = card.info();
        let tries = info
            .pin_retries_left
            .map_or_else(String::new, |n| format!(" ({n} tries left)"));
        let pin = Pin::from_slice(&ask(&format!("{secret} of {info}{tries}: "))?);
        match card.verify(&pin) {
            Ok(verified) => return Ok(verified),
            Err((back, e)) => {
                let e = Error::card(CardName::of(card_ref(&info)), e);
                let again =
                    matches!(e, Error::WrongPin { retries_left, .. } if retries_left != Some(0));
                if !(retry && again) {
                    return Err(e);
                }
                let _ = writeln!(progress, "login: {e}");
                card = back;
            }
        }
    }
}

fn card_ref(info: &quorum::CardInfo) -> CardRef {
    CardRef {
        holder: info.holder.clone(),
        serial: info.serial.clone(),
        soft: info.soft,
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cli::testing::{POLICY, enrolled};

    fn choice(dir: &Path, names: &[&str]) -> CardChoice {
        CardChoice {
            readers: Vec::new(),
            soft: names.iter().map(|n| dir.join(n)).collect(),
        }
    }

    #[test]
    fn login_asks_each_pin_retries_a_wrong_one_and_types_the_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = enrolled(dir.path(), 2, &["a", "b", "c"], &["d"]);
        let mut asked = Vec::new();
        // Card a: a wrong passphrase first, then the right one; card b at once.
        let mut answers = vec!["wrong".repeat(3), "a".repeat(12), "b".repeat(12)].into_iter();
        let mut ask = |q: &str| {
            asked.push(q.to_owned());
            Ok(Zeroizing::new(answers.next().unwrap().into_bytes()))
        };
        let mut progress = Vec::new();
        let cards = choice(dir.path(), &["a", "b"]);
        let holders = login(
            &mut conn,
            OfficerRole::Pso,
            &cards,
            POLICY,
            &mut ask,
            true,
            &mut progress,
        )
        .unwrap();
        assert_eq!(holders, ["a", "b"]);
        assert_eq!(asked.len(), 3, "{asked:?}");
        assert!(
            asked[0].starts_with("passphrase of soft card SOFT:a (a)"),
            "{asked:?}"
        );
        let progress = String::from_utf8(progress).unwrap();
        assert!(progress.contains("wrong PIN or passphrase"), "{progress}");
        assert!(progress.contains("2 of 2 — complete"), "{progress}");

        let pin = |p: &'static str| move |_: &str| Ok(Zeroizing::new(p.as_bytes().to_vec()));
        // Without retries a wrong passphrase ends the login, typed.
        let e = login(
            &mut conn,
            OfficerRole::Pso,
            &choice(dir.path(), &["a"]),
            POLICY,
            &mut pin("nope nope nope"),
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                Error::WrongPin {
                    retries_left: None,
                    ..
                }
            ),
            "{e:?}"
        );
        // A card of no set, and the same card twice.
        let mut d = |_: &str| Ok(Zeroizing::new("d".repeat(12).into_bytes()));
        let e = login(
            &mut conn,
            OfficerRole::Pso,
            &choice(dir.path(), &["d"]),
            POLICY,
            &mut d,
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::WrongCard { card } if card.to_string().contains("SOFT:d")),
            "{e:?}"
        );
        let mut c = |_: &str| Ok(Zeroizing::new("c".repeat(12).into_bytes()));
        let e = login(
            &mut conn,
            OfficerRole::Pso,
            &choice(dir.path(), &["c", "c"]),
            POLICY,
            &mut c,
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::SameCardTwice { .. }), "{e:?}");
        assert_eq!(e.exit_code(), crate::cli::exit::CARD);
        // No card named: says how to name them.
        let e = login(
            &mut conn,
            OfficerRole::Pso,
            &CardChoice::default(),
            POLICY,
            &mut c,
            false,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--card READER"), "{e}");
    }
}
