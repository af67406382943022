//! Share envelopes against tampering, truncation, wrong cards and wrong contexts.

use hsm_link::domain::PartitionId;
use quorum::envelope::{
    ENVELOPE_HEADER_LEN, ENVELOPE_LEN_V1, EnvelopeHeader, MAX_ENVELOPE_LEN, ShareContext,
    open_share, open_share_with_x25519, seal_share,
};
use quorum::secret::{RecoverySecret, Share, split, verify_share};
use quorum::{EnvelopeError, QuorumError};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

struct Fixture {
    card_secret: [u8; 32],
    card_public: [u8; 32],
    shares: Vec<Share>,
    commitments: quorum::Commitments,
}

fn fixture() -> Fixture {
    let card_secret = [0x11; 32];
    let card_public = PublicKey::from(&StaticSecret::from(card_secret)).to_bytes();
    let secret = RecoverySecret::generate().unwrap();
    let (shares, commitments) = split(&secret, 2, 3).unwrap();
    Fixture {
        card_secret,
        card_public,
        shares,
        commitments,
    }
}

fn context(index: u8) -> ShareContext {
    ShareContext {
        partition: PartitionId::new("bank-payments").unwrap(),
        set_number: 4,
        share_index: index,
        card_serial: "000F:1234ABCD".to_owned(),
    }
}

fn open(f: &Fixture, bytes: &[u8], ctx: &ShareContext) -> Result<Share, QuorumError> {
    let header = EnvelopeHeader::parse(bytes)?;
    open_share_with_x25519(&header, &f.card_secret, ctx)
}

#[test]
fn a_sealed_share_opens_with_its_card_and_context() {
    let f = fixture();
    for share in &f.shares {
        let ctx = context(share.index());
        let sealed = seal_share(&f.card_public, &ctx, share).unwrap();
        assert_eq!(sealed.len(), ENVELOPE_LEN_V1);
        assert_eq!(&sealed[..5], b"TSSH\x01");
        let opened = open(&f, &sealed, &ctx).unwrap();
        assert_eq!(opened.index(), share.index());
        assert_eq!(*opened.to_bytes(), *share.to_bytes());
        verify_share(&f.commitments, &opened).unwrap();
    }
}

#[test]
fn the_ecdh_can_happen_elsewhere() {
    // As on a smartcard: the terminal never holds the card's secret, only asks for the ECDH.
    let f = fixture();
    let ctx = context(1);
    let sealed = seal_share(&f.card_public, &ctx, &f.shares[0]).unwrap();
    let header = EnvelopeHeader::parse(&sealed).unwrap();
    let card = StaticSecret::from(f.card_secret);
    let mut asked = 0;
    let opened = open_share(
        &header,
        &f.card_public,
        |ephemeral| {
            asked += 1;
            let shared = card.diffie_hellman(&PublicKey::from(*ephemeral));
            Ok::<_, QuorumError>(Zeroizing::new(shared.to_bytes()))
        },
        &ctx,
    )
    .unwrap();
    assert_eq!(asked, 1);
    assert_eq!(opened.index(), 1);
}

#[test]
fn every_flipped_bit_is_rejected_opaquely_in_the_body_and_by_name_in_the_header() {
    let f = fixture();
    let ctx = context(2);
    let sealed = seal_share(&f.card_public, &ctx, &f.shares[1]).unwrap();
    for byte in 0..sealed.len() {
        for bit in 0..8 {
            let mut tampered = sealed.clone();
            tampered[byte] ^= 1 << bit;
            let result = open(&f, &tampered, &ctx);
            match byte {
                0..4 => assert!(
                    matches!(result, Err(QuorumError::Envelope(EnvelopeError::BadMagic))),
                    "byte {byte} bit {bit}: {result:?}"
                ),
                4 => assert!(
                    matches!(
                        result,
                        Err(QuorumError::Envelope(EnvelopeError::UnknownVersion(v))) if v == 1 ^ (1 << bit)
                    ),
                    "byte {byte} bit {bit}: {result:?}"
                ),
                // Ephemeral key, nonce, ciphertext and tag: one opaque answer.
                _ => {
                    let err = result.expect_err("a tampered envelope opened");
                    assert!(
                        matches!(err, QuorumError::EnvelopeOpen),
                        "byte {byte} bit {bit}: {err:?}"
                    );
                    assert_eq!(
                        err.to_string(),
                        "the share envelope does not open with this card: wrong card, wrong \
                         context, or tampered"
                    );
                }
            }
        }
    }
}

#[test]
fn truncated_extended_and_oversize_envelopes_are_named() {
    let f = fixture();
    let ctx = context(1);
    let sealed = seal_share(&f.card_public, &ctx, &f.shares[0]).unwrap();
    for cut in 0..sealed.len() {
        let result = EnvelopeHeader::parse(&sealed[..cut]);
        assert!(
            matches!(result, Err(EnvelopeError::TooShort { len, min: ENVELOPE_LEN_V1 }) if len == cut),
            "cut at {cut}: {result:?}"
        );
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(
        EnvelopeHeader::parse(&longer),
        Err(EnvelopeError::BodyLength {
            len: ENVELOPE_LEN_V1 - ENVELOPE_HEADER_LEN + 1,
            expected: ENVELOPE_LEN_V1 - ENVELOPE_HEADER_LEN,
        })
    );
    let mut oversize = sealed.clone();
    oversize.resize(MAX_ENVELOPE_LEN + 1, 0);
    assert_eq!(
        EnvelopeHeader::parse(&oversize),
        Err(EnvelopeError::Oversize {
            len: MAX_ENVELOPE_LEN + 1,
            max: MAX_ENVELOPE_LEN,
        })
    );
    // The bound comes first: even garbage is refused by size without being read.
    assert!(matches!(
        EnvelopeHeader::parse(&vec![0u8; 100_000]),
        Err(EnvelopeError::Oversize { .. })
    ));
    // The errors read as what they are.
    let short = QuorumError::from(EnvelopeHeader::parse(&sealed[..10]).unwrap_err());
    assert!(short.to_string().contains("truncated"), "{short}");
}

#[test]
fn a_wrong_context_does_not_open() {
    let f = fixture();
    let ctx = context(3);
    let sealed = seal_share(&f.card_public, &ctx, &f.shares[2]).unwrap();
    let wrong = [
        ShareContext {
            partition: PartitionId::new("bank-payments2").unwrap(),
            ..ctx.clone()
        },
        ShareContext {
            set_number: 5,
            ..ctx.clone()
        },
        ShareContext {
            share_index: 2,
            ..ctx.clone()
        },
        ShareContext {
            card_serial: "000F:1234ABCE".to_owned(),
            ..ctx.clone()
        },
    ];
    for other in &wrong {
        assert!(
            matches!(open(&f, &sealed, other), Err(QuorumError::EnvelopeOpen)),
            "{other:?}"
        );
    }
    assert!(open(&f, &sealed, &ctx).is_ok());
}

#[test]
fn another_card_does_not_open() {
    let f = fixture();
    let ctx = context(1);
    let sealed = seal_share(&f.card_public, &ctx, &f.shares[0]).unwrap();
    let header = EnvelopeHeader::parse(&sealed).unwrap();
    assert!(matches!(
        open_share_with_x25519(&header, &[0x12; 32], &ctx),
        Err(QuorumError::EnvelopeOpen)
    ));
}

#[test]
fn an_invalid_context_is_refused_before_the_card_is_asked() {
    let f = fixture();
    let ctx = context(1);
    let sealed = seal_share(&f.card_public, &ctx, &f.shares[0]).unwrap();
    let header = EnvelopeHeader::parse(&sealed).unwrap();
    let bad = ShareContext {
        card_serial: "line\nbreak".to_owned(),
        ..ctx
    };
    let result = open_share(
        &header,
        &f.card_public,
        |_| -> Result<Zeroizing<[u8; 32]>, QuorumError> { panic!("the card was asked") },
        &bad,
    );
    assert!(matches!(result, Err(QuorumError::CardLabel { .. })));
}

#[test]
fn envelopes_of_one_share_differ() {
    // A fresh ephemeral key and nonce each time: re-sealing reveals nothing.
    let f = fixture();
    let ctx = context(1);
    let a = seal_share(&f.card_public, &ctx, &f.shares[0]).unwrap();
    let b = seal_share(&f.card_public, &ctx, &f.shares[0]).unwrap();
    assert_ne!(a, b);
    assert_ne!(a[5..37], b[5..37]);
}
