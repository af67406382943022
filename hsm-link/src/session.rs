//! An established secure session: packets in, frames out, and back.
//!
//! Transport messages carry an explicit counter that is also the Noise nonce (Noise's
//! stateless transport mode). Each side accepts exactly the next counter, so a replayed,
//! reordered or dropped frame ends the session with an error that names it, instead of a bare
//! decryption failure. Both sides rekey (Noise §11.3) every `rekey_interval` messages in each
//! direction, at the same counters, without a message about it.

use snow::StatelessTransportState;

use crate::error::{Error, PeerMisbehaved};
use crate::frame::LinkFrame;
use crate::keys::PublicKey;
use crate::limits::{MAX_NOISE_MESSAGE, MAX_PLAINTEXT};
use crate::message::Packet;

/// Counters stop here, far below where a nonce could wrap.
const COUNTER_LIMIT: u64 = 1 << 63;

/// An established session (sans-IO).
pub struct Session {
    noise: StatelessTransportState,
    send_counter: u64,
    recv_counter: u64,
    rekey_interval: u64,
    channel_binding: [u8; 32],
    version: u16,
    remote: PublicKey,
    buf: Vec<u8>,
    /// Set by the first failure: a session whose counters or keys may disagree is never used
    /// again.
    failed: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("remote", &self.remote)
            .field("send_counter", &self.send_counter)
            .field("recv_counter", &self.recv_counter)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(
        noise: StatelessTransportState,
        channel_binding: [u8; 32],
        version: u16,
        remote: PublicKey,
        rekey_interval: u64,
    ) -> Self {
        Session {
            noise,
            send_counter: 0,
            recv_counter: 0,
            rekey_interval: rekey_interval.max(1),
            channel_binding,
            version,
            remote,
            buf: vec![0; MAX_NOISE_MESSAGE],
            failed: false,
        }
    }

    /// The Noise handshake hash: a value both ends share and nobody else can choose, to which
    /// logins bind their card challenges.
    pub fn channel_binding(&self) -> &[u8; 32] {
        &self.channel_binding
    }

    /// The protocol version settled in the hello.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The authenticated static key of the other end.
    pub fn remote_key(&self) -> PublicKey {
        self.remote
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.send_counter
    }

    /// Encrypts a packet into a transport frame.
    pub fn seal(&mut self, packet: &Packet) -> Result<Vec<u8>, Error> {
        let plaintext = packet.encode();
        self.seal_bytes(&plaintext)
    }

    fn seal_bytes(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(Error::PacketTooLarge {
                len: plaintext.len(),
                limit: MAX_PLAINTEXT,
            });
        }
        if self.send_counter >= COUNTER_LIMIT {
            return Err(Error::CounterExhausted);
        }
        if self.send_counter > 0 && self.send_counter.is_multiple_of(self.rekey_interval) {
            self.noise.rekey_outgoing();
        }
        let n = self
            .noise
            .write_message(self.send_counter, plaintext, &mut self.buf)
            .map_err(|_| Error::PacketTooLarge {
                len: plaintext.len(),
                limit: MAX_PLAINTEXT,
            })?;
        let frame = LinkFrame::Transport {
            counter: self.send_counter,
            ciphertext: &self.buf[..n],
        }
        .to_vec();
        self.send_counter += 1;
        Ok(frame)
    }

    /// Decrypts a transport frame into a packet. Any error ends the session: the counters no
    /// longer agree, or the peer misbehaved. After an error, every later call fails with
    /// [`Error::SessionFailed`]. Sending is unaffected (its keys and counter are separate), so
    /// that a close can still say why.
    pub fn open(&mut self, frame: &[u8]) -> Result<Packet, Error> {
        if self.failed {
            return Err(Error::SessionFailed);
        }
        let result = self.open_inner(frame);
        self.failed = result.is_err();
        result
    }

    fn open_inner(&mut self, frame: &[u8]) -> Result<Packet, Error> {
        let (counter, ciphertext) = match LinkFrame::parse(frame)? {
            LinkFrame::Transport {
                counter,
                ciphertext,
            } => (counter, ciphertext),
            LinkFrame::Refusal(_) => return Err(PeerMisbehaved::RefusalInsideSession.into()),
            _ => return Err(PeerMisbehaved::HandshakeFrameInsideSession.into()),
        };
        let expected = self.recv_counter;
        if counter < expected {
            return Err(Error::Replay { counter, expected });
        }
        if counter > expected {
            return Err(Error::OutOfOrder { counter, expected });
        }
        if counter >= COUNTER_LIMIT {
            return Err(Error::CounterExhausted);
        }
        if counter > 0 && counter.is_multiple_of(self.rekey_interval) {
            self.noise.rekey_incoming();
        }
        let n = self
            .noise
            .read_message(counter, ciphertext, &mut self.buf)
            .map_err(|_| Error::Authentication {
                during: "a transport message",
            })?;
        self.recv_counter += 1;
        Ok(Packet::decode(&self.buf[..n])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PartitionId;
    use crate::handshake::client::{self as c, ClientMode, ClientOptions, ClientProgress};
    use crate::handshake::server::{self as s, ServerOptions, ServerProgress};
    use crate::keys::StaticKeypair;
    use crate::trust::{MemoryTrustStore, TrustStore};

    /// A pinned session pair, run entirely in memory through the sans-IO states.
    fn sessions() -> (Session, Session) {
        let p = PartitionId::new("p").unwrap();
        let trust = MemoryTrustStore::default();
        trust.add_partition(p.clone());
        let psk = trust.issue_pairing_code(&p).unwrap().psk(&p);
        let (hsm, terminal) = (
            StaticKeypair::generate().unwrap(),
            StaticKeypair::generate().unwrap(),
        );
        assert!(trust.pairing_succeeded(&p, &psk, terminal.public()));
        let mode = ClientMode::Pinned { hsm: hsm.public() };
        let (state, hello) = c::start(&terminal, p, mode, ClientOptions::default());
        let (server, reply) = s::accept(&hsm, &ServerOptions::default(), &trust, &hello).unwrap();
        let (state, first) = state.handle(&reply).unwrap();
        let Ok(ServerProgress::Established(server, second)) = server.handle(&first) else {
            panic!("pinned handshake")
        };
        let Ok(ClientProgress::Established(client)) = state.handle(&second) else {
            panic!("pinned handshake")
        };
        assert_eq!(client.channel_binding(), server.session.channel_binding());
        (client, server.session)
    }

    #[test]
    fn a_failed_session_refuses_further_frames_even_good_ones() {
        let (mut client, mut server) = sessions();
        let good = client.seal(&Packet::KeepAlive).unwrap();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            server.open(&bad),
            Err(Error::Authentication { .. })
        ));
        assert!(matches!(server.open(&good), Err(Error::SessionFailed)));
        // The failed side can still say goodbye.
        let close = server.seal(&Packet::KeepAliveAck).unwrap();
        assert_eq!(client.open(&close).unwrap(), Packet::KeepAliveAck);
    }

    #[test]
    fn plaintext_frames_inside_a_session_are_named_faults() {
        use crate::error::PeerMisbehaved;
        use crate::hello::Refusal;
        let refusal = LinkFrame::Refusal(&Refusal::MalformedHello.encode()).to_vec();
        let handshake = LinkFrame::Handshake(&[0; 48]).to_vec();
        for (frame, fault) in [
            (refusal, PeerMisbehaved::RefusalInsideSession),
            (handshake, PeerMisbehaved::HandshakeFrameInsideSession),
        ] {
            let (_, mut server) = sessions();
            match server.open(&frame) {
                Err(Error::PeerMisbehaved(got)) => assert_eq!(got, fault),
                other => panic!("expected {fault:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_packet_too_large_for_one_message_is_refused_before_sealing() {
        let (mut client, _) = sessions();
        let err = client.seal_bytes(&vec![0; MAX_PLAINTEXT + 1]).unwrap_err();
        assert!(
            matches!(err, Error::PacketTooLarge { len, limit: MAX_PLAINTEXT } if len == MAX_PLAINTEXT + 1),
            "{err}"
        );
        assert_eq!(client.sent(), 0, "nothing was counted as sent");
    }

    #[test]
    fn every_bit_flip_of_a_transport_frame_is_rejected() {
        let (mut client, mut server) = sessions();
        let request = Packet::Request {
            id: 1,
            body: crate::message::Request::Ping,
        };
        let frame = client.seal(&request).unwrap();
        for bit in 0..frame.len() * 8 {
            let mut flipped = frame.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            // A failed open leaves the receive counter where it was; clear the failure mark so
            // that each flip is judged on its own.
            server.failed = false;
            assert!(
                server.open(&flipped).is_err(),
                "bit {bit} flipped was accepted"
            );
        }
        server.failed = false;
        assert_eq!(server.open(&frame).unwrap(), request);
    }
}
