//! A devnet run inside this process, in a temporary home, for `tributary demo` and the benches.

use anyhow::{Context, Result, anyhow, bail};
use std::{net::SocketAddr, path::Path, sync::mpsc, thread::JoinHandle, time::Duration};
use tributary_node::devnet::{self, DevnetOptions};
use tributary_types::Address;

/// How long the devnet may take to start.
const START_WAIT_S: u64 = 60;

/// A running in-process devnet; stopped (and its home deleted) by [`LocalDevnet::stop`] or drop.
pub struct LocalDevnet {
    home: Option<tempfile::TempDir>,
    http: SocketAddr,
    validators: Vec<Address>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    node: Option<JoinHandle<Result<(), devnet::DevnetError>>>,
}

impl LocalDevnet {
    /// Starts `validators` validators and `storage_providers` providers in a fresh temporary
    /// home named `prefix…`, and waits until the API serves.
    pub fn start(prefix: &str, validators: usize, storage_providers: usize) -> Result<Self> {
        let home = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temporary home")?;
        let http =
            tributary_node::ports::free_loopback_port().context("finding a free loopback port")?;
        let options = DevnetOptions {
            home: home.path().to_path_buf(),
            validators,
            http,
            reset: false,
            storage_providers,
            epoch_blocks: None,
        };
        let info = devnet::prepare(&options)?;
        let validator_addresses = info.genesis.validators.iter().map(|v| v.address).collect();
        let (ready_sender, ready) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let node = std::thread::spawn(move || {
            devnet::run(
                info,
                move |_| {
                    let _ = ready_sender.send(());
                },
                async {
                    let _ = stopped.await;
                },
            )
        });
        if ready
            .recv_timeout(Duration::from_secs(START_WAIT_S))
            .is_err()
        {
            let outcome = node
                .join()
                .map_err(|_| anyhow!("the devnet thread panicked"))?;
            outcome?;
            bail!("the devnet did not start within {START_WAIT_S} s");
        }
        Ok(Self {
            home: Some(home),
            http,
            validators: validator_addresses,
            stop: Some(stop),
            node: Some(node),
        })
    }

    /// The API's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The home directory (keys, devnet data).
    pub fn home(&self) -> &Path {
        self.home.as_ref().map_or(Path::new(""), |home| home.path())
    }

    /// The validators' addresses.
    pub fn validators(&self) -> &[Address] {
        &self.validators
    }

    /// Stops the devnet; with `keep`, leaves its home on disk and says where.
    pub fn stop(mut self, keep: bool) {
        self.shut_down();
        if keep && let Some(home) = self.home.take() {
            let kept = home.keep();
            eprintln!("home kept at {}", kept.display());
        }
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(node) = self.node.take() {
            let _ = node.join();
        }
    }
}

impl Drop for LocalDevnet {
    fn drop(&mut self) {
        self.shut_down();
    }
}
