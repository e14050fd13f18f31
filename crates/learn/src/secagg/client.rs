//! The client's side of a round: it holds the input, its secrets for the round, and its neighbours'
//! shares; every step checks the server's message fully before changing any state.

use std::collections::{BTreeMap, BTreeSet};

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::mask::{self, Envelope, MaskKind};
use super::shamir::{self, SECRET_BYTES, Share};
use super::{
    AdvertisedKeys, ClientId, CommunicationGraph, EncryptedShares, KeyAdvertisement, MaskedInput,
    PublicKeys, Result, RoundConfig, RoutedShares, SecAggError, SharedKeys, UnmaskRequest,
    UnmaskResponse,
};

/// Where a client is in the round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Sent its public keys; waits for everyone's.
    KeysAdvertised,
    /// Sent its shares; waits for its neighbours'.
    KeysShared,
    /// Sent its masked input; waits for the unmask request.
    InputSent,
    /// Answered the unmask request; done.
    Finished,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Self::KeysAdvertised => "keys advertised",
            Self::KeysShared => "keys shared",
            Self::InputSent => "masked input sent",
            Self::Finished => "finished",
        }
    }
}

/// A neighbour's two shares, held for the server's unmask request.
struct HeldShares {
    self_mask: Share,
    mask_key: Share,
}

/// What a client agreed with one neighbour at stage 1, for stage 2.
struct Neighbour {
    keys: PublicKeys,
    /// X25519 agreement of the two encryption keys: opens the neighbour's sealed shares.
    encryption_shared: Zeroizing<[u8; 32]>,
    /// The pairwise mask key `s_ij`.
    mask_key: Zeroizing<[u8; 32]>,
}

/// One client in one round.
pub struct Client {
    config: RoundConfig,
    graph: CommunicationGraph,
    id: ClientId,
    stage: Stage,
    /// Secret for sealing and opening shares; dropped (zeroized) once stage 1 has used it.
    encryption_secret: Option<StaticSecret>,
    /// Secret for the pairwise masks; shared and dropped (zeroized) at stage 1.
    mask_secret: Option<StaticSecret>,
    public_keys: PublicKeys,
    /// Neighbours that advertised keys (from stage 1 to stage 2).
    neighbours: BTreeMap<ClientId, Neighbour>,
    /// The self-mask seed `b` (from stage 1 to stage 2).
    self_mask_seed: Option<Zeroizing<[u8; SECRET_BYTES]>>,
    /// Neighbours' shares (from stage 2): exactly the neighbours we masked with.
    held: BTreeMap<ClientId, HeldShares>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Client")
            .field("id", &self.id)
            .field("round", &self.config.tag.round)
            .field("stage", &self.stage.name())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Stage 0: joins the round as `id` with two fresh X25519 key pairs; returns the advertisement to
    /// send.
    pub fn new(
        config: RoundConfig,
        id: ClientId,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<(Self, KeyAdvertisement)> {
        let graph = CommunicationGraph::new(&config)?;
        if !graph.contains(id) {
            return Err(SecAggError::UnexpectedClient {
                message: "client setup",
                client: id,
                reason: "is not a participant of this round",
            });
        }
        let encryption_secret = mask::generate_secret(rng);
        let mask_secret = mask::generate_secret(rng);
        let public_keys = PublicKeys {
            encryption: PublicKey::from(&encryption_secret).to_bytes(),
            masking: PublicKey::from(&mask_secret).to_bytes(),
        };
        let advertisement = KeyAdvertisement {
            tag: config.tag,
            sender: id,
            keys: public_keys,
        };
        let client = Self {
            config,
            graph,
            id,
            stage: Stage::KeysAdvertised,
            encryption_secret: Some(encryption_secret),
            mask_secret: Some(mask_secret),
            public_keys,
            neighbours: BTreeMap::new(),
            self_mask_seed: None,
            held: BTreeMap::new(),
        };
        Ok((client, advertisement))
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The round's configuration.
    pub fn config(&self) -> &RoundConfig {
        &self.config
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

    /// Stage 1: from everyone's advertised keys, draws the self-mask seed `b`, shares `b` and the mask
    /// secret key `t`-of-(neighbours that advertised), and seals each neighbour's two shares to it.
    pub fn share_keys(
        &mut self,
        advertised: &AdvertisedKeys,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<SharedKeys> {
        const MESSAGE: &str = "advertised keys";
        self.expect_stage(Stage::KeysAdvertised, "share keys")?;
        self.config.tag.check(MESSAGE, &advertised.tag)?;
        if advertised.keys.len() > self.config.participants.len() {
            return Err(SecAggError::Malformed {
                what: MESSAGE,
                reason: format!(
                    "{} entries for {} participants",
                    advertised.keys.len(),
                    self.config.participants.len()
                ),
            });
        }
        let mut seen_keys = BTreeSet::new();
        for (&client, keys) in &advertised.keys {
            if !self.graph.contains(client) {
                return Err(SecAggError::UnexpectedClient {
                    message: MESSAGE,
                    client,
                    reason: "is not a participant of this round",
                });
            }
            if !seen_keys.insert(keys.encryption) || !seen_keys.insert(keys.masking) {
                return Err(SecAggError::InvalidPublicKey {
                    client,
                    reason: "a public key appears twice in the round",
                });
            }
        }
        if advertised.keys.get(&self.id) != Some(&self.public_keys) {
            return Err(SecAggError::Malformed {
                what: MESSAGE,
                reason: format!(
                    "our own keys (client {}) are missing or not the ones we sent",
                    self.id
                ),
            });
        }
        let neighbour_keys: BTreeMap<ClientId, PublicKeys> = self
            .graph
            .neighbours(self.id)?
            .into_iter()
            .filter_map(|neighbour| Some((neighbour, *advertised.keys.get(&neighbour)?)))
            .collect();
        if neighbour_keys.len() < self.config.threshold {
            return Err(SecAggError::NotEnoughClients {
                what: "of this client's neighbours advertised keys",
                have: neighbour_keys.len(),
                need: self.config.threshold,
            });
        }
        let (Some(encryption_secret), Some(mask_secret)) =
            (&self.encryption_secret, &self.mask_secret)
        else {
            return Err(SecAggError::WrongStage {
                action: "share keys",
                stage: self.stage.name(),
            });
        };

        let mut seed = Zeroizing::new([0u8; SECRET_BYTES]);
        rng.fill_bytes(seed.as_mut());
        let holders: BTreeSet<ClientId> = neighbour_keys.keys().copied().collect();
        let threshold = self.config.threshold;
        let seed_shares = shamir::split(&seed, &holders, threshold, rng)?;
        let mask_key = Zeroizing::new(mask_secret.to_bytes());
        let key_shares = shamir::split(&mask_key, &holders, threshold, rng)?;

        // One agreement per neighbour and key (it also refuses small-order keys), kept for stage 2.
        let mut neighbours = BTreeMap::new();
        let mut shares = BTreeMap::new();
        for (&neighbour, keys) in &neighbour_keys {
            let encryption_shared = mask::agree(encryption_secret, &keys.encryption, neighbour)?;
            let mask_shared = mask::agree(mask_secret, &keys.masking, neighbour)?;
            let mask_key = mask::pairwise_mask_key(
                &self.config.tag,
                (self.id, &self.public_keys.masking),
                (neighbour, &keys.masking),
                &mask_shared,
            )?;
            let (Some(seed_share), Some(key_share)) =
                (seed_shares.get(&neighbour), key_shares.get(&neighbour))
            else {
                return Err(SecAggError::Crypto {
                    reason: "secret sharing skipped a holder",
                });
            };
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut nonce);
            let envelope = Envelope {
                tag: &self.config.tag,
                sender: self.id,
                recipient: neighbour,
                sender_public: &self.public_keys.encryption,
                recipient_public: &keys.encryption,
            };
            let ciphertext = envelope.seal(&encryption_shared, &nonce, seed_share, key_share)?;
            shares.insert(neighbour, EncryptedShares { nonce, ciphertext });
            neighbours.insert(
                neighbour,
                Neighbour {
                    keys: *keys,
                    encryption_shared,
                    mask_key,
                },
            );
        }

        self.neighbours = neighbours;
        self.self_mask_seed = Some(seed);
        // The long-lived secrets are no longer needed: dropping them zeroizes them.
        self.encryption_secret = None;
        self.mask_secret = None;
        self.stage = Stage::KeysShared;
        tracing::debug!(
            client = self.id,
            round = self.config.tag.round,
            neighbours = shares.len(),
            "secagg: shared keys"
        );
        Ok(SharedKeys {
            tag: self.config.tag,
            sender: self.id,
            shares,
        })
    }

    /// Stage 2: opens the shares routed to us, and masks `input` (`vector_length` words, each below
    /// `2^modulus_bits`) with `PRG(b)` and a pairwise mask with every neighbour that sent us shares.
    pub fn masked_input(&mut self, routed: &RoutedShares, input: &[u64]) -> Result<MaskedInput> {
        const MESSAGE: &str = "routed shares";
        self.expect_stage(Stage::KeysShared, "send the masked input")?;
        self.config.tag.check(MESSAGE, &routed.tag)?;
        if routed.recipient != self.id {
            return Err(SecAggError::UnexpectedClient {
                message: MESSAGE,
                client: routed.recipient,
                reason: "is the recipient, but these are for another client",
            });
        }
        check_vector(
            input,
            self.config.vector_length,
            self.config.modulus_bits,
            "input",
        )?;
        if routed.shares.len() > self.neighbours.len() {
            return Err(SecAggError::Malformed {
                what: MESSAGE,
                reason: format!(
                    "{} senders, more than this client's {} neighbours",
                    routed.shares.len(),
                    self.neighbours.len()
                ),
            });
        }
        if routed.shares.len() < self.config.threshold {
            return Err(SecAggError::NotEnoughClients {
                what: "of this client's neighbours shared keys",
                have: routed.shares.len(),
                need: self.config.threshold,
            });
        }
        let Some(seed) = &self.self_mask_seed else {
            return Err(SecAggError::WrongStage {
                action: "send the masked input",
                stage: self.stage.name(),
            });
        };

        let mut held = BTreeMap::new();
        for (&sender, sealed) in &routed.shares {
            let Some(neighbour) = self.neighbours.get(&sender) else {
                return Err(SecAggError::UnexpectedClient {
                    message: MESSAGE,
                    client: sender,
                    reason: "is not a neighbour of this client that advertised keys",
                });
            };
            let envelope = Envelope {
                tag: &self.config.tag,
                sender,
                recipient: self.id,
                sender_public: &neighbour.keys.encryption,
                recipient_public: &self.public_keys.encryption,
            };
            let (self_mask, mask_key) = envelope.open(
                &neighbour.encryption_shared,
                &sealed.nonce,
                &sealed.ciphertext,
            )?;
            held.insert(
                sender,
                HeldShares {
                    self_mask,
                    mask_key,
                },
            );
        }

        let mut vector = input.to_vec();
        mask::apply_mask(&mut vector, seed, MaskKind::SelfMask, false)?;
        for (&neighbour, agreed) in &self.neighbours {
            if held.contains_key(&neighbour) {
                // Added if we have the lower id, subtracted otherwise: the pair's masks cancel.
                mask::apply_mask(
                    &mut vector,
                    &agreed.mask_key,
                    MaskKind::Pairwise,
                    neighbour < self.id,
                )?;
            }
        }
        let modulus_mask = self.config.modulus_mask();
        for value in &mut vector {
            *value &= modulus_mask;
        }

        self.held = held;
        // The seed and the agreed keys are no longer needed: dropping them zeroizes them.
        self.neighbours.clear();
        self.self_mask_seed = None;
        self.stage = Stage::InputSent;
        Ok(MaskedInput {
            tag: self.config.tag,
            sender: self.id,
            vector,
        })
    }

    /// Stage 3: answers the server's unmask request with the self-mask shares of surviving neighbours
    /// and the mask-key shares of dropped ones. Refuses a request that names a client in both lists, or
    /// in which fewer than `t` clients survived; answers only once.
    pub fn unmask(&mut self, request: &UnmaskRequest) -> Result<UnmaskResponse> {
        const MESSAGE: &str = "unmask request";
        self.expect_stage(Stage::InputSent, "answer the unmask request")?;
        self.config.tag.check(MESSAGE, &request.tag)?;
        let participants = self.config.participants.len();
        if request.surviving.len() > participants || request.dropped.len() > participants {
            return Err(SecAggError::Malformed {
                what: MESSAGE,
                reason: format!("lists more clients than the {participants} participants"),
            });
        }
        if let Some(&client) = request.surviving.intersection(&request.dropped).next() {
            return Err(SecAggError::RefusedBothShares { client });
        }
        if let Some(&client) = request
            .surviving
            .iter()
            .chain(&request.dropped)
            .find(|&&client| !self.graph.contains(client))
        {
            return Err(SecAggError::UnexpectedClient {
                message: MESSAGE,
                client,
                reason: "is not a participant of this round",
            });
        }
        if request.surviving.len() < self.config.threshold {
            return Err(SecAggError::NotEnoughClients {
                what: "survived to send masked inputs",
                have: request.surviving.len(),
                need: self.config.threshold,
            });
        }
        // A neighbour listed at all must have sent us shares (the server knows who did): otherwise the
        // request does not match the round as we saw it.
        if let Some(&client) = request
            .surviving
            .iter()
            .chain(&request.dropped)
            .find(|&&client| {
                self.graph.are_neighbours(self.id, client) && !self.held.contains_key(&client)
            })
        {
            return Err(SecAggError::Malformed {
                what: MESSAGE,
                reason: format!(
                    "it lists neighbour {client}, which never sent this client its shares"
                ),
            });
        }
        let mut self_mask_shares = BTreeMap::new();
        let mut mask_key_shares = BTreeMap::new();
        for (&neighbour, shares) in &self.held {
            if request.surviving.contains(&neighbour) {
                self_mask_shares.insert(neighbour, shares.self_mask.clone());
            } else if request.dropped.contains(&neighbour) {
                mask_key_shares.insert(neighbour, shares.mask_key.clone());
            }
        }
        self.held.clear();
        self.stage = Stage::Finished;
        Ok(UnmaskResponse {
            tag: self.config.tag,
            sender: self.id,
            self_mask_shares,
            mask_key_shares,
        })
    }
}

/// Checks a vector's length and that every value is below `2^modulus_bits`.
pub(crate) fn check_vector(
    vector: &[u64],
    length: usize,
    modulus_bits: u32,
    what: &'static str,
) -> Result<()> {
    if vector.len() != length {
        return Err(SecAggError::WrongLength {
            what,
            expected: length,
            got: vector.len(),
        });
    }
    let modulus_mask = super::modulus_mask(modulus_bits);
    if let Some((index, &value)) = vector
        .iter()
        .enumerate()
        .find(|&(_, &value)| value & !modulus_mask != 0)
    {
        return Err(SecAggError::ValueOutOfRange {
            what,
            index,
            value,
            modulus_bits,
        });
    }
    Ok(())
}
