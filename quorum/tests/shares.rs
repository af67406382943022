//! Split and combine as properties, over random quorums 1 <= m <= n <= 16.

use proptest::prelude::*;
use proptest::sample::subsequence;
use quorum::secret::{Commitments, RecoverySecret, Share, combine, split, verify_share};
use quorum::{QuorumBackupKey, QuorumError};
use subtle::ConstantTimeEq;

/// A quorum (m, n), an m..=n subset of the shares in random order, and an (m-1)-subset.
fn quorum_and_subsets() -> impl Strategy<Value = (usize, usize, Vec<usize>, Vec<usize>)> {
    (1usize..=16)
        .prop_flat_map(|n| (1usize..=n, Just(n)))
        .prop_flat_map(|(m, n)| {
            let all: Vec<usize> = (0..n).collect();
            (
                Just(m),
                Just(n),
                subsequence(all.clone(), m..=n).prop_shuffle(),
                subsequence(all, m - 1),
            )
        })
}

fn same(a: &RecoverySecret, b: &RecoverySecret) -> bool {
    a.ct_eq(b).into()
}

fn pick<'a>(shares: &'a [Share], positions: &[usize]) -> Vec<&'a Share> {
    positions.iter().map(|&i| &shares[i]).collect()
}

proptest! {
    // Few cases: every case up to 16-of-16 costs hundreds of point multiplications. No failure
    // file: proptest cannot place one beside an integration test; it prints the failing input.
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_m_of_n_recombine_and_fewer_are_refused(
        (m, n, enough, too_few) in quorum_and_subsets()
    ) {
        let secret = RecoverySecret::generate().unwrap();
        let (shares, commitments) = split(&secret, m, n).unwrap();
        prop_assert_eq!(shares.len(), n);
        prop_assert_eq!(commitments.threshold(), m);
        prop_assert_eq!(commitments.secret_point(), secret.public_point());
        for (i, share) in shares.iter().enumerate() {
            prop_assert_eq!(usize::from(share.index()), i + 1);
            prop_assert!(verify_share(&commitments, share).is_ok());
        }

        let back = combine(&commitments, m, pick(&shares, &enough)).unwrap();
        prop_assert!(same(&back, &secret));

        // The stored commitments survive their encoding and still check the shares.
        let stored = Commitments::from_bytes(&commitments.to_bytes()).unwrap();
        let back = combine(&stored, m, pick(&shares, &enough)).unwrap();
        prop_assert!(same(&back, &secret));

        // m - 1 distinct shares, even presented twice over, are refused before combining.
        let mut short = pick(&shares, &too_few);
        short.extend(pick(&shares, &too_few));
        match combine(&commitments, m, short) {
            Err(QuorumError::NotEnoughShares { got, needed }) => {
                prop_assert_eq!(got, m - 1);
                prop_assert_eq!(needed, m);
            }
            other => prop_assert!(false, "m - 1 shares gave {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn shares_of_another_split_are_named_and_never_mix(
        (m, n, enough, _) in quorum_and_subsets(),
        resplit_same_secret in any::<bool>(),
    ) {
        let secret_a = RecoverySecret::generate().unwrap();
        let (shares_a, commitments_a) = split(&secret_a, m, n).unwrap();
        // Another split: of another secret, or (for m >= 2, a re-share) of the same one. With
        // m = 1 a re-split of the same secret gives the same shares, so use another secret.
        let other_secret = RecoverySecret::generate().unwrap();
        let secret_b = if resplit_same_secret && m >= 2 { &secret_a } else { &other_secret };
        let (shares_b, commitments_b) = split(secret_b, m, n).unwrap();

        // Each share of B fails against A's commitments, named by its own index.
        for share in &shares_b {
            match verify_share(&commitments_a, share) {
                Err(QuorumError::ShareMismatch { index }) => prop_assert_eq!(index, share.index()),
                other => prop_assert!(false, "a foreign share gave {:?}", other),
            }
        }

        // Replace one share of an enough-subset of A with B's share of the same index: the mix
        // is refused against either set of commitments, never combined into some secret.
        let mut mixed = pick(&shares_a, &enough);
        let victim = enough[0];
        if mixed.len() >= 2 {
            mixed[0] = &shares_b[victim];
        } else {
            // One share alone is no mix: present both splits' shares of that index.
            mixed.push(&shares_b[victim]);
        }
        for commitments in [&commitments_a, &commitments_b] {
            let result = combine(commitments, m, mixed.iter().copied());
            prop_assert!(
                matches!(
                    result,
                    Err(QuorumError::ShareMismatch { .. } | QuorumError::ConflictingShares { .. })
                ),
                "a mix of two splits gave {:?}",
                result.map(|_| ())
            );
        }

        // Adding A's own share at the same index next to B's: a conflict, not a secret.
        let mut both = pick(&shares_a, &enough);
        both.push(&shares_b[victim]);
        prop_assert!(combine(&commitments_a, m, both).is_err());
    }
}

#[test]
fn the_combined_secret_derives_the_registered_backup_key() {
    let secret = RecoverySecret::generate().unwrap();
    let (_, registered) = QuorumBackupKey::derive(&secret);
    let (shares, commitments) = split(&secret, 3, 5).unwrap();
    drop(secret);
    let back = combine(&commitments, 3, [&shares[4], &shares[0], &shares[2]]).unwrap();
    let (_, derived) = QuorumBackupKey::derive(&back);
    assert_eq!(derived, registered);
}

#[test]
fn a_wrong_threshold_is_refused() {
    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 3, 5).unwrap();
    assert!(matches!(
        combine(&commitments, 2, &shares),
        Err(QuorumError::ThresholdMismatch {
            given: 2,
            stored: 3
        })
    ));
}

#[test]
fn the_first_bad_share_is_named_even_beyond_the_threshold() {
    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 2, 4).unwrap();
    let other = RecoverySecret::generate().unwrap();
    let (foreign, _) = split(&other, 2, 4).unwrap();
    // Shares 1 and 2 would be enough; share 4 is bad and is still checked and named.
    let presented = [&shares[0], &shares[1], &foreign[3]];
    assert!(matches!(
        combine(&commitments, 2, presented),
        Err(QuorumError::ShareMismatch { index: 4 })
    ));
}

#[test]
fn debug_of_secrets_shows_no_bytes() {
    let secret = RecoverySecret::from_bytes(&[0x5a; 32]).unwrap();
    let shown = format!("{secret:?}");
    assert_eq!(shown, "RecoverySecret(<redacted>)");

    let (shares, commitments) = split(&secret, 2, 3).unwrap();
    for share in &shares {
        let shown = format!("{share:?}");
        let bytes = share.to_bytes();
        let value = &bytes[1..];
        let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
        for window in 0..value.len() - 3 {
            assert!(!shown.contains(&hex[window * 2..window * 2 + 8]), "{shown}");
        }
        assert!(
            !shown.contains(&format!("{:?}", &value[..3])[1..]),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
    }
    // Commitments are public, but their Debug stays short.
    assert!(format!("{commitments:?}").starts_with("Commitments { threshold: 2"));

    let (private, _) = QuorumBackupKey::derive(&secret);
    assert_eq!(format!("{private:?}"), "QuorumBackupKey(<redacted>)");
}
