//! Printing: JSON for scripts (`--json`), tables and short lines for people.

use anyhow::Result;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

/// Prints `value` as pretty JSON. A closed stdout (`| head`) is not an error.
pub fn json<T: Serialize>(value: &T) -> Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// A table with a header row.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(header.to_vec());
    table
}

/// How long each step of a command took, in the order they ran (`phases_ms` in `--json`).
#[derive(Serialize, Default)]
#[serde(transparent)]
pub struct Phases {
    steps: Vec<(&'static str, u64)>,
    #[serde(skip)]
    since: Option<std::time::Instant>,
}

impl Phases {
    /// Starts timing the first step now.
    pub fn start() -> Self {
        Self {
            steps: Vec::new(),
            since: Some(std::time::Instant::now()),
        }
    }

    /// Ends the step running since the last call (or [`Phases::start`]) and names it `name`.
    pub fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        let elapsed = self.since.map_or(0, |since| {
            u64::try_from(now.duration_since(since).as_millis()).unwrap_or(u64::MAX)
        });
        self.steps.push((name, elapsed));
        self.since = Some(now);
    }

    /// `name 123 ms, name 45 ms, …`.
    pub fn summary(&self) -> String {
        self.steps
            .iter()
            .map(|(name, ms)| format!("{name} {ms} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Formats base units with thousands separators.
pub fn units(amount: u128) -> String {
    let digits = amount.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push('_');
        }
        out.push(digit);
    }
    out
}

/// Formats a signed base-unit delta.
pub fn delta(amount: i128) -> String {
    let sign = if amount < 0 {
        "-"
    } else if amount > 0 {
        "+"
    } else {
        ""
    };
    format!("{sign}{}", units(amount.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_group_thousands() {
        assert_eq!(units(0), "0");
        assert_eq!(units(999), "999");
        assert_eq!(units(1_000), "1_000");
        assert_eq!(units(1_234_567), "1_234_567");
        assert_eq!(delta(-1_500), "-1_500");
        assert_eq!(delta(42), "+42");
    }
}
