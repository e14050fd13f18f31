//! Whole-round tests of the client and server state machines.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::*;

fn config(clients: u32, threshold: usize, degree: usize, bits: u32, length: usize) -> RoundConfig {
    RoundConfig {
        tag: RoundTag {
            session: [0xab; 32],
            round: 7,
        },
        participants: (0..clients).map(|index| 10 + 2 * index).collect(),
        threshold,
        degree,
        vector_length: length,
        modulus_bits: bits,
    }
}

fn inputs(config: &RoundConfig, rng: &mut ChaCha20Rng) -> BTreeMap<ClientId, Vec<u64>> {
    let mask = config.modulus_mask();
    config
        .participants
        .iter()
        .map(|&id| {
            let vector = (0..config.vector_length)
                .map(|_| rng.next_u64() & mask)
                .collect();
            (id, vector)
        })
        .collect()
}

fn plain_sum(
    config: &RoundConfig,
    inputs: &BTreeMap<ClientId, Vec<u64>>,
    excluded: &BTreeSet<ClientId>,
) -> Vec<u64> {
    let mut sum = vec![0u64; config.vector_length];
    for (id, vector) in inputs {
        if excluded.contains(id) {
            continue;
        }
        for (total, value) in sum.iter_mut().zip(vector) {
            *total = total.wrapping_add(*value);
        }
    }
    sum.iter()
        .map(|value| value & config.modulus_mask())
        .collect()
}

fn ids(list: &[ClientId]) -> BTreeSet<ClientId> {
    list.iter().copied().collect()
}

/// A round advanced by hand, stage by stage.
struct Round {
    server: Server,
    clients: BTreeMap<ClientId, Client>,
    rng: ChaCha20Rng,
}

impl Round {
    fn new(config: RoundConfig, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut server = Server::new(config.clone()).unwrap();
        let mut clients = BTreeMap::new();
        for &id in &config.participants {
            let (client, advertisement) = Client::new(config.clone(), id, &mut rng).unwrap();
            server.receive_key_advertisement(&advertisement).unwrap();
            clients.insert(id, client);
        }
        Self {
            server,
            clients,
            rng,
        }
    }

    fn share_keys(&mut self) -> BTreeMap<ClientId, RoutedShares> {
        let advertised = self.server.close_key_advertisement().unwrap();
        for client in self.clients.values_mut() {
            let shared = client.share_keys(&advertised, &mut self.rng).unwrap();
            self.server.receive_shared_keys(shared).unwrap();
        }
        self.server.close_key_sharing().unwrap()
    }

    fn mask_all(
        &mut self,
        routed: &BTreeMap<ClientId, RoutedShares>,
        inputs: &BTreeMap<ClientId, Vec<u64>>,
    ) -> BTreeMap<ClientId, MaskedInput> {
        let mut masked = BTreeMap::new();
        for (id, client) in &mut self.clients {
            masked.insert(*id, client.masked_input(&routed[id], &inputs[id]).unwrap());
        }
        masked
    }
}

#[test]
fn sum_is_exact_without_dropouts() {
    let config = config(10, 6, 9, 32, 200);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let inputs = inputs(&config, &mut rng);
    let sum = run_round(
        &config,
        &inputs,
        &BTreeSet::new(),
        &BTreeSet::new(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(sum, plain_sum(&config, &inputs, &BTreeSet::new()));
}

#[test]
fn sum_is_exact_when_clients_drop_before_masked_input() {
    let config = config(10, 6, 9, 32, 200);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let inputs = inputs(&config, &mut rng);
    let dropped = ids(&[12, 20, 28]);
    let sum = run_round(&config, &inputs, &dropped, &BTreeSet::new(), &mut rng).unwrap();
    assert_eq!(sum, plain_sum(&config, &inputs, &dropped));
}

#[test]
fn sum_is_exact_when_clients_drop_after_masked_input() {
    let config = config(10, 6, 9, 32, 200);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let inputs = inputs(&config, &mut rng);
    let sum = run_round(
        &config,
        &inputs,
        &BTreeSet::new(),
        &ids(&[10, 18, 26]),
        &mut rng,
    )
    .unwrap();
    // They sent their masked inputs, so they are in the sum.
    assert_eq!(sum, plain_sum(&config, &inputs, &BTreeSet::new()));
}

#[test]
fn sum_is_exact_on_a_sparse_graph_with_both_kinds_of_dropout() {
    for bits in [1, 20, 64] {
        // Four of forty leave, so every neighbourhood of twelve keeps at least eight: the threshold of
        // seven is met whatever the graph.
        let config = config(40, 7, 12, bits, 300);
        let mut rng = ChaCha20Rng::seed_from_u64(4 + u64::from(bits));
        let inputs = inputs(&config, &mut rng);
        let before = ids(&[10, 50]);
        let after = ids(&[12, 88]);
        let sum = run_round(&config, &inputs, &before, &after, &mut rng).unwrap();
        assert_eq!(sum, plain_sum(&config, &inputs, &before), "{bits} bits");
    }
    // An odd degree (with an even number of clients) too.
    let config = config(20, 3, 5, 16, 50);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let inputs = inputs(&config, &mut rng);
    let before = ids(&[14]);
    let sum = run_round(&config, &inputs, &before, &ids(&[16]), &mut rng).unwrap();
    assert_eq!(sum, plain_sum(&config, &inputs, &before));
}

#[test]
fn too_few_survivors_abandon_the_round() {
    let config = config(10, 6, 9, 32, 20);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let inputs = inputs(&config, &mut rng);
    // Five of ten send masked inputs, the threshold is six.
    let result = run_round(
        &config,
        &inputs,
        &ids(&[10, 12, 14, 16, 18]),
        &BTreeSet::new(),
        &mut rng,
    );
    assert!(matches!(
        result,
        Err(SecAggError::NotEnoughClients {
            have: 5,
            need: 6,
            ..
        })
    ));
    // Enough masked inputs, but too few answer the unmask request: no sum, no partial unmasking.
    let result = run_round(
        &config,
        &inputs,
        &BTreeSet::new(),
        &ids(&[10, 12, 14, 16, 18]),
        &mut rng,
    );
    assert!(matches!(
        result,
        Err(SecAggError::NotEnoughShares {
            have: 5,
            need: 6,
            ..
        })
    ));
}

#[test]
fn server_waits_for_more_unmask_responses_without_unmasking() {
    let config = config(8, 5, 7, 32, 10);
    let mut round = Round::new(config.clone(), 7);
    let mut rng = ChaCha20Rng::seed_from_u64(70);
    let inputs = inputs(&config, &mut rng);
    let routed = round.share_keys();
    let masked = round.mask_all(&routed, &inputs);
    for message in masked.values() {
        round.server.receive_masked_input(message).unwrap();
    }
    let request = round.server.close_masked_input().unwrap();
    let mut responses: Vec<UnmaskResponse> = round
        .clients
        .values_mut()
        .map(|client| client.unmask(&request).unwrap())
        .collect();
    let last = responses.split_off(4);
    for response in responses {
        round.server.receive_unmask_response(response).unwrap();
    }
    assert!(matches!(
        round.server.aggregate(),
        Err(SecAggError::NotEnoughShares { need: 5, .. })
    ));
    for response in last {
        round.server.receive_unmask_response(response).unwrap();
    }
    let aggregate = round.server.aggregate().unwrap();
    assert_eq!(aggregate.sum, plain_sum(&config, &inputs, &BTreeSet::new()));
    assert_eq!(
        aggregate.contributors,
        config.participants.iter().copied().collect()
    );
}

#[test]
fn masked_upload_is_indistinguishable_from_random() {
    // An all-zero input, masked, over 2^64: its bytes should be uniform. Chi-square over 256 byte values
    // (255 degrees of freedom) on 400 000 bytes; 415 is past the 1e-9 upper quantile (Wilson-Hilferty).
    let length = 50_000;
    let config = config(5, 3, 4, 64, length);
    let mut round = Round::new(config.clone(), 8);
    let routed = round.share_keys();
    let zeros: BTreeMap<ClientId, Vec<u64>> = config
        .participants
        .iter()
        .map(|&id| (id, vec![0u64; length]))
        .collect();
    let masked = round.mask_all(&routed, &zeros);
    for upload in masked.values() {
        let mut counts = [0u64; 256];
        for word in &upload.vector {
            for byte in word.to_le_bytes() {
                counts[usize::from(byte)] += 1;
            }
        }
        let expected = (length * 8) as f64 / 256.0;
        let chi_square: f64 = counts
            .iter()
            .map(|&count| (count as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi_square < 415.0, "chi-square {chi_square}");
    }
    // And two clients' uploads of the same (zero) input differ everywhere but by chance.
    let mut uploads = masked.values();
    let (first, second) = (uploads.next().unwrap(), uploads.next().unwrap());
    let equal = first
        .vector
        .iter()
        .zip(&second.vector)
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(equal, 0);
}

#[test]
fn a_message_from_another_round_is_rejected() {
    let round_seven = config(6, 3, 5, 32, 8);
    let mut round_eight = round_seven.clone();
    round_eight.tag.round = 8;
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (_, old_advertisement) = Client::new(round_seven.clone(), 10, &mut rng).unwrap();
    let mut server = Server::new(round_eight.clone()).unwrap();
    assert!(matches!(
        server.receive_key_advertisement(&old_advertisement),
        Err(SecAggError::WrongRound {
            expected_round: 8,
            got_round: 7,
            ..
        })
    ));
    let mut other_session = round_eight.clone();
    other_session.tag.session[31] ^= 1;
    let (_, foreign) = Client::new(other_session, 10, &mut rng).unwrap();
    assert!(matches!(
        server.receive_key_advertisement(&foreign),
        Err(SecAggError::WrongRound { .. })
    ));
    // Nothing was recorded: the real advertisement of client 10 is still accepted.
    let (_, advertisement) = Client::new(round_eight.clone(), 10, &mut rng).unwrap();
    server.receive_key_advertisement(&advertisement).unwrap();

    // Sealed shares replayed from round 7 with the header rewritten to round 8 do not open: the keys
    // and the associated data bind the round. Use the same client keys in both rounds to show it is
    // the binding, not fresh keys, that refuses them.
    let mut old = Round::new(round_seven.clone(), 10);
    let mut new = Round::new(round_eight.clone(), 10);
    let old_routed = old.share_keys();
    let new_routed = new.share_keys();
    let mut replay = new_routed[&10].clone();
    let (&sender, _) = replay.shares.iter().next().unwrap();
    replay
        .shares
        .insert(sender, old_routed[&10].shares[&sender].clone());
    let client = new.clients.get_mut(&10).unwrap();
    assert!(matches!(
        client.masked_input(&replay, &[0; 8]),
        Err(SecAggError::Decryption { .. })
    ));
    // A routed message still tagged with round 7 is refused before any decryption.
    assert!(matches!(
        client.masked_input(&old_routed[&10], &[0; 8]),
        Err(SecAggError::WrongRound { .. })
    ));
    // The client's state is unchanged: the genuine message works.
    client.masked_input(&new_routed[&10], &[0; 8]).unwrap();
}

#[test]
fn bad_messages_are_rejected_and_leave_the_state_unchanged() {
    let config = config(7, 4, 6, 16, 12);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let inputs = inputs(&config, &mut rng);
    let mut round = Round::new(config.clone(), 12);

    // Stage 0: a non-participant and a duplicate.
    let mut outsider_config = config.clone();
    outsider_config.participants.push(99);
    let (_, outsider) = Client::new(outsider_config, 99, &mut rng).unwrap();
    assert!(matches!(
        round.server.receive_key_advertisement(&outsider),
        Err(SecAggError::UnexpectedClient { client: 99, .. })
    ));
    let mut fresh = Server::new(config.clone()).unwrap();
    assert!(matches!(
        fresh.receive_key_advertisement(&outsider),
        Err(SecAggError::UnexpectedClient { client: 99, .. })
    ));
    let (_, advertisement) = Client::new(config.clone(), 10, &mut rng).unwrap();
    fresh.receive_key_advertisement(&advertisement).unwrap();
    assert!(matches!(
        fresh.receive_key_advertisement(&advertisement),
        Err(SecAggError::Duplicate { client: 10, .. })
    ));
    let mut reused = advertisement.clone();
    reused.sender = 12;
    assert!(matches!(
        fresh.receive_key_advertisement(&reused),
        Err(SecAggError::InvalidPublicKey { client: 12, .. })
    ));
    let (_, mut small_order) = Client::new(config.clone(), 14, &mut rng).unwrap();
    small_order.keys.masking = [0; 32];
    assert!(matches!(
        fresh.receive_key_advertisement(&small_order),
        Err(SecAggError::InvalidPublicKey { client: 14, .. })
    ));

    // Stage 1: shares to the wrong set of recipients, a wrong ciphertext length, a duplicate.
    let advertised = round.server.close_key_advertisement().unwrap();
    let mut shared: BTreeMap<ClientId, SharedKeys> = BTreeMap::new();
    for (id, client) in &mut round.clients {
        shared.insert(*id, client.share_keys(&advertised, &mut round.rng).unwrap());
    }
    let mut missing = shared[&10].clone();
    missing.shares.pop_last();
    assert!(matches!(
        round.server.receive_shared_keys(missing),
        Err(SecAggError::Malformed { .. })
    ));
    let mut short = shared[&10].clone();
    short.shares.values_mut().next().unwrap().ciphertext.pop();
    assert!(matches!(
        round.server.receive_shared_keys(short),
        Err(SecAggError::Malformed { .. })
    ));
    for message in shared.values() {
        round.server.receive_shared_keys(message.clone()).unwrap();
    }
    assert!(matches!(
        round.server.receive_shared_keys(shared[&10].clone()),
        Err(SecAggError::Duplicate { client: 10, .. })
    ));
    let routed = round.server.close_key_sharing().unwrap();

    // Stage 2, client side: a malformed ciphertext, an unknown sender, a wrong input length, a value
    // above the modulus, a message for another client; then the genuine one works.
    let client = round.clients.get_mut(&10).unwrap();
    let mut altered = routed[&10].clone();
    altered.shares.values_mut().next().unwrap().ciphertext[3] ^= 1;
    assert!(matches!(
        client.masked_input(&altered, &inputs[&10]),
        Err(SecAggError::Decryption { .. })
    ));
    let mut truncated = routed[&10].clone();
    truncated
        .shares
        .values_mut()
        .next()
        .unwrap()
        .ciphertext
        .truncate(10);
    assert!(matches!(
        client.masked_input(&truncated, &inputs[&10]),
        Err(SecAggError::WrongLength { .. })
    ));
    let mut stranger = routed[&10].clone();
    let sealed = stranger.shares.pop_first().unwrap().1;
    stranger.shares.insert(1_000, sealed);
    assert!(matches!(
        client.masked_input(&stranger, &inputs[&10]),
        Err(SecAggError::UnexpectedClient { client: 1_000, .. })
    ));
    // A sealed share moved to another sender's slot does not open.
    let mut swapped = routed[&10].clone();
    let senders: Vec<ClientId> = swapped.shares.keys().copied().collect();
    let first = swapped.shares[&senders[0]].clone();
    swapped.shares.insert(senders[1], first);
    assert!(matches!(
        client.masked_input(&swapped, &inputs[&10]),
        Err(SecAggError::Decryption { .. })
    ));
    assert!(matches!(
        client.masked_input(&routed[&10], &inputs[&10][..11]),
        Err(SecAggError::WrongLength { .. })
    ));
    let mut too_big = inputs[&10].clone();
    too_big[4] = 1 << 16;
    assert!(matches!(
        client.masked_input(&routed[&10], &too_big),
        Err(SecAggError::ValueOutOfRange { index: 4, .. })
    ));
    assert!(matches!(
        client.masked_input(&routed[&12], &inputs[&10]),
        Err(SecAggError::UnexpectedClient { client: 12, .. })
    ));
    let masked = round.mask_all(&routed, &inputs);

    // Stage 2, server side: wrong length, out of range, a non-participant, a duplicate.
    let mut wrong_length = masked[&10].clone();
    wrong_length.vector.push(0);
    assert!(matches!(
        round.server.receive_masked_input(&wrong_length),
        Err(SecAggError::WrongLength { .. })
    ));
    let mut out_of_range = masked[&10].clone();
    out_of_range.vector[0] = u64::MAX;
    assert!(matches!(
        round.server.receive_masked_input(&out_of_range),
        Err(SecAggError::ValueOutOfRange { .. })
    ));
    let mut stranger = masked[&10].clone();
    stranger.sender = 11;
    assert!(matches!(
        round.server.receive_masked_input(&stranger),
        Err(SecAggError::UnexpectedClient { client: 11, .. })
    ));
    for message in masked.values() {
        round.server.receive_masked_input(message).unwrap();
    }
    assert!(matches!(
        round.server.receive_masked_input(&masked[&10]),
        Err(SecAggError::Duplicate { client: 10, .. })
    ));
    let request = round.server.close_masked_input().unwrap();

    // Stage 3, server side: a share the responder never held, a share of a non-participant, a
    // response from a client that was not asked, a duplicate.
    let responses: BTreeMap<ClientId, UnmaskResponse> = round
        .clients
        .iter_mut()
        .map(|(id, client)| (*id, client.unmask(&request).unwrap()))
        .collect();
    let mut foreign_owner = responses[&10].clone();
    let share = foreign_owner
        .self_mask_shares
        .values()
        .next()
        .unwrap()
        .clone();
    foreign_owner.self_mask_shares.insert(1_000, share.clone());
    assert!(matches!(
        round.server.receive_unmask_response(foreign_owner),
        Err(SecAggError::Malformed { .. })
    ));
    let mut own = responses[&10].clone();
    own.self_mask_shares.insert(10, share.clone());
    assert!(matches!(
        round.server.receive_unmask_response(own),
        Err(SecAggError::Malformed { .. })
    ));
    let mut unasked = responses[&10].clone();
    unasked.sender = 1_000;
    assert!(matches!(
        round.server.receive_unmask_response(unasked),
        Err(SecAggError::UnexpectedClient { client: 1_000, .. })
    ));
    for response in responses.values() {
        round
            .server
            .receive_unmask_response(response.clone())
            .unwrap();
    }
    assert!(matches!(
        round.server.receive_unmask_response(responses[&10].clone()),
        Err(SecAggError::Duplicate { client: 10, .. })
    ));
    assert_eq!(
        round.server.aggregate().unwrap().sum,
        plain_sum(&config, &inputs, &BTreeSet::new())
    );
}

#[test]
fn clients_refuse_to_reveal_both_shares_of_one_client() {
    let config = config(6, 3, 5, 32, 4);
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let inputs = inputs(&config, &mut rng);
    let mut round = Round::new(config.clone(), 14);
    let routed = round.share_keys();
    let masked = round.mask_all(&routed, &inputs);
    for message in masked.values() {
        round.server.receive_masked_input(message).unwrap();
    }
    let honest = round.server.close_masked_input().unwrap();
    let mut greedy = honest.clone();
    greedy.dropped.insert(12);
    let client = round.clients.get_mut(&10).unwrap();
    assert_eq!(
        client.unmask(&greedy),
        Err(SecAggError::RefusedBothShares { client: 12 })
    );
    // Too few survivors listed, a non-participant, a neighbour that never sent shares to this client.
    let mut few = honest.clone();
    few.surviving = ids(&[10, 12]);
    assert!(matches!(
        client.unmask(&few),
        Err(SecAggError::NotEnoughClients { .. })
    ));
    let mut outsider = honest.clone();
    outsider.dropped.insert(1_000);
    assert!(matches!(
        client.unmask(&outsider),
        Err(SecAggError::UnexpectedClient { client: 1_000, .. })
    ));
    // The refusals changed nothing: the honest request is answered, once.
    let response = client.unmask(&honest).unwrap();
    assert_eq!(response.self_mask_shares.len(), 5);
    assert!(response.mask_key_shares.is_empty());
    assert!(matches!(
        client.unmask(&honest),
        Err(SecAggError::WrongStage { .. })
    ));
}

#[test]
fn a_wrong_share_abandons_the_round() {
    let config = config(6, 3, 5, 32, 4);
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let inputs = inputs(&config, &mut rng);
    let mut round = Round::new(config.clone(), 16);
    let routed = round.share_keys();
    let masked = round.mask_all(&routed, &inputs);
    // Client 20 drops before masked input: its mask key is reconstructed.
    for (id, message) in &masked {
        if *id != 20 {
            round.server.receive_masked_input(message).unwrap();
        }
    }
    let request = round.server.close_masked_input().unwrap();
    assert_eq!(request.dropped, ids(&[20]));
    for (id, client) in &mut round.clients {
        if *id == 20 {
            continue;
        }
        let mut response = client.unmask(&request).unwrap();
        if *id == 14 {
            let share = response.mask_key_shares.get_mut(&20).unwrap();
            let mut limbs = *share.limbs();
            limbs[0] = (limbs[0] + 1) % shamir::FIELD_MODULUS;
            *share = Share::new(limbs).unwrap();
        }
        round.server.receive_unmask_response(response).unwrap();
    }
    assert!(matches!(
        round.server.aggregate(),
        Err(SecAggError::InconsistentShares { client: 20, .. })
    ));
}

#[test]
fn stages_must_come_in_order() {
    let config = config(5, 3, 4, 32, 4);
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let mut server = Server::new(config.clone()).unwrap();
    assert!(matches!(
        server.close_masked_input(),
        Err(SecAggError::WrongStage { .. })
    ));
    assert!(matches!(
        server.aggregate(),
        Err(SecAggError::WrongStage { .. })
    ));
    // Too few advertisers to close: nothing changes.
    let (mut client, advertisement) = Client::new(config.clone(), 10, &mut rng).unwrap();
    server.receive_key_advertisement(&advertisement).unwrap();
    assert!(matches!(
        server.close_key_advertisement(),
        Err(SecAggError::NotEnoughClients {
            have: 1,
            need: 3,
            ..
        })
    ));
    let request = UnmaskRequest {
        tag: config.tag,
        surviving: BTreeSet::new(),
        dropped: BTreeSet::new(),
    };
    assert!(matches!(
        client.unmask(&request),
        Err(SecAggError::WrongStage { .. })
    ));
    assert!(Client::new(config.clone(), 11, &mut rng).is_err());
}

#[test]
fn configs_are_validated() {
    let good = config(10, 5, 8, 32, 100);
    good.validate().unwrap();
    let mut bad = Vec::new();
    let mut unsorted = good.clone();
    unsorted.participants.swap(0, 1);
    bad.push(unsorted);
    let mut repeated = good.clone();
    repeated.participants[1] = repeated.participants[0];
    bad.push(repeated);
    bad.push(config(2, 2, 1, 32, 1));
    bad.push(config(10, 1, 8, 32, 100));
    bad.push(config(10, 9, 8, 32, 100));
    bad.push(config(10, 5, 0, 32, 100));
    bad.push(config(11, 3, 5, 32, 100));
    bad.push(config(10, 5, 8, 0, 100));
    bad.push(config(10, 5, 8, 65, 100));
    bad.push(config(10, 5, 8, 32, 0));
    bad.push(config(
        10,
        5,
        8,
        32,
        crate::limits::SECAGG_VECTOR_LENGTH_MAX + 1,
    ));
    bad.push(config(1_001, 5, 8, 32, 1));
    for config in bad {
        assert!(
            matches!(config.validate(), Err(SecAggError::InvalidConfig { .. })),
            "{config:?}"
        );
    }
    // A degree above n − 1 is the complete graph.
    let complete = config(10, 9, 50, 32, 1);
    complete.validate().unwrap();
    assert_eq!(complete.effective_degree(), 9);
}

#[test]
fn messages_survive_serialisation() {
    let config = config(5, 3, 4, 32, 6);
    let mut rng = ChaCha20Rng::seed_from_u64(18);
    let inputs = inputs(&config, &mut rng);
    let mut server = Server::new(config.clone()).unwrap();
    let mut clients = BTreeMap::new();
    fn through_json<T: serde::Serialize + serde::de::DeserializeOwned>(message: &T) -> T {
        serde_json::from_str(&serde_json::to_string(message).unwrap()).unwrap()
    }
    for &id in &config.participants {
        let (client, advertisement) = Client::new(config.clone(), id, &mut rng).unwrap();
        server
            .receive_key_advertisement(&through_json(&advertisement))
            .unwrap();
        clients.insert(id, client);
    }
    let advertised = through_json(&server.close_key_advertisement().unwrap());
    for client in clients.values_mut() {
        let shared = client.share_keys(&advertised, &mut rng).unwrap();
        server.receive_shared_keys(through_json(&shared)).unwrap();
    }
    let routed = server.close_key_sharing().unwrap();
    for (id, client) in &mut clients {
        let masked = client
            .masked_input(&through_json(&routed[id]), &inputs[id])
            .unwrap();
        server.receive_masked_input(&through_json(&masked)).unwrap();
    }
    let request = through_json(&server.close_masked_input().unwrap());
    for client in clients.values_mut() {
        let response = client.unmask(&request).unwrap();
        server
            .receive_unmask_response(through_json(&response))
            .unwrap();
    }
    assert_eq!(
        server.aggregate().unwrap().sum,
        plain_sum(&config, &inputs, &BTreeSet::new())
    );
}

#[test]
fn quantized_updates_average_through_a_round() {
    let clients = 8;
    let config = config(clients, 5, 7, 40, 4);
    let quantizer = Quantizer::new(2.0, clients as usize, config.modulus_bits).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    let updates: Vec<(f32, [f32; 3])> = (0..clients)
        .map(|index| {
            let x = index as f32;
            (0.5 + 0.1 * x, [0.1 * x - 0.3, -0.2, 0.05 * x])
        })
        .collect();
    let inputs: BTreeMap<ClientId, Vec<u64>> = config
        .participants
        .iter()
        .zip(&updates)
        .map(|(&id, (weight, update))| {
            (
                id,
                quantizer
                    .quantize_weighted(*weight, update, &mut rng)
                    .unwrap(),
            )
        })
        .collect();
    let sum = run_round(
        &config,
        &inputs,
        &BTreeSet::new(),
        &BTreeSet::new(),
        &mut rng,
    )
    .unwrap();
    let average = weighted_average(&quantizer.decode_sum(&sum, clients as usize).unwrap()).unwrap();
    let total_weight: f64 = updates.iter().map(|(weight, _)| f64::from(*weight)).sum();
    for (coordinate, got) in average.iter().enumerate() {
        let want: f64 = updates
            .iter()
            .map(|(weight, update)| f64::from(*weight) * f64::from(update[coordinate]))
            .sum::<f64>()
            / total_weight;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}

#[test]
fn clients_check_the_advertised_keys() {
    let config = config(5, 3, 4, 32, 4);
    let mut round = Round::new(config.clone(), 20);
    let advertised = round.server.close_key_advertisement().unwrap();
    let client = round.clients.get_mut(&10).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(21);

    let mut small_order = advertised.clone();
    small_order.keys.get_mut(&12).unwrap().masking = [0; 32];
    assert!(matches!(
        client.share_keys(&small_order, &mut rng),
        Err(SecAggError::InvalidPublicKey { client: 12, .. })
    ));
    let mut duplicated = advertised.clone();
    let copied = duplicated.keys[&12];
    duplicated.keys.insert(14, copied);
    assert!(matches!(
        client.share_keys(&duplicated, &mut rng),
        Err(SecAggError::InvalidPublicKey { client: 14, .. })
    ));
    let mut substituted = advertised.clone();
    let other = substituted.keys[&12];
    substituted.keys.insert(10, other);
    substituted.keys.remove(&12);
    assert!(matches!(
        client.share_keys(&substituted, &mut rng),
        Err(SecAggError::Malformed { .. })
    ));
    let mut outsider = advertised.clone();
    let extra = outsider.keys.pop_last().unwrap().1;
    outsider.keys.insert(1_000, extra);
    assert!(matches!(
        client.share_keys(&outsider, &mut rng),
        Err(SecAggError::UnexpectedClient { client: 1_000, .. })
    ));
    let mut old = advertised.clone();
    old.tag.round -= 1;
    assert!(matches!(
        client.share_keys(&old, &mut rng),
        Err(SecAggError::WrongRound { .. })
    ));
    // Too few neighbours advertised to reach the threshold.
    let mut sparse = advertised.clone();
    sparse.keys.retain(|&id, _| id <= 12);
    assert!(matches!(
        client.share_keys(&sparse, &mut rng),
        Err(SecAggError::NotEnoughClients {
            have: 1,
            need: 3,
            ..
        })
    ));
    // None of that changed the client: the genuine keys work, once.
    client.share_keys(&advertised, &mut rng).unwrap();
    assert!(matches!(
        client.share_keys(&advertised, &mut rng),
        Err(SecAggError::WrongStage { .. })
    ));
}
