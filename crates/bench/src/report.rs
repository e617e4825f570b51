//! What every workload reports: one row per (workload, operation, parameters) with a
//! count, errors, rate and latency percentiles, printed as a table line on stdout and
//! as a JSON line (on stderr, or appended to the `--json` file).

use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Latencies of one operation, in milliseconds, and the errors seen.
#[derive(Default)]
pub struct Samples {
    pub latencies: Vec<f64>,
    pub errors: usize,
    /// The first error, so a table full of errors says why.
    pub first_error: Option<String>,
}

impl Samples {
    pub fn ok(&mut self, latency: Duration) {
        self.latencies.push(latency.as_secs_f64() * 1000.0);
    }

    pub fn error(&mut self, error: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The latency at fraction `p` of the sorted samples (nearest rank); 0 if none.
    pub fn percentile(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        self.latencies.sort_by(f64::total_cmp);
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

#[derive(Serialize)]
pub struct Row {
    pub workload: &'static str,
    pub op: String,
    /// The run's parameters, e.g. `conns=16 size=mix rcpts=5`.
    pub params: String,
    pub ops: usize,
    pub errors: usize,
    pub seconds: f64,
    pub ops_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Workload-specific figures (memory per connection, bytes fetched...).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Row {
    pub fn new(
        workload: &'static str,
        op: impl Into<String>,
        params: impl Into<String>,
        mut samples: Samples,
        elapsed: Duration,
    ) -> Row {
        let ops = samples.latencies.len();
        Row {
            workload,
            op: op.into(),
            params: params.into(),
            ops,
            errors: samples.errors,
            seconds: elapsed.as_secs_f64(),
            ops_per_second: ops as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: samples.percentile(0.50),
            p99_ms: samples.percentile(0.99),
            max_ms: samples.percentile(1.0),
            first_error: samples.first_error.take(),
            extra: serde_json::Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Row {
        self.extra.insert(key.to_string(), value.into());
        self
    }
}

/// Where rows go: the table to stdout, JSON lines to stderr or a file.
pub struct Report {
    label: Option<String>,
    json: Option<PathBuf>,
    header_printed: bool,
}

impl Report {
    pub fn new(label: Option<String>, json: Option<PathBuf>) -> Report {
        Report {
            label,
            json,
            header_printed: false,
        }
    }

    pub fn emit(&mut self, row: Row) -> anyhow::Result<()> {
        if !self.header_printed {
            println!(
                "{:<8} {:<14} {:<28} {:>7} {:>9} {:>8} {:>8} {:>9} {:>6}",
                "workload", "op", "params", "ops", "ops/s", "p50 ms", "p99 ms", "max ms", "errors"
            );
            self.header_printed = true;
        }
        // Whole-mailbox operations can take seconds: keep their rate readable.
        let rate = if row.ops_per_second < 10.0 {
            format!("{:.3}", row.ops_per_second)
        } else {
            format!("{:.1}", row.ops_per_second)
        };
        println!(
            "{:<8} {:<14} {:<28} {:>7} {:>9} {:>8.2} {:>8.2} {:>9.2} {:>6}",
            row.workload,
            row.op,
            row.params,
            row.ops,
            rate,
            row.p50_ms,
            row.p99_ms,
            row.max_ms,
            row.errors
        );
        for (key, value) in &row.extra {
            println!("{:<8} {:<14}   {key} = {value}", "", "");
        }
        if let Some(e) = &row.first_error {
            println!("{:<8} {:<14}   first error: {e}", "", "");
        }
        let mut value = serde_json::to_value(&row)?;
        if let (Some(label), Some(obj)) = (&self.label, value.as_object_mut()) {
            obj.insert("label".into(), label.clone().into());
        }
        let line = serde_json::to_string(&value)?;
        match &self.json {
            Some(path) => {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                writeln!(f, "{line}")?;
            }
            None => eprintln!("{line}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_sorted_values() {
        let mut s = Samples {
            latencies: vec![100.0, 2.0, 3.0, 1.0, 4.0],
            ..Samples::default()
        };
        assert_eq!(s.percentile(0.5), 3.0);
        assert_eq!(s.percentile(1.0), 100.0);
        let row = Row::new("t", "op", "", s, Duration::from_secs(1));
        assert_eq!(row.ops_per_second, 5.0);
        assert_eq!(row.p50_ms, 3.0);
    }

    #[test]
    fn errors_keep_the_first_reason() {
        let mut a = Samples::default();
        a.error("first");
        let mut b = Samples::default();
        b.error("second");
        b.ok(Duration::from_millis(2));
        a.merge(b);
        assert_eq!((a.errors, a.latencies.len()), (2, 1));
        assert_eq!(a.first_error.as_deref(), Some("first"));
    }
}
