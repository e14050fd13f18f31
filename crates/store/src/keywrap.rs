//! Wrapping a data key to an account, so a licensee (and only it) can read an asset.
//!
//! Accounts have ed25519 keys; each also has an X25519 key derived the standard way (as libsodium's
//! `crypto_sign_ed25519_*_to_curve25519` do): the secret scalar is the clamped first half of
//! SHA-512(ed25519 seed), and the public key is the ed25519 public point mapped from Edwards to Montgomery
//! form. So anyone can encrypt to an address's public key, and only the seed's holder can decrypt.
//!
//! [`wrap`] is HPKE-style (base mode, one shot): a fresh ephemeral X25519 key, Diffie-Hellman with the
//! recipient, HKDF-SHA256 over the shared secret with the ephemeral public key, the recipient's public
//! key and the caller's context (for example the license id) as info, giving an XChaCha20-Poly1305 key
//! that seals the data key under a random 24-byte nonce stored in the [`WrappedKey`]. The same context
//! must be given to [`unwrap`]: a wrap made for one license does not open as another's.
//!
//! The recipient's ed25519 public key is checked (a valid point, not of small order), and a
//! Diffie-Hellman result of all zeros is refused.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

use crate::cipher::DataKey;
use crate::error::{Result, StoreError};
use crate::limits::WRAP_CONTEXT_BYTES_MAX;

/// HKDF salt: the domain of key wrapping.
const WRAP_DOMAIN: &[u8] = b"tributary-store keywrap v1";

/// Bytes of a [`WrappedKey`] in its binary form: ephemeral public key, nonce, sealed key and tag.
pub const WRAPPED_KEY_BYTES: usize = 32 + 24 + 32 + 16;

/// A data key sealed to one recipient. Serialises as JSON with hex fields, or as
/// [`WRAPPED_KEY_BYTES`] bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    /// The sender's one-time X25519 public key.
    #[serde(with = "hex_array")]
    pub ephemeral_public: [u8; 32],
    /// The XChaCha20-Poly1305 nonce (random).
    #[serde(with = "hex_array")]
    pub nonce: [u8; 24],
    /// The sealed 32-byte data key and its 16-byte tag.
    #[serde(with = "hex_array")]
    pub ciphertext: [u8; 48],
}

impl WrappedKey {
    /// The binary form: ephemeral public key, nonce, ciphertext.
    pub fn to_bytes(&self) -> [u8; WRAPPED_KEY_BYTES] {
        let mut bytes = [0u8; WRAPPED_KEY_BYTES];
        bytes[..32].copy_from_slice(&self.ephemeral_public);
        bytes[32..56].copy_from_slice(&self.nonce);
        bytes[56..].copy_from_slice(&self.ciphertext);
        bytes
    }

    /// Parses the binary form; any other length is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != WRAPPED_KEY_BYTES {
            return Err(StoreError::Malformed {
                what: "wrapped key",
                reason: format!("{} bytes, expected {WRAPPED_KEY_BYTES}", bytes.len()),
            });
        }
        let mut wrapped = Self {
            ephemeral_public: [0; 32],
            nonce: [0; 24],
            ciphertext: [0; 48],
        };
        wrapped.ephemeral_public.copy_from_slice(&bytes[..32]);
        wrapped.nonce.copy_from_slice(&bytes[32..56]);
        wrapped.ciphertext.copy_from_slice(&bytes[56..]);
        Ok(wrapped)
    }
}

/// The ed25519 public key of a 32-byte ed25519 seed (RFC 8032: the clamped first half of SHA-512(seed)
/// times the base point).
pub fn ed25519_public_from_seed(seed: &[u8; 32]) -> [u8; 32] {
    let mut scalar = expanded_scalar(seed);
    let public = EdwardsPoint::mul_base_clamped(scalar).compress().to_bytes();
    scalar.zeroize();
    public
}

/// The X25519 public key of an account, from its ed25519 public key alone (Edwards to Montgomery).
/// Fails if the bytes are not a point on the curve or the point has small order.
pub fn x25519_public_from_ed25519(ed25519_public: &[u8; 32]) -> Result<[u8; 32]> {
    let point =
        CompressedEdwardsY(*ed25519_public)
            .decompress()
            .ok_or(StoreError::InvalidPublicKey {
                reason: "not a point on the ed25519 curve",
            })?;
    if point.is_small_order() {
        return Err(StoreError::InvalidPublicKey {
            reason: "a point of small order",
        });
    }
    Ok(point.to_montgomery().to_bytes())
}

/// The clamping-free first half of SHA-512(seed); X25519 and `mul_base_clamped` clamp it.
fn expanded_scalar(seed: &[u8; 32]) -> [u8; 32] {
    let mut hash = Sha512::digest(seed);
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&hash[..32]);
    hash.as_mut_slice().zeroize();
    scalar
}

/// The X25519 secret of an account, from its ed25519 seed.
fn x25519_secret_from_seed(seed: &[u8; 32]) -> StaticSecret {
    StaticSecret::from(expanded_scalar(seed))
}

fn wrapping_cipher(
    shared: &[u8; 32],
    ephemeral_public: &[u8; 32],
    recipient_public: &[u8; 32],
    context: &[u8],
) -> Result<XChaCha20Poly1305> {
    let hkdf = Hkdf::<Sha256>::new(Some(WRAP_DOMAIN), shared);
    let context_len = (context.len() as u32).to_le_bytes();
    let mut key = [0u8; 32];
    hkdf.expand_multi_info(
        &[ephemeral_public, recipient_public, &context_len, context],
        &mut key,
    )
    .map_err(|_| StoreError::Unwrap)?;
    let cipher = XChaCha20Poly1305::new(&key.into());
    key.zeroize();
    Ok(cipher)
}

fn check_context(context: &[u8]) -> Result<()> {
    if context.len() > WRAP_CONTEXT_BYTES_MAX {
        return Err(StoreError::invalid_option(
            "context",
            format!(
                "{} bytes, more than the limit of {WRAP_CONTEXT_BYTES_MAX}",
                context.len()
            ),
        ));
    }
    Ok(())
}

/// Seals `data_key` to the account whose ed25519 public key is `recipient_ed25519_public`, bound to
/// `context` (see the module docs).
pub fn wrap(
    data_key: &DataKey,
    recipient_ed25519_public: &[u8; 32],
    context: &[u8],
) -> Result<WrappedKey> {
    check_context(context)?;
    let recipient_public = x25519_public_from_ed25519(recipient_ed25519_public)?;
    let mut ephemeral_bytes = [0u8; 32];
    getrandom::fill(&mut ephemeral_bytes).map_err(StoreError::Random)?;
    let ephemeral = StaticSecret::from(ephemeral_bytes);
    ephemeral_bytes.zeroize();
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient_public));
    if !shared.was_contributory() {
        return Err(StoreError::InvalidPublicKey {
            reason: "Diffie-Hellman with it gives zero",
        });
    }
    let cipher = wrapping_cipher(
        shared.as_bytes(),
        &ephemeral_public,
        &recipient_public,
        context,
    )?;
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).map_err(StoreError::Random)?;
    let mut ciphertext = [0u8; 48];
    let (body, tag_out) = ciphertext.split_at_mut(32);
    body.copy_from_slice(data_key.as_bytes());
    let tag = cipher
        .encrypt_inout_detached(&nonce.into(), &[], body.into())
        .map_err(|_| StoreError::Encrypt { chunk: 0 })?;
    tag_out.copy_from_slice(&tag);
    Ok(WrappedKey {
        ephemeral_public,
        nonce,
        ciphertext,
    })
}

/// Opens a [`WrappedKey`] with the recipient's ed25519 seed and the context it was wrapped with. Fails
/// with [`StoreError::Unwrap`] for another key, another context, or altered bytes.
pub fn unwrap(
    wrapped: &WrappedKey,
    recipient_ed25519_seed: &[u8; 32],
    context: &[u8],
) -> Result<DataKey> {
    check_context(context)?;
    let secret = x25519_secret_from_seed(recipient_ed25519_seed);
    let recipient_public = PublicKey::from(&secret).to_bytes();
    let shared = secret.diffie_hellman(&PublicKey::from(wrapped.ephemeral_public));
    if !shared.was_contributory() {
        return Err(StoreError::Unwrap);
    }
    let cipher = wrapping_cipher(
        shared.as_bytes(),
        &wrapped.ephemeral_public,
        &recipient_public,
        context,
    )?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&wrapped.ciphertext[..32]);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&wrapped.ciphertext[32..]);
    if cipher
        .decrypt_inout_detached(
            &wrapped.nonce.into(),
            &[],
            (&mut key[..]).into(),
            &tag.into(),
        )
        .is_err()
    {
        key.zeroize();
        return Err(StoreError::Unwrap);
    }
    let data_key = DataKey::from_bytes(key);
    key.zeroize();
    Ok(data_key)
}

/// Serde for fixed-size byte arrays as lowercase hex strings.
mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; N];
        hex::decode_to_slice(text.as_ref(), &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_hex<const N: usize>(text: &str) -> [u8; N] {
        let mut bytes = [0u8; N];
        hex::decode_to_slice(text, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn ed25519_public_key_matches_rfc8032() {
        // RFC 8032, section 7.1, TEST 1 and TEST 2.
        let seed = from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public = from_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(ed25519_public_from_seed(&seed), public);
        let seed = from_hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let public = from_hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        assert_eq!(ed25519_public_from_seed(&seed), public);
    }

    #[test]
    fn public_conversion_agrees_with_secret_conversion() {
        for byte in 0..8u8 {
            let seed = [byte; 32];
            let from_public = x25519_public_from_ed25519(&ed25519_public_from_seed(&seed)).unwrap();
            let from_secret = PublicKey::from(&x25519_secret_from_seed(&seed)).to_bytes();
            assert_eq!(from_public, from_secret);
        }
    }

    #[test]
    fn wrap_to_public_key_unwrap_with_seed() {
        let seed = [42u8; 32];
        let public = ed25519_public_from_seed(&seed);
        let key = DataKey::generate().unwrap();
        let wrapped = wrap(&key, &public, b"license 7").unwrap();
        assert_eq!(
            unwrap(&wrapped, &seed, b"license 7").unwrap().as_bytes(),
            key.as_bytes()
        );
        // Wrong seed, wrong context, altered bytes.
        assert!(matches!(
            unwrap(&wrapped, &[43u8; 32], b"license 7"),
            Err(StoreError::Unwrap)
        ));
        assert!(matches!(
            unwrap(&wrapped, &seed, b"license 8"),
            Err(StoreError::Unwrap)
        ));
        for position in 0..WRAPPED_KEY_BYTES {
            let mut bytes = wrapped.to_bytes();
            bytes[position] ^= 0x10;
            let altered = WrappedKey::from_bytes(&bytes).unwrap();
            assert!(
                unwrap(&altered, &seed, b"license 7").is_err(),
                "byte {position}"
            );
        }
        // Two wraps of one key differ (fresh ephemeral key and nonce).
        assert_ne!(wrap(&key, &public, b"license 7").unwrap(), wrapped);
    }

    #[test]
    fn wrapped_key_serialises() {
        let seed = [1u8; 32];
        let key = DataKey::generate().unwrap();
        let wrapped = wrap(&key, &ed25519_public_from_seed(&seed), b"").unwrap();
        let json = serde_json::to_string(&wrapped).unwrap();
        let back: WrappedKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, wrapped);
        assert_eq!(
            WrappedKey::from_bytes(&wrapped.to_bytes()).unwrap(),
            wrapped
        );
        assert!(WrappedKey::from_bytes(&[0u8; 10]).is_err());
        assert_eq!(
            unwrap(&back, &seed, b"").unwrap().as_bytes(),
            key.as_bytes()
        );
    }

    #[test]
    fn bad_recipient_keys_are_refused() {
        let key = DataKey::generate().unwrap();
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            wrap(&key, &identity, b""),
            Err(StoreError::InvalidPublicKey { .. })
        ));
        // Not on the curve: y = 2 has no x.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(matches!(
            wrap(&key, &off_curve, b""),
            Err(StoreError::InvalidPublicKey { .. })
        ));
    }
}
