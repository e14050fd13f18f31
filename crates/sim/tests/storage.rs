//! The storage market under faults, deterministically: seeded runs of deals, challenges,
//! slashing and repair with the production providers over an in-memory transport.

use tributary_sim::storage::{Fault, FaultKind, StorageScenario, run_storage};

fn iris() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv")).unwrap()
}

#[test]
fn every_fault_kind_is_slashed_and_repaired() {
    for (seed, kind) in [
        (11, FaultKind::Delete),
        (12, FaultKind::Corrupt),
        (13, FaultKind::Crash),
    ] {
        let directory = tempfile::tempdir().unwrap();
        let mut scenario = StorageScenario::random(seed, 0, iris());
        scenario.faults = vec![Fault {
            shard: 0,
            epoch: 2,
            kind,
        }];
        let report = run_storage(&scenario, directory.path()).unwrap();
        println!("seed {seed} {kind:?}: {report:?}");
        report.check().unwrap();
    }
}

#[test]
fn random_faults_leave_every_asset_whole() {
    for seed in 0..4 {
        let directory = tempfile::tempdir().unwrap();
        let scenario = StorageScenario::random(seed, 3, iris());
        println!("seed {seed}: faults {:?}", scenario.faults);
        let report = run_storage(&scenario, directory.path()).unwrap();
        report.check().unwrap();
    }
}

#[test]
fn a_seed_replays_the_same_run() {
    let run = || {
        let directory = tempfile::tempdir().unwrap();
        let scenario = StorageScenario::random(7, 2, iris());
        run_storage(&scenario, directory.path()).unwrap().state_root
    };
    assert_eq!(run(), run());
}

#[test]
fn with_as_many_providers_as_shards_a_holder_repairs() {
    // 4 + 2 shards on exactly 6 providers (the devnet's default): no provider is free, so one
    // that holds another shard of the asset rebuilds the lost one rather than leave it lost.
    let directory = tempfile::tempdir().unwrap();
    let mut scenario = StorageScenario::random(21, 0, iris());
    scenario.providers = 6;
    scenario.faults = vec![Fault {
        shard: 2,
        epoch: 2,
        kind: FaultKind::Delete,
    }];
    let report = run_storage(&scenario, directory.path()).unwrap();
    println!("seed 21: {report:?}");
    assert!(report.repairs >= 1, "{report:?}");
    assert!(
        report.deals.iter().all(|deal| deal.status == "active"),
        "{report:?}"
    );
    assert_eq!(report.serving, 6, "{report:?}");
    assert!(report.readable, "{report:?}");
    let holders: std::collections::BTreeSet<_> =
        report.deals.iter().map(|deal| deal.provider).collect();
    assert_eq!(
        holders.len(),
        5,
        "one provider holds two shards: {report:?}"
    );
    assert_eq!(report.supply.0, report.supply.1);
}
