//! SecAgg+ secure aggregation (Bell et al. 2020, "Secure Single-Server Aggregation with
//! (Poly)Logarithmic Overhead", on the protocol of Bonawitz et al. 2017): the aggregator learns the sum
//! of the clients' vectors and nothing else about any one of them.
//!
//! This module owns one aggregation round as two transport-agnostic state machines, [`Client`] and
//! [`Server`], and the messages they exchange (all `serde`, for a network layer to carry). It also owns
//! the fixed-point [`Quantizer`] that turns `f32` updates into the integers that are summed, and
//! [`run_round`], an in-memory driver for tests and simulations.
//!
//! # Message flow
//!
//! Every message carries the round's [`RoundTag`] (session id and round number); both are also bound
//! into every key derivation and every AEAD's associated data, so a message from another round or
//! session is refused, even if its header is rewritten.
//!
//! | stage | client → server | server → clients |
//! |---|---|---|
//! | 0, advertise keys | [`KeyAdvertisement`]: two fresh X25519 public keys | [`AdvertisedKeys`]: all of them |
//! | 1, share keys | [`SharedKeys`]: per neighbour, an AEAD ciphertext of its shares of the client's self-mask seed and mask secret key | [`RoutedShares`]: the ciphertexts addressed to each client |
//! | 2, masked input | [`MaskedInput`]: `y = x + PRG(b) + Σ ±PRG(s_ij) mod 2^bits` | [`UnmaskRequest`]: who survived, who dropped |
//! | 3, unmasking | [`UnmaskResponse`]: self-mask shares of survivors, mask-key shares of the dropped | — |
//!
//! The server then reconstructs the secrets it needs ([`Server::aggregate`]) and outputs
//! `Σ x mod 2^bits` over the clients whose masked input it has ([`Aggregate`]).
//!
//! # Communication graph
//!
//! Each client talks (shares secrets, agrees pairwise masks) only with its neighbours in a random
//! `k`-regular Harary graph over the participants, whose node order is a permutation derived from the
//! session id and round ([`CommunicationGraph`]). With `k ≥ n − 1` it is the complete graph, which is
//! the original protocol of Bonawitz et al.; with `k = O(log n)` (SecAgg+) a client's work and traffic
//! grow with `log n` instead of `n`.
//!
//! # Threat model
//!
//! - The server is honest but curious: it follows the protocol, and tries to learn individual inputs from
//!   everything it sees. It sees only public keys, ciphertexts, masked vectors and the shares clients
//!   hand it at stage 3; it learns the sum over the surviving clients and nothing more about any input.
//! - Up to `t − 1` clients (threshold `t`) may collude with each other and with the server and still learn
//!   nothing about an honest client's input beyond the sum: fewer than `t` Shamir shares of a secret
//!   reveal nothing about it (the sharing is information-theoretically hiding, see [`shamir`]). In
//!   SecAgg+ the guarantee is statistical: it holds unless the colluders make up `t` of some honest
//!   client's `k` neighbours, which for a random graph and a bounded fraction of colluders has a
//!   probability that falls exponentially with `k` (choose `k` and `t` from Bell et al. for the rates
//!   you assume).
//! - An honest client refuses an [`UnmaskRequest`] that lists one client as both surviving and dropped
//!   (its self-mask seed and its mask key together would unmask its input), answers only one request per
//!   round, and refuses to help if fewer than `t` clients survived.
//! - Against a malicious server that sends *different* survivor sets to different clients, the
//!   threshold must also satisfy `t > k/2` (so two disjoint sets of `t` neighbours cannot both answer),
//!   and the survivor set must be the same for everyone: the layer above must deliver one signed
//!   [`UnmaskRequest`] to all clients (Bonawitz et al.'s consistency check). That check is not part of
//!   this module.
//! - Messages are not authenticated here: the transport carries them over channels authenticated by the
//!   participants' signed account keys one layer up, so the server cannot impersonate a client (which
//!   would otherwise let it simulate dropped clients). This module checks everything it can locally:
//!   senders are participants, nothing is duplicated, lengths and values are in range, ciphertexts open
//!   only for their sender, recipient, session and round, and reconstructed mask keys match the
//!   advertised public keys.
//!
//! # Dropouts
//!
//! A client that drops before sending its masked input is left out of the sum: its neighbours' pairwise
//! masks with it are removed by reconstructing its mask secret key from `t` shares. A client that drops
//! after sending its masked input is still in the sum: its self-mask is reconstructed from `t` shares of
//! its seed. The round completes as long as at least `t` clients send masked inputs and, for every
//! secret the server needs, at least `t` of that client's neighbours answer the unmask request: each
//! client tolerates `k − t` of its neighbours dropping. Otherwise the round is abandoned with
//! [`SecAggError::NotEnoughShares`] or [`SecAggError::NotEnoughClients`]; it is never partially unmasked.
//!
//! # Secrets
//!
//! X25519 secrets zeroize on drop and a client drops them as soon as stage 1 has used them; the
//! self-mask seed, the per-neighbour agreements and mask keys, held shares, keystream buffers and
//! reconstructed secrets are zeroized when dropped too. Two best-effort gaps remain: the ChaCha20
//! cipher state (the `chacha20` crate's `zeroize` feature is off in this workspace) and the HKDF state
//! are not wiped, and the coefficients of Shamir polynomials (commonware's `Poly` has no zeroize) are
//! overwritten by multiplying them by zero before they are freed.
//!
//! # Choosing `t` and `k`
//!
//! A larger `t` tolerates more colluders and fewer dropouts; `t > k/2` is recommended (see above); a
//! larger `k` lowers the chance that colluders dominate one neighbourhood, at a cost linear in `k`.

mod client;
mod graph;
mod mask;
mod quantize;
mod server;
pub mod shamir;
mod simulate;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use client::Client;
pub use graph::CommunicationGraph;
pub use mask::SHARES_CIPHERTEXT_BYTES;
pub use quantize::{QUANTIZATION_LEVELS_MAX, Quantizer, weighted_average};
pub use server::{Aggregate, Server};
pub use shamir::Share;
pub use simulate::run_round;

use crate::limits::{CLIENTS_MAX, SECAGG_VECTOR_LENGTH_MAX};

/// A participant of a round, as the layer above numbers its clients.
pub type ClientId = u32;

/// Bytes of the session id.
pub const SESSION_ID_BYTES: usize = 32;

/// The smallest threshold: with `t = 1` every single neighbour would hold a client's secrets in full.
pub const THRESHOLD_MIN: usize = 2;

/// The widest modulus: vectors are `u64` words.
pub const MODULUS_BITS_MAX: u32 = 64;

/// Errors of secure aggregation. Every check that can fail on a peer's message leaves the state as it
/// was, so the caller can drop the message and go on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SecAggError {
    /// The round's configuration cannot be used.
    #[error("invalid secure-aggregation config: {reason}")]
    InvalidConfig {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A message is for another session or round (possibly a replay).
    #[error(
        "{message} is for session {got_session} round {got_round}, but this is session \
         {expected_session} round {expected_round}; it may be a replay, drop it"
    )]
    WrongRound {
        /// Which message.
        message: &'static str,
        /// This round's session id, as hex.
        expected_session: String,
        /// This round's number.
        expected_round: u64,
        /// The message's session id, as hex.
        got_session: String,
        /// The message's round number.
        got_round: u64,
    },
    /// A message names a client that is not a participant of the round (or not at this stage).
    #[error("{message}: client {client} {reason}; drop the message")]
    UnexpectedClient {
        /// Which message.
        message: &'static str,
        /// The client named.
        client: ClientId,
        /// Why it is unexpected, e.g. "is not a participant of this round".
        reason: &'static str,
    },
    /// The same client sent the same kind of message twice.
    #[error("{message}: already have one from client {client}; drop the duplicate")]
    Duplicate {
        /// Which message.
        message: &'static str,
        /// Its sender.
        client: ClientId,
    },
    /// An operation was called out of the stage order.
    #[error(
        "cannot {action} at stage \"{stage}\"; the stages go: advertise keys, share keys, masked input, \
         unmasking"
    )]
    WrongStage {
        /// What was attempted.
        action: &'static str,
        /// The stage the state machine is at.
        stage: &'static str,
    },
    /// A vector or field has the wrong length.
    #[error("{what} has length {got}, expected {expected}")]
    WrongLength {
        /// What was measured.
        what: &'static str,
        /// The length this round expects.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A vector holds a value not below the modulus.
    #[error(
        "{what}: value {value} at index {index} is not below the modulus 2^{modulus_bits}; reduce it \
         first"
    )]
    ValueOutOfRange {
        /// Which vector.
        what: &'static str,
        /// Where.
        index: usize,
        /// The value.
        value: u64,
        /// The modulus' bits.
        modulus_bits: u32,
    },
    /// A public key is unusable (small order: Diffie-Hellman with it gives zero), or reused.
    #[error("public key of client {client} refused: {reason}")]
    InvalidPublicKey {
        /// Whose key.
        client: ClientId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A message is malformed or inconsistent with what this party knows.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message or field.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An encrypted share does not open: altered, for another recipient, session or round.
    #[error(
        "shares from client {sender} to client {recipient} do not decrypt (altered, or meant for another \
         recipient, session or round); drop them"
    )]
    Decryption {
        /// Who sent them.
        sender: ClientId,
        /// For whom.
        recipient: ClientId,
    },
    /// The server asked for both a client's self-mask share and its mask-key share, which together
    /// unmask that client's individual input.
    #[error(
        "the unmask request lists client {client} both as surviving and as dropped; answering would \
         reveal that client's input, so the request is refused"
    )]
    RefusedBothShares {
        /// The client listed twice.
        client: ClientId,
    },
    /// Too few clients are left for the round to go on; it is abandoned.
    #[error(
        "only {have} clients {what}, the threshold needs at least {need}; the round is abandoned, start \
         a new one"
    )]
    NotEnoughClients {
        /// What the clients did, e.g. "sent masked inputs".
        what: &'static str,
        /// How many did.
        have: usize,
        /// How many are needed.
        need: usize,
    },
    /// Too few shares of one secret: the round is abandoned, nothing is unmasked.
    #[error(
        "only {have} shares of the {secret} of client {client}, at least {need} needed; the round is \
         abandoned (nothing is unmasked), wait for more unmask responses or start a new round"
    )]
    NotEnoughShares {
        /// Whose secret.
        client: ClientId,
        /// Which secret: "self-mask seed" or "mask secret key".
        secret: &'static str,
        /// Shares at hand.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// Shares of one secret disagree, or reconstruct to something that is not the secret.
    #[error(
        "the shares of the {secret} of client {client} are inconsistent ({reason}); some holder sent a \
         wrong share, the round is abandoned"
    )]
    InconsistentShares {
        /// Whose secret.
        client: ClientId,
        /// Which secret.
        secret: &'static str,
        /// What did not match.
        reason: &'static str,
    },
    /// The quantizer cannot be built or used as asked.
    #[error("quantizer: {reason}")]
    Quantization {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A cryptographic primitive refused its input (an internal error, not a peer's fault).
    #[error("cryptographic primitive failed: {reason}")]
    Crypto {
        /// Which one.
        reason: &'static str,
    },
}

/// Result of secure aggregation.
pub type Result<T, E = SecAggError> = std::result::Result<T, E>;

/// Identifies one aggregation round: every message carries it, and every key derivation and AEAD binds
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundTag {
    /// The federated session, fixed one layer up (e.g. from the ledger).
    pub session: [u8; SESSION_ID_BYTES],
    /// The round number within the session.
    pub round: u64,
}

impl RoundTag {
    /// `Ok` if `got` is this tag, else [`SecAggError::WrongRound`] for `message`.
    pub(crate) fn check(&self, message: &'static str, got: &Self) -> Result<()> {
        if self == got {
            return Ok(());
        }
        Err(SecAggError::WrongRound {
            message,
            expected_session: hex(&self.session),
            expected_round: self.round,
            got_session: hex(&got.session),
            got_round: got.round,
        })
    }

    /// The bytes bound into key derivations and associated data: session, then round (little-endian).
    pub(crate) fn to_bytes(self) -> [u8; SESSION_ID_BYTES + 8] {
        let mut bytes = [0u8; SESSION_ID_BYTES + 8];
        bytes[..SESSION_ID_BYTES].copy_from_slice(&self.session);
        bytes[SESSION_ID_BYTES..].copy_from_slice(&self.round.to_le_bytes());
        bytes
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The parameters of one round, the same for the server and every client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundConfig {
    /// Session and round.
    pub tag: RoundTag,
    /// The participants, sorted ascending, without repeats.
    pub participants: Vec<ClientId>,
    /// Shamir threshold `t`: shares needed to reconstruct a client's secrets, at least
    /// [`THRESHOLD_MIN`] and at most the graph's degree; `t > degree/2` recommended (module docs).
    pub threshold: usize,
    /// Neighbours per client `k` in the communication graph; `k ≥ n − 1` means the complete graph.
    /// Below `n − 1`, an odd degree needs an even number of participants (no odd-degree regular graph on
    /// an odd number of nodes exists).
    pub degree: usize,
    /// Words per vector.
    pub vector_length: usize,
    /// Vectors are summed modulo `2^modulus_bits`, 1 to 64.
    pub modulus_bits: u32,
}

impl RoundConfig {
    /// Checks every parameter; [`Client::new`] and [`Server::new`] call it.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(SecAggError::InvalidConfig { reason });
        let clients = self.participants.len();
        if clients > CLIENTS_MAX {
            return invalid(format!(
                "{clients} participants, more than the limit of {CLIENTS_MAX}; split them over rounds"
            ));
        }
        if clients < THRESHOLD_MIN + 1 {
            return invalid(format!(
                "{clients} participants; secure aggregation needs at least {} (with fewer, the sum \
                 reveals the others' inputs)",
                THRESHOLD_MIN + 1
            ));
        }
        if let Some(pair) = self.participants.windows(2).find(|pair| pair[0] >= pair[1]) {
            return invalid(format!(
                "participants must be sorted ascending without repeats, but {} comes before {}",
                pair[0], pair[1]
            ));
        }
        if self.degree == 0 {
            return invalid(
                "degree 0; give each client at least the threshold's number of neighbours".into(),
            );
        }
        let degree = self.effective_degree();
        if degree < clients - 1 && degree % 2 == 1 && clients % 2 == 1 {
            return invalid(format!(
                "degree {degree} is odd and there are {clients} (odd) participants, so no {degree}-regular \
                 graph exists; use degree {} or {}",
                degree - 1,
                degree + 1
            ));
        }
        if self.threshold < THRESHOLD_MIN || self.threshold > degree {
            return invalid(format!(
                "threshold {} must be at least {THRESHOLD_MIN} and at most the degree {degree} (each \
                 client's secrets are shared among its {degree} neighbours)",
                self.threshold
            ));
        }
        if self.vector_length == 0 || self.vector_length > SECAGG_VECTOR_LENGTH_MAX {
            return invalid(format!(
                "vector length {} must be 1 to {SECAGG_VECTOR_LENGTH_MAX}",
                self.vector_length
            ));
        }
        if self.modulus_bits == 0 || self.modulus_bits > MODULUS_BITS_MAX {
            return invalid(format!(
                "modulus bits {} must be 1 to {MODULUS_BITS_MAX}",
                self.modulus_bits
            ));
        }
        Ok(())
    }

    /// The degree actually used: `min(degree, n − 1)`.
    pub fn effective_degree(&self) -> usize {
        self.degree.min(self.participants.len().saturating_sub(1))
    }

    /// `2^modulus_bits − 1`: reducing a `u64` modulo `2^modulus_bits` is `& modulus_mask`.
    pub fn modulus_mask(&self) -> u64 {
        modulus_mask(self.modulus_bits)
    }
}

/// `2^bits − 1` for bits 1 to 64.
pub(crate) fn modulus_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// A client's two X25519 public keys for the round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeys {
    /// For the AEAD that carries its shares (stage 1).
    pub encryption: [u8; 32],
    /// For the pairwise masks (stage 2).
    pub masking: [u8; 32],
}

/// Stage 0, client → server: a client's fresh public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAdvertisement {
    /// The round.
    pub tag: RoundTag,
    /// The client.
    pub sender: ClientId,
    /// Its keys.
    pub keys: PublicKeys,
}

/// Stage 0, server → every client that advertised: everyone's public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvertisedKeys {
    /// The round.
    pub tag: RoundTag,
    /// Every client that advertised, with its keys.
    pub keys: BTreeMap<ClientId, PublicKeys>,
}

/// One neighbour's shares, sealed to it with ChaCha20-Poly1305.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedShares {
    /// The AEAD nonce (random; each key also seals only one message).
    pub nonce: [u8; 12],
    /// [`SHARES_CIPHERTEXT_BYTES`] bytes: the sealed sender, recipient and two shares, and the tag.
    pub ciphertext: Vec<u8>,
}

/// Stage 1, client → server: the client's shares for each of its neighbours, sealed to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedKeys {
    /// The round.
    pub tag: RoundTag,
    /// The client.
    pub sender: ClientId,
    /// By recipient: every neighbour that advertised keys.
    pub shares: BTreeMap<ClientId, EncryptedShares>,
}

/// Stage 1, server → one client: the sealed shares addressed to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutedShares {
    /// The round.
    pub tag: RoundTag,
    /// The client they are for.
    pub recipient: ClientId,
    /// By sender.
    pub shares: BTreeMap<ClientId, EncryptedShares>,
}

/// Stage 2, client → server: the client's masked input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskedInput {
    /// The round.
    pub tag: RoundTag,
    /// The client.
    pub sender: ClientId,
    /// `x + PRG(b) + Σ ±PRG(s_ij) mod 2^bits`, `vector_length` words.
    pub vector: Vec<u64>,
}

/// Stage 3, server → every client that sent a masked input: who survived and who dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmaskRequest {
    /// The round.
    pub tag: RoundTag,
    /// Clients whose masked input the server has: send their self-mask shares.
    pub surviving: BTreeSet<ClientId>,
    /// Clients that shared keys but sent no masked input: send their mask-key shares.
    pub dropped: BTreeSet<ClientId>,
}

/// Stage 3, client → server: the shares the server asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmaskResponse {
    /// The round.
    pub tag: RoundTag,
    /// The client answering.
    pub sender: ClientId,
    /// Shares of the self-mask seeds of surviving neighbours, by owner.
    pub self_mask_shares: BTreeMap<ClientId, Share>,
    /// Shares of the mask secret keys of dropped neighbours, by owner.
    pub mask_key_shares: BTreeMap<ClientId, Share>,
}

#[cfg(test)]
mod tests;
