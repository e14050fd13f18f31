use super::*;
use crate::data::partition_iid;
use crate::model::Architecture;
use std::path::Path;

struct Network {
    aggregator: Aggregator,
    participants: BTreeMap<u32, Participant>,
    killed: BTreeMap<u32, (u32, u8)>,
    now_ms: u64,
    sent: Vec<String>,
}

fn digits() -> (Dataset, Dataset) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv");
    let data = Dataset::read(&path, "label", None).unwrap();
    data.stratified_split(0.2, 42).unwrap()
}

fn plan(participants: usize, rounds: u32) -> Plan {
    let config = SessionConfig::reference(rounds, 1);
    Plan {
        session: [7; 32],
        spec: ModelSpec {
            architecture: Architecture::Softmax,
            features: 64,
            classes: 10,
        },
        classes: (0..10).map(|class| class.to_string()).collect(),
        config,
        participants: (0..participants as u32).collect(),
        training_timeout_ms: 1_000,
        stage_timeout_ms: 100,
    }
}

fn network(plan: Plan) -> Network {
    let (training, test) = digits();
    let parts = partition_iid(training.rows(), plan.participants.len(), 3).unwrap();
    let participants = parts
        .into_iter()
        .enumerate()
        .map(|(id, rows)| {
            let id = id as u32;
            let participant = Participant::new(
                id,
                plan.clone(),
                training.select(&rows).unwrap(),
                [id as u8; 32],
            )
            .unwrap();
            (id, participant)
        })
        .collect();
    Network {
        aggregator: Aggregator::new(plan, None, Some(test), 0).unwrap(),
        participants,
        killed: BTreeMap::new(),
        now_ms: 0,
        sent: Vec::new(),
    }
}

impl Network {
    /// Polls every live participant once, delivers its uplink, and ticks the clock.
    fn step(&mut self) {
        for (&id, participant) in &mut self.participants {
            let downlink = self.aggregator.downlink(id);
            if let Some(&(phase, stage)) = self.killed.get(&id) {
                let at = match &downlink {
                    Downlink::Moments { job, .. } | Downlink::Train { job, .. } => {
                        Some((job.phase, 0))
                    }
                    Downlink::Keys { job, .. } => Some((job.phase, 1)),
                    Downlink::Shares { job, .. } => Some((job.phase, 2)),
                    Downlink::Unmask { job, .. } => Some((job.phase, 3)),
                    _ => None,
                };
                if at.is_some_and(|at| at >= (phase, stage)) || phase < self.aggregator.phase {
                    continue;
                }
            }
            if let Some(uplink) = participant.handle(&downlink).unwrap() {
                self.sent.push(serde_json::to_string(&uplink).unwrap());
                self.aggregator.receive(id, uplink).unwrap();
            }
        }
        self.now_ms += 10;
        self.aggregator.tick(self.now_ms).unwrap();
    }

    fn run(&mut self) {
        for _ in 0..10_000 {
            if self.aggregator.is_finished() {
                return;
            }
            self.step();
        }
        panic!("the session did not finish");
    }
}

#[test]
fn a_session_trains_through_the_protocol() {
    let mut network = network(plan(5, 4));
    network.run();
    let report = network.aggregator.report().unwrap();
    assert_eq!(report.rounds.len(), 4);
    assert!(
        report
            .rounds
            .iter()
            .all(|round| round.aggregated == vec![0, 1, 2, 3, 4])
    );
    assert!(report.accuracy.unwrap() > 0.9, "{:?}", report.accuracy);
    // The standardiser agreed through the secure sum of moments is the one of all the rows.
    let (training, _) = digits();
    let direct = Standardizer::fit(&training).unwrap();
    let agreed = network.aggregator.standardizer().unwrap();
    for (a, b) in agreed.mean.iter().zip(&direct.mean) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}

#[test]
fn raw_rows_never_appear_in_any_message() {
    let mut network = network(plan(4, 2));
    network.run();
    let (training, _) = digits();
    let features = training.feature_count();
    let mut checked = 0;
    for row in training.features().chunks(features) {
        // A run of eight pixel values as any JSON encoder would write them.
        let window = &row[16..24];
        if window.iter().all(|&value| value == 0.0) {
            continue;
        }
        let needle = serde_json::to_string(window).unwrap();
        let needle = needle.trim_start_matches('[').trim_end_matches(']');
        for message in &network.sent {
            assert!(
                !message.contains(needle),
                "row values {needle} found in a message"
            );
        }
        checked += 1;
    }
    assert!(checked > 1_000);
    assert!(!network.sent.is_empty());
}

#[test]
fn a_plan_without_secure_aggregation_is_refused_not_run_differently() {
    for (secure_aggregation, groups) in [(false, 0), (false, 1)] {
        let mut plan = plan(4, 2);
        plan.config.secure_aggregation = secure_aggregation;
        plan.config.groups = groups;
        let Err(error) = Aggregator::new(plan, None, None, 0) else {
            panic!("an aggregator for a plan it would not run as written");
        };
        assert!(
            error.to_string().contains("secure_aggregation = true"),
            "{error}"
        );
    }
}

#[test]
fn a_participant_killed_mid_round_is_recovered() {
    let mut network = network(plan(6, 3));
    // Participant 2 dies after sending its masked input in round 1 (phase 2); participant 4 dies
    // while training in round 1.
    network.killed.insert(2, (2, 3));
    network.killed.insert(4, (2, 0));
    network.run();
    let report = network.aggregator.report().unwrap();
    assert_eq!(report.rounds[0].aggregated, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(report.rounds[1].aggregated, vec![0, 1, 2, 3, 5]);
    assert_eq!(report.rounds[2].aggregated, vec![0, 1, 3, 5]);
    assert!(report.accuracy.unwrap() > 0.85);
}

#[test]
fn replayed_foreign_and_out_of_order_messages_are_refused() {
    let mut network = network(plan(4, 3));
    // Run until round 0's jobs start, and keep one uplink from then.
    let mut kept = None;
    while kept.is_none() {
        let downlink = network.aggregator.downlink(0);
        if matches!(downlink, Downlink::Train { .. }) {
            let participant = network.participants.get_mut(&0).unwrap();
            let uplink = participant.handle(&downlink).unwrap().unwrap();
            kept = Some(uplink.clone());
            network.aggregator.receive(0, uplink).unwrap();
        }
        network.step();
    }
    let kept = kept.unwrap();
    // A duplicate in the same stage, a non-participant, and an uplink claiming another sender.
    assert!(network.aggregator.receive(0, kept.clone()).is_err());
    assert!(network.aggregator.receive(99, kept.clone()).is_err());
    assert!(network.aggregator.receive(1, kept.clone()).is_err());
    network.run();
    // Replayed after the round: refused, the session is unaffected.
    assert!(network.aggregator.receive(0, kept).is_err());
    assert_eq!(network.aggregator.report().unwrap().rounds.len(), 3);
}

#[test]
fn participants_refuse_downlinks_that_do_not_fit_the_plan() {
    let plan = plan(4, 1);
    let (training, _) = digits();
    let mut participant = Participant::new(
        0,
        plan.clone(),
        training.select(&[0, 1, 2]).unwrap(),
        [1; 32],
    )
    .unwrap();
    let mut secagg = secure_round_config(&plan.config, 0, 0, &plan.participants, 129);
    secagg.tag.session = [9; 32];
    let job = JobId { phase: 0, group: 0 };
    assert!(
        participant
            .handle(&Downlink::Moments {
                job,
                secagg: secagg.clone()
            })
            .is_err()
    );
    secagg.tag.session = plan.session;
    secagg.vector_length = 10;
    assert!(
        participant
            .handle(&Downlink::Moments { job, secagg })
            .is_err()
    );
    assert!(Participant::new(9, plan, training.select(&[0]).unwrap(), [1; 32]).is_err());
}
