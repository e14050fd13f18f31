//! 32-byte identifiers: asset ids (content roots), transaction hashes and state roots.

use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, FixedSize, Read, Write};
use core::{fmt, str::FromStr};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// Error parsing a lowercase-hex 32-byte value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid 32-byte hex value: {0}")]
pub struct ParseHashError(String);

/// A 32-byte value printed as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero value.
    pub const ZERO: Self = Self([0; 32]);

    /// BLAKE3 of `data` (the same digest `b3sum` prints).
    pub fn blake3(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for Hash32 {
    type Err = ParseHashError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Lowercase only, so that every value has exactly one text form.
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ParseHashError(format!(
                "expected 64 lowercase hex characters, got {text:?}"
            )));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|e| ParseHashError(e.to_string()))?;
        Ok(Self(bytes))
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

impl Write for Hash32 {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }
}

impl Read for Hash32 {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self(<[u8; 32]>::read_cfg(buf, &())?))
    }
}

impl FixedSize for Hash32 {
    const SIZE: usize = 32;
}

/// An asset's id: its content root, the BLAKE3 hash of the file (as `b3sum` prints it).
pub type AssetId = Hash32;
/// A transaction's hash: BLAKE3 of its signed canonical encoding.
pub type TxHash = Hash32;
/// The ledger's state root, committed to by every block.
pub type StateRoot = Hash32;

// `EncodeSize` comes from `FixedSize` through the codec's blanket impl.
const _: fn(&Hash32) -> usize = <Hash32 as EncodeSize>::encode_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_b3sum_compatibility() {
        // `b3sum` of the empty input.
        let empty = Hash32::blake3(b"");
        assert_eq!(
            empty.to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(empty.to_string().parse::<Hash32>().unwrap(), empty);
        assert!(empty.to_string().to_uppercase().parse::<Hash32>().is_err());
        assert!("abc".parse::<Hash32>().is_err());
        let json = serde_json::to_string(&empty).unwrap();
        assert_eq!(serde_json::from_str::<Hash32>(&json).unwrap(), empty);
    }

    #[test]
    fn amounts_are_decimal_strings() {
        use crate::amount::amount_string::parse;
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse(&u128::MAX.to_string()), Ok(u128::MAX));
        assert!(parse("01").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("").is_err());
        assert!(parse("340282366920938463463374607431768211456").is_err());
    }
}
