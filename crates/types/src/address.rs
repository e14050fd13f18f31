//! Account addresses: ed25519 public keys, printed as bech32m with the human-readable part `trib`.

use bech32::{Bech32m, Hrp, primitives::decode::CheckedHrpstring};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{DecodeExt, Error as CodecError, FixedSize, Read, Write};
use commonware_cryptography::ed25519::PublicKey;
use core::{fmt, str::FromStr};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// The human-readable part of every address.
pub const ADDRESS_HRP: Hrp = Hrp::parse_unchecked("trib");

/// Error parsing an address or turning one into a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not a valid bech32m string.
    #[error("invalid bech32m address: {0}")]
    Bech32(String),
    /// The human-readable part is not `trib`.
    #[error("address prefix is {0:?}, expected \"trib\"")]
    WrongPrefix(String),
    /// The payload is not 32 bytes.
    #[error("address payload is {0} bytes, expected 32")]
    WrongLength(usize),
    /// The 32 bytes are not a valid ed25519 public key.
    #[error("address is not a valid ed25519 public key")]
    NotAPublicKey,
}

/// An account address: the 32 bytes of its ed25519 public key. Ordered by those bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The address of `public_key`.
    pub fn from_public_key(public_key: &PublicKey) -> Self {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(public_key.as_ref());
        Self(bytes)
    }

    /// The public key behind this address; fails if the bytes are not a valid ed25519 point.
    pub fn public_key(&self) -> Result<PublicKey, AddressError> {
        PublicKey::decode(bytes::Bytes::copy_from_slice(&self.0))
            .map_err(|_| AddressError::NotAPublicKey)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_to_fmt::<Bech32m, _>(f, ADDRESS_HRP, &self.0).map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Lowercase only, so that every address has exactly one text form.
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(AddressError::Bech32("uppercase characters".into()));
        }
        let checked = CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|e| AddressError::Bech32(e.to_string()))?;
        if checked.hrp() != ADDRESS_HRP {
            return Err(AddressError::WrongPrefix(checked.hrp().to_string()));
        }
        let data: Vec<u8> = checked.byte_iter().collect();
        let bytes: [u8; 32] = data
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::WrongLength(data.len()))?;
        Ok(Self(bytes))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

impl Write for Address {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}

impl Read for Address {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(<[u8; 32]>::read_cfg(buf, &())?))
    }
}

impl FixedSize for Address {
    const SIZE: usize = 32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer, ed25519::PrivateKey};

    #[test]
    fn address_roundtrips_through_bech32m() {
        let key = PrivateKey::from_seed(7);
        let address = Address::from_public_key(&key.public_key());
        let text = address.to_string();
        assert!(text.starts_with("trib1"), "{text}");
        assert_eq!(text.parse::<Address>().unwrap(), address);
        assert_eq!(address.public_key().unwrap(), key.public_key());
        let json = serde_json::to_string(&address).unwrap();
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), address);
    }

    #[test]
    fn address_rejects_wrong_prefix_checksum_and_case() {
        let text = bech32::encode::<Bech32m>(Hrp::parse_unchecked("btc"), &[1u8; 32]).unwrap();
        assert!(matches!(
            text.parse::<Address>(),
            Err(AddressError::WrongPrefix(_))
        ));
        let bech32_classic = bech32::encode::<bech32::Bech32>(ADDRESS_HRP, &[1u8; 32]).unwrap();
        assert!(matches!(
            bech32_classic.parse::<Address>(),
            Err(AddressError::Bech32(_))
        ));
        let short = bech32::encode::<Bech32m>(ADDRESS_HRP, &[1u8; 31]).unwrap();
        assert_eq!(short.parse::<Address>(), Err(AddressError::WrongLength(31)));
        let upper = Address([3; 32]).to_string().to_uppercase();
        assert!(upper.parse::<Address>().is_err());
    }
}
