//! pkilint runners (from `<repo>/.venv/bin`) and their findings.

use crate::*;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------
// pkilint
// ---------------------------------------------------------------------------

/// One pkilint finding.
#[derive(Clone, Debug)]
pub struct Finding {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub node_path: String,
    pub validator: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) at {} [{}]",
            self.code, self.severity, self.node_path, self.validator
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Findings of pkilint's `-f JSON` output.
pub fn parse_pkilint_json(text: &str) -> Result<Vec<Finding>, String> {
    let v: Value = serde_json::from_str(text.trim()).map_err(|e| e.to_string())?;
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or("no results array")?;
    let mut findings = Vec::new();
    for r in results {
        let descriptions = r
            .get("finding_descriptions")
            .and_then(Value::as_array)
            .ok_or("no finding_descriptions")?;
        for d in descriptions {
            let s = |v: &Value, k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            findings.push(Finding {
                severity: s(d, "severity"),
                code: s(d, "code"),
                message: s(d, "message"),
                node_path: s(r, "node_path"),
                validator: s(r, "validator"),
            });
        }
    }
    Ok(findings)
}

/// Runs `<tool> lint -s ERROR -f JSON ARGS` and returns its findings.
#[track_caller]
pub fn pkilint(tool: &str, args: &[&OsStr]) -> Vec<Finding> {
    let mut cmd = Command::new(venv_tool(tool));
    cmd.args(["lint", "-s", "ERROR", "-f", "JSON"]).args(args);
    let out = output_of(&mut cmd, tool);
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let what = format!("{tool} lint -s ERROR -f JSON {}", shown.join(" "));
    let findings = parse_pkilint_json(&stdout_str(&out)).unwrap_or_else(|e| {
        panic!(
            "cannot read pkilint output ({e})\n{}",
            describe(&what, &out)
        )
    });
    // The lint tools exit with the number of findings at or above -s.
    assert_eq!(
        out.status.code(),
        Some(findings.len() as i32),
        "pkilint exit code disagrees with its findings\n{}",
        describe(&what, &out)
    );
    findings
}

/// Asserts no finding outside [`ALLOWED_FINDINGS`]; prints them otherwise.
#[track_caller]
pub fn assert_no_findings(what: &str, findings: &[Finding]) {
    let bad: Vec<&Finding> = findings
        .iter()
        .filter(|f| !ALLOWED_FINDINGS.iter().any(|(code, _)| *code == f.code))
        .collect();
    if !bad.is_empty() {
        let mut msg = format!(
            "pkilint: {} finding(s) at ERROR or above for {what}:\n",
            bad.len()
        );
        for f in bad {
            let _ = writeln!(msg, "  - {f}");
        }
        panic!("{msg}");
    }
}

/// `lint_pkix_cert lint -s ERROR` must find nothing.
#[track_caller]
pub fn lint_pkix_cert(label: &str, cert: &Path) {
    let findings = pkilint("lint_pkix_cert", &[cert.as_os_str()]);
    assert_no_findings(&format!("lint_pkix_cert {label}"), &findings);
}

/// `lint_pkix_signer_signee_cert_chain lint -s ERROR ISSUER SUBJECT` must find nothing.
#[track_caller]
pub fn lint_chain(label: &str, issuer: &Path, subject: &Path) {
    let findings = pkilint(
        "lint_pkix_signer_signee_cert_chain",
        &[issuer.as_os_str(), subject.as_os_str()],
    );
    assert_no_findings(
        &format!("lint_pkix_signer_signee_cert_chain {label}"),
        &findings,
    );
}

/// ETSI certificate type pkilint checks a card certificate against.
pub fn etsi_type(usage: &str) -> &'static str {
    match usage {
        "sign" => "QCP-N-QSCD-NON-EIDAS-FINAL-CERTIFICATE",
        "auth" | "mobile-auth" => "NCP-NATURAL-PERSON-CERTIFICATE",
        other => panic!("unknown usage {other}"),
    }
}

/// `lint_etsi_cert lint -t TYPE -s ERROR` must find nothing.
#[track_caller]
pub fn lint_etsi(label: &str, cert: &Path, cert_type: &str) {
    let findings = pkilint(
        "lint_etsi_cert",
        &[os("-t"), os(cert_type), cert.as_os_str()],
    );
    assert_no_findings(&format!("lint_etsi_cert -t {cert_type} {label}"), &findings);
}
