//! The chain's genesis file and validator key files.
//!
//! `genesis.json` holds the ledger genesis (chain id, parameters, allocations), the validator set
//! (ed25519 key and p2p address of each) and the public polynomial of the threshold-BLS group key.
//! Each validator's `validator.json` holds its ed25519 private key and its BLS key share.
//!
//! Keys are dealt by a trusted dealer ([`deal`]) when the genesis is made. That is fine for a
//! devnet and documented as such; a distributed key generation (commonware's DKG) replaces it
//! when the validator set is reconfigured on chain.

use crate::engine::{NodeIdentity, ValidatorSet};
use commonware_codec::{DecodeExt, Encode, Read};
use commonware_cryptography::{
    Signer,
    bls12381::{
        dkg,
        primitives::{
            group::Share,
            sharing::{Mode, ModeVersion, Sharing},
            variant::MinSig,
        },
    },
    ed25519,
};
use commonware_utils::{N3f1, ordered::Set};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, num::NonZeroU32};
use tributary_types::{Address, Genesis, limits};

/// Errors reading genesis and key files.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// A hex field did not decode.
    #[error("{field}: not valid hex")]
    Hex {
        /// Which field.
        field: &'static str,
    },
    /// A key, share or polynomial did not decode.
    #[error("{field}: {reason}")]
    Decode {
        /// Which field.
        field: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The validator set is empty or too large.
    #[error("genesis must list between 1 and {max} validators, it lists {count}")]
    ValidatorCount {
        /// Listed.
        count: usize,
        /// Allowed.
        max: usize,
    },
    /// Too many followers.
    #[error("genesis may list at most {max} followers, it lists {count}")]
    FollowerCount {
        /// Listed.
        count: usize,
        /// Allowed.
        max: usize,
    },
    /// Key dealing failed.
    #[error("dealing threshold keys failed: {0}")]
    Deal(String),
}

/// One validator in the genesis file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Human name (moniker).
    pub name: String,
    /// ed25519 public key, hex.
    pub public_key: String,
    /// The validator's account address (where its fees go).
    pub address: Address,
    /// Its p2p address.
    pub p2p: SocketAddr,
}

/// A full (non-voting) node the validators accept connections from: it follows the chain by
/// fetching finalized blocks and their certificates, and relays transactions to validators.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GenesisFollower {
    /// Human name (moniker).
    pub name: String,
    /// ed25519 public key, hex (its p2p identity).
    pub public_key: String,
    /// Its p2p address.
    pub p2p: SocketAddr,
}

/// The chain's genesis file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainGenesis {
    /// Ledger genesis: chain id, parameters, allocations.
    pub ledger: Genesis,
    /// The validator set.
    pub validators: Vec<GenesisValidator>,
    /// Full nodes the validators accept as peers. Not part of the consensus state (the genesis
    /// block commits to the ledger only), so operators may append followers to their copy later
    /// and restart.
    #[serde(default)]
    pub followers: Vec<GenesisFollower>,
    /// Public polynomial of the threshold-BLS group key, hex of its canonical encoding.
    pub polynomial: String,
}

/// A validator's secret key file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidatorKeyFile {
    /// ed25519 public key, hex.
    pub public_key: String,
    /// ed25519 private key, hex.
    pub private_key: String,
    /// BLS12-381 threshold share, hex.
    pub share: String,
}

fn from_hex(field: &'static str, text: &str) -> Result<Vec<u8>, GenesisError> {
    hex::decode(text).map_err(|_| GenesisError::Hex { field })
}

/// Parses a hex ed25519 public key.
pub fn public_key_from_hex(text: &str) -> Result<ed25519::PublicKey, GenesisError> {
    let bytes = from_hex("public_key", text)?;
    ed25519::PublicKey::decode(bytes).map_err(|error| GenesisError::Decode {
        field: "public_key",
        reason: error.to_string(),
    })
}

impl ChainGenesis {
    /// The validator set this genesis describes.
    pub fn validator_set(&self) -> Result<ValidatorSet, GenesisError> {
        let count = self.validators.len();
        if count == 0 || count > limits::VALIDATORS_MAX {
            return Err(GenesisError::ValidatorCount {
                count,
                max: limits::VALIDATORS_MAX,
            });
        }
        let validators = self
            .validators
            .iter()
            .map(|validator| Ok((public_key_from_hex(&validator.public_key)?, validator.p2p)))
            .collect::<Result<Vec<_>, GenesisError>>()?;
        let bytes = from_hex("polynomial", &self.polynomial)?;
        let total = NonZeroU32::new(count as u32).ok_or(GenesisError::ValidatorCount {
            count,
            max: limits::VALIDATORS_MAX,
        })?;
        let polynomial = Sharing::<MinSig>::read_cfg(
            &mut commonware_codec::Copying(&bytes),
            &(total, ModeVersion::v0()),
        )
        .map_err(|error| GenesisError::Decode {
            field: "polynomial",
            reason: error.to_string(),
        })?;
        let followers = self
            .followers
            .iter()
            .map(|follower| Ok((public_key_from_hex(&follower.public_key)?, follower.p2p)))
            .collect::<Result<Vec<_>, GenesisError>>()?;
        if followers.len() > limits::FOLLOWERS_MAX {
            return Err(GenesisError::FollowerCount {
                count: followers.len(),
                max: limits::FOLLOWERS_MAX,
            });
        }
        Ok(ValidatorSet {
            validators,
            followers,
            polynomial,
        })
    }

    /// The leader key embedded in the genesis block's context (the first validator).
    pub fn genesis_leader(&self) -> Result<ed25519::PublicKey, GenesisError> {
        let first = self
            .validators
            .first()
            .ok_or(GenesisError::ValidatorCount {
                count: 0,
                max: limits::VALIDATORS_MAX,
            })?;
        public_key_from_hex(&first.public_key)
    }
}

impl ValidatorKeyFile {
    /// A key file for `signer` holding `share`.
    pub fn new(signer: &ed25519::PrivateKey, share: &Share) -> Self {
        Self {
            public_key: hex::encode(signer.public_key().encode()),
            private_key: hex::encode(signer.encode()),
            share: hex::encode(share.encode()),
        }
    }

    /// The identity in this file.
    pub fn identity(&self) -> Result<NodeIdentity, GenesisError> {
        let private = from_hex("private_key", &self.private_key)?;
        let signer =
            ed25519::PrivateKey::decode(private).map_err(|error| GenesisError::Decode {
                field: "private_key",
                reason: error.to_string(),
            })?;
        let share_bytes = from_hex("share", &self.share)?;
        let share = Share::decode(share_bytes).map_err(|error| GenesisError::Decode {
            field: "share",
            reason: error.to_string(),
        })?;
        Ok(NodeIdentity {
            signer,
            share: Some(share),
        })
    }
}

/// Deals threshold-BLS key shares to `validators` as a trusted dealer: returns the public
/// polynomial (hex, for the genesis file) and each validator's share, in `validators` order.
pub fn deal(
    rng: impl rand_core::CryptoRng,
    validators: &[ed25519::PublicKey],
) -> Result<(String, Vec<Share>), GenesisError> {
    let players: Set<ed25519::PublicKey> = Set::from_iter_dedup(validators.iter().cloned());
    let (output, shares) = dkg::feldman_desmedt::deal::<MinSig, ed25519::PublicKey, N3f1>(
        rng,
        Mode::NonZeroCounter,
        players,
    )
    .map_err(|error| GenesisError::Deal(error.to_string()))?;
    let polynomial = hex::encode(output.public().encode());
    let shares = validators
        .iter()
        .map(|key| {
            shares
                .get_value(key)
                .cloned()
                .ok_or_else(|| GenesisError::Deal(format!("no share dealt to {key}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((polynomial, shares))
}

/// A fresh validator key from the operating system's entropy.
pub fn new_validator_key() -> ed25519::PrivateKey {
    <ed25519::PrivateKey as commonware_math::algebra::Random>::random(rand::rng())
}
