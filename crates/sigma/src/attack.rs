//! MITRE ATT&CK references in Sigma tags: `attack.t1110.001` names a (sub-)technique,
//! `attack.credential-access` (or the older `attack.credential_access`) a tactic. Alerts carry
//! them so that downstream tools can group detections by tactic and technique.

/// ATT&CK enterprise tactics by short name.
const TACTICS: [&str; 14] = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

fn technique(rest: &str) -> Option<String> {
    let digits = rest.strip_prefix('t').or_else(|| rest.strip_prefix('T'))?;
    let (main, sub) = match digits.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (digits, None),
    };
    if main.len() != 4 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match sub {
        None => Some(format!("T{main}")),
        Some(s) if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(format!("T{main}.{s}"))
        }
        Some(_) => None,
    }
}

/// Splits the ATT&CK tags of a rule into (tactics, techniques), each deduplicated in order.
/// Tactics come back in their hyphenated short name (`credential-access`), techniques in ATT&CK
/// spelling (`T1110.001`). Other tags (groups, software, CAR, CVE…) are ignored.
pub fn attack_ids(tags: &[String]) -> (Vec<String>, Vec<String>) {
    let mut tactics = Vec::new();
    let mut techniques = Vec::new();
    for tag in tags {
        let lower = tag.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("attack.") else {
            continue;
        };
        if let Some(t) = technique(rest) {
            if !techniques.contains(&t) {
                techniques.push(t);
            }
            continue;
        }
        let name = rest.replace('_', "-");
        if TACTICS.contains(&name.as_str()) && !tactics.contains(&name) {
            tactics.push(name);
        }
    }
    (tactics, techniques)
}
