//! The SecAgg+ communication graph: who shares secrets and agrees pairwise masks with whom.
//!
//! A Harary graph `H(k, n)` on positions `0..n`: position `p` is joined to `p ± 1, …, p ± ⌊k/2⌋`
//! (mod `n`) and, for odd `k` (then `n` is even), to the opposite position `p + n/2`. It is `k`-regular,
//! symmetric and `k`-connected. Participants are placed on the positions by a permutation derived from
//! the round: Fisher-Yates driven by the ChaCha20 keystream of
//! `SHA-256("tributary-learn secagg graph v1" ‖ session ‖ round)`, so every party computes the same graph
//! and it changes every round. With `k ≥ n − 1` the graph is complete.
//!
//! The seed is public: this is sound against an honest-but-curious server and against clients that
//! cannot choose the session id. A server that could grind session ids to place colluders next to a
//! victim would need the session fixed by someone else (it is, one layer up).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::mask::WordStream;
use super::{ClientId, Result, RoundConfig, SecAggError};

/// Domain of the permutation seed.
const GRAPH_DOMAIN: &[u8] = b"tributary-learn secagg graph v1";

/// ChaCha20 nonce of the permutation's keystream.
const GRAPH_NONCE: [u8; 12] = *b"graph perm 1";

/// A round's communication graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunicationGraph {
    /// Participant at each position.
    order: Vec<ClientId>,
    /// Position of each participant.
    positions: BTreeMap<ClientId, usize>,
    /// Neighbours per client, `min(k, n − 1)`.
    degree: usize,
}

impl CommunicationGraph {
    /// The graph of `config` (which is validated first).
    pub fn new(config: &RoundConfig) -> Result<Self> {
        config.validate()?;
        let mut seed = [0u8; 32];
        let mut hasher = Sha256::new();
        hasher.update(GRAPH_DOMAIN);
        hasher.update(config.tag.to_bytes());
        seed.copy_from_slice(&hasher.finalize());
        let mut stream = WordStream::new(&seed, &GRAPH_NONCE);
        let mut order = config.participants.clone();
        for index in (1..order.len()).rev() {
            let other = stream.below(index as u64 + 1)? as usize;
            order.swap(index, other);
        }
        let positions = order
            .iter()
            .enumerate()
            .map(|(position, &client)| (client, position))
            .collect();
        Ok(Self {
            order,
            positions,
            degree: config.effective_degree(),
        })
    }

    /// Neighbours per client.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Whether every client neighbours every other (plain Bonawitz et al.).
    pub fn is_complete(&self) -> bool {
        self.degree + 1 >= self.order.len()
    }

    /// Whether `client` is a participant.
    pub fn contains(&self, client: ClientId) -> bool {
        self.positions.contains_key(&client)
    }

    /// Whether `a` and `b` are (distinct) neighbours. False if either is not a participant.
    pub fn are_neighbours(&self, a: ClientId, b: ClientId) -> bool {
        let (Some(&position_a), Some(&position_b)) =
            (self.positions.get(&a), self.positions.get(&b))
        else {
            return false;
        };
        if position_a == position_b {
            return false;
        }
        if self.is_complete() {
            return true;
        }
        let clients = self.order.len();
        let forward = (position_b + clients - position_a) % clients;
        let distance = forward.min(clients - forward);
        distance <= self.degree / 2 || (self.degree % 2 == 1 && 2 * distance == clients)
    }

    /// The neighbours of `client`, ascending.
    pub fn neighbours(&self, client: ClientId) -> Result<Vec<ClientId>> {
        let &position = self
            .positions
            .get(&client)
            .ok_or(SecAggError::UnexpectedClient {
                message: "communication graph",
                client,
                reason: "is not a participant of this round",
            })?;
        let mut neighbours: Vec<ClientId> = if self.is_complete() {
            self.order
                .iter()
                .copied()
                .filter(|&other| other != client)
                .collect()
        } else {
            let clients = self.order.len();
            let mut neighbours = Vec::with_capacity(self.degree);
            for step in 1..=self.degree / 2 {
                neighbours.push(self.order[(position + step) % clients]);
                neighbours.push(self.order[(position + clients - step) % clients]);
            }
            if self.degree % 2 == 1 {
                neighbours.push(self.order[(position + clients / 2) % clients]);
            }
            neighbours
        };
        neighbours.sort_unstable();
        Ok(neighbours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secagg::RoundTag;

    fn config(clients: u32, degree: usize, round: u64) -> RoundConfig {
        RoundConfig {
            tag: RoundTag {
                session: [3; 32],
                round,
            },
            participants: (0..clients).map(|index| 100 + index * 3).collect(),
            threshold: 2,
            degree,
            vector_length: 1,
            modulus_bits: 32,
        }
    }

    fn check_regular_and_symmetric(graph: &CommunicationGraph, config: &RoundConfig) {
        for &client in &config.participants {
            let neighbours = graph.neighbours(client).unwrap();
            assert_eq!(neighbours.len(), graph.degree(), "client {client}");
            assert!(!neighbours.contains(&client));
            assert!(neighbours.windows(2).all(|pair| pair[0] < pair[1]));
            for &other in &config.participants {
                let listed = neighbours.contains(&other);
                assert_eq!(listed, graph.are_neighbours(client, other));
                assert_eq!(
                    graph.are_neighbours(client, other),
                    graph.are_neighbours(other, client)
                );
            }
        }
    }

    #[test]
    fn harary_graph_is_regular_symmetric_and_deterministic() {
        for (clients, degree) in [(10, 4), (50, 12), (100, 14), (12, 5), (20, 19), (9, 100)] {
            let config = config(clients, degree, 1);
            let graph = CommunicationGraph::new(&config).unwrap();
            assert_eq!(graph.degree(), degree.min(clients as usize - 1));
            check_regular_and_symmetric(&graph, &config);
            assert_eq!(graph, CommunicationGraph::new(&config).unwrap());
        }
    }

    #[test]
    fn graph_changes_with_the_round_and_session() {
        let first = CommunicationGraph::new(&config(50, 8, 1)).unwrap();
        let second = CommunicationGraph::new(&config(50, 8, 2)).unwrap();
        assert_ne!(first.order, second.order);
        let mut other_session = config(50, 8, 1);
        other_session.tag.session[0] ^= 1;
        assert_ne!(
            first.order,
            CommunicationGraph::new(&other_session).unwrap().order
        );
    }

    #[test]
    fn complete_graph_and_unknown_clients() {
        let config = config(6, 5, 1);
        let graph = CommunicationGraph::new(&config).unwrap();
        assert!(graph.is_complete());
        assert_eq!(
            graph.neighbours(100).unwrap(),
            vec![103, 106, 109, 112, 115]
        );
        assert!(graph.neighbours(101).is_err());
        assert!(!graph.are_neighbours(100, 101));
        assert!(!graph.are_neighbours(100, 100));
    }

    #[test]
    fn odd_degree_on_odd_clients_is_refused() {
        assert!(matches!(
            CommunicationGraph::new(&config(11, 5, 1)),
            Err(SecAggError::InvalidConfig { .. })
        ));
    }
}
