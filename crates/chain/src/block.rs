//! The consensus block: what validators agree on.
//!
//! A block carries the consensus context it was proposed in (round, leader, parent), its parent's
//! digest, its height, the threshold-BLS seed of its parent's round (the randomness the ledger
//! executes it with), the signed transactions it orders, and the ledger's state root *after*
//! executing them. The digest is SHA-256 (the digest type commonware's consensus certificates sign)
//! over the canonical encoding, so it commits to every field, the embedded context included, as
//! [`commonware_consensus::CertifiableBlock`] requires.

use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, MaxEncodeSize, RangeCfg, Read, ReadExt, Write,
};
use commonware_consensus::{
    CertifiableBlock, Heightable,
    simplex::{scheme::bls12381_threshold::vrf::Seed as VrfSeed, types::Context as SimplexContext},
    types::{Epoch, Height, Round, View},
};
use commonware_cryptography::{
    Digestible, Hasher, Sha256, bls12381::primitives::variant::MinSig, ed25519, sha256,
};
use tributary_types::{Hash32, SignedTransaction, limits};

/// The digest of a block.
pub type Digest = sha256::Digest;

/// The consensus context embedded in every block.
pub type Context = SimplexContext<Digest, ed25519::PublicKey>;

/// The threshold-BLS seed of a consensus round: a unique signature over the round, so nobody can
/// choose it and nobody knows it before a quorum signs.
pub type Seed = VrfSeed<MinSig>;

/// Domain tag for hashing a seed into the ledger's 32-byte beacon.
const BEACON_DOMAIN: &[u8] = b"tributary-beacon-v1";

/// The ledger's 32-byte beacon from a round's seed: BLAKE3 of a domain tag and the signature.
pub fn beacon_of(seed: &Seed) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(BEACON_DOMAIN);
    hasher.update(&commonware_codec::Encode::encode(&seed.signature));
    Hash32(*hasher.finalize().as_bytes())
}

/// A block of ordered transactions with the state root they produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The consensus context this block was proposed in.
    pub context: Context,
    /// The parent block's digest.
    pub parent: Digest,
    /// The block's height (genesis is 0).
    pub height: Height,
    /// The seed of the parent's round (`context.parent`'s view), taken from the parent's
    /// notarization. `None` exactly when the parent is genesis.
    pub parent_seed: Option<Seed>,
    /// Transactions, executed in order.
    pub transactions: Vec<SignedTransaction>,
    /// The ledger's state root after executing `transactions` on the parent's state.
    pub state_root: [u8; 32],
    digest: Digest,
}

impl Block {
    /// Builds a block and computes its digest.
    pub fn new(
        context: Context,
        parent: Digest,
        height: Height,
        parent_seed: Option<Seed>,
        transactions: Vec<SignedTransaction>,
        state_root: [u8; 32],
    ) -> Self {
        let mut block = Self {
            context,
            parent,
            height,
            parent_seed,
            transactions,
            state_root,
            digest: Digest::from([0u8; 32]),
        };
        block.digest = block.compute_digest();
        block
    }

    /// The genesis block: height 0, no transactions, the genesis state root.
    ///
    /// Every validator derives the same genesis block from the same genesis file, so its digest
    /// identifies the chain.
    pub fn genesis(state_root: [u8; 32], chain_id_leader: ed25519::PublicKey) -> Self {
        let context = Context {
            round: Round::new(Epoch::zero(), View::zero()),
            leader: chain_id_leader,
            parent: (View::zero(), Digest::from([0u8; 32])),
        };
        Self::new(
            context,
            Digest::from([0u8; 32]),
            Height::zero(),
            None,
            Vec::new(),
            state_root,
        )
    }

    /// The ledger's randomness for this block (see [`beacon_of`]).
    pub fn beacon(&self) -> Option<Hash32> {
        self.parent_seed.as_ref().map(beacon_of)
    }

    fn compute_digest(&self) -> Digest {
        let mut encoded = Vec::with_capacity(self.encode_size());
        self.write(&mut encoded);
        let mut hasher = Sha256::default();
        hasher.update(b"tributary-block-v1");
        hasher.update(&encoded);
        hasher.finalize().1
    }

    /// The validator that proposed this block (fees go to its account).
    pub fn proposer(&self) -> &ed25519::PublicKey {
        &self.context.leader
    }
}

impl Write for Block {
    fn write(&self, writer: &mut impl BufMut) {
        self.context.write(writer);
        self.parent.write(writer);
        self.height.write(writer);
        self.parent_seed.write(writer);
        self.transactions.write(writer);
        self.state_root.write(writer);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.context.encode_size()
            + self.parent.encode_size()
            + self.height.encode_size()
            + self.parent_seed.encode_size()
            + self.transactions.encode_size()
            + self.state_root.encode_size()
    }
}

impl Read for Block {
    type Cfg = ();

    fn read_cfg(reader: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let context = Context::read(reader)?;
        let parent = Digest::read(reader)?;
        let height = Height::read(reader)?;
        let parent_seed = Option::<Seed>::read(reader)?;
        let transactions = Vec::<SignedTransaction>::read_cfg(
            reader,
            &(RangeCfg::new(0..=limits::BLOCK_TRANSACTIONS_MAX), ()),
        )?;
        let state_root = <[u8; 32]>::read(reader)?;
        Ok(Self::new(
            context,
            parent,
            height,
            parent_seed,
            transactions,
            state_root,
        ))
    }
}

impl Digestible for Block {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for Block {
    fn height(&self) -> Height {
        self.height
    }
}

impl commonware_consensus::Block for Block {
    fn parent(&self) -> Digest {
        self.parent
    }
}

impl CertifiableBlock for Block {
    type Context = Context;

    fn context(&self) -> Context {
        self.context.clone()
    }
}

/// The largest encoded context: round (two varints), leader key, parent (varint view + digest).
const CONTEXT_ENCODE_SIZE_MAX: usize = 2 * 10 + ed25519::PublicKey::SIZE + 10 + Digest::SIZE;

/// The largest encoded parent seed: the option tag, a round (two varints) and a MinSig signature.
const SEED_ENCODE_SIZE_MAX: usize =
    1 + 2 * 10 + <<MinSig as commonware_cryptography::bls12381::primitives::variant::Variant>::Signature as FixedSize>::SIZE;

impl commonware_consensus::BoundedBlock for Block {
    fn max_encode_size(_: &()) -> usize {
        CONTEXT_ENCODE_SIZE_MAX
            + Digest::SIZE
            + Height::MAX_ENCODE_SIZE
            + SEED_ENCODE_SIZE_MAX
            + 5
            + limits::BLOCK_TRANSACTIONS_MAX * limits::TRANSACTION_BYTES_MAX
            + 32
    }
}

/// The block size bound, which sizes the p2p messages that carry blocks.
pub fn block_encode_size_max() -> usize {
    <Block as commonware_consensus::BoundedBlock>::max_encode_size(&())
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};
    use commonware_cryptography::Signer;

    #[test]
    fn genesis_roundtrips_and_digest_commits_to_root() {
        let leader = ed25519::PrivateKey::from_seed(1).public_key();
        let a = Block::genesis([1u8; 32], leader.clone());
        let b = Block::genesis([2u8; 32], leader);
        assert_ne!(a.digest(), b.digest());
        let decoded = Block::decode(a.encode()).expect("decodes");
        assert_eq!(decoded, a);
        assert_eq!(decoded.digest(), a.digest());
    }

    #[test]
    fn truncated_block_is_an_error() {
        let leader = ed25519::PrivateKey::from_seed(1).public_key();
        let encoded = Block::genesis([1u8; 32], leader).encode();
        for cut in 0..encoded.len() {
            assert!(Block::decode(commonware_codec::Copying(&encoded[..cut])).is_err());
        }
    }
}
