//! One row per scenario: the figures, the verdict (what the contract promises, each
//! breach named), printed as a table and written as Markdown and JSON lines.

use serde_json::json;
use std::fmt::Write as _;
use std::time::Duration;

use super::probe::Latency;
use super::verdict::Counts;

/// What a scenario may legitimately show besides a clean drain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowances {
    /// Redis lost entries it had acknowledged (restart without persistence, restore
    /// of an older snapshot): those events are not the service's to process.
    pub broker_loss: bool,
    /// Executions may be recorded `failed` (the destination failed them).
    pub failed: bool,
    /// Dead letters the scenario sends on purpose.
    pub dead_letters: usize,
}

impl Allowances {
    /// Redis loses data by design in the scenario.
    pub const BROKER_LOSS: Self = Self {
        broker_loss: true,
        failed: false,
        dead_letters: 0,
    };
    /// The destination fails executions in the scenario.
    pub const FAILED: Self = Self {
        broker_loss: false,
        failed: true,
        dead_letters: 0,
    };
}

pub struct Row {
    pub scenario: String,
    /// What was done, in a line.
    pub fault: String,
    pub counts: Counts,
    /// From the end of the fault until nothing was pending or unread.
    pub recovery: Option<Duration>,
    /// From the first worker's start until nothing was pending or unread.
    pub drain: Duration,
    /// The unaffected livestream during the fault (until recovery).
    pub probe: Latency,
    pub peak_rss_kib: Option<u64>,
    /// Checks beyond the counts (a rule created after the fault took effect, ...).
    pub notes: Vec<String>,
    pub failures: Vec<String>,
}

impl Row {
    /// Holds the figures against the promises; each breach becomes a failure.
    pub fn judge(&mut self, allow: Allowances) {
        let c = &self.counts;
        let mut breaches = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                breaches.push(what);
            }
        };
        check(
            c.lost == 0,
            format!("{} expected decisions not recorded", c.lost),
        );
        check(
            c.differ == 0,
            format!("{} decisions differ from the reference", c.differ),
        );
        check(
            c.extra == 0,
            format!("{} decisions the reference does not make", c.extra),
        );
        check(
            c.pending == 0,
            format!("{} entries left pending", c.pending),
        );
        check(
            c.foreign_effects == 0,
            format!("{} side effects without an execution", c.foreign_effects),
        );
        check(
            c.missing_effects == 0,
            format!(
                "{} succeeded executions without their side effect",
                c.missing_effects
            ),
        );
        check(
            allow.broker_loss || c.broker_lost == 0,
            format!("{} events gone from the stream undecided", c.broker_lost),
        );
        check(
            allow.failed || c.failed == 0,
            format!("{} executions failed", c.failed),
        );
        check(
            c.dead_letters == allow.dead_letters,
            format!(
                "{} dead letters, {} expected",
                c.dead_letters, allow.dead_letters
            ),
        );
        self.failures.extend(breaches);
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.counts;
        json!({
            "scenario": self.scenario, "fault": self.fault,
            "events_sent": c.sent, "executions_expected": c.expected,
            "executions_recorded": c.executed, "failed": c.failed, "lost": c.lost,
            "differ": c.differ, "extra": c.extra, "broker_lost": c.broker_lost,
            "repeated_side_effects": c.repeated, "missing_side_effects": c.missing_effects,
            "foreign_side_effects": c.foreign_effects, "pending": c.pending,
            "dead_letters": c.dead_letters,
            "recovery_ms": self.recovery.map(|d| d.as_millis() as u64),
            "drain_ms": self.drain.as_millis() as u64,
            "probe": {"sent": self.probe.sent, "p50_ms": self.probe.p50_ms,
                      "p99_ms": self.probe.p99_ms, "max_ms": self.probe.max_ms,
                      "undelivered": self.probe.undelivered},
            "peak_rss_kib": self.peak_rss_kib,
            "notes": self.notes, "failures": self.failures,
        })
    }
}

fn ms(v: Option<i64>) -> String {
    v.map_or_else(|| "–".into(), |v| v.to_string())
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "–".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// The rows as a Markdown table (the report's format), then notes and failures.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | fault | sent | expected | recorded (failed) | lost | broker lost | repeated calls | pending | recovery | drain | other livestream p50 / p99 / max ms (undelivered) | peak RSS | result |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let c = &r.counts;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} / {} / {} ({}) | {} | {} |",
            r.scenario,
            r.fault,
            c.sent,
            c.expected,
            c.executed,
            c.failed,
            c.lost,
            c.broker_lost,
            c.repeated,
            c.pending,
            secs(r.recovery),
            secs(Some(r.drain)),
            ms(r.probe.p50_ms),
            ms(r.probe.p99_ms),
            ms(r.probe.max_ms),
            r.probe.undelivered,
            r.peak_rss_kib
                .map_or_else(|| "–".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0)),
            if r.passed() { "pass" } else { "FAIL" },
        );
    }
    for r in rows {
        for note in &r.notes {
            let _ = writeln!(out, "\n- {}: {note}", r.scenario);
        }
        for failure in &r.failures {
            let _ = writeln!(out, "\n- **{} failed**: {failure}", r.scenario);
        }
    }
    out
}

impl Row {
    /// A scenario that could not run to its end: one failure, no figures.
    pub fn broken(scenario: &str, error: String) -> Self {
        Self {
            scenario: scenario.to_owned(),
            fault: String::new(),
            counts: Counts::default(),
            recovery: None,
            drain: Duration::ZERO,
            probe: Latency::default(),
            peak_rss_kib: None,
            notes: Vec::new(),
            failures: vec![error],
        }
    }
}
