//! The cryptography of a round: key agreement and derivation (X25519 + HKDF-SHA256), the ChaCha20
//! keystream that expands a 32-byte key into a mask, and the ChaCha20-Poly1305 envelope that carries a
//! client's shares to one neighbour.
//!
//! - Pairwise mask key `s_ij`: HKDF-SHA256 over the X25519 agreement of the two clients' masking keys,
//!   salt [`PAIRWISE_MASK_DOMAIN`], info = session, round, the lower client id, the higher, and their two
//!   public keys in the same order, so both ends derive the same key and no other pair, round or session
//!   does.
//! - Share encryption key: HKDF-SHA256 over the X25519 agreement of the two encryption keys, salt
//!   [`SHARE_ENCRYPTION_DOMAIN`], info = session, round, sender, recipient and their public keys in that
//!   order (one key per direction). The associated data is the domain, session, round, sender and
//!   recipient, and the plaintext repeats sender and recipient.
//! - Masks: the ChaCha20 keystream (RFC 8439, 12-byte nonce) under the full 32-byte key, read as
//!   little-endian `u64` words and added modulo `2^64` (the caller reduces modulo `2^bits` once at the
//!   end, which is exact because `2^bits` divides `2^64`). Self masks and pairwise masks use different
//!   nonces as well as different keys.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::shamir::{SHARE_BYTES, Share};
use super::{ClientId, Result, RoundTag, SecAggError};

/// HKDF salt of pairwise mask keys.
pub const PAIRWISE_MASK_DOMAIN: &[u8] = b"tributary-learn secagg pairwise mask v1";

/// HKDF salt of share encryption keys, and the start of the shares' associated data.
pub const SHARE_ENCRYPTION_DOMAIN: &[u8] = b"tributary-learn secagg share encryption v1";

/// ChaCha20 nonce of self masks (`PRG(b)`).
const SELF_MASK_NONCE: [u8; 12] = *b"self mask v1";

/// ChaCha20 nonce of pairwise masks (`PRG(s_ij)`).
const PAIRWISE_MASK_NONCE: [u8; 12] = *b"pair mask v1";

/// Bytes of the sealed plaintext: sender, recipient (`u32` little-endian), self-mask share, mask-key
/// share.
const SHARES_PLAINTEXT_BYTES: usize = 4 + 4 + 2 * SHARE_BYTES;

/// Bytes of the Poly1305 tag.
const TAG_BYTES: usize = 16;

/// Bytes of [`super::EncryptedShares::ciphertext`].
pub const SHARES_CIPHERTEXT_BYTES: usize = SHARES_PLAINTEXT_BYTES + TAG_BYTES;

/// Words of keystream produced per call to the cipher (32 KiB on the stack).
const KEYSTREAM_CHUNK_WORDS: usize = 4_096;

/// Which mask a keystream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MaskKind {
    /// `PRG(b)`, keyed by the self-mask seed.
    SelfMask,
    /// `PRG(s_ij)`, keyed by a pairwise mask key.
    Pairwise,
}

/// Adds (or subtracts) the keystream of `key` to `accumulator`, word by word, modulo `2^64`.
pub(crate) fn apply_mask(
    accumulator: &mut [u64],
    key: &[u8; 32],
    kind: MaskKind,
    subtract: bool,
) -> Result<()> {
    let nonce = match kind {
        MaskKind::SelfMask => SELF_MASK_NONCE,
        MaskKind::Pairwise => PAIRWISE_MASK_NONCE,
    };
    let mut cipher = ChaCha20::new(key.into(), &nonce.into());
    let mut buffer = Zeroizing::new([[0u8; 8]; KEYSTREAM_CHUNK_WORDS]);
    for chunk in accumulator.chunks_mut(KEYSTREAM_CHUNK_WORDS) {
        let words = &mut buffer[..chunk.len()];
        cipher
            .try_write_keystream(words.as_flattened_mut())
            .map_err(|_| SecAggError::Crypto {
                reason: "ChaCha20 keystream exhausted",
            })?;
        if subtract {
            for (value, word) in chunk.iter_mut().zip(words.iter()) {
                *value = value.wrapping_sub(u64::from_le_bytes(*word));
            }
        } else {
            for (value, word) in chunk.iter_mut().zip(words.iter()) {
                *value = value.wrapping_add(u64::from_le_bytes(*word));
            }
        }
    }
    Ok(())
}

/// An endless stream of `u64` words from the ChaCha20 keystream of a 32-byte seed (for the graph's
/// permutation).
pub(crate) struct WordStream {
    cipher: ChaCha20,
}

impl WordStream {
    /// The stream of `seed` under `nonce`.
    pub(crate) fn new(seed: &[u8; 32], nonce: &[u8; 12]) -> Self {
        Self {
            cipher: ChaCha20::new(seed.into(), nonce.into()),
        }
    }

    /// The next word.
    pub(crate) fn next_word(&mut self) -> Result<u64> {
        let mut word = [0u8; 8];
        self.cipher
            .try_write_keystream(&mut word)
            .map_err(|_| SecAggError::Crypto {
                reason: "ChaCha20 keystream exhausted",
            })?;
        Ok(u64::from_le_bytes(word))
    }

    /// A uniform integer in `0..bound` (`bound ≥ 1`), by rejection sampling.
    pub(crate) fn below(&mut self, bound: u64) -> Result<u64> {
        let bound = bound.max(1);
        // 2^64 mod bound: words below it would make the low residues more likely.
        let rejected = bound.wrapping_neg() % bound;
        loop {
            let word = self.next_word()?;
            if word >= rejected {
                return Ok(word % bound);
            }
        }
    }
}

/// A fresh X25519 secret from `rng`.
pub(crate) fn generate_secret(rng: &mut impl rand_core::CryptoRng) -> StaticSecret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut());
    StaticSecret::from(*bytes)
}

/// `true` if the public key is usable: Diffie-Hellman with it is not all zeros. Small-order points (the
/// only ones that fail) give zero with every clamped scalar, since those are multiples of the cofactor.
pub(crate) fn is_usable_public_key(public: &[u8; 32]) -> bool {
    let probe = StaticSecret::from([0x5a; 32]);
    probe
        .diffie_hellman(&PublicKey::from(*public))
        .was_contributory()
}

/// The X25519 agreement of `secret` with `their_public` (of client `their_id`), refused if it is zero
/// (a small-order key).
pub(crate) fn agree(
    secret: &StaticSecret,
    their_public: &[u8; 32],
    their_id: ClientId,
) -> Result<Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(&PublicKey::from(*their_public));
    if !shared.was_contributory() {
        return Err(SecAggError::InvalidPublicKey {
            client: their_id,
            reason: "it has small order (Diffie-Hellman with it gives zero)",
        });
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// The pairwise mask key `s_ij` of clients `own` and `other` (each an id and a masking public key), from
/// the [`agree`]ment of their masking keys. Both ends (and the server, from a reconstructed secret key)
/// get the same key.
pub(crate) fn pairwise_mask_key(
    tag: &RoundTag,
    own: (ClientId, &[u8; 32]),
    other: (ClientId, &[u8; 32]),
    shared: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>> {
    let (low, high) = if own.0 < other.0 {
        (own, other)
    } else {
        (other, own)
    };
    let hkdf = Hkdf::<Sha256>::new(Some(PAIRWISE_MASK_DOMAIN), shared);
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf.expand_multi_info(
        &[
            &tag.to_bytes(),
            &low.0.to_le_bytes(),
            &high.0.to_le_bytes(),
            low.1,
            high.1,
        ],
        key.as_mut(),
    )
    .map_err(|_| SecAggError::Crypto {
        reason: "HKDF-SHA256 expand of a pairwise mask key",
    })?;
    Ok(key)
}

/// Who seals to whom, with which keys.
pub(crate) struct Envelope<'a> {
    pub(crate) tag: &'a RoundTag,
    pub(crate) sender: ClientId,
    pub(crate) recipient: ClientId,
    pub(crate) sender_public: &'a [u8; 32],
    pub(crate) recipient_public: &'a [u8; 32],
}

impl Envelope<'_> {
    /// The AEAD of this direction, from the [`agree`]ment of the two encryption keys (the sender's
    /// secret with the recipient's public key, or the other way round: they are equal).
    fn cipher(&self, shared: &[u8; 32]) -> Result<ChaCha20Poly1305> {
        let hkdf = Hkdf::<Sha256>::new(Some(SHARE_ENCRYPTION_DOMAIN), shared);
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf.expand_multi_info(
            &[
                &self.tag.to_bytes(),
                &self.sender.to_le_bytes(),
                &self.recipient.to_le_bytes(),
                self.sender_public,
                self.recipient_public,
            ],
            key.as_mut(),
        )
        .map_err(|_| SecAggError::Crypto {
            reason: "HKDF-SHA256 expand of a share encryption key",
        })?;
        Ok(ChaCha20Poly1305::new(&(*key).into()))
    }

    /// Associated data: domain, session, round, sender, recipient.
    fn associated_data(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(SHARE_ENCRYPTION_DOMAIN.len() + 48);
        data.extend_from_slice(SHARE_ENCRYPTION_DOMAIN);
        data.extend_from_slice(&self.tag.to_bytes());
        data.extend_from_slice(&self.sender.to_le_bytes());
        data.extend_from_slice(&self.recipient.to_le_bytes());
        data
    }

    /// Seals the two shares for the recipient under `nonce`; `shared` is the agreement of the two
    /// encryption keys.
    pub(crate) fn seal(
        &self,
        shared: &[u8; 32],
        nonce: &[u8; 12],
        self_mask_share: &Share,
        mask_key_share: &Share,
    ) -> Result<Vec<u8>> {
        let cipher = self.cipher(shared)?;
        let mut buffer = vec![0u8; SHARES_CIPHERTEXT_BYTES];
        let (body, tag_out) = buffer.split_at_mut(SHARES_PLAINTEXT_BYTES);
        body[..4].copy_from_slice(&self.sender.to_le_bytes());
        body[4..8].copy_from_slice(&self.recipient.to_le_bytes());
        self_mask_share.write_bytes(&mut body[8..8 + SHARE_BYTES]);
        mask_key_share.write_bytes(&mut body[8 + SHARE_BYTES..]);
        let tag = match cipher.encrypt_inout_detached(
            &(*nonce).into(),
            &self.associated_data(),
            body.into(),
        ) {
            Ok(tag) => tag,
            Err(_) => {
                buffer.zeroize();
                return Err(SecAggError::Crypto {
                    reason: "ChaCha20-Poly1305 sealing of shares",
                });
            }
        };
        tag_out.copy_from_slice(&tag);
        Ok(buffer)
    }

    /// Opens shares sealed by [`Self::seal`] (`shared` as there): the self-mask share and the mask-key
    /// share. Anything altered, or meant for another pair, session or round, fails with
    /// [`SecAggError::Decryption`].
    pub(crate) fn open(
        &self,
        shared: &[u8; 32],
        nonce: &[u8; 12],
        ciphertext: &[u8],
    ) -> Result<(Share, Share)> {
        if ciphertext.len() != SHARES_CIPHERTEXT_BYTES {
            return Err(SecAggError::WrongLength {
                what: "sealed shares",
                expected: SHARES_CIPHERTEXT_BYTES,
                got: ciphertext.len(),
            });
        }
        let cipher = self.cipher(shared)?;
        let mut body = Zeroizing::new([0u8; SHARES_PLAINTEXT_BYTES]);
        body.copy_from_slice(&ciphertext[..SHARES_PLAINTEXT_BYTES]);
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&ciphertext[SHARES_PLAINTEXT_BYTES..]);
        let decryption = SecAggError::Decryption {
            sender: self.sender,
            recipient: self.recipient,
        };
        cipher
            .decrypt_inout_detached(
                &(*nonce).into(),
                &self.associated_data(),
                (&mut body[..]).into(),
                &tag.into(),
            )
            .map_err(|_| decryption.clone())?;
        let mut sender = [0u8; 4];
        sender.copy_from_slice(&body[..4]);
        let mut recipient = [0u8; 4];
        recipient.copy_from_slice(&body[4..8]);
        if ClientId::from_le_bytes(sender) != self.sender
            || ClientId::from_le_bytes(recipient) != self.recipient
        {
            return Err(decryption);
        }
        let self_mask_share = Share::read_bytes(&body[8..8 + SHARE_BYTES])?;
        let mask_key_share = Share::read_bytes(&body[8 + SHARE_BYTES..])?;
        Ok((self_mask_share, mask_key_share))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn tag(round: u64) -> RoundTag {
        RoundTag {
            session: [7; 32],
            round,
        }
    }

    #[test]
    fn pairwise_keys_agree_and_are_bound_to_pair_and_round() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = generate_secret(&mut rng);
        let b = generate_secret(&mut rng);
        let a_public = PublicKey::from(&a).to_bytes();
        let b_public = PublicKey::from(&b).to_bytes();
        let a_shared = agree(&a, &b_public, 9).unwrap();
        let b_shared = agree(&b, &a_public, 3).unwrap();
        assert_eq!(*a_shared, *b_shared);
        let ab = pairwise_mask_key(&tag(1), (3, &a_public), (9, &b_public), &a_shared).unwrap();
        let ba = pairwise_mask_key(&tag(1), (9, &b_public), (3, &a_public), &b_shared).unwrap();
        assert_eq!(*ab, *ba);
        let other_round =
            pairwise_mask_key(&tag(2), (3, &a_public), (9, &b_public), &a_shared).unwrap();
        assert_ne!(*ab, *other_round);
        let other_pair =
            pairwise_mask_key(&tag(1), (4, &a_public), (9, &b_public), &a_shared).unwrap();
        assert_ne!(*ab, *other_pair);
    }

    #[test]
    fn small_order_keys_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let a = generate_secret(&mut rng);
        // u = 0 and u = 1 are small-order points.
        let mut one = [0u8; 32];
        one[0] = 1;
        for small in [[0u8; 32], one] {
            assert!(!is_usable_public_key(&small));
            assert!(matches!(
                agree(&a, &small, 2),
                Err(SecAggError::InvalidPublicKey { client: 2, .. })
            ));
        }
        assert!(is_usable_public_key(&PublicKey::from(&a).to_bytes()));
    }

    #[test]
    fn masks_add_and_subtract_to_zero() {
        let key = [9u8; 32];
        let mut vector = vec![0u64; 10_000];
        apply_mask(&mut vector, &key, MaskKind::Pairwise, false).unwrap();
        assert!(vector.iter().any(|&word| word != 0));
        let mut self_masked = vec![0u64; 10_000];
        apply_mask(&mut self_masked, &key, MaskKind::SelfMask, false).unwrap();
        assert_ne!(vector, self_masked, "the two kinds use different nonces");
        apply_mask(&mut vector, &key, MaskKind::Pairwise, true).unwrap();
        assert!(vector.iter().all(|&word| word == 0));
    }

    #[test]
    fn mask_is_the_chacha20_keystream() {
        let key: [u8; 32] = std::array::from_fn(|index| index as u8);
        let mut vector = vec![0u64; 8];
        apply_mask(&mut vector, &key, MaskKind::SelfMask, false).unwrap();
        let mut cipher = ChaCha20::new(&key.into(), &SELF_MASK_NONCE.into());
        let mut expected = [0u8; 64];
        cipher.write_keystream(&mut expected);
        for (word, bytes) in vector.iter().zip(expected.as_chunks::<8>().0) {
            assert_eq!(*word, u64::from_le_bytes(*bytes));
        }
        // The cipher is RFC 8439's: its test vector A.1 #1 (all-zero key and nonce).
        let mut zero = ChaCha20::new(&[0u8; 32].into(), &[0u8; 12].into());
        let mut block = [0u8; 8];
        zero.write_keystream(&mut block);
        assert_eq!(block, [0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90]);
    }

    #[test]
    fn sealed_shares_open_only_for_their_pair_and_round() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sender = generate_secret(&mut rng);
        let recipient = generate_secret(&mut rng);
        let sender_public = PublicKey::from(&sender).to_bytes();
        let recipient_public = PublicKey::from(&recipient).to_bytes();
        let round_one = tag(1);
        let envelope = Envelope {
            tag: &round_one,
            sender: 4,
            recipient: 6,
            sender_public: &sender_public,
            recipient_public: &recipient_public,
        };
        let first = Share::new([1, 2, 3, 4, 5]).unwrap();
        let second = Share::new([6, 7, 8, 9, 10]).unwrap();
        let nonce = [5u8; 12];
        let sender_shared = agree(&sender, &recipient_public, 6).unwrap();
        let recipient_shared = agree(&recipient, &sender_public, 4).unwrap();
        let sealed = envelope
            .seal(&sender_shared, &nonce, &first, &second)
            .unwrap();
        assert_eq!(sealed.len(), SHARES_CIPHERTEXT_BYTES);
        let (a, b) = envelope.open(&recipient_shared, &nonce, &sealed).unwrap();
        assert_eq!((a, b), (first, second));
        // Another round, another recipient id, another nonce, an altered byte.
        let round_two = tag(2);
        let replayed = Envelope {
            tag: &round_two,
            ..envelope
        };
        assert!(matches!(
            replayed.open(&recipient_shared, &nonce, &sealed),
            Err(SecAggError::Decryption { .. })
        ));
        let misdirected = Envelope {
            recipient: 7,
            ..envelope
        };
        assert!(
            misdirected
                .open(&recipient_shared, &nonce, &sealed)
                .is_err()
        );
        assert!(
            envelope
                .open(&recipient_shared, &[6u8; 12], &sealed)
                .is_err()
        );
        for position in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[position] ^= 0x01;
            assert!(
                envelope.open(&recipient_shared, &nonce, &altered).is_err(),
                "byte {position}"
            );
        }
        assert!(matches!(
            envelope.open(&recipient_shared, &nonce, &sealed[1..]),
            Err(SecAggError::WrongLength { .. })
        ));
    }
}
