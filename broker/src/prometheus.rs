//! The Prometheus text exposition format (version 0.0.4), as Ferry writes
//! it: the SDK's per-worker figures (`Activity::prometheus_text`) and
//! `ferry serve`'s `/metrics`. One writer, so both escape label values and
//! print numbers the same way.
//!
//! ```
//! use ferry_broker::prometheus::Families;
//! let mut f = Families::default();
//! f.sample("ferry_up", "gauge", "1 when up.", &[("queue", "a\"b")], 1.0);
//! assert_eq!(
//!     f.render(),
//!     "# HELP ferry_up 1 when up.\n# TYPE ferry_up gauge\nferry_up{queue=\"a\\\"b\"} 1\n"
//! );
//! ```

use std::fmt::Write as _;

use crate::stats::Buckets;

/// Metric families in the order first written, each with its samples: a
/// family's `# HELP` and `# TYPE` lines are written once, before all its
/// samples, however the samples were added.
#[derive(Clone, Debug, Default)]
pub struct Families {
    out: Vec<(String, &'static str, &'static str, Vec<String>)>,
}

impl Families {
    /// The samples of family `name`, added (with its type `kind` and
    /// `help` text) when it is new.
    fn family(&mut self, name: &str, kind: &'static str, help: &'static str) -> &mut Vec<String> {
        if let Some(i) = self.out.iter().position(|(n, ..)| n == name) {
            return &mut self.out[i].3;
        }
        self.out.push((name.to_owned(), kind, help, Vec::new()));
        let last = self.out.len() - 1;
        &mut self.out[last].3
    }

    /// Adds one sample, `name{labels} value`, to family `name` of type
    /// `kind` (`gauge`, `counter`).
    pub fn sample(
        &mut self,
        name: &str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let line = format!("{name}{} {}", labels_text(labels), number(value));
        self.family(name, kind, help).push(line);
    }

    /// Adds a histogram of times in Ferry's buckets as family `name`, in
    /// seconds: a `_bucket` per edge of `edges_seconds` (counting the
    /// buckets of Ferry's that end at or below it, see
    /// [`Buckets::count_at_most`]) and `+Inf`, then `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &'static str,
        labels: &[(&str, &str)],
        edges_seconds: &[f64],
        b: &Buckets,
    ) {
        let mut lines = Vec::new();
        for &edge in edges_seconds {
            let le = number(edge);
            let mut l = labels.to_vec();
            l.push(("le", &le));
            lines.push(format!(
                "{name}_bucket{} {}",
                labels_text(&l),
                b.count_at_most(edge * 1000.0)
            ));
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        lines.push(format!("{name}_bucket{} {}", labels_text(&l), b.total()));
        lines.push(format!(
            "{name}_sum{} {}",
            labels_text(labels),
            number(b.sum_ms as f64 / 1000.0)
        ));
        lines.push(format!("{name}_count{} {}", labels_text(labels), b.total()));
        self.family(name, "histogram", help).extend(lines);
    }

    /// The text: per family, `# HELP`, `# TYPE` and its samples, a line each.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (name, kind, help, samples) in &self.out {
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} {kind}");
            for s in samples {
                text.push_str(s);
                text.push('\n');
            }
        }
        text
    }
}

/// `{a="x",b="y"}` with the values escaped (backslash, double quote and
/// newline); nothing for no labels.
fn labels_text(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A sample value: a whole number below 10^15 without a fraction, else as
/// Rust prints an `f64`.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_keep_their_order_and_escape_label_values() {
        let mut f = Families::default();
        f.sample("a", "gauge", "A.", &[("w", "x\\y\"z\nq")], 2.5);
        f.sample("b", "counter", "B.", &[], 3.0);
        f.sample("a", "gauge", "A.", &[("w", "v")], 1e15);
        assert_eq!(
            f.render(),
            "# HELP a A.\n# TYPE a gauge\na{w=\"x\\\\y\\\"z\\nq\"} 2.5\na{w=\"v\"} 1000000000000000\n\
             # HELP b B.\n# TYPE b counter\nb 3\n"
        );
    }

    #[test]
    fn a_histogram_counts_up_to_each_edge() {
        // Bucket 0 ends below 1 ms, bucket 38 at about 860 ms.
        let mut counts = vec![0; 39];
        (counts[0], counts[38]) = (1, 2);
        let b = Buckets {
            sum_ms: 1500,
            counts,
        };
        let mut f = Families::default();
        f.histogram("t", "T.", &[("q", "e")], &[0.005, 1.0], &b);
        assert_eq!(
            f.render(),
            "# HELP t T.\n# TYPE t histogram\n\
             t_bucket{q=\"e\",le=\"0.005\"} 1\nt_bucket{q=\"e\",le=\"1\"} 3\n\
             t_bucket{q=\"e\",le=\"+Inf\"} 3\nt_sum{q=\"e\"} 1.5\nt_count{q=\"e\"} 3\n"
        );
    }
}
