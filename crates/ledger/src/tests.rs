//! Tests of the ledger through its public entry points: admission, blocks, and every module's error paths.

use crate::{AdmissionError, BlockError, Ledger, LedgerError};
use commonware_cryptography::{Signer, ed25519::PrivateKey};
use tributary_types::{
    Address, Amount, AssetId, AssetKind, BlockInput, BlockOutcome, Call, Event, Genesis, Hash32,
    PayoutKind, Receipt, ReceiptStatus, RegisterAsset, Role, Signature, SignedTransaction, Terms,
    Transaction,
    codec::DecodeExt,
    limits::{ASSET_ANCESTORS_MAX, ASSET_PARENTS_MAX},
};

pub(crate) const CHAIN: &str = "test-chain";
pub(crate) const PROPOSER: Address = Address([0xee; 32]);

pub(crate) fn addr(i: u8) -> Address {
    Address([i; 32])
}

pub(crate) fn asset_id(i: u64) -> AssetId {
    Hash32::blake3(&i.to_be_bytes())
}

pub(crate) fn dummy_signature() -> Signature {
    Signature::decode(bytes::Bytes::from(vec![0u8; 64])).unwrap()
}

/// A ledger driven with unsigned transactions through `execute_block_unchecked_signatures` (signing is
/// covered by the signed tests below; skipping it keeps property tests fast).
pub(crate) struct Fixture {
    pub(crate) ledger: Ledger,
}

impl Fixture {
    pub(crate) fn new(allocations: &[(Address, Amount)]) -> Self {
        let genesis = Genesis::devnet(CHAIN, allocations.iter().copied());
        Fixture {
            ledger: Ledger::from_genesis(&genesis).unwrap(),
        }
    }

    pub(crate) fn tx(&self, sender: Address, nonce: u64, call: Call) -> SignedTransaction {
        SignedTransaction {
            transaction: Transaction {
                chain_id: CHAIN.into(),
                sender,
                nonce,
                fee: 1,
                call,
            },
            signature: dummy_signature(),
        }
    }

    /// Executes one block of calls with sequential nonces.
    pub(crate) fn block(&mut self, calls: Vec<(Address, Call)>) -> BlockOutcome {
        let mut nonces = std::collections::BTreeMap::new();
        let transactions = calls
            .into_iter()
            .map(|(sender, call)| {
                let nonce = nonces
                    .entry(sender)
                    .or_insert_with(|| self.ledger.nonce(&sender));
                let tx = self.tx(sender, *nonce, call);
                *nonce += 1;
                tx
            })
            .collect();
        let height = self.ledger.height() + 1;
        let block = BlockInput {
            height,
            proposer: PROPOSER,
            transactions,
            beacon: Some(Hash32::blake3(&height.to_be_bytes())),
        };
        self.ledger
            .execute_block_unchecked_signatures(&block)
            .unwrap()
    }

    pub(crate) fn call(&mut self, sender: Address, call: Call) -> Receipt {
        self.block(vec![(sender, call)]).receipts.remove(0)
    }

    pub(crate) fn ok(&mut self, sender: Address, call: Call) -> Vec<Event> {
        let receipt = self.call(sender, call);
        assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
        receipt.events
    }

    /// Runs a call expected to fail with `code`, and checks that only the fee and nonce changed.
    pub(crate) fn fails(&mut self, sender: Address, call: Call, code: &str) -> String {
        let before = self.ledger.clone();
        let receipt = self.call(sender, call.clone());
        let ReceiptStatus::Failed { reason } = receipt.status else {
            panic!("expected failure {code}, got success")
        };
        assert!(
            reason.starts_with(&format!("{code}: ")),
            "expected {code}, got {reason}"
        );
        assert!(receipt.events.is_empty());
        // Same root as a no-op paying the same fee at the same nonce.
        let mut noop = Fixture { ledger: before };
        noop.ok(
            sender,
            Call::Transfer {
                to: sender,
                amount: 0,
            },
        );
        assert_eq!(
            noop.ledger.state_root(),
            self.ledger.state_root(),
            "failed call changed more than fee and nonce"
        );
        reason
    }

    pub(crate) fn buy(&mut self, buyer: Address, asset: AssetId) -> u64 {
        let events = self.ok(buyer, Call::BuyLicense { asset });
        events
            .iter()
            .find_map(|event| match event {
                Event::LicenseMinted { token, .. } => Some(*token),
                _ => None,
            })
            .unwrap()
    }
}

pub(crate) fn derivative_terms(royalty_bps: u16, price: Amount) -> Terms {
    Terms {
        derivatives: true,
        ai_training: true,
        royalty_bps,
        price,
        ..Terms::default()
    }
}

pub(crate) fn register(id: AssetId, parents: Vec<(AssetId, u64)>, terms: Terms) -> Call {
    Call::RegisterAsset(RegisterAsset {
        content_root: id,
        kind: AssetKind::Dataset,
        name: "data".into(),
        byte_size: 1024,
        owners: vec![],
        parents,
        terms,
    })
}

// ---------------------------------------------------------------- genesis

#[test]
fn genesis_errors() {
    let mut genesis = Genesis::devnet(CHAIN, [(addr(1), 5), (addr(1), 6)]);
    assert_eq!(
        Ledger::from_genesis(&genesis).err(),
        Some(LedgerError::DuplicateAllocation(addr(1)))
    );
    genesis.allocations = Genesis::devnet(CHAIN, [(addr(1), u128::MAX), (addr(2), 1)]).allocations;
    assert_eq!(
        Ledger::from_genesis(&genesis).err(),
        Some(LedgerError::SupplyOverflow)
    );
    genesis.chain_id = "other".into();
    assert!(matches!(
        Ledger::from_genesis(&genesis),
        Err(LedgerError::ChainIdMismatch { .. })
    ));
    let empty = Genesis::devnet("", []);
    assert!(matches!(
        Ledger::from_genesis(&empty),
        Err(LedgerError::BadChainId { .. })
    ));
    let json = serde_json::to_string(&Genesis::devnet(CHAIN, [(addr(1), 5)])).unwrap();
    assert!(json.contains("\"amount\":\"5\""), "{json}");
    let ledger = Ledger::from_genesis(&serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(ledger.balance(&addr(1)), 5);
    assert_eq!(ledger.height(), 0);
}

// ---------------------------------------------------------------- admission (signed)

fn signed_fixture() -> (Ledger, PrivateKey, Address) {
    let key = PrivateKey::from_seed(42);
    let sender = Address::from_public_key(&key.public_key());
    let ledger = Ledger::from_genesis(&Genesis::devnet(CHAIN, [(sender, 100)])).unwrap();
    (ledger, key, sender)
}

fn transfer_tx(sender: Address, nonce: u64, fee: Amount) -> Transaction {
    Transaction {
        chain_id: CHAIN.into(),
        sender,
        nonce,
        fee,
        call: Call::Transfer {
            to: addr(9),
            amount: 5,
        },
    }
}

#[test]
fn admission_errors_have_stable_codes() {
    let (ledger, key, sender) = signed_fixture();
    let good = SignedTransaction::sign(&key, transfer_tx(sender, 0, 1));
    assert_eq!(ledger.check_admission(&good, 0), Ok(()));

    let check = |tx: Transaction, nonce: u64| {
        ledger
            .check_admission(&SignedTransaction::sign(&key, tx), nonce)
            .unwrap_err()
    };
    let wrong_chain = Transaction {
        chain_id: "other".into(),
        ..transfer_tx(sender, 0, 1)
    };
    assert_eq!(check(wrong_chain, 0).code(), "wrong_chain_id");
    assert_eq!(
        check(transfer_tx(sender, 1, 1), 0),
        AdmissionError::WrongNonce {
            expected: 0,
            got: 1
        }
    );
    assert_eq!(check(transfer_tx(sender, 0, 1), 3).code(), "wrong_nonce");
    assert_eq!(
        check(transfer_tx(sender, 0, 0), 0),
        AdmissionError::FeeBelowMinimum { fee: 0, min: 1 }
    );
    assert_eq!(
        check(transfer_tx(sender, 0, 101), 0),
        AdmissionError::InsufficientFeeBalance {
            balance: 100,
            fee: 101
        }
    );
    let huge = Transaction {
        call: Call::RegisterAsset(RegisterAsset {
            content_root: asset_id(1),
            kind: AssetKind::Model,
            name: "x".repeat(5_000),
            byte_size: 1,
            owners: vec![],
            parents: vec![],
            terms: Terms::default(),
        }),
        ..transfer_tx(sender, 0, 1)
    };
    assert_eq!(check(huge, 0).code(), "too_large");

    let mut tampered = good.clone();
    tampered.transaction.fee = 2;
    assert_eq!(
        ledger.check_admission(&tampered, 0),
        Err(AdmissionError::BadSignature)
    );
    let other_key = PrivateKey::from_seed(43);
    let forged = SignedTransaction::sign(&other_key, transfer_tx(sender, 0, 1));
    assert_eq!(
        ledger.check_admission(&forged, 0).unwrap_err().code(),
        "bad_signature"
    );
    // A sender that is not a valid curve point.
    let mut bad_point = good.clone();
    bad_point.transaction.sender = Address([0xff; 32]);
    assert!(ledger.check_admission(&bad_point, 0).is_err());
}

#[test]
fn signed_block_executes_and_bad_signature_rejects_whole_block() {
    let (mut ledger, key, sender) = signed_fixture();
    let txs: Vec<SignedTransaction> = (0..3)
        .map(|n| SignedTransaction::sign(&key, transfer_tx(sender, n, 1)))
        .collect();
    let mut bad = txs.clone();
    bad[1].transaction.call = Call::Transfer {
        to: addr(9),
        amount: 6,
    };
    let root = ledger.state_root();
    let error = ledger
        .execute_block(&BlockInput {
            height: 1,
            proposer: PROPOSER,
            transactions: bad.clone(),
            beacon: None,
        })
        .unwrap_err();
    assert!(
        matches!(
            error,
            BlockError::InvalidTransaction {
                index: 1,
                error: AdmissionError::BadSignature,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.code(), "bad_signature");
    assert_eq!(ledger.state_root(), root);
    assert_eq!(ledger.height(), 0);

    let outcome = ledger
        .execute_block(&BlockInput {
            height: 1,
            proposer: PROPOSER,
            transactions: txs.clone(),
            beacon: None,
        })
        .unwrap();
    assert_eq!(outcome.receipts.len(), 3);
    assert_eq!(outcome.receipts[2].tx_hash, txs[2].hash());
    assert_eq!(ledger.balance(&sender), 100 - 3 * 6);
    assert_eq!(ledger.balance(&PROPOSER), 3);
    assert_eq!(ledger.balance(&addr(9)), 15);
    assert_eq!(ledger.nonce(&sender), 3);
    assert_eq!(ledger.total_supply(), 100);
    assert_eq!(ledger.state_root(), outcome.state_root);
}

#[test]
fn block_errors_leave_ledger_unchanged() {
    let mut fixture = Fixture::new(&[(addr(1), 10)]);
    let root = fixture.ledger.state_root();
    let tx = fixture.tx(
        addr(1),
        0,
        Call::Transfer {
            to: addr(2),
            amount: 1,
        },
    );
    let wrong_height = BlockInput {
        height: 2,
        proposer: PROPOSER,
        transactions: vec![tx.clone()],
        beacon: None,
    };
    assert_eq!(
        fixture
            .ledger
            .execute_block_unchecked_signatures(&wrong_height)
            .unwrap_err(),
        BlockError::WrongHeight {
            expected: 1,
            got: 2
        }
    );
    // Nonce out of sequence inside a block.
    let skipped = fixture.tx(
        addr(1),
        2,
        Call::Transfer {
            to: addr(2),
            amount: 1,
        },
    );
    let block = BlockInput {
        height: 1,
        proposer: PROPOSER,
        transactions: vec![tx.clone(), skipped],
        beacon: None,
    };
    let error = fixture
        .ledger
        .execute_block_unchecked_signatures(&block)
        .unwrap_err();
    assert!(matches!(
        error,
        BlockError::InvalidTransaction {
            index: 1,
            error: AdmissionError::WrongNonce { .. },
            ..
        }
    ));
    // Fee not covered at its turn: the first transaction spends everything.
    let spend_all = fixture.tx(
        addr(1),
        0,
        Call::Transfer {
            to: addr(2),
            amount: 9,
        },
    );
    let then = fixture.tx(
        addr(1),
        1,
        Call::Transfer {
            to: addr(2),
            amount: 0,
        },
    );
    let block = BlockInput {
        height: 1,
        proposer: PROPOSER,
        transactions: vec![spend_all, then],
        beacon: None,
    };
    let error = fixture
        .ledger
        .execute_block_unchecked_signatures(&block)
        .unwrap_err();
    assert_eq!(error.code(), "insufficient_fee_balance");
    assert_eq!(fixture.ledger.state_root(), root);
    assert_eq!(fixture.ledger.height(), 0);
    // An empty block advances the height but leaves the state, and its root, as they were.
    let outcome = fixture
        .ledger
        .execute_block(&BlockInput {
            height: 1,
            proposer: PROPOSER,
            transactions: vec![],
            beacon: None,
        })
        .unwrap();
    assert_eq!(outcome.state_root, root);
    assert_eq!(fixture.ledger.height(), 1);
}

// ---------------------------------------------------------------- bank and stake

#[test]
fn transfer_failure_pays_fee_and_uses_nonce() {
    let mut fixture = Fixture::new(&[(addr(1), 10)]);
    fixture.fails(
        addr(1),
        Call::Transfer {
            to: addr(2),
            amount: 10,
        },
        "insufficient_balance",
    );
    assert_eq!(fixture.ledger.balance(&addr(1)), 9);
    assert_eq!(fixture.ledger.nonce(&addr(1)), 1);
    assert_eq!(fixture.ledger.balance(&PROPOSER), 1);
    fixture.ok(
        addr(1),
        Call::Transfer {
            to: addr(2),
            amount: 8,
        },
    );
    assert_eq!(fixture.ledger.account(&addr(2)).balance, 8);
    assert_eq!(fixture.ledger.total_supply(), 10);
}

#[test]
fn supply_at_u128_max_cannot_overflow() {
    // Genesis caps the supply at u128::MAX, so no balance can overflow through transactions; overflow
    // paths are covered by the unit tests of bank and stake. Moving everything around stays exact.
    let mut fixture = Fixture::new(&[(addr(1), u128::MAX - 10), (addr(2), 10)]);
    fixture.ok(
        addr(2),
        Call::Transfer {
            to: addr(1),
            amount: 5,
        },
    );
    fixture.ok(
        addr(1),
        Call::Transfer {
            to: addr(2),
            amount: u128::MAX - 100,
        },
    );
    fixture.fails(
        addr(2),
        Call::PayRevenue {
            asset: asset_id(1),
            amount: u128::MAX,
        },
        "asset_not_found",
    );
    assert_eq!(fixture.ledger.total_supply(), u128::MAX);
}

#[test]
fn bond_unbond_and_release_through_blocks() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000)]);
    fixture.fails(
        addr(1),
        Call::Bond {
            role: Role::Verifier,
            amount: 0,
        },
        "zero_amount",
    );
    fixture.fails(
        addr(1),
        Call::Bond {
            role: Role::Verifier,
            amount: 5_000,
        },
        "insufficient_balance",
    );
    fixture.ok(
        addr(1),
        Call::Bond {
            role: Role::Verifier,
            amount: 500,
        },
    );
    fixture.fails(
        addr(1),
        Call::Unbond {
            role: Role::Verifier,
            amount: 501,
        },
        "insufficient_bond",
    );
    fixture.fails(
        addr(1),
        Call::Unbond {
            role: Role::StorageProvider,
            amount: 1,
        },
        "insufficient_bond",
    );
    fixture.fails(
        addr(1),
        Call::Unbond {
            role: Role::Verifier,
            amount: 0,
        },
        "zero_amount",
    );
    let events = fixture.ok(
        addr(1),
        Call::Unbond {
            role: Role::Verifier,
            amount: 200,
        },
    );
    let Event::UnbondStarted { release_height, .. } = events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(release_height, fixture.ledger.height() + 10);
    assert_eq!(fixture.ledger.bonded(&addr(1), Role::Verifier), 300);
    assert_eq!(fixture.ledger.unbonding(&addr(1), Role::Verifier), 200);
    let supply = fixture.ledger.total_supply();
    let mut released = false;
    while fixture.ledger.height() < release_height {
        let outcome = fixture.block(vec![]);
        released |= !outcome.block_events.is_empty();
        assert_eq!(fixture.ledger.total_supply(), supply);
    }
    assert!(released);
    assert_eq!(fixture.ledger.unbonding(&addr(1), Role::Verifier), 0);
    let (taken, event) = fixture
        .ledger
        .slash(addr(1), Role::Verifier, 1_000, addr(7))
        .unwrap();
    assert_eq!(taken, 300);
    assert!(matches!(event, Some(Event::Slashed { amount: 300, .. })));
    assert_eq!(fixture.ledger.balance(&addr(7)), 300);
    assert_eq!(fixture.ledger.total_supply(), supply);
}

// ---------------------------------------------------------------- registry

#[test]
fn register_and_duplicate_reports_existing_id() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000), (addr(2), 1_000)]);
    fixture.ok(addr(1), register(asset_id(1), vec![], Terms::default()));
    let reason = fixture.fails(
        addr(2),
        register(asset_id(1), vec![], Terms::default()),
        "already_registered",
    );
    assert!(reason.contains(&asset_id(1).to_string()), "{reason}");
    let view = fixture.ledger.asset(&asset_id(1)).unwrap();
    assert_eq!(view.owners.len(), 1);
    assert_eq!(
        (view.owners[0].address, view.owners[0].bps),
        (addr(1), 10_000)
    );
    assert_eq!(view.terms, Terms::default());
    assert_eq!(view.registrant, addr(1));
    assert_eq!(view.registered_height, 1);
    assert_eq!(fixture.ledger.assets(0, 10).len(), 1);
}

#[test]
fn register_owner_and_name_errors() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000)]);
    let with = |owners: Vec<(Address, u16)>, name: &str, royalty_bps: u16| {
        Call::RegisterAsset(RegisterAsset {
            content_root: asset_id(5),
            kind: AssetKind::Model,
            name: name.into(),
            byte_size: 1,
            owners,
            parents: vec![],
            terms: Terms {
                royalty_bps,
                ..Terms::default()
            },
        })
    };
    fixture.fails(
        addr(1),
        with(vec![(addr(1), 5_000), (addr(2), 4_999)], "n", 0),
        "shares_not_total",
    );
    fixture.fails(
        addr(1),
        with(vec![(addr(1), 5_000), (addr(1), 5_000)], "n", 0),
        "duplicate_owner",
    );
    fixture.fails(
        addr(1),
        with(vec![(addr(1), 10_000), (addr(2), 0)], "n", 0),
        "zero_share",
    );
    let many: Vec<(Address, u16)> = (0..17).map(|i| (addr(i + 10), 1)).collect();
    fixture.fails(addr(1), with(many, "n", 0), "too_many_owners");
    fixture.fails(addr(1), with(vec![], "", 0), "bad_name");
    fixture.fails(addr(1), with(vec![], &"n".repeat(129), 0), "bad_name");
    fixture.fails(addr(1), with(vec![], "n", 10_001), "bad_royalty_rate");
    fixture.ok(
        addr(1),
        with(vec![(addr(3), 2_500), (addr(2), 7_500)], "n", 0),
    );
    let owners = fixture.ledger.asset(&asset_id(5)).unwrap().owners;
    assert_eq!(owners[0].address, addr(2)); // sorted by address
}

#[test]
fn register_parent_errors() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000), (addr(2), 1_000)]);
    fixture.ok(
        addr(1),
        register(asset_id(1), vec![], derivative_terms(1_000, 10)),
    );
    fixture.ok(
        addr(1),
        register(
            asset_id(2),
            vec![],
            Terms {
                price: 1,
                ..Terms::default()
            },
        ),
    );
    fixture.ok(
        addr(1),
        register(
            asset_id(3),
            vec![],
            Terms {
                derivatives: true,
                expiry_height: Some(8),
                ..Terms::default()
            },
        ),
    );

    fixture.fails(
        addr(2),
        register(asset_id(10), vec![(asset_id(99), 1)], Terms::default()),
        "asset_not_found",
    );
    fixture.fails(
        addr(2),
        register(asset_id(10), vec![(asset_id(1), 1)], Terms::default()),
        "license_not_found",
    );
    let token_1 = fixture.buy(addr(2), asset_id(1));
    let token_2 = fixture.buy(addr(2), asset_id(2));
    let token_3 = fixture.buy(addr(2), asset_id(3));
    fixture.fails(
        addr(2),
        register(asset_id(10), vec![(asset_id(2), token_1)], Terms::default()),
        "license_wrong_asset",
    );
    fixture.fails(
        addr(2),
        register(asset_id(10), vec![(asset_id(2), token_2)], Terms::default()),
        "derivatives_not_allowed",
    );
    fixture.fails(
        addr(1),
        register(asset_id(10), vec![(asset_id(1), token_1)], Terms::default()),
        "license_not_held",
    );
    fixture.fails(
        addr(2),
        register(
            asset_id(10),
            vec![(asset_id(1), token_1), (asset_id(1), token_1)],
            Terms::default(),
        ),
        "duplicate_parent",
    );
    while fixture.ledger.height() < 8 {
        fixture.block(vec![]);
    }
    fixture.fails(
        addr(2),
        register(asset_id(10), vec![(asset_id(3), token_3)], Terms::default()),
        "license_expired",
    );
    fixture.ok(
        addr(2),
        register(asset_id(10), vec![(asset_id(1), token_1)], Terms::default()),
    );
    let token = fixture.ledger.license(token_1).unwrap();
    assert_eq!(token.consumed_by, Some(asset_id(10)));
    fixture.fails(
        addr(2),
        register(asset_id(11), vec![(asset_id(1), token_1)], Terms::default()),
        "license_consumed",
    );
    let view = fixture.ledger.asset(&asset_id(10)).unwrap();
    assert_eq!(view.parents[0].royalty_bps, 1_000);
    assert_eq!(view.parents[0].license_token, token_1);
    let lineage = fixture.ledger.lineage(&asset_id(1)).unwrap();
    assert_eq!(lineage.descendants, vec![asset_id(10)]);
    assert_eq!(
        fixture.ledger.lineage(&asset_id(10)).unwrap().ancestors,
        vec![asset_id(1)]
    );
    assert_eq!(fixture.ledger.licenses_of(&addr(2)).len(), 3);
}

#[test]
fn register_rates_above_total_and_too_many_parents() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000_000)]);
    fixture.ok(
        addr(1),
        register(asset_id(1), vec![], derivative_terms(6_000, 0)),
    );
    fixture.ok(
        addr(1),
        register(asset_id(2), vec![], derivative_terms(4_001, 0)),
    );
    let a = fixture.buy(addr(1), asset_id(1));
    let b = fixture.buy(addr(1), asset_id(2));
    fixture.fails(
        addr(1),
        register(
            asset_id(3),
            vec![(asset_id(1), a), (asset_id(2), b)],
            Terms::default(),
        ),
        "royalty_rates_above_total",
    );
    let parents: Vec<(AssetId, u64)> = (0..=ASSET_PARENTS_MAX as u64)
        .map(|i| (asset_id(1000 + i), i))
        .collect();
    fixture.fails(
        addr(1),
        register(asset_id(3), parents, Terms::default()),
        "too_many_parents",
    );
}

#[test]
fn register_too_many_ancestors() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000_000)]);
    fixture.ok(
        addr(1),
        register(asset_id(0), vec![], derivative_terms(0, 0)),
    );
    // A chain: asset i has parent i-1, so asset i has i ancestors.
    for i in 1..=ASSET_ANCESTORS_MAX as u64 {
        let parent = asset_id(i - 1);
        let mut calls = vec![(addr(1), Call::BuyLicense { asset: parent })];
        let token = fixture.ledger.license_count() + 1;
        calls.push((
            addr(1),
            register(asset_id(i), vec![(parent, token)], derivative_terms(0, 0)),
        ));
        let outcome = fixture.block(calls);
        assert!(
            outcome
                .receipts
                .iter()
                .all(|r| r.status == ReceiptStatus::Success),
            "{:?}",
            outcome.receipts
        );
    }
    let last = asset_id(ASSET_ANCESTORS_MAX as u64);
    assert_eq!(
        fixture.ledger.lineage(&last).unwrap().ancestors.len(),
        ASSET_ANCESTORS_MAX
    );
    let token = fixture.buy(addr(1), last);
    fixture.fails(
        addr(1),
        register(asset_id(100_000), vec![(last, token)], Terms::default()),
        "too_many_ancestors",
    );
    assert_eq!(
        fixture
            .ledger
            .lineage(&asset_id(0))
            .unwrap()
            .descendants
            .len(),
        ASSET_ANCESTORS_MAX
    );
}

#[test]
fn update_terms_by_owner_only_and_tokens_keep_their_snapshot() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000), (addr(2), 1_000)]);
    fixture.ok(
        addr(1),
        register(asset_id(1), vec![], derivative_terms(500, 7)),
    );
    let token = fixture.buy(addr(2), asset_id(1));
    fixture.fails(
        addr(2),
        Call::UpdateTerms {
            asset: asset_id(1),
            terms: derivative_terms(0, 1),
        },
        "not_an_owner",
    );
    fixture.fails(
        addr(1),
        Call::UpdateTerms {
            asset: asset_id(9),
            terms: Terms::default(),
        },
        "asset_not_found",
    );
    fixture.fails(
        addr(1),
        Call::UpdateTerms {
            asset: asset_id(1),
            terms: derivative_terms(10_001, 1),
        },
        "bad_royalty_rate",
    );
    fixture.ok(
        addr(1),
        Call::UpdateTerms {
            asset: asset_id(1),
            terms: derivative_terms(9_000, 99),
        },
    );
    let view = fixture.ledger.license(token).unwrap();
    assert_eq!(view.terms, derivative_terms(500, 7));
    fixture.ok(
        addr(2),
        register(asset_id(2), vec![(asset_id(1), token)], Terms::default()),
    );
    assert_eq!(
        fixture.ledger.asset(&asset_id(2)).unwrap().parents[0].royalty_bps,
        500
    );
}

// ---------------------------------------------------------------- licensing and royalty

#[test]
fn buy_license_errors() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000), (addr(2), 50)]);
    fixture.fails(
        addr(2),
        Call::BuyLicense { asset: asset_id(1) },
        "asset_not_found",
    );
    let capped = Terms {
        license_cap: Some(1),
        price: 10,
        ..Terms::default()
    };
    fixture.ok(addr(1), register(asset_id(1), vec![], capped));
    fixture.ok(
        addr(1),
        register(
            asset_id(2),
            vec![],
            Terms {
                price: 100,
                ..Terms::default()
            },
        ),
    );
    fixture.ok(
        addr(1),
        register(
            asset_id(3),
            vec![],
            Terms {
                expiry_height: Some(4),
                ..Terms::default()
            },
        ),
    );
    fixture.fails(
        addr(2),
        Call::BuyLicense { asset: asset_id(2) },
        "insufficient_balance",
    );
    let token = fixture.buy(addr(2), asset_id(1));
    assert_eq!(token, 1);
    fixture.fails(
        addr(2),
        Call::BuyLicense { asset: asset_id(1) },
        "license_cap_reached",
    );
    fixture.block(vec![]);
    fixture.fails(
        addr(2),
        Call::BuyLicense { asset: asset_id(3) },
        "license_offer_expired",
    );
    assert_eq!(
        fixture.ledger.asset(&asset_id(1)).unwrap().licenses_minted,
        1
    );
}

#[test]
fn pay_revenue_errors() {
    let mut fixture = Fixture::new(&[(addr(1), 1_000)]);
    fixture.fails(
        addr(1),
        Call::PayRevenue {
            asset: asset_id(1),
            amount: 5,
        },
        "asset_not_found",
    );
    fixture.ok(addr(1), register(asset_id(1), vec![], Terms::default()));
    fixture.fails(
        addr(1),
        Call::PayRevenue {
            asset: asset_id(1),
            amount: 5_000,
        },
        "insufficient_balance",
    );
    fixture.fails(
        addr(1),
        Call::PayRevenue {
            asset: asset_id(1),
            amount: u128::MAX,
        },
        "insufficient_balance",
    );
}

#[test]
fn revenue_flows_up_lineage_with_snapshot_rates() {
    // grandparent G (10%) <- parent P (20%) <- child C; C is owned 50/50 by addr(3) and addr(4).
    let mut fixture = Fixture::new(&[
        (addr(1), 10_000),
        (addr(2), 10_000),
        (addr(3), 10_000),
        (addr(5), 100_000),
    ]);
    fixture.ok(
        addr(1),
        register(asset_id(1), vec![], derivative_terms(1_000, 0)),
    );
    let g = fixture.buy(addr(2), asset_id(1));
    fixture.ok(
        addr(2),
        register(
            asset_id(2),
            vec![(asset_id(1), g)],
            derivative_terms(2_000, 0),
        ),
    );
    let p = fixture.buy(addr(3), asset_id(2));
    let child = Call::RegisterAsset(RegisterAsset {
        content_root: asset_id(3),
        kind: AssetKind::Model,
        name: "model".into(),
        byte_size: 9,
        owners: vec![(addr(3), 5_000), (addr(4), 5_000)],
        parents: vec![(asset_id(2), p)],
        terms: Terms::default(),
    });
    fixture.ok(addr(3), child);
    // Raising the parent's rate later changes nothing for the existing child.
    fixture.ok(
        addr(2),
        Call::UpdateTerms {
            asset: asset_id(2),
            terms: derivative_terms(9_000, 0),
        },
    );
    let before: Vec<Amount> = (1..=4).map(|i| fixture.ledger.balance(&addr(i))).collect();
    let events = fixture.ok(
        addr(5),
        Call::PayRevenue {
            asset: asset_id(3),
            amount: 10_001,
        },
    );
    let after: Vec<Amount> = (1..=4).map(|i| fixture.ledger.balance(&addr(i))).collect();
    let gained: Vec<Amount> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // C: 10001 -> P gets floor(10001*0.2)=2000, C owners split 8001 -> 4001 (addr 3, lowest) / 4000.
    // P: 2000 -> G gets 200, P's owner 1800. G's owner 200.
    assert_eq!(gained, vec![200, 1_800, 4_001, 4_000]);
    let paid: Amount = events
        .iter()
        .filter_map(|event| match event {
            Event::RevenuePaid {
                amount,
                kind,
                asset,
                ..
            } => {
                assert_eq!(*kind == PayoutKind::OwnerShare, *asset == asset_id(3));
                Some(*amount)
            }
            _ => None,
        })
        .sum();
    assert_eq!(paid, 10_001);
}

#[test]
fn license_sale_is_revenue() {
    let mut fixture = Fixture::new(&[(addr(1), 10_000), (addr(2), 10_000)]);
    fixture.ok(
        addr(1),
        register(asset_id(1), vec![], derivative_terms(0, 500)),
    );
    fixture.buy(addr(2), asset_id(1));
    assert_eq!(fixture.ledger.balance(&addr(1)), 10_000 - 1 + 500);
    assert_eq!(fixture.ledger.balance(&addr(2)), 10_000 - 1 - 500);
}

#[test]
fn state_root_is_stable_across_replay_and_clone() {
    let run = || {
        let mut fixture = Fixture::new(&[(addr(1), 10_000), (addr(2), 10_000)]);
        fixture.ok(
            addr(1),
            register(asset_id(1), vec![], derivative_terms(100, 5)),
        );
        fixture.buy(addr(2), asset_id(1));
        fixture.ok(
            addr(2),
            Call::Bond {
                role: Role::ComputeProvider,
                amount: 50,
            },
        );
        fixture.ledger.state_root()
    };
    assert_eq!(run(), run());
}
