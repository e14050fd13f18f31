//! The ledger as a commonware consensus application.
//!
//! [`Application`] implements `commonware_consensus::Application` for marshal's
//! [`Deferred`](commonware_consensus::marshal::standard::Deferred) wrapper: `propose` builds a
//! block of mempool transactions on the parent's post-state, `verify` re-executes a peer's block
//! and accepts it only if every transaction is admissible and the state root matches. Post-states
//! of executed blocks are kept as forks until finalization.
//!
//! Finalized blocks arrive from marshal (at least once, in height order) through the
//! [`Finalized`] reporter, which hands them to the [`run_finalizer`] task: it applies each block
//! to the finalized ledger, filling any gap from marshal's archive first (so a restarted node
//! rebuilds its ledger by replaying its own finalized blocks), and only then acknowledges, so
//! marshal never counts a block as processed before the ledger has it.

use crate::{
    block::{Block, Context},
    state::{ChainState, Fork, block_input},
};
use commonware_actor::Feedback;
use commonware_consensus::{
    Heightable, Reporter,
    marshal::{Update, ancestry::Ancestry, core::Mailbox, standard::Standard},
    simplex::scheme::bls12381_threshold::vrf::Seedable,
    types::Height,
};
use commonware_cryptography::{Digested, Digestible};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Metrics, Spawner};
use commonware_utils::{Acknowledgement, acknowledgement::Exact};
use futures::{StreamExt, channel::mpsc};
use std::time::Duration;
use tributary_ledger::Ledger;
use tributary_types::Address;

/// The certificate scheme: threshold BLS (MinSig) over ed25519 identities. Its certificates carry
/// a unique threshold signature per round: the chain's unbiasable randomness beacon.
pub type Scheme = commonware_consensus::simplex::scheme::bls12381_threshold::vrf::Scheme<
    commonware_cryptography::ed25519::PublicKey,
    commonware_cryptography::bls12381::primitives::variant::MinSig,
>;

/// Marshal's mailbox for our block type.
pub type MarshalMailbox = Mailbox<Scheme, Standard<Block>>;

/// How long a proposer with an empty mempool waits for a transaction before proposing an empty
/// block. Bounds the empty-block rate while keeping latency low under load.
pub const EMPTY_BLOCK_WAIT_MS: u64 = 300;

/// How long a proposer waits for its parent's notarization to reach its reporter (the seed it
/// must put in the block) before giving up its turn.
pub const SEED_WAIT_MS: u64 = 2_000;

/// The ledger application.
#[derive(Clone)]
pub struct Application {
    state: ChainState,
    fault: Option<ProposalFault>,
}

/// A deliberate fault in this validator's own proposals, for simulating a Byzantine proposer.
/// Never set in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalFault {
    /// Commit to a state root the transactions do not produce.
    WrongStateRoot,
}

impl Application {
    /// An application over the node's shared state.
    pub fn new(state: ChainState) -> Self {
        Self { state, fault: None }
    }

    /// An application whose proposals carry `fault` (simulation only).
    pub fn with_fault(state: ChainState, fault: Option<ProposalFault>) -> Self {
        Self { state, fault }
    }

    /// The post-state of the first block `ancestry` yields, executing any of its ancestors this
    /// node has not executed yet (after a restart, or when it missed a proposal). `None` when the
    /// ancestry is broken or conflicts with the finalized chain.
    ///
    /// Finalization runs beside this walk: a block the walk passed as neither executed nor final
    /// may be finalized by the time the walk reaches its parent, which is then no longer the
    /// finalized tip. Before calling the ancestry a conflict, the walk looks again at the blocks
    /// it passed and starts from the newest one that now has a post-state. (Calling it a conflict
    /// made this validator refuse a valid block that its peers certified; with one validator of
    /// four down, that stalled the chain.)
    async fn state_after(&self, mut ancestry: impl Ancestry<Block>) -> Option<Ledger> {
        let mut unexecuted: Vec<Digested<Block>> = Vec::new();
        let base = loop {
            let Some(block) = ancestry.next().await else {
                tracing::warn!(target: "tributary::chain", after = unexecuted.last().map(|block| block.height().get()), "the block's ancestry ended before a block this node has executed");
                return None;
            };
            if let Some(state) = self.state.state_of(&block.digest()) {
                break state;
            }
            if block.height().get() <= self.state.finalized_height() {
                let finalized_meanwhile =
                    unexecuted.iter().enumerate().find_map(|(index, passed)| {
                        self.state
                            .state_of(&passed.digest())
                            .map(|state| (index, state))
                    });
                if let Some((index, state)) = finalized_meanwhile {
                    unexecuted.truncate(index);
                    break state;
                }
                tracing::warn!(target: "tributary::chain", height = block.height().get(), "ancestry conflicts with the finalized chain");
                return None;
            }
            unexecuted.push(block);
        };
        let mut ledger = base;
        while let Some(block) = unexecuted.pop() {
            let block = block.inner();
            let height = block.height().get();
            if let Err(error) = self.state.check_misbehaviour_proofs(&block.transactions) {
                tracing::warn!(target: "tributary::chain", height, %error, "ancestor has an invalid misbehaviour proof");
                return None;
            }
            let check = self.state.signature_check(&block.transactions);
            let outcome = match ledger.execute_block_with(&block_input(block), check) {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(target: "tributary::chain", height, %error, "ancestor has invalid transactions");
                    return None;
                }
            };
            if outcome.state_root.0 != block.state_root {
                tracing::warn!(target: "tributary::chain", height, "ancestor has a wrong state root");
                return None;
            }
            self.state.insert_fork(
                block.digest(),
                Fork {
                    height: block.height().get(),
                    ledger: ledger.clone(),
                    outcome,
                },
            );
        }
        Some(ledger)
    }
}

impl<E> commonware_consensus::Application<E> for Application
where
    E: Spawner + Metrics + Clock,
{
    type SigningScheme = Scheme;
    type Context = Context;
    type Block = Block;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, context): (E, Context),
        ancestry: impl Ancestry<Block>,
        _input: (),
    ) -> Option<Digested<Block>> {
        let parent = ancestry.peek()?.clone();
        // Give transactions a moment to arrive rather than spinning out empty blocks.
        let waited_until = runtime.current() + Duration::from_millis(EMPTY_BLOCK_WAIT_MS);
        while self.state.lock().mempool.is_empty() && runtime.current() < waited_until {
            runtime.sleep(Duration::from_millis(10)).await;
        }
        let parent_seed = if parent.height().get() == 0 {
            None
        } else {
            let parent_view = context.parent.0.get();
            let waited_until = runtime.current() + Duration::from_millis(SEED_WAIT_MS);
            loop {
                if let Some(seed) = self.state.seed(parent_view) {
                    break Some(seed);
                }
                if runtime.current() >= waited_until {
                    tracing::warn!(target: "tributary::chain", parent_view, "no seed for the parent's round; not proposing");
                    return None;
                }
                runtime.sleep(Duration::from_millis(5)).await;
            }
        };
        let parent_state = self.state_after(ancestry).await?;
        let proposer = Address::from_public_key(&context.leader);
        let beacon = parent_seed.as_ref().map(crate::block::beacon_of);
        let (transactions, ledger, outcome) = self.state.build(&parent_state, proposer, beacon);
        let mut state_root = outcome.state_root.0;
        if self.fault == Some(ProposalFault::WrongStateRoot) {
            state_root[0] ^= 0xff;
        }
        let block = Block::new(
            context,
            parent.digest(),
            parent.height().next(),
            parent_seed,
            transactions,
            state_root,
        );
        let digest = block.digest();
        self.state.insert_fork(
            digest,
            Fork {
                height: block.height().get(),
                ledger,
                outcome,
            },
        );
        tracing::debug!(target: "tributary::chain", height = block.height().get(), transactions = block.transactions.len(), "proposed block");
        Some(Digested::compute(block, &Sequential).await)
    }

    async fn verify(
        &mut self,
        (_runtime, context): (E, Context),
        mut ancestry: impl Ancestry<Block>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            tracing::warn!(target: "tributary::chain", "rejected a proposal: its block is unavailable");
            return false;
        };
        if self.state.state_of(&block.digest()).is_some() {
            return true;
        }
        let block = block.inner().clone();
        if block.context.leader != context.leader {
            tracing::warn!(target: "tributary::chain", height = block.height().get(), "rejected block: proposed by another leader than the round's");
            return false;
        }
        if let Err(error) = self.state.check_parent_seed(&block) {
            tracing::warn!(target: "tributary::chain", height = block.height().get(), %error, "rejected block: bad parent seed");
            return false;
        }
        if let Err(error) = self.state.check_misbehaviour_proofs(&block.transactions) {
            tracing::warn!(target: "tributary::chain", height = block.height().get(), %error, "rejected block: invalid misbehaviour proof");
            return false;
        }
        let Some(mut ledger) = self.state_after(ancestry).await else {
            // Finalized while this node looked at it (its peers certified it without us): the
            // ledger has applied it, so it is valid.
            if self
                .state
                .is_finalized(&block.digest(), block.height().get())
            {
                return true;
            }
            tracing::warn!(target: "tributary::chain", height = block.height().get(), "rejected block: no post-state for its parent");
            return false;
        };
        let check = self.state.signature_check(&block.transactions);
        match ledger.execute_block_with(&block_input(&block), check) {
            Ok(outcome) if outcome.state_root.0 == block.state_root => {
                self.state.insert_fork(
                    block.digest(),
                    Fork {
                        height: block.height().get(),
                        ledger,
                        outcome,
                    },
                );
                true
            }
            Ok(outcome) => {
                tracing::warn!(target: "tributary::chain", height = block.height().get(), expected = %hex::encode(block.state_root), actual = %outcome.state_root, "rejected block: wrong state root");
                false
            }
            Err(error) => {
                tracing::warn!(target: "tributary::chain", height = block.height().get(), %error, "rejected block: invalid transactions");
                false
            }
        }
    }
}

/// Marshal's reporter for finalized blocks: forwards them to [`run_finalizer`].
#[derive(Clone)]
pub struct Finalized {
    sender: mpsc::UnboundedSender<(Digested<Block>, Exact)>,
}

impl Finalized {
    /// A reporter and the receiving end for [`run_finalizer`].
    pub fn new() -> (Self, mpsc::UnboundedReceiver<(Digested<Block>, Exact)>) {
        let (sender, receiver) = mpsc::unbounded();
        (Self { sender }, receiver)
    }
}

impl Reporter for Finalized {
    type Activity = Update<Block>;

    fn report(&mut self, activity: Update<Block>) -> Feedback {
        match activity {
            Update::Block(block, acknowledgement) => {
                if self
                    .sender
                    .unbounded_send((block, acknowledgement))
                    .is_err()
                {
                    return Feedback::Closed;
                }
                Feedback::Ok
            }
            Update::Tip(..) => Feedback::Ok,
        }
    }
}

/// Applies finalized blocks to the ledger in height order, filling gaps from marshal's archive.
///
/// Returns (stopping the node) only if the local ledger diverges from a finalized block, which
/// means a determinism bug: continuing would serve wrong state.
pub async fn run_finalizer(
    state: ChainState,
    marshal: MarshalMailbox,
    mut blocks: mpsc::UnboundedReceiver<(Digested<Block>, Exact)>,
) {
    while let Some((block, acknowledgement)) = blocks.next().await {
        let height = block.height().get();
        if let Err(error) = catch_up(&state, &marshal, height.saturating_sub(1)).await {
            tracing::error!(target: "tributary::chain", %error, "ledger diverged from consensus; stopping");
            return;
        }
        let seed = seed_of(&marshal, height).await;
        if let Err(error) = state.apply_finalized(block.inner(), seed) {
            tracing::error!(target: "tributary::chain", %error, "ledger diverged from consensus; stopping");
            return;
        }
        acknowledgement.acknowledge();
    }
}

/// Replays finalized blocks from marshal's archive until the ledger reaches `target`.
pub async fn catch_up(
    state: &ChainState,
    marshal: &MarshalMailbox,
    target: u64,
) -> Result<(), crate::state::ApplyError> {
    loop {
        let next = state.finalized_height() + 1;
        if next > target {
            return Ok(());
        }
        let Some(block) = marshal.get_block(Height::new(next)).await else {
            // Not stored locally yet: marshal delivers it when it has it.
            return Ok(());
        };
        let seed = seed_of(marshal, next).await;
        state.apply_finalized(block.inner(), seed)?;
    }
}

async fn seed_of(marshal: &MarshalMailbox, height: u64) -> Option<String> {
    let finalization = marshal.get_finalization(Height::new(height)).await?;
    let seed = finalization.seed();
    Some(hex::encode(commonware_codec::Encode::encode(
        &seed.signature,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{Fixture, child, fixture};
    use std::{
        collections::VecDeque,
        pin::Pin,
        task::{Context as TaskContext, Poll},
    };

    /// An ancestry that finalizes `finalize` on the node just before it yields the block at
    /// `before_height`: finalization running beside a verification's walk.
    #[derive(Clone)]
    struct FinalizingAncestry {
        blocks: VecDeque<Digested<Block>>,
        state: ChainState,
        finalize: Option<(u64, Block)>,
    }

    impl futures::Stream for FinalizingAncestry {
        type Item = Digested<Block>;

        fn poll_next(
            mut self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
        ) -> Poll<Option<Self::Item>> {
            let next = self.blocks.pop_front();
            if let (Some(block), Some((before_height, _))) = (&next, &self.finalize)
                && block.height().get() == *before_height
                && let Some((_, finalized)) = self.finalize.take()
            {
                self.state.apply_finalized(&finalized, None).unwrap();
            }
            Poll::Ready(next)
        }
    }

    impl Ancestry<Block> for FinalizingAncestry {
        fn peek(&self) -> Option<&Digested<Block>> {
            self.blocks.front()
        }
    }

    /// An empty block on `parent`, with the state root executing it gives.
    fn empty_child(fixture: &Fixture, parent: &Block, parent_state: &Ledger) -> Block {
        let proposer = Address::from_public_key(&fixture.leader);
        let (_, _, outcome) = fixture.state.build(parent_state, proposer, None);
        child(fixture, parent, Vec::new(), outcome.state_root.0)
    }

    fn digested(block: &Block) -> Digested<Block> {
        futures::executor::block_on(Digested::compute(block.clone(), &Sequential))
    }

    #[test]
    fn a_parent_finalized_during_the_walk_is_its_base_not_a_conflict() {
        // genesis <- first (finalized) <- parent (never executed here) <- the verified block.
        let fixture = fixture();
        let genesis_state = fixture.state.state_of(&fixture.genesis.digest()).unwrap();
        let first = empty_child(&fixture, &fixture.genesis, &genesis_state);
        fixture.state.apply_finalized(&first, None).unwrap();
        let first_state = fixture.state.state_of(&first.digest()).unwrap();
        let parent = empty_child(&fixture, &first, &first_state);
        let application = Application::new(fixture.state.clone());
        // The walk passes `parent` (not executed, not final), then the node finalizes it just
        // before the walk reaches `first`, which stops being the finalized tip.
        let ancestry = FinalizingAncestry {
            blocks: [&parent, &first, &fixture.genesis]
                .into_iter()
                .map(digested)
                .collect(),
            state: fixture.state.clone(),
            finalize: Some((first.height().get(), parent.clone())),
        };
        let state = futures::executor::block_on(application.state_after(ancestry))
            .expect("the parent finalized meanwhile is the base");
        assert_eq!(state.state_root().0, parent.state_root);
        assert_eq!(fixture.state.finalized_height(), 2);

        // A walk that reaches the finalized chain's past through a block that is not final
        // still conflicts.
        let stray = child(&fixture, &first, Vec::new(), [7; 32]);
        let ancestry = FinalizingAncestry {
            blocks: [&stray, &first].into_iter().map(digested).collect(),
            state: fixture.state.clone(),
            finalize: None,
        };
        assert!(futures::executor::block_on(application.state_after(ancestry)).is_none());
    }
}
