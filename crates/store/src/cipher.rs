//! Per-asset data keys and the chunk AEAD.
//!
//! Every asset gets a fresh random 32-byte [`DataKey`] (from the operating system's random source). Each
//! chunk is sealed with AES-256-GCM when the CPU has AES instructions ([`CipherKind::preferred`]; the
//! implementation is aws-lc-rs's on x86-64 and AArch64) and XChaCha20-Poly1305 otherwise; the choice is recorded in the manifest and decryption follows the
//! manifest, so any node can read any asset.
//!
//! Nonces are derived, never random: the chunk's index, little-endian, zero-padded to 96 bits (AES-GCM) or
//! 192 bits (XChaCha). Indices are distinct within an asset and the key is never reused across assets, so
//! no (key, nonce) pair repeats. The associated data binds each chunk to its asset and place: a domain
//! string, the asset id and the chunk's index, so chunks cannot be swapped or moved between assets (a
//! dropped or added chunk changes the output, which must hash to the asset id).
//!
//! Chunks are sealed in place ([`ChunkCipher::seal_in_place`]) and their tags kept apart
//! ([`ChunkTag`], recorded in the manifest), so ciphertext is exactly as long as plaintext.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::{Result, StoreError};
use crate::limits::TAG_BYTES;
use crate::manifest::ContentHash;

/// Domain string at the start of every chunk's associated data.
const CHUNK_DOMAIN: &[u8] = b"tributary-store chunk v1";

/// The AEAD an asset's chunks are sealed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CipherKind {
    /// AES-256-GCM, 96-bit derived nonces. Chosen when the CPU has AES and carry-less multiply instructions.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    /// XChaCha20-Poly1305, 192-bit derived nonces. Chosen otherwise: fast in software, constant time.
    #[serde(rename = "xchacha20-poly1305")]
    XChaCha20Poly1305,
}

impl CipherKind {
    /// AES-256-GCM if this CPU has hardware AES (and carry-less multiplication for GHASH), detected at run
    /// time; XChaCha20-Poly1305 otherwise.
    pub fn preferred() -> Self {
        if hardware_aes() {
            Self::Aes256Gcm
        } else {
            Self::XChaCha20Poly1305
        }
    }

    /// The name used in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn hardware_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn hardware_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn hardware_aes() -> bool {
    false
}

/// A 32-byte symmetric key for one asset. Zeroed when dropped; never printed; not comparable (compare
/// [`DataKey::as_bytes`] in constant time if you must).
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(StoreError::Random)?;
        Ok(Self(bytes))
    }

    /// A key from its bytes (as stored by the asset's owner or opened by [`crate::keywrap::unwrap`]).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes. Handle with care: whoever has them can read the asset.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DataKey(..)")
    }
}

/// An initialised chunk cipher for one asset: seals and opens chunks by index.
pub struct ChunkCipher {
    aead: Aead,
    asset_id: ContentHash,
}

enum Aead {
    Aes(Box<aes::Aes>),
    XChaCha(Box<XChaCha20Poly1305>),
}

/// AES-256-GCM. On x86-64 and AArch64 it is aws-lc-rs's (already in the build through commonware,
/// with hardware AES and carry-less multiplication: about 3× the RustCrypto crate on this machine);
/// elsewhere the `aes-gcm` crate. Both take a 96-bit nonce and give a 16-byte tag, so either reads
/// what the other wrote.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod aes {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    pub struct Aes(LessSafeKey);

    impl Aes {
        pub fn new(key: &[u8; 32]) -> Option<Self> {
            UnboundKey::new(&AES_256_GCM, key)
                .ok()
                .map(|key| Self(LessSafeKey::new(key)))
        }

        /// Encrypts `body` in place; returns the tag.
        pub fn seal(
            &self,
            nonce: [u8; 12],
            associated: &[u8],
            body: &mut [u8],
        ) -> Option<[u8; 16]> {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(associated),
                    body,
                )
                .ok()?;
            tag.as_ref().try_into().ok()
        }

        /// Decrypts `ciphertext` with `tag` into `out`.
        pub fn open(
            &self,
            nonce: [u8; 12],
            associated: &[u8],
            ciphertext: &[u8],
            tag: &[u8; 16],
            out: &mut [u8],
        ) -> Option<()> {
            self.0
                .open_separate_gather(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(associated),
                    ciphertext,
                    tag,
                    out,
                )
                .ok()
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod aes {
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::{AeadInOut, KeyInit};

    pub struct Aes(Aes256Gcm);

    impl Aes {
        pub fn new(key: &[u8; 32]) -> Option<Self> {
            Some(Self(Aes256Gcm::new(&(*key).into())))
        }

        pub fn seal(
            &self,
            nonce: [u8; 12],
            associated: &[u8],
            body: &mut [u8],
        ) -> Option<[u8; 16]> {
            self.0
                .encrypt_inout_detached(&nonce.into(), associated, body.into())
                .ok()
                .map(Into::into)
        }

        pub fn open(
            &self,
            nonce: [u8; 12],
            associated: &[u8],
            ciphertext: &[u8],
            tag: &[u8; 16],
            out: &mut [u8],
        ) -> Option<()> {
            out.copy_from_slice(ciphertext);
            self.0
                .decrypt_inout_detached(&nonce.into(), associated, out.into(), &(*tag).into())
                .ok()
        }
    }
}

/// Bytes of a chunk's associated data: the domain, the asset id and the chunk index.
const ASSOCIATED_BYTES: usize = CHUNK_DOMAIN.len() + 32 + 8;

impl ChunkCipher {
    /// A cipher for the chunks of asset `asset_id` under `key`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Encrypt`] if the AES implementation refuses the key (it takes any 32 bytes).
    pub fn new(kind: CipherKind, key: &DataKey, asset_id: ContentHash) -> Result<Self> {
        let aead = match kind {
            CipherKind::Aes256Gcm => Aead::Aes(Box::new(
                aes::Aes::new(&key.0).ok_or(StoreError::Encrypt { chunk: 0 })?,
            )),
            CipherKind::XChaCha20Poly1305 => {
                Aead::XChaCha(Box::new(XChaCha20Poly1305::new(&key.0.into())))
            }
        };
        Ok(Self { aead, asset_id })
    }

    fn associated_data(&self, chunk: u64) -> [u8; ASSOCIATED_BYTES] {
        let mut data = [0u8; ASSOCIATED_BYTES];
        let (domain, rest) = data.split_at_mut(CHUNK_DOMAIN.len());
        domain.copy_from_slice(CHUNK_DOMAIN);
        let (asset, index) = rest.split_at_mut(32);
        asset.copy_from_slice(&self.asset_id.0);
        index.copy_from_slice(&chunk.to_le_bytes());
        data
    }

    /// Seals chunk `chunk` in place: `body` holds the plaintext and receives the ciphertext (the same
    /// length); returns the 16-byte tag, which the manifest records.
    pub fn seal_in_place(&self, chunk: u64, body: &mut [u8]) -> Result<ChunkTag> {
        let associated = self.associated_data(chunk);
        let tag: [u8; 16] = match &self.aead {
            Aead::Aes(aead) => aead
                .seal(nonce::<12>(chunk), &associated, body)
                .ok_or(StoreError::Encrypt { chunk })?,
            Aead::XChaCha(aead) => aead
                .encrypt_inout_detached(&nonce::<24>(chunk).into(), &associated, body.into())
                .map(Into::into)
                .map_err(|_| StoreError::Encrypt { chunk })?,
        };
        Ok(ChunkTag(tag))
    }

    /// Opens chunk `chunk`: `ciphertext` and its `tag` in, the plaintext (the same length) into `out`.
    /// Fails with [`StoreError::Decrypt`] on a wrong key, tag or any altered byte, leaving `out` zeroed.
    pub fn open(
        &self,
        chunk: u64,
        ciphertext: &[u8],
        tag: &ChunkTag,
        out: &mut [u8],
    ) -> Result<()> {
        let associated = self.associated_data(chunk);
        let opened = match &self.aead {
            Aead::Aes(aead) => aead
                .open(nonce::<12>(chunk), &associated, ciphertext, &tag.0, out)
                .ok_or(()),
            Aead::XChaCha(aead) => InOutBuf::new(ciphertext, &mut *out)
                .map_err(|_| ())
                .and_then(|buffer| {
                    aead.decrypt_inout_detached(
                        &nonce::<24>(chunk).into(),
                        &associated,
                        buffer,
                        &tag.0.into(),
                    )
                    .map_err(|_| ())
                }),
        };
        if opened.is_err() {
            out.zeroize();
            return Err(StoreError::Decrypt { chunk });
        }
        Ok(())
    }
}

/// A chunk's 16-byte authentication tag, kept in the manifest (so the ciphertext stream is exactly as
/// long as the plaintext, and ingest can seal the asset where it lies). Written as 32 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChunkTag(pub [u8; TAG_BYTES as usize]);

impl std::fmt::Debug for ChunkTag {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "ChunkTag({})", hex::encode(self.0))
    }
}

impl Serialize for ChunkTag {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for ChunkTag {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; TAG_BYTES as usize];
        if text.len() != 2 * bytes.len() || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom(format!(
                "a chunk tag is {} lowercase hex digits, got {} characters",
                2 * bytes.len(),
                text.len()
            )));
        }
        hex::decode_to_slice(text.as_ref(), &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(Self(bytes))
    }
}

/// The derived nonce of a chunk: its index, little-endian, zero-padded to `N` bytes.
fn nonce<const N: usize>(chunk: u64) -> [u8; N] {
    let mut nonce = [0u8; N];
    nonce[..8].copy_from_slice(&chunk.to_le_bytes());
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(kind: CipherKind) {
        let key = DataKey::generate().unwrap();
        let asset = ContentHash::of(b"asset");
        let cipher = ChunkCipher::new(kind, &key, asset).unwrap();
        let plaintext = b"some chunk of data".to_vec();
        let mut sealed = plaintext.clone();
        let tag = cipher.seal_in_place(1, &mut sealed).unwrap();
        assert_ne!(sealed, plaintext);
        let mut opened = vec![0u8; plaintext.len()];
        cipher.open(1, &sealed, &tag, &mut opened).unwrap();
        assert_eq!(opened, plaintext);
        // Another index, asset, key or tag fails, and leaves the output zeroed.
        assert!(cipher.open(2, &sealed, &tag, &mut opened).is_err());
        assert_eq!(opened, vec![0u8; plaintext.len()]);
        let other_asset = ChunkCipher::new(kind, &key, ContentHash::of(b"other")).unwrap();
        assert!(other_asset.open(1, &sealed, &tag, &mut opened).is_err());
        let other_key = ChunkCipher::new(kind, &DataKey::generate().unwrap(), asset).unwrap();
        assert!(other_key.open(1, &sealed, &tag, &mut opened).is_err());
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(cipher.open(1, &tampered, &tag, &mut opened).is_err());
        let mut other_tag = tag;
        other_tag.0[15] ^= 1;
        assert!(cipher.open(1, &sealed, &other_tag, &mut opened).is_err());
        // The tag's JSON form reads back, and only as 32 lowercase hex digits.
        let json = serde_json::to_string(&tag).unwrap();
        assert_eq!(serde_json::from_str::<ChunkTag>(&json).unwrap(), tag);
        assert!(serde_json::from_str::<ChunkTag>(&json.to_uppercase()).is_err());
        assert!(serde_json::from_str::<ChunkTag>("\"00\"").is_err());
    }

    /// Test case 14 of the GCM specification (McGrew & Viega): a zero key, nonce and block.
    #[test]
    fn aes_matches_the_gcm_specification() {
        let aes = aes::Aes::new(&[0; 32]).unwrap();
        let mut body = [0u8; 16];
        let tag = aes.seal([0; 12], &[], &mut body).unwrap();
        assert_eq!(hex::encode(body), "cea7403d4d606b6e074ec5d3baf39d18");
        assert_eq!(hex::encode(tag), "d0d1c8a799996bf0265b98b5d48ab919");
        let mut opened = [1u8; 16];
        aes.open([0; 12], &[], &body, &tag, &mut opened).unwrap();
        assert_eq!(opened, [0; 16]);
    }

    #[test]
    fn aes_round_trip_and_binding() {
        round_trip(CipherKind::Aes256Gcm);
    }

    #[test]
    fn xchacha_round_trip_and_binding() {
        round_trip(CipherKind::XChaCha20Poly1305);
    }

    #[test]
    fn keys_are_fresh_and_hidden() {
        let first = DataKey::generate().unwrap();
        assert_ne!(first.as_bytes(), DataKey::generate().unwrap().as_bytes());
        assert_eq!(format!("{first:?}"), "DataKey(..)");
    }

    #[test]
    fn cipher_names_match_serde() {
        for kind in [CipherKind::Aes256Gcm, CipherKind::XChaCha20Poly1305] {
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.name())
            );
        }
    }
}
