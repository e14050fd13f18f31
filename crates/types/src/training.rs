//! Wire types of the training module: federated-learning sessions (`OpenSession`, `JoinSession`,
//! `CommitRound`, `FinalizeSession`; tags `0x81`–`0x84`).
//!
//! # Fixed point
//! Consensus state holds no floats. Real-valued settings are integers with their unit last in the
//! name:
//! - `_milli`: thousandths (`noise_multiplier_milli = 1100` is σ = 1.1; `epsilon_milli = 2500` is
//!   ε = 2.5; `clip_norm_milli = 1000` is an L2 clipping norm of 1.0).
//! - `_atto`: 10⁻¹⁸ units (`delta_atto = 10_000_000_000_000` is δ = 10⁻⁵). δ is a probability,
//!   so it is below [`ATTO_PER_UNIT`](crate::limits::ATTO_PER_UNIT).
//! - `_bps`: basis points (1/10000).
//!
//! The encodings follow [`crate::transaction`]: fixed-width big-endian integers, one-byte lengths,
//! strict 0/1 booleans and option tags, limits enforced while decoding.

use crate::{
    address::Address,
    amount::{Amount, amount_string},
    hash::{AssetId, Hash32},
    limits::{
        ASSET_NAME_BYTES_MAX, ENDPOINT_BYTES_MAX, TRAINING_ELIGIBLE_ASSETS_MAX,
        TRAINING_PARTICIPANTS_MAX, TRAINING_TASK_BYTES_MAX,
    },
    transaction::Terms,
    wire::{
        option_u64_size, read_option_u64, read_str, read_u8_len, write_option_u64, write_str,
        write_u8_len,
    },
};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// A training session's id: sequential from 1.
pub type TrainingSessionId = u64;

/// How the aggregator combines the participants' updates each round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Aggregation {
    /// Weighted mean of the updates (FedAvg).
    FedAvg,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise mean after dropping `trim_bps` of the values at each end (below 5000).
    TrimmedMean {
        /// Share trimmed from each end, in basis points.
        trim_bps: u16,
    },
    /// Krum: the one update closest to its neighbours, tolerating `byzantine` bad participants
    /// (needs at least `2 × byzantine + 3` participants per round).
    Krum {
        /// Byzantine participants tolerated.
        byzantine: u16,
    },
    /// Multi-Krum: the mean of the `selected` best updates by Krum's score.
    MultiKrum {
        /// Byzantine participants tolerated.
        byzantine: u16,
        /// Updates averaged (at least 1, at most participants per round minus `byzantine`).
        selected: u16,
    },
}

impl Aggregation {
    /// The method's wire tag.
    pub const fn tag(&self) -> u8 {
        match self {
            Aggregation::FedAvg => 0,
            Aggregation::Median => 1,
            Aggregation::TrimmedMean { .. } => 2,
            Aggregation::Krum { .. } => 3,
            Aggregation::MultiKrum { .. } => 4,
        }
    }
}

impl Write for Aggregation {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.tag());
        match self {
            Aggregation::FedAvg | Aggregation::Median => {}
            Aggregation::TrimmedMean { trim_bps } => trim_bps.write(buf),
            Aggregation::Krum { byzantine } => byzantine.write(buf),
            Aggregation::MultiKrum {
                byzantine,
                selected,
            } => {
                byzantine.write(buf);
                selected.write(buf);
            }
        }
    }
}

impl EncodeSize for Aggregation {
    fn encode_size(&self) -> usize {
        1 + match self {
            Aggregation::FedAvg | Aggregation::Median => 0,
            Aggregation::TrimmedMean { .. } | Aggregation::Krum { .. } => 2,
            Aggregation::MultiKrum { .. } => 4,
        }
    }
}

impl Read for Aggregation {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read_cfg(buf, &())? {
            0 => Aggregation::FedAvg,
            1 => Aggregation::Median,
            2 => Aggregation::TrimmedMean {
                trim_bps: u16::read_cfg(buf, &())?,
            },
            3 => Aggregation::Krum {
                byzantine: u16::read_cfg(buf, &())?,
            },
            4 => Aggregation::MultiKrum {
                byzantine: u16::read_cfg(buf, &())?,
                selected: u16::read_cfg(buf, &())?,
            },
            tag => return Err(CodecError::InvalidEnum(tag)),
        })
    }
}

/// Differential privacy of a session (DP-FedAvg): each update is clipped to `clip_norm_milli` and
/// Gaussian noise of `noise_multiplier_milli × clip_norm` is added; ε is accounted at `delta_atto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DifferentialPrivacy {
    /// Noise multiplier σ, in thousandths (positive).
    pub noise_multiplier_milli: u32,
    /// L2 norm each update is clipped to, in thousandths (positive).
    pub clip_norm_milli: u32,
    /// The δ at which ε is accounted, in 10⁻¹⁸ units (positive, below `ATTO_PER_UNIT`).
    pub delta_atto: u64,
}

impl DifferentialPrivacy {
    /// Encoded size.
    pub const SIZE: usize = 4 + 4 + 8;
}

impl Write for DifferentialPrivacy {
    fn write(&self, buf: &mut impl BufMut) {
        self.noise_multiplier_milli.write(buf);
        self.clip_norm_milli.write(buf);
        self.delta_atto.write(buf);
    }
}

impl Read for DifferentialPrivacy {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(DifferentialPrivacy {
            noise_multiplier_milli: u32::read_cfg(buf, &())?,
            clip_norm_milli: u32::read_cfg(buf, &())?,
            delta_atto: u64::read_cfg(buf, &())?,
        })
    }
}

/// Fields of an `OpenSession` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    /// BLAKE3 of the session spec file (model, task, hyper-parameters, evaluation set).
    pub model_spec_root: Hash32,
    /// What is trained (UTF-8, 1..=`TRAINING_TASK_BYTES_MAX` bytes).
    pub task: String,
    /// Assets that may join, strictly ascending (1..=`TRAINING_ELIGIBLE_ASSETS_MAX`).
    pub eligible_assets: Vec<AssetId>,
    /// Reward paid to the participants by contribution share, escrowed at opening.
    #[serde(with = "amount_string")]
    pub reward: Amount,
    /// Stake backing the contribution shares (the aggregator's at finalization, a challenger's).
    #[serde(with = "amount_string")]
    pub evaluator_stake: Amount,
    /// Blocks the posted shares can be challenged.
    pub challenge_window_blocks: u64,
    /// Rounds planned (1..=`TRAINING_ROUNDS_MAX`); fewer may be committed before finalizing.
    pub rounds: u32,
    /// Differential privacy, or `None` for none.
    pub privacy: Option<DifferentialPrivacy>,
    /// How updates are aggregated.
    pub aggregation: Aggregation,
    /// Whether updates are combined by secure aggregation (the aggregator sees only the sum).
    pub secure_aggregation: bool,
    /// The account that runs the rounds, commits them and finalizes the session.
    pub aggregator: Address,
    /// Where participants reach the aggregator (e.g. "127.0.0.1:7400"), at most
    /// `ENDPOINT_BYTES_MAX` bytes.
    pub endpoint: String,
    /// Fewest participants a round may aggregate.
    pub participants_min: u16,
    /// Most participants that may join (at most `TRAINING_PARTICIPANTS_MAX`).
    pub participants_max: u16,
}

impl Write for OpenSession {
    fn write(&self, buf: &mut impl BufMut) {
        self.model_spec_root.write(buf);
        write_str(&self.task, buf);
        write_u8_len(self.eligible_assets.len(), buf);
        for asset in &self.eligible_assets {
            asset.write(buf);
        }
        self.reward.write(buf);
        self.evaluator_stake.write(buf);
        self.challenge_window_blocks.write(buf);
        self.rounds.write(buf);
        match &self.privacy {
            None => buf.put_u8(0),
            Some(privacy) => {
                buf.put_u8(1);
                privacy.write(buf);
            }
        }
        self.aggregation.write(buf);
        self.secure_aggregation.write(buf);
        self.aggregator.write(buf);
        write_str(&self.endpoint, buf);
        self.participants_min.write(buf);
        self.participants_max.write(buf);
    }
}

impl EncodeSize for OpenSession {
    fn encode_size(&self) -> usize {
        32 + 1
            + self.task.len()
            + 1
            + self.eligible_assets.len() * 32
            + 16
            + 16
            + 8
            + 4
            + 1
            + self.privacy.map_or(0, |_| DifferentialPrivacy::SIZE)
            + self.aggregation.encode_size()
            + 1
            + 32
            + 1
            + self.endpoint.len()
            + 2
            + 2
    }
}

impl Read for OpenSession {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let model_spec_root = Hash32::read_cfg(buf, &())?;
        let task = read_str(buf, TRAINING_TASK_BYTES_MAX, "OpenSession.task")?;
        let count = read_u8_len(
            buf,
            TRAINING_ELIGIBLE_ASSETS_MAX,
            "OpenSession.eligible_assets",
        )?;
        let mut eligible_assets = Vec::with_capacity(count);
        for _ in 0..count {
            eligible_assets.push(Hash32::read_cfg(buf, &())?);
        }
        let reward = u128::read_cfg(buf, &())?;
        let evaluator_stake = u128::read_cfg(buf, &())?;
        let challenge_window_blocks = u64::read_cfg(buf, &())?;
        let rounds = u32::read_cfg(buf, &())?;
        let privacy = match u8::read_cfg(buf, &())? {
            0 => None,
            1 => Some(DifferentialPrivacy::read_cfg(buf, &())?),
            _ => {
                return Err(CodecError::Invalid(
                    "OpenSession.privacy",
                    "option tag is not 0 or 1",
                ));
            }
        };
        Ok(OpenSession {
            model_spec_root,
            task,
            eligible_assets,
            reward,
            evaluator_stake,
            challenge_window_blocks,
            rounds,
            privacy,
            aggregation: Aggregation::read_cfg(buf, &())?,
            secure_aggregation: bool::read_cfg(buf, &())?,
            aggregator: Address::read_cfg(buf, &())?,
            endpoint: read_str(buf, ENDPOINT_BYTES_MAX, "OpenSession.endpoint")?,
            participants_min: u16::read_cfg(buf, &())?,
            participants_max: u16::read_cfg(buf, &())?,
        })
    }
}

/// Fields of a `FinalizeSession` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeSession {
    /// The session.
    pub session: TrainingSessionId,
    /// BLAKE3 of the model weights file; becomes the model asset's id.
    pub model_root: AssetId,
    /// The model asset's name (1..=`ASSET_NAME_BYTES_MAX` bytes).
    pub model_name: String,
    /// Size of the weights file in bytes.
    pub byte_size: u64,
    /// ε spent, in thousandths; `None` for a session without differential privacy.
    pub epsilon_milli: Option<u64>,
    /// δ at which ε was accounted, in 10⁻¹⁸ units; 0 without differential privacy.
    pub delta_atto: u64,
    /// Contribution shares in basis points, strictly ascending by asset, naming only participants
    /// and summing to exactly 10000; a participant absent (or at 0) gets nothing.
    pub shares: Vec<(AssetId, u16)>,
    /// BLAKE3 of a valuation report, when one was made.
    pub report_root: Option<Hash32>,
    /// License terms offered for the model asset.
    pub terms: Terms,
}

impl Write for FinalizeSession {
    fn write(&self, buf: &mut impl BufMut) {
        self.session.write(buf);
        self.model_root.write(buf);
        write_str(&self.model_name, buf);
        self.byte_size.write(buf);
        write_option_u64(self.epsilon_milli, buf);
        self.delta_atto.write(buf);
        write_u8_len(self.shares.len(), buf);
        for (asset, bps) in &self.shares {
            asset.write(buf);
            bps.write(buf);
        }
        match &self.report_root {
            None => buf.put_u8(0),
            Some(root) => {
                buf.put_u8(1);
                root.write(buf);
            }
        }
        self.terms.write(buf);
    }
}

impl EncodeSize for FinalizeSession {
    fn encode_size(&self) -> usize {
        8 + 32
            + 1
            + self.model_name.len()
            + 8
            + option_u64_size(self.epsilon_milli)
            + 8
            + 1
            + self.shares.len() * 34
            + 1
            + self.report_root.map_or(0, |_| 32)
            + self.terms.encode_size()
    }
}

impl Read for FinalizeSession {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let session = u64::read_cfg(buf, &())?;
        let model_root = Hash32::read_cfg(buf, &())?;
        let model_name = read_str(buf, ASSET_NAME_BYTES_MAX, "FinalizeSession.model_name")?;
        let byte_size = u64::read_cfg(buf, &())?;
        let epsilon_milli = read_option_u64(buf, "FinalizeSession.epsilon_milli")?;
        let delta_atto = u64::read_cfg(buf, &())?;
        let count = read_u8_len(buf, TRAINING_PARTICIPANTS_MAX, "FinalizeSession.shares")?;
        let mut shares = Vec::with_capacity(count);
        for _ in 0..count {
            shares.push((Hash32::read_cfg(buf, &())?, u16::read_cfg(buf, &())?));
        }
        let report_root = match u8::read_cfg(buf, &())? {
            0 => None,
            1 => Some(Hash32::read_cfg(buf, &())?),
            _ => {
                return Err(CodecError::Invalid(
                    "FinalizeSession.report_root",
                    "option tag is not 0 or 1",
                ));
            }
        };
        Ok(FinalizeSession {
            session,
            model_root,
            model_name,
            byte_size,
            epsilon_milli,
            delta_atto,
            shares,
            report_root,
            terms: Terms::read_cfg(buf, &())?,
        })
    }
}
