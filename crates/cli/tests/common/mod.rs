//! Helpers shared by the end-to-end test binaries: a free port, child processes that die with
//! the test, and running the real `tributary` binary with `--json`.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use serde_json::Value;
use std::{
    path::Path,
    process::{Child, Command},
};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tributary");

/// A loopback port nothing listens on right now, outside the kernel's ephemeral range (see
/// `tributary_node::ports`).
pub fn free_port() -> u16 {
    tributary_node::ports::free_loopback_port().unwrap().port()
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `tributary --node URL --home HOME --json ARGS`: whether it succeeded, its stdout as JSON
/// (`Null` if it is not JSON) and its stderr.
pub fn cli(url: &str, home: &Path, args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(BIN)
        .args(["--node", url, "--home"])
        .arg(home)
        .arg("--json")
        .args(args)
        .output()
        .expect("running the CLI");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.success(), value, stderr)
}

/// [`cli`], which must succeed; its JSON output.
pub fn ok(url: &str, home: &Path, args: &[&str]) -> Value {
    let (success, value, stderr) = cli(url, home, args);
    assert!(success, "tributary {args:?} failed: {stderr}");
    value
}

/// `tributary asset get ASSET --from FROM --out OUT`: as [`cli`] gives it.
pub fn try_asset_get(
    url: &str,
    home: &Path,
    asset: &str,
    from: &str,
    out: &Path,
) -> (bool, Value, String) {
    cli(
        url,
        home,
        &[
            "asset",
            "get",
            asset,
            "--from",
            from,
            "--out",
            out.to_str().unwrap(),
        ],
    )
}

/// [`try_asset_get`], which must succeed; its JSON output.
pub fn asset_get(url: &str, home: &Path, asset: &str, from: &str, out: &Path) -> Value {
    let (success, value, stderr) = try_asset_get(url, home, asset, from, out);
    assert!(
        success,
        "tributary asset get {asset} --from {from} failed: {stderr}"
    );
    value
}
