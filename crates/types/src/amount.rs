//! Amounts of the native token: `u128` base units, written as decimal strings in JSON so that no JSON
//! reader rounds them through a float.

/// An amount of the native token in base units.
pub type Amount = u128;

/// Serde helper: `#[serde(with = "tributary_types::amount_string")]` writes an [`Amount`] as a decimal
/// string and reads it back (a bare JSON integer is also accepted on input).
pub mod amount_string {
    use super::Amount;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes the amount as a decimal string.
    pub fn serialize<S: Serializer>(amount: &Amount, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(amount)
    }

    /// Reads a decimal string (or a JSON integer).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Number(u64),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Text(text) => parse(&text).map_err(D::Error::custom),
            Repr::Number(number) => Ok(Amount::from(number)),
        }
    }

    /// Parses a canonical decimal amount: digits only, no sign, no leading zeros (except "0").
    pub fn parse(text: &str) -> Result<Amount, String> {
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        if !canonical {
            return Err(format!("invalid amount {text:?}: expected decimal digits"));
        }
        text.parse::<Amount>()
            .map_err(|e| format!("invalid amount {text:?}: {e}"))
    }
}

/// Serde helper for `Option<Amount>` as an optional decimal string.
pub mod amount_string_option {
    use super::Amount;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes `Some` as a decimal string and `None` as null.
    pub fn serialize<S: Serializer>(
        amount: &Option<Amount>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match amount {
            Some(amount) => serializer.collect_str(amount),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a decimal string or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Amount>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|text| super::amount_string::parse(&text).map_err(D::Error::custom))
            .transpose()
    }
}
