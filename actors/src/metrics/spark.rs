//! Spark's PrometheusServlet format for the masters' and workers' gauges: each gauge
//! `<source>.<name>` as `metrics_<source>_<name>_Number` and `_Value`, labelled
//! `type="gauges"`.

use std::fmt::Write;

/// The gauges of metrics source `source` in Spark's `/metrics/prometheus` text.
pub fn gauges(source: &str, values: &[(&str, u64)]) -> String {
    let mut out = String::new();
    for (name, v) in values {
        let key = normalize(&format!("{source}.{name}"));
        for suffix in ["Number", "Value"] {
            let _ = writeln!(out, "metrics_{key}_{suffix}{{type=\"gauges\"}} {v}");
        }
    }
    out
}

/// Spark's key normalisation: every character outside `[a-zA-Z0-9]` becomes `_`.
fn normalize(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn gauges_are_named_as_sparks_servlet_names_them() {
        assert_eq!(
            super::gauges("worker", &[("memUsed_MB", 512)]),
            "metrics_worker_memUsed_MB_Number{type=\"gauges\"} 512\n\
             metrics_worker_memUsed_MB_Value{type=\"gauges\"} 512\n"
        );
    }
}
