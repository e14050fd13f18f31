//! An in-memory driver that plays a whole round through the real [`Client`] and [`Server`], for tests,
//! simulations and benchmarks.

use std::collections::{BTreeMap, BTreeSet};

use super::{Client, ClientId, Result, RoundConfig, SecAggError, Server};

/// Runs one round among the clients that have an input (each `vector_length` words below
/// `2^modulus_bits`; a participant without one never joins), and returns `Σ x mod 2^modulus_bits`
/// over the clients that sent masked inputs.
///
/// Clients in `drop_before_masked_input` share their keys and then leave (they are not in the sum);
/// clients in `drop_before_unmasking` send their masked input and then leave (they are in the sum).
/// Any error from a client or the server ends the round with that error and no sum.
pub fn run_round(
    config: &RoundConfig,
    inputs: &BTreeMap<ClientId, Vec<u64>>,
    drop_before_masked_input: &BTreeSet<ClientId>,
    drop_before_unmasking: &BTreeSet<ClientId>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u64>> {
    let mut server = Server::new(config.clone())?;

    // Stage 0.
    let mut clients = BTreeMap::new();
    for &id in inputs.keys() {
        let (client, advertisement) = Client::new(config.clone(), id, rng)?;
        server.receive_key_advertisement(&advertisement)?;
        clients.insert(id, client);
    }
    if let Some(&client) = drop_before_masked_input
        .iter()
        .chain(drop_before_unmasking)
        .find(|client| !clients.contains_key(client))
    {
        return Err(SecAggError::UnexpectedClient {
            message: "dropout list",
            client,
            reason: "has no input in this simulation",
        });
    }
    let advertised = server.close_key_advertisement()?;

    // Stage 1.
    for client in clients.values_mut() {
        let shared = client.share_keys(&advertised, rng)?;
        server.receive_shared_keys(shared)?;
    }
    let routed = server.close_key_sharing()?;

    // Stage 2.
    for (id, client) in &mut clients {
        if drop_before_masked_input.contains(id) {
            continue;
        }
        let (Some(message), Some(input)) = (routed.get(id), inputs.get(id)) else {
            continue;
        };
        let masked = client.masked_input(message, input)?;
        server.receive_masked_input(&masked)?;
    }
    let request = server.close_masked_input()?;

    // Stage 3.
    for (id, client) in &mut clients {
        if drop_before_masked_input.contains(id) || drop_before_unmasking.contains(id) {
            continue;
        }
        let response = client.unmask(&request)?;
        server.receive_unmask_response(response)?;
    }
    Ok(server.aggregate()?.sum)
}
