//! Names of MITRE ATT&CK tactics and techniques, for the `attack.*` tags of Sigma rules.
//!
//! Rules tag their matches with ids (`attack.t1110.003`) and tactic short names
//! (`attack.credential-access`); analysts and dashboards want the names ("Password Spraying",
//! "Credential Access"). The table is `data/attack_techniques.tsv` (a subset of ATT&CK
//! Enterprise, see `data/README.md` for its source and terms), compiled into the binary with
//! `include_str!` so lookups need no file at run time, and parsed once on first use.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The ATT&CK table as shipped: tab-separated `kind id name [short names]` lines.
const TABLE: &str = include_str!("../data/attack_techniques.tsv");

struct Names {
    /// Upper-case technique id (`T1110.003`) → name.
    techniques: HashMap<&'static str, &'static str>,
    /// Lower-case tactic id (`ta0006`) or short name (`credential-access`, and the same with
    /// underscores) → (tactic id, name).
    tactics: HashMap<String, (&'static str, &'static str)>,
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| parse(TABLE))
}

fn parse(table: &'static str) -> Names {
    let mut techniques = HashMap::new();
    let mut tactics = HashMap::new();
    for line in table.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut columns = line.split('\t');
        let (Some(kind), Some(id), Some(name)) = (columns.next(), columns.next(), columns.next())
        else {
            tracing::warn!(line, "malformed line in the ATT&CK table");
            continue;
        };
        match kind {
            "technique" => {
                techniques.insert(id, name);
            }
            "tactic" => {
                tactics.insert(id.to_ascii_lowercase(), (id, name));
                for short in columns.next().unwrap_or("").split(',') {
                    let short = short.trim();
                    if !short.is_empty() {
                        tactics.insert(short.to_string(), (id, name));
                        tactics.insert(short.replace('-', "_"), (id, name));
                    }
                }
            }
            _ => tracing::warn!(line, "unknown kind in the ATT&CK table"),
        }
    }
    Names {
        techniques,
        tactics,
    }
}

/// Strips an optional `attack.` tag prefix.
fn without_tag_prefix(text: &str) -> &str {
    let text = text.trim();
    match text.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("attack.") => &text[7..],
        _ => text,
    }
}

/// The ATT&CK name of a technique or sub-technique, by id in any case and with or without the
/// tag prefix: `T1110.003`, `t1110.003` and `attack.t1110.003` all give "Password Spraying".
/// Sub-technique names are ATT&CK's own, without the parent technique's name. `None` for ids
/// the table does not list.
pub fn technique_name(id: &str) -> Option<&'static str> {
    let id = without_tag_prefix(id).to_ascii_uppercase();
    names().techniques.get(id.as_str()).copied()
}

/// The tactic id and name of a tactic given by id (`TA0006`) or by the short name used in tags
/// (`credential-access`, `credential_access`, `attack.credential-access`), in any case.
/// The pre-v19 short name `defense-evasion` resolves to TA0005, now named "Stealth".
pub fn tactic_name(shortname_or_id: &str) -> Option<(&'static str, &'static str)> {
    let key = without_tag_prefix(shortname_or_id).to_ascii_lowercase();
    names().tactics.get(&key).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn techniques_resolve_by_id_in_any_spelling() {
        assert_eq!(technique_name("T1110.003"), Some("Password Spraying"));
        assert_eq!(technique_name("t1110.004"), Some("Credential Stuffing"));
        assert_eq!(
            technique_name("attack.t1595.002"),
            Some("Vulnerability Scanning")
        );
        assert_eq!(
            technique_name("T1190"),
            Some("Exploit Public-Facing Application")
        );
        assert_eq!(technique_name("T1110"), Some("Brute Force"));
        assert_eq!(technique_name("T1110.001"), Some("Password Guessing"));
    }

    #[test]
    fn unknown_or_malformed_techniques_have_no_name() {
        assert_eq!(technique_name("T9999"), None);
        assert_eq!(technique_name("T1110.999"), None);
        assert_eq!(technique_name(""), None);
        assert_eq!(technique_name("attack."), None);
        assert_eq!(technique_name("credential-access"), None);
    }

    #[test]
    fn tactics_resolve_by_short_name_and_by_id() {
        assert_eq!(
            tactic_name("credential-access"),
            Some(("TA0006", "Credential Access"))
        );
        assert_eq!(
            tactic_name("attack.credential_access"),
            Some(("TA0006", "Credential Access"))
        );
        assert_eq!(tactic_name("TA0043"), Some(("TA0043", "Reconnaissance")));
        assert_eq!(tactic_name("ta0001"), Some(("TA0001", "Initial Access")));
        assert_eq!(
            tactic_name("Command-And-Control"),
            Some(("TA0011", "Command and Control"))
        );
        assert_eq!(tactic_name("t1110"), None);
        assert_eq!(tactic_name("nonsense"), None);
    }

    #[test]
    fn v19_tactic_split_keeps_the_old_short_name() {
        assert_eq!(tactic_name("stealth"), Some(("TA0005", "Stealth")));
        assert_eq!(tactic_name("defense-evasion"), Some(("TA0005", "Stealth")));
        assert_eq!(
            tactic_name("defense-impairment"),
            Some(("TA0112", "Defense Impairment"))
        );
    }

    #[test]
    fn table_covers_every_enterprise_tactic() {
        let ids: std::collections::HashSet<&str> =
            names().tactics.values().map(|(id, _)| *id).collect();
        let expected = [
            "TA0043", "TA0042", "TA0001", "TA0002", "TA0003", "TA0004", "TA0005", "TA0112",
            "TA0006", "TA0007", "TA0008", "TA0009", "TA0011", "TA0010", "TA0040",
        ];
        for id in expected {
            assert!(ids.contains(id), "tactic {id} missing from the table");
        }
        assert_eq!(ids.len(), expected.len());
    }

    #[test]
    fn every_table_line_parses() {
        let data_lines = TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        let parsed = names();
        let tactic_ids: std::collections::HashSet<&str> =
            parsed.tactics.values().map(|(id, _)| *id).collect();
        assert_eq!(parsed.techniques.len() + tactic_ids.len(), data_lines);
        assert!(parsed.techniques.values().all(|name| !name.is_empty()));
    }
}
