//! A running Tributary node: the HTTP API over the chain state, the on-disk keystore, and the
//! local devnet (validators, API and dev accounts in one process).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod devnet;
pub mod keystore;
pub mod operator;
pub mod ports;
pub mod provider;
