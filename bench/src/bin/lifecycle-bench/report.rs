//! The readable summary on stderr: a Markdown table of the waves' delays,
//! a line per wave, and the peak memory of each process, all read from the
//! JSON output (which goes to stdout).

use serde_json::Value;

/// Prints the summary of `out`, the JSON output, on stderr.
pub fn print_summary(out: &Value) {
    eprintln!(
        "\n# lifecycle-bench: {} (setup {} s, not measured)",
        out["backend"].as_str().unwrap_or("?"),
        out["setup"]["seconds"]
    );
    eprintln!(
        "| wave | events | record s | due → executed p50/p99/max | → OCSP p50/p99/max | → CRL p50/p99/max | last in both | complete CRL |"
    );
    eprintln!("| --- | ---: | ---: | --- | --- | --- | ---: | ---: |");
    let d = |v: &Value| format!("{}/{}/{}", v["p50"], v["p99"], v["max"]);
    for w in out["waves"].as_array().into_iter().flatten() {
        let s = &w["seconds_from_due"];
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} s | {} s |",
            w["wave"].as_str().unwrap_or("?"),
            w["events"],
            w["record_seconds"],
            d(&s["executed"]),
            d(&s["ocsp"]),
            d(&s["crl"]),
            w["last_published_in_both_seconds"],
            w["complete_crl_seconds"]
        );
    }
    for w in out["waves"].as_array().into_iter().flatten() {
        eprintln!(
            "{}: {} certificates revoked; executed over {} s; load average {} before, {} after; SLA verdicts {}",
            w["wave"].as_str().unwrap_or("?"),
            w["certificates_revoked"],
            w["execution_span_seconds"],
            w["load_average_before"],
            w["load_average_after"],
            w["sla_verdicts"]
        );
    }
    let peak = |name: &str| out["stopped"][name]["memory"]["peak_rss_mib"].to_string();
    eprintln!(
        "peak RSS (MiB): ocsp-responder {}, crl-publisher {}, crl-server {}, pki-scheduler {}, this process {}",
        peak("ocsp-responder"),
        peak("crl-publisher"),
        peak("crl-server"),
        peak("pki-scheduler"),
        out["bench_process_peak_rss_mib"]
    );
}
