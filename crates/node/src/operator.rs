//! Running a validator as its own process: node homes, their TOML config, and the genesis flow.
//!
//! A node home holds:
//! - `config.toml`: moniker, p2p and API listen addresses, data directory, log level
//!   (see [`NodeConfig`] for the defaults);
//! - `node_key.json`: the node's ed25519 key (its p2p and consensus identity, and fee account);
//! - after `genesis finalize`: `genesis.json` and `validator.json` (the key plus its threshold-BLS
//!   share).
//!
//! The genesis flow, run by one coordinator with access to every node home (a trusted dealer,
//! as documented in `tributary_chain::genesis`):
//! 1. `tributary node init --home H --moniker M` for each validator;
//! 2. `tributary genesis new --home G` makes a draft genesis;
//! 3. `tributary genesis add-validator --home G --node-home H` adds each node (key, p2p address);
//! 4. `tributary genesis add-account --home G ADDRESS AMOUNT` funds accounts;
//! 5. `tributary genesis finalize --home G --node-home H...` deals the key shares and writes
//!    `genesis.json` and `validator.json` into every node home.
//!
//! Then `tributary node run --home H` on each.
//!
//! A full (non-voting) node is made the same way: `node init`, then `genesis add-follower
//! --node-home H` before `finalize` (pass its home to `finalize` too, to receive `genesis.json`).
//! `node run` on a home without `validator.json` runs it as a follower: it fetches finalized
//! blocks with their certificates from the validators, serves the API, and relays transactions.

use crate::{
    devnet::{DevnetError, Seat, free_loopback_port, io, read_json, run_validators},
    keystore::write_private,
};
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Signer, ed25519};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
};
use tributary_chain::{
    ChainGenesis, GenesisFollower, GenesisValidator, NodeIdentity, ValidatorKeyFile,
    genesis::{deal, new_validator_key, public_key_from_hex},
};
use tributary_types::{Address, Allocation, Amount, Genesis, Params};

/// A node's `config.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Human name of the node.
    pub moniker: String,
    /// Where the p2p listener binds (and what the genesis advertises to peers).
    pub p2p_listen: SocketAddr,
    /// Where the HTTP API listens. Default `127.0.0.1:8645`.
    #[serde(default = "default_api")]
    pub api_listen: SocketAddr,
    /// Storage directory, relative to the home unless absolute. Default `data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Log filter (`TRIBUTARY_LOG` overrides it). Default `warn`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

fn default_api() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8645))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_log_level() -> String {
    "warn".into()
}

/// The key file written by `node init`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeKeyFile {
    /// ed25519 public key, hex.
    pub public_key: String,
    /// ed25519 private key, hex.
    pub private_key: String,
}

fn damaged(path: &Path, reason: impl ToString) -> DevnetError {
    DevnetError::Damaged {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads a node's config.
pub fn read_config(home: &Path) -> Result<NodeConfig, DevnetError> {
    let path = home.join("config.toml");
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    toml::from_str(&text).map_err(|error| damaged(&path, error))
}

fn node_key(home: &Path) -> Result<ed25519::PrivateKey, DevnetError> {
    let path = home.join("node_key.json");
    let file: NodeKeyFile = read_json(&path)?;
    let bytes = hex::decode(&file.private_key).map_err(|error| damaged(&path, error))?;
    ed25519::PrivateKey::decode(bytes).map_err(|error| damaged(&path, error))
}

/// `node init`: a node key and a config with defaults. Refuses to overwrite an existing home.
pub fn init(
    home: &Path,
    moniker: &str,
    p2p_listen: Option<SocketAddr>,
    api_listen: Option<SocketAddr>,
) -> Result<NodeConfig, DevnetError> {
    let config_path = home.join("config.toml");
    if config_path.exists() {
        return Err(DevnetError::Options(format!(
            "{} already exists; this home is initialised",
            config_path.display()
        )));
    }
    fs::create_dir_all(home).map_err(io(home))?;
    let key = new_validator_key();
    let key_file = NodeKeyFile {
        public_key: hex::encode(key.public_key().encode()),
        private_key: hex::encode(key.encode()),
    };
    let text = serde_json::to_string_pretty(&key_file).map_err(|e| damaged(home, e))?;
    write_private(&home.join("node_key.json"), text.as_bytes())?;
    let config = NodeConfig {
        moniker: moniker.to_string(),
        p2p_listen: match p2p_listen {
            Some(address) => address,
            None => free_loopback_port()?,
        },
        api_listen: api_listen.unwrap_or_else(default_api),
        data_dir: default_data_dir(),
        log_level: default_log_level(),
    };
    let text = toml::to_string_pretty(&config).map_err(|e| damaged(&config_path, e))?;
    fs::write(&config_path, text).map_err(io(&config_path))?;
    Ok(config)
}

fn draft_path(home: &Path) -> PathBuf {
    home.join("genesis.draft.json")
}

/// `genesis new`: an empty draft with devnet parameters.
pub fn genesis_new(home: &Path, chain_id: &str, params: Option<Params>) -> Result<(), DevnetError> {
    fs::create_dir_all(home).map_err(io(home))?;
    let draft = ChainGenesis {
        ledger: Genesis {
            chain_id: chain_id.to_string(),
            params: params.unwrap_or_else(|| Params::devnet(chain_id)),
            allocations: Vec::new(),
            bonds: Vec::new(),
        },
        validators: Vec::new(),
        followers: Vec::new(),
        polynomial: String::new(),
    };
    write_draft(home, &draft)
}

fn write_draft(home: &Path, draft: &ChainGenesis) -> Result<(), DevnetError> {
    let path = draft_path(home);
    let text = serde_json::to_string_pretty(draft).map_err(|e| damaged(&path, e))?;
    fs::write(&path, text).map_err(io(&path))
}

/// `genesis add-validator`: adds the node at `node_home` to the draft, with a genesis `validator`
/// bond of `bond` (its stake, slashed for proven misbehaviour; 0 for none).
pub fn genesis_add_validator(
    home: &Path,
    node_home: &Path,
    bond: Amount,
) -> Result<GenesisValidator, DevnetError> {
    let mut draft: ChainGenesis = read_json(&draft_path(home))?;
    let config = read_config(node_home)?;
    let key = node_key(node_home)?;
    let public_key = hex::encode(key.public_key().encode());
    if draft.validators.iter().any(|v| v.public_key == public_key) {
        return Err(DevnetError::Options(format!(
            "{} is already a validator in the draft",
            config.moniker
        )));
    }
    let validator = GenesisValidator {
        name: config.moniker,
        public_key,
        address: Address::from_public_key(&key.public_key()),
        p2p: config.p2p_listen,
    };
    draft.validators.push(validator.clone());
    if bond > 0 {
        draft.ledger.bonds.push(tributary_types::GenesisBond {
            address: validator.address,
            role: tributary_types::Role::Validator,
            amount: bond,
        });
    }
    write_draft(home, &draft)?;
    Ok(validator)
}

/// `genesis add-follower`: lists the node at `node_home` as a full (non-voting) node the
/// validators accept as a peer.
pub fn genesis_add_follower(home: &Path, node_home: &Path) -> Result<GenesisFollower, DevnetError> {
    let mut draft: ChainGenesis = read_json(&draft_path(home))?;
    let config = read_config(node_home)?;
    let key = node_key(node_home)?;
    let public_key = hex::encode(key.public_key().encode());
    if draft.validators.iter().any(|v| v.public_key == public_key)
        || draft.followers.iter().any(|f| f.public_key == public_key)
    {
        return Err(DevnetError::Options(format!(
            "{} is already in the draft",
            config.moniker
        )));
    }
    let follower = GenesisFollower {
        name: config.moniker,
        public_key,
        p2p: config.p2p_listen,
    };
    draft.followers.push(follower.clone());
    write_draft(home, &draft)?;
    Ok(follower)
}

/// `genesis add-account`: funds an account in the draft.
pub fn genesis_add_account(
    home: &Path,
    address: Address,
    amount: Amount,
) -> Result<(), DevnetError> {
    let mut draft: ChainGenesis = read_json(&draft_path(home))?;
    if draft
        .ledger
        .allocations
        .iter()
        .any(|a| a.address == address)
    {
        return Err(DevnetError::Options(format!(
            "{address} is already funded in the draft"
        )));
    }
    draft
        .ledger
        .allocations
        .push(Allocation { address, amount });
    write_draft(home, &draft)
}

/// `genesis finalize`: deals the threshold key shares (trusted dealer), writes `genesis.json`
/// into `home` and, with each node's `validator.json`, into every node home.
pub fn genesis_finalize(home: &Path, node_homes: &[PathBuf]) -> Result<ChainGenesis, DevnetError> {
    let mut genesis: ChainGenesis = read_json(&draft_path(home))?;
    if genesis.validators.is_empty() {
        return Err(DevnetError::Options(
            "the draft has no validators; add some first".into(),
        ));
    }
    let keys = genesis
        .validators
        .iter()
        .map(|v| public_key_from_hex(&v.public_key))
        .collect::<Result<Vec<_>, _>>()?;
    // Homes that are neither a validator nor a follower of the draft are a mistake.
    let mut follower_homes = Vec::new();
    for node_home in node_homes {
        let public_key = hex::encode(node_key(node_home)?.public_key().encode());
        if genesis.followers.iter().any(|f| f.public_key == public_key) {
            follower_homes.push(node_home.clone());
        } else if !genesis
            .validators
            .iter()
            .any(|v| v.public_key == public_key)
        {
            return Err(DevnetError::Options(format!(
                "{} holds neither a validator nor a follower of the draft",
                node_home.display()
            )));
        }
    }
    // Every validator's key must be at hand to hand it its share.
    let mut signers = Vec::new();
    for key in &keys {
        let mut found = None;
        for node_home in node_homes {
            let signer = node_key(node_home)?;
            if signer.public_key() == *key {
                found = Some((node_home.clone(), signer));
            }
        }
        let found = found.ok_or_else(|| {
            DevnetError::Options(format!(
                "no --node-home holds the key of validator {key}; pass every validator's home"
            ))
        })?;
        signers.push(found);
    }
    let (polynomial, shares) = deal(rand::rng(), &keys)?;
    genesis.polynomial = polynomial;
    // Validate before writing anything.
    genesis.validator_set()?;
    let text = serde_json::to_string_pretty(&genesis).map_err(|e| damaged(home, e))?;
    fs::write(home.join("genesis.json"), &text).map_err(io(home))?;
    for ((node_home, signer), share) in signers.iter().zip(&shares) {
        fs::write(node_home.join("genesis.json"), &text).map_err(io(node_home))?;
        let key_file = ValidatorKeyFile::new(signer, share);
        let key_text =
            serde_json::to_string_pretty(&key_file).map_err(|e| damaged(node_home, e))?;
        write_private(&node_home.join("validator.json"), key_text.as_bytes())?;
    }
    for node_home in &follower_homes {
        fs::write(node_home.join("genesis.json"), &text).map_err(io(node_home))?;
    }
    Ok(genesis)
}

/// `node run`: runs the validator in `home` until `shutdown` completes.
pub fn run(
    home: &Path,
    on_ready: impl FnOnce(&NodeConfig) + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevnetError> {
    let config = read_config(home)?;
    let genesis: ChainGenesis = read_json(&home.join("genesis.json"))?;
    let validator_file = home.join("validator.json");
    let (seat, identity) = if validator_file.exists() {
        let key_file: ValidatorKeyFile = read_json(&validator_file)?;
        let index = genesis
            .validators
            .iter()
            .position(|v| v.public_key == key_file.public_key)
            .ok_or_else(|| {
                DevnetError::Options(
                    "validator.json holds a key that is not a validator in genesis.json".into(),
                )
            })?;
        (Seat::Validator(index), key_file.identity()?)
    } else {
        let signer = node_key(home)?;
        let public_key = hex::encode(signer.public_key().encode());
        let index = genesis
            .followers
            .iter()
            .position(|f| f.public_key == public_key)
            .ok_or_else(|| {
                DevnetError::Options(
                    "this node is neither a validator (no validator.json) nor a follower in genesis.json; add it with `genesis add-follower`".into(),
                )
            })?;
        (
            Seat::Follower(index),
            NodeIdentity {
                signer,
                share: None,
            },
        )
    };
    let data_dir = if config.data_dir.is_absolute() {
        config.data_dir.clone()
    } else {
        home.join(&config.data_dir)
    };
    let api = config.api_listen;
    run_validators(
        &genesis,
        vec![(seat, identity)],
        Vec::new(),
        &data_dir,
        api,
        move || on_ready(&config),
        shutdown,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_genesis_flow_writes_keys_shares_and_refuses_mistakes() {
        let root = tempfile::tempdir().unwrap();
        let nodes: Vec<PathBuf> = (0..3)
            .map(|i| root.path().join(format!("node{i}")))
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            let config = init(node, &format!("node-{i}"), None, None).unwrap();
            assert_eq!(read_config(node).unwrap(), config);
        }
        assert!(init(&nodes[0], "again", None, None).is_err());
        let coordinator = root.path().join("genesis");
        genesis_new(&coordinator, "test-chain", None).unwrap();
        for node in &nodes {
            genesis_add_validator(&coordinator, node, 1_000).unwrap();
        }
        assert!(genesis_add_validator(&coordinator, &nodes[0], 1_000).is_err());
        let funded = Address::from_public_key(&ed25519::PrivateKey::from_seed(1).public_key());
        genesis_add_account(&coordinator, funded, 1_000).unwrap();
        assert!(genesis_add_account(&coordinator, funded, 5).is_err());
        // Finalizing needs every validator's home.
        assert!(genesis_finalize(&coordinator, &nodes[..2]).is_err());
        let genesis = genesis_finalize(&coordinator, &nodes).unwrap();
        assert_eq!(genesis.validators.len(), 3);
        assert_eq!(genesis.validator_set().unwrap().validators.len(), 3);
        for node in &nodes {
            let key_file: ValidatorKeyFile = read_json(&node.join("validator.json")).unwrap();
            key_file.identity().unwrap();
        }
        fs::write(nodes[0].join("config.toml"), "moniker = 3\n").unwrap();
        assert!(read_config(&nodes[0]).is_err());
    }
}
