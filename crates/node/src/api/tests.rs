//! The storage routes over a real loopback socket.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use super::*;
use crate::provider::tests::{SHARD, address, chain, provider, world};

/// Serves `router` on a loopback port from a runtime of its own, until the runtime is dropped.
fn serve(router: Router) -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, router).await });
    (address, runtime)
}

/// Files under `directory` whose names `matches`.
fn files_named(directory: &Path, matches: &dyn Fn(&str) -> bool) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(matches)
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_stalled_upload_is_given_up_and_stores_nothing() {
    let world = world();
    let chain = chain(&world.ledger);
    let directory = tempfile::tempdir().unwrap();
    let provider = provider(&chain, directory.path());
    let providers: ProviderSet = std::sync::Arc::new([(address(2), provider)].into());
    let idle = Duration::from_millis(300);
    let (socket, _runtime) = serve(storage_router_with(providers, UploadIdleTimeout(idle)));
    let path = format!("/v1/storage/{}/deals/1/shard", address(2));

    // A third of the shard, then nothing: the provider gives up after the idle timeout.
    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nhost: {socket}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        SHARD.len()
    )
    .unwrap();
    stream.write_all(&SHARD[..1000]).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // Read until the JSON body closes; the connection may stay open.
    while !answer.ends_with(b"}}") {
        let count = stream.read(&mut buffer).unwrap();
        assert!(
            count > 0,
            "closed early: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buffer[..count]);
    }
    let answer = String::from_utf8(answer).unwrap();
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"upload_stalled\""), "{answer}");
    assert!(waited >= idle, "answered after {waited:?}");
    let stored = |name: &str| name.ends_with(".shard") || name.starts_with(".tmp-");
    assert_eq!(
        files_named(directory.path(), &stored),
        Vec::<std::path::PathBuf>::new()
    );

    // The whole shard afterwards is taken.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .put(format!("http://{socket}{path}"))
        .send(SHARD)
        .unwrap();
    assert_eq!(response.status(), 204);
    let shard = |name: &str| name.ends_with(".shard");
    assert_eq!(files_named(directory.path(), &shard).len(), 1);
}
