//! Evidence of validator misbehaviour seen by consensus.
//!
//! Simplex reports faults it can prove: two notarize votes for different blocks in one view
//! (`ConflictingNotarize`), two finalize votes likewise (`ConflictingFinalize`), or a nullify
//! and a finalize in one view (`NullifyFinalize`). Each carries both signed votes, so anyone
//! can check it. [`ActivityReporter`] keeps what this node saw (at most
//! [`limits::EVIDENCE_RECORDS_MAX`](tributary_types::limits::EVIDENCE_RECORDS_MAX), oldest
//! dropped) for the API; anyone may submit it to the ledger as a `ReportMisbehaviour`
//! transaction, which slashes the validator's stake. The same reporter keeps the seeds of
//! notarized and finalized rounds, which proposers put in their blocks as the ledger's beacon.

use crate::{application::Scheme, block::Digest, state::ChainState};
use commonware_actor::Feedback;
use commonware_codec::{Decode, Encode};
use commonware_consensus::{
    Reporter, Viewable,
    simplex::{
        scheme::bls12381_threshold::vrf::Seedable,
        types::{Activity, Attributable},
    },
};
use commonware_cryptography::certificate::Verifier as _;
use commonware_parallel::Sequential;
use commonware_utils::Participant;
use commonware_utils::ordered::Quorum;
use serde::{Deserialize, Serialize};
use tributary_types::Address;

/// One proven fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    /// `conflicting_notarize`, `conflicting_finalize` or `nullify_finalize`.
    pub kind: String,
    /// The consensus view of the fault.
    pub view: u64,
    /// The offending validator's account address.
    pub validator: String,
    /// The evidence (the consensus activity with both signed votes), hex of its canonical
    /// encoding: the `proof` of a `ReportMisbehaviour` transaction.
    pub proof: String,
}

/// Records what simplex reports into the node's chain state: proven faults, and the seeds of
/// certified rounds.
#[derive(Clone)]
pub struct ActivityReporter {
    state: ChainState,
    scheme: Scheme,
}

impl ActivityReporter {
    /// A reporter that resolves signers with `scheme`'s participant list.
    pub fn new(state: ChainState, scheme: Scheme) -> Self {
        Self { state, scheme }
    }
}

impl Reporter for ActivityReporter {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        // Certificates reach reporters verified, so their seeds decode.
        match &activity {
            Activity::Notarization(notarization) => self.state.record_seed(notarization.seed()),
            Activity::Finalization(finalization) => self.state.record_seed(finalization.seed()),
            _ => {}
        }
        let Some((kind, view, signer)) = fault_of(&activity) else {
            return Feedback::Ok;
        };
        let proof = activity.encode();
        let Some(key) = self.scheme.participants().key(signer) else {
            return Feedback::Ok;
        };
        let validator = Address::from_public_key(key).to_string();
        tracing::warn!(target: "tributary::chain", kind, view, %validator, "validator misbehaviour proven");
        self.state.record_evidence(Evidence {
            kind: kind.to_string(),
            view,
            validator,
            proof: hex::encode(proof),
        });
        Feedback::Ok
    }
}

/// The kind, view and signer of a fault activity; `None` for any other activity.
fn fault_of(activity: &Activity<Scheme, Digest>) -> Option<(&'static str, u64, Participant)> {
    match activity {
        Activity::ConflictingNotarize(fault) => {
            Some(("conflicting_notarize", fault.view().get(), fault.signer()))
        }
        Activity::ConflictingFinalize(fault) => {
            Some(("conflicting_finalize", fault.view().get(), fault.signer()))
        }
        Activity::NullifyFinalize(fault) => {
            Some(("nullify_finalize", fault.view().get(), fault.signer()))
        }
        _ => None,
    }
}

/// Why a misbehaviour proof was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvidenceError {
    /// The proof does not decode as a consensus fault.
    #[error("the proof is not a consensus fault: {0}")]
    Malformed(String),
    /// The fault is for another validator or view than the transaction names.
    #[error("the proof is for another validator or view than the transaction names")]
    Mismatch,
    /// The signatures do not verify against the validator set.
    #[error("the proof's signatures do not verify against the validator set")]
    BadSignature,
}

/// Checks that `proof` is a fault of `validator` in `view`, signed under `scheme`'s validator set.
pub fn verify_misbehaviour(
    scheme: &Scheme,
    validator: &Address,
    view: u64,
    proof: &[u8],
) -> Result<(), EvidenceError> {
    let activity = Activity::<Scheme, Digest>::decode_cfg(
        commonware_codec::Copying(proof),
        &scheme.certificate_codec_config(),
    )
    .map_err(|error| EvidenceError::Malformed(error.to_string()))?;
    let (_, fault_view, signer) =
        fault_of(&activity).ok_or_else(|| EvidenceError::Malformed("not a fault".into()))?;
    let named = scheme
        .participants()
        .key(signer)
        .map(Address::from_public_key);
    if fault_view != view || named.as_ref() != Some(validator) {
        return Err(EvidenceError::Mismatch);
    }
    // Signature checks do not depend on the randomness; seed it from the proof so replays match.
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(
        *blake3::hash(proof).as_bytes(),
    );
    let valid = match &activity {
        Activity::ConflictingNotarize(fault) => fault.verify(&mut rng, scheme, &Sequential),
        Activity::ConflictingFinalize(fault) => fault.verify(&mut rng, scheme, &Sequential),
        Activity::NullifyFinalize(fault) => fault.verify(&mut rng, scheme, &Sequential),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(EvidenceError::BadSignature)
    }
}
