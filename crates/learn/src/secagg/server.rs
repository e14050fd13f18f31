//! The server's side of a round: it collects and routes messages, keeps only the running sum of masked
//! inputs (never an individual vector once added), and at the end reconstructs exactly the secrets
//! needed to remove the masks.

use std::collections::{BTreeMap, BTreeSet};

use x25519_dalek::{PublicKey, StaticSecret};

use super::client::check_vector;
use super::mask::{self, MaskKind, SHARES_CIPHERTEXT_BYTES};
use super::shamir::{self, Share};
use super::{
    AdvertisedKeys, ClientId, CommunicationGraph, EncryptedShares, KeyAdvertisement, MaskedInput,
    PublicKeys, Result, RoundConfig, RoutedShares, SecAggError, SharedKeys, UnmaskRequest,
    UnmaskResponse,
};

/// Name of the self-mask seed in errors.
const SELF_MASK_SEED: &str = "self-mask seed";

/// Name of the mask secret key in errors.
const MASK_SECRET_KEY: &str = "mask secret key";

/// What the server is collecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Keys,
    Shares,
    MaskedInputs,
    UnmaskResponses,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Self::Keys => "collecting keys",
            Self::Shares => "collecting shares",
            Self::MaskedInputs => "collecting masked inputs",
            Self::UnmaskResponses => "collecting unmask responses",
        }
    }
}

/// The outcome of a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// `Σ x mod 2^modulus_bits` over the contributors.
    pub sum: Vec<u64>,
    /// The clients whose inputs are in the sum: those that sent masked inputs.
    pub contributors: BTreeSet<ClientId>,
}

/// The aggregator of one round.
#[derive(Debug)]
pub struct Server {
    config: RoundConfig,
    graph: CommunicationGraph,
    stage: Stage,
    /// Stage 0: who advertised which keys (`U1`).
    keys: BTreeMap<ClientId, PublicKeys>,
    /// Stage 1: sealed shares by sender, then recipient (`U2` = the senders), until routed.
    sealed: BTreeMap<ClientId, BTreeMap<ClientId, EncryptedShares>>,
    /// After routing: by sender (`U2`), the neighbours its shares went to.
    share_holders: BTreeMap<ClientId, BTreeSet<ClientId>>,
    /// Stage 2: the running sum of masked inputs modulo `2^64`, and who sent one (`U3`).
    masked_sum: Vec<u64>,
    masked_senders: BTreeSet<ClientId>,
    /// Stage 3: the request sent, and the shares received by owner, then holder.
    request: Option<UnmaskRequest>,
    responders: BTreeSet<ClientId>,
    self_mask_shares: BTreeMap<ClientId, BTreeMap<ClientId, Share>>,
    mask_key_shares: BTreeMap<ClientId, BTreeMap<ClientId, Share>>,
}

impl Server {
    /// A server for the round `config` (validated), collecting key advertisements.
    pub fn new(config: RoundConfig) -> Result<Self> {
        let graph = CommunicationGraph::new(&config)?;
        Ok(Self {
            config,
            graph,
            stage: Stage::Keys,
            keys: BTreeMap::new(),
            sealed: BTreeMap::new(),
            share_holders: BTreeMap::new(),
            masked_sum: Vec::new(),
            masked_senders: BTreeSet::new(),
            request: None,
            responders: BTreeSet::new(),
            self_mask_shares: BTreeMap::new(),
            mask_key_shares: BTreeMap::new(),
        })
    }

    /// The round's configuration.
    pub fn config(&self) -> &RoundConfig {
        &self.config
    }

    /// The round's communication graph.
    pub fn graph(&self) -> &CommunicationGraph {
        &self.graph
    }

    fn expect_stage(&self, stage: Stage, action: &'static str) -> Result<()> {
        if self.stage == stage {
            Ok(())
        } else {
            Err(SecAggError::WrongStage {
                action,
                stage: self.stage.name(),
            })
        }
    }

    fn expect_participant(&self, message: &'static str, client: ClientId) -> Result<()> {
        if self.graph.contains(client) {
            Ok(())
        } else {
            Err(SecAggError::UnexpectedClient {
                message,
                client,
                reason: "is not a participant of this round",
            })
        }
    }

    /// Stage 0: takes one client's public keys.
    pub fn receive_key_advertisement(&mut self, advertisement: &KeyAdvertisement) -> Result<()> {
        const MESSAGE: &str = "key advertisement";
        self.expect_stage(Stage::Keys, "take a key advertisement")?;
        self.config.tag.check(MESSAGE, &advertisement.tag)?;
        let sender = advertisement.sender;
        self.expect_participant(MESSAGE, sender)?;
        if self.keys.contains_key(&sender) {
            return Err(SecAggError::Duplicate {
                message: MESSAGE,
                client: sender,
            });
        }
        let keys = &advertisement.keys;
        if keys.encryption == keys.masking {
            return Err(SecAggError::InvalidPublicKey {
                client: sender,
                reason: "its encryption and masking keys are the same",
            });
        }
        for public in [&keys.encryption, &keys.masking] {
            if !mask::is_usable_public_key(public) {
                return Err(SecAggError::InvalidPublicKey {
                    client: sender,
                    reason: "it has small order (Diffie-Hellman with it gives zero)",
                });
            }
            let reused = self
                .keys
                .values()
                .any(|other| &other.encryption == public || &other.masking == public);
            if reused {
                return Err(SecAggError::InvalidPublicKey {
                    client: sender,
                    reason: "another client already advertised it",
                });
            }
        }
        self.keys.insert(sender, *keys);
        Ok(())
    }

    /// Ends stage 0: the keys to broadcast to every client that advertised. Needs at least `t`
    /// advertisers; otherwise nothing changes (wait for more, or abandon the round).
    pub fn close_key_advertisement(&mut self) -> Result<AdvertisedKeys> {
        self.expect_stage(Stage::Keys, "close key advertisement")?;
        if self.keys.len() < self.config.threshold {
            return Err(SecAggError::NotEnoughClients {
                what: "advertised keys",
                have: self.keys.len(),
                need: self.config.threshold,
            });
        }
        self.stage = Stage::Shares;
        Ok(AdvertisedKeys {
            tag: self.config.tag,
            keys: self.keys.clone(),
        })
    }

    /// Stage 1: takes one client's sealed shares, which must go to exactly its neighbours that
    /// advertised keys.
    pub fn receive_shared_keys(&mut self, shared: SharedKeys) -> Result<()> {
        const MESSAGE: &str = "shared keys";
        self.expect_stage(Stage::Shares, "take shared keys")?;
        self.config.tag.check(MESSAGE, &shared.tag)?;
        let sender = shared.sender;
        if !self.keys.contains_key(&sender) {
            return Err(SecAggError::UnexpectedClient {
                message: MESSAGE,
                client: sender,
                reason: "did not advertise keys in this round",
            });
        }
        if self.sealed.contains_key(&sender) {
            return Err(SecAggError::Duplicate {
                message: MESSAGE,
                client: sender,
            });
        }
        let expected: BTreeSet<ClientId> = self
            .graph
            .neighbours(sender)?
            .into_iter()
            .filter(|neighbour| self.keys.contains_key(neighbour))
            .collect();
        if !shared.shares.keys().eq(expected.iter()) {
            return Err(SecAggError::Malformed {
                what: MESSAGE,
                reason: format!(
                    "client {sender} sent shares to {} clients, not to exactly its {} neighbours that \
                     advertised keys",
                    shared.shares.len(),
                    expected.len()
                ),
            });
        }
        if let Some((&recipient, sealed)) = shared
            .shares
            .iter()
            .find(|(_, sealed)| sealed.ciphertext.len() != SHARES_CIPHERTEXT_BYTES)
        {
            return Err(SecAggError::Malformed {
                what: MESSAGE,
                reason: format!(
                    "the ciphertext for client {recipient} has {} bytes, expected \
                     {SHARES_CIPHERTEXT_BYTES}",
                    sealed.ciphertext.len()
                ),
            });
        }
        self.sealed.insert(sender, shared.shares);
        Ok(())
    }

    /// Ends stage 1: the sealed shares to deliver to each client that shared keys (`U2`). Needs at
    /// least `t` such clients; otherwise nothing changes.
    pub fn close_key_sharing(&mut self) -> Result<BTreeMap<ClientId, RoutedShares>> {
        self.expect_stage(Stage::Shares, "close key sharing")?;
        if self.sealed.len() < self.config.threshold {
            return Err(SecAggError::NotEnoughClients {
                what: "shared keys",
                have: self.sealed.len(),
                need: self.config.threshold,
            });
        }
        let mut routed: BTreeMap<ClientId, RoutedShares> = self
            .sealed
            .keys()
            .map(|&recipient| {
                (
                    recipient,
                    RoutedShares {
                        tag: self.config.tag,
                        recipient,
                        shares: BTreeMap::new(),
                    },
                )
            })
            .collect();
        let mut share_holders = BTreeMap::new();
        for (sender, by_recipient) in std::mem::take(&mut self.sealed) {
            let mut holders = BTreeSet::new();
            for (recipient, sealed) in by_recipient {
                // Shares for a client that did not share keys itself are not delivered: it has left.
                if let Some(message) = routed.get_mut(&recipient) {
                    message.shares.insert(sender, sealed);
                    holders.insert(recipient);
                }
            }
            share_holders.insert(sender, holders);
        }
        self.share_holders = share_holders;
        self.masked_sum = vec![0; self.config.vector_length];
        self.stage = Stage::MaskedInputs;
        Ok(routed)
    }

    /// Stage 2: adds one client's masked input to the running sum.
    pub fn receive_masked_input(&mut self, input: &MaskedInput) -> Result<()> {
        const MESSAGE: &str = "masked input";
        self.expect_stage(Stage::MaskedInputs, "take a masked input")?;
        self.config.tag.check(MESSAGE, &input.tag)?;
        let sender = input.sender;
        if !self.share_holders.contains_key(&sender) {
            return Err(SecAggError::UnexpectedClient {
                message: MESSAGE,
                client: sender,
                reason: "did not share keys in this round",
            });
        }
        if self.masked_senders.contains(&sender) {
            return Err(SecAggError::Duplicate {
                message: MESSAGE,
                client: sender,
            });
        }
        check_vector(
            &input.vector,
            self.config.vector_length,
            self.config.modulus_bits,
            MESSAGE,
        )?;
        for (sum, &value) in self.masked_sum.iter_mut().zip(&input.vector) {
            *sum = sum.wrapping_add(value);
        }
        self.masked_senders.insert(sender);
        Ok(())
    }

    /// Ends stage 2: the unmask request for every client that sent a masked input. Needs at least `t`
    /// of them; otherwise nothing changes (wait for more, or abandon the round: with fewer, the sum
    /// would say too much about too few inputs).
    pub fn close_masked_input(&mut self) -> Result<UnmaskRequest> {
        self.expect_stage(Stage::MaskedInputs, "close masked input")?;
        if self.masked_senders.len() < self.config.threshold {
            return Err(SecAggError::NotEnoughClients {
                what: "sent masked inputs",
                have: self.masked_senders.len(),
                need: self.config.threshold,
            });
        }
        let request = UnmaskRequest {
            tag: self.config.tag,
            surviving: self.masked_senders.clone(),
            dropped: self
                .share_holders
                .keys()
                .filter(|client| !self.masked_senders.contains(client))
                .copied()
                .collect(),
        };
        self.request = Some(request.clone());
        self.stage = Stage::UnmaskResponses;
        Ok(request)
    }

    /// Stage 3: takes one client's shares, each of which must be one that client was sent and the
    /// request asked for.
    pub fn receive_unmask_response(&mut self, response: UnmaskResponse) -> Result<()> {
        const MESSAGE: &str = "unmask response";
        self.expect_stage(Stage::UnmaskResponses, "take an unmask response")?;
        self.config.tag.check(MESSAGE, &response.tag)?;
        let Some(request) = &self.request else {
            return Err(SecAggError::WrongStage {
                action: "take an unmask response",
                stage: self.stage.name(),
            });
        };
        let sender = response.sender;
        if !request.surviving.contains(&sender) {
            return Err(SecAggError::UnexpectedClient {
                message: MESSAGE,
                client: sender,
                reason: "was not asked: it sent no masked input",
            });
        }
        if self.responders.contains(&sender) {
            return Err(SecAggError::Duplicate {
                message: MESSAGE,
                client: sender,
            });
        }
        let held_by_sender = |owner: &ClientId| {
            self.share_holders
                .get(owner)
                .is_some_and(|holders| holders.contains(&sender))
        };
        for (owners, asked, kind) in [
            (
                &response.self_mask_shares,
                &request.surviving,
                SELF_MASK_SEED,
            ),
            (&response.mask_key_shares, &request.dropped, MASK_SECRET_KEY),
        ] {
            if let Some(owner) = owners
                .keys()
                .find(|owner| !asked.contains(owner) || !held_by_sender(owner))
            {
                return Err(SecAggError::Malformed {
                    what: MESSAGE,
                    reason: format!(
                        "client {sender} sent a share of the {kind} of client {owner}, which was not \
                         asked for or never sent to it"
                    ),
                });
            }
        }
        for (owner, share) in response.self_mask_shares {
            self.self_mask_shares
                .entry(owner)
                .or_default()
                .insert(sender, share);
        }
        for (owner, share) in response.mask_key_shares {
            self.mask_key_shares
                .entry(owner)
                .or_default()
                .insert(sender, share);
        }
        self.responders.insert(sender);
        Ok(())
    }

    /// Ends the round: reconstructs the self-mask seed of every surviving client and the mask secret
    /// key of every dropped one, removes their masks, and returns the sum. If any of those secrets has
    /// fewer than `t` shares (or inconsistent ones), returns the error and unmasks nothing; more
    /// responses may still be taken and this called again.
    pub fn aggregate(&self) -> Result<Aggregate> {
        self.expect_stage(Stage::UnmaskResponses, "aggregate")?;
        let Some(request) = &self.request else {
            return Err(SecAggError::WrongStage {
                action: "aggregate",
                stage: self.stage.name(),
            });
        };
        let threshold = self.config.threshold;
        let empty = BTreeMap::new();

        // Every secret first: an error here leaves nothing unmasked.
        let mut seeds = Vec::with_capacity(request.surviving.len());
        for &client in &request.surviving {
            let shares = self.self_mask_shares.get(&client).unwrap_or(&empty);
            seeds.push(shamir::recover(client, SELF_MASK_SEED, shares, threshold)?);
        }
        let mut dropped_keys = Vec::with_capacity(request.dropped.len());
        for &client in &request.dropped {
            let shares = self.mask_key_shares.get(&client).unwrap_or(&empty);
            let bytes = shamir::recover(client, MASK_SECRET_KEY, shares, threshold)?;
            let secret = StaticSecret::from(*bytes);
            let advertised = self.keys.get(&client).map(|keys| keys.masking);
            let Some(advertised) =
                advertised.filter(|public| *public == PublicKey::from(&secret).to_bytes())
            else {
                return Err(SecAggError::InconsistentShares {
                    client,
                    secret: MASK_SECRET_KEY,
                    reason: "they reconstruct to a key that is not the one advertised",
                });
            };
            dropped_keys.push((client, secret, advertised));
        }

        let mut sum = self.masked_sum.clone();
        for seed in &seeds {
            mask::apply_mask(&mut sum, seed, MaskKind::SelfMask, true)?;
        }
        for (dropped, secret, dropped_public) in &dropped_keys {
            // The survivors that masked with the dropped client: its neighbours that it sent shares to.
            let Some(holders) = self.share_holders.get(dropped) else {
                continue;
            };
            for &survivor in holders.intersection(&request.surviving) {
                let Some(keys) = self.keys.get(&survivor) else {
                    continue;
                };
                let shared = mask::agree(secret, &keys.masking, survivor)?;
                let key = mask::pairwise_mask_key(
                    &self.config.tag,
                    (*dropped, dropped_public),
                    (survivor, &keys.masking),
                    &shared,
                )?;
                // The survivor added the mask if it has the lower id, subtracted it otherwise: undo.
                mask::apply_mask(&mut sum, &key, MaskKind::Pairwise, survivor < *dropped)?;
            }
        }
        let modulus_mask = self.config.modulus_mask();
        for value in &mut sum {
            *value &= modulus_mask;
        }
        tracing::debug!(
            round = self.config.tag.round,
            contributors = request.surviving.len(),
            dropped = request.dropped.len(),
            "secagg: aggregated"
        );
        Ok(Aggregate {
            sum,
            contributors: request.surviving.clone(),
        })
    }
}
