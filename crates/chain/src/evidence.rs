//! Evidence of validator misbehaviour seen by consensus.
//!
//! Simplex reports faults it can prove: two notarize votes for different blocks in one view
//! (`ConflictingNotarize`), two finalize votes likewise (`ConflictingFinalize`), or a nullify
//! and a finalize in one view (`NullifyFinalize`). Each carries both signed votes, so anyone
//! can check it. [`EvidenceReporter`] keeps what this node saw (at most
//! [`limits::EVIDENCE_RECORDS_MAX`](tributary_types::limits::EVIDENCE_RECORDS_MAX), oldest
//! dropped) for the API; submitting it to the ledger, where staking turns it into a slash, is the
//! hook that follows.

use crate::{application::Scheme, block::Digest, state::ChainState};
use commonware_actor::Feedback;
use commonware_codec::Encode;
use commonware_consensus::{
    Reporter, Viewable,
    simplex::types::{Activity, Attributable},
};
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
    /// The evidence (both signed votes), hex of its canonical encoding.
    pub proof: String,
}

/// Records faults simplex reports into the node's chain state.
#[derive(Clone)]
pub struct EvidenceReporter {
    state: ChainState,
    scheme: Scheme,
}

impl EvidenceReporter {
    /// A reporter that resolves signers with `scheme`'s participant list.
    pub fn new(state: ChainState, scheme: Scheme) -> Self {
        Self { state, scheme }
    }
}

impl Reporter for EvidenceReporter {
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let (kind, view, signer, proof) = match &activity {
            Activity::ConflictingNotarize(fault) => (
                "conflicting_notarize",
                fault.view().get(),
                fault.signer(),
                fault.encode(),
            ),
            Activity::ConflictingFinalize(fault) => (
                "conflicting_finalize",
                fault.view().get(),
                fault.signer(),
                fault.encode(),
            ),
            Activity::NullifyFinalize(fault) => (
                "nullify_finalize",
                fault.view().get(),
                fault.signer(),
                fault.encode(),
            ),
            _ => return Feedback::Ok,
        };
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
