#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cross-check of the query converter against pySigma: every rule file of the SigmaHQ web rules
//! (`../shared/corpora/sigma/rules-web`) and of the bundled rule pack (`rules/`) is converted to
//! each target and compared with what pySigma produced for it (the committed fixtures under
//! `tests/fixtures/convert/<target>/<stem>.txt`, written by `tools/regen_convert_fixtures.sh`).
//!
//! Whitespace is normalised; nothing else is. Where the two differ on purpose the pair
//! (target, rule file) must be listed in `tests/fixtures/convert/DIFFERENCES.tsv` with the reason,
//! and a listed pair that no longer differs fails the test too, so the list stays true.
//! One difference is systematic and applied as a rewrite instead of being listed per rule: see
//! [`kusto_unquote_fields`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portcullis_sigma::convert::{FieldNames, Target, convert_yaml};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/convert");
const RULES_WEB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/sigma/rules-web/rules"
);
const RULES_PACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");

const ERROR_PREFIX: &str = "# pySigma error:";

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rule_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

fn fixture_dir(target: Target) -> &'static str {
    match target {
        Target::Splunk => "splunk",
        Target::Lucene => "lucene",
        Target::Esql => "esql",
        Target::Kql => "kusto",
    }
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// pySigma's Kusto backend quotes dotted field names as `'a.b'`, which KQL reads as a string
/// literal; the converter writes the member path `a.b` (see DIFFERENCES.tsv header). This
/// rewrites pySigma's field quoting, and only in field positions, so the rest is still compared.
fn kusto_unquote_fields(text: &str) -> String {
    let quoted = |name: &str| {
        if name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            name.to_string()
        } else {
            format!("['{name}']")
        }
    };
    let before_operator = regex::Regex::new(
        r"(^|[ (])'{1,2}([A-Za-z0-9_.-]+)'{1,2}( (?:=~|==|in~|has_all|contains|startswith|endswith|matches|<=|>=|<|>) )",
    )
    .unwrap();
    let in_function =
        regex::Regex::new(r"((?:isnull|isnotempty|isempty)\()'([A-Za-z0-9_.-]+)'\)").unwrap();
    let mut text = text.to_string();
    // Twice: adjacent matches share their delimiters.
    for _ in 0..2 {
        text = before_operator
            .replace_all(&text, |c: &regex::Captures| {
                format!("{}{}{}", &c[1], quoted(&c[2]), &c[3])
            })
            .into_owned();
    }
    in_function
        .replace_all(&text, |c: &regex::Captures| {
            format!("{}{})", &c[1], quoted(&c[2]))
        })
        .into_owned()
}

/// `target<TAB>rule file stem<TAB>reason` lines; `#` starts a comment.
fn differences() -> BTreeMap<(String, String), String> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/DIFFERENCES.tsv")).unwrap();
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.splitn(3, '\t').collect();
        assert!(
            cols.len() == 3 && !cols[2].trim().is_empty(),
            "DIFFERENCES.tsv line {}: want target, rule, reason",
            n + 1
        );
        out.insert(
            (cols[0].to_string(), cols[1].to_string()),
            cols[2].to_string(),
        );
    }
    out
}

enum Outcome {
    Same,
    Differs(String),
}

fn compare(target: Target, file: &Path) -> Option<Outcome> {
    let stem = file.file_stem().unwrap().to_string_lossy().to_string();
    let fixture = format!("{FIXTURES}/{}/{stem}.txt", fixture_dir(target));
    let expected = std::fs::read_to_string(&fixture).ok()?;
    let text = std::fs::read_to_string(file).unwrap();
    let ours: Result<String, String> =
        match convert_yaml(&text, file, target, &FieldNames::default()) {
            Err(e) => Err(e.to_string()),
            Ok(converted) => {
                let mut queries = Vec::new();
                let mut error = None;
                for c in converted {
                    match c.queries {
                        Ok(q) => queries.extend(q),
                        Err(e) => error = Some(format!("{}: {e}", c.rule)),
                    }
                }
                match error {
                    Some(e) => Err(e),
                    None => Ok(queries.join("\n")),
                }
            }
        };
    let pysigma_failed = expected.starts_with(ERROR_PREFIX);
    let outcome = match (&ours, pysigma_failed) {
        (Err(_), true) => Outcome::Same,
        (Ok(q), false) => {
            let mut want = expected.clone();
            if target == Target::Kql {
                want = kusto_unquote_fields(&want);
            }
            if normalise(q) == normalise(&want) {
                Outcome::Same
            } else {
                Outcome::Differs(format!("ours:    {q}\npySigma: {}", want.trim()))
            }
        }
        (Ok(q), true) => Outcome::Differs(format!("ours:    {q}\npySigma: {}", expected.trim())),
        (Err(e), false) => {
            Outcome::Differs(format!("ours:    ERROR {e}\npySigma: {}", expected.trim()))
        }
    };
    Some(outcome)
}

#[test]
fn converter_matches_pysigma_except_listed_differences() {
    let mut files = Vec::new();
    rule_files(Path::new(RULES_WEB), &mut files);
    rule_files(Path::new(RULES_PACK), &mut files);
    files.sort();
    assert!(
        files.len() >= 40,
        "rule corpora missing: {} files",
        files.len()
    );

    let allowed = differences();
    let mut same = 0usize;
    let mut compared = 0usize;
    let mut unexplained = Vec::new();
    let mut explained = std::collections::BTreeSet::new();
    for target in Target::ALL {
        for file in &files {
            let Some(outcome) = compare(target, file) else {
                continue; // no fixture yet: the rule file is newer than the fixtures
            };
            compared += 1;
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            let key = (fixture_dir(target).to_string(), stem.clone());
            match outcome {
                Outcome::Same => {
                    same += 1;
                    assert!(
                        !allowed.contains_key(&key),
                        "{}/{stem} is listed in DIFFERENCES.tsv but now matches pySigma",
                        key.0
                    );
                }
                Outcome::Differs(detail) => {
                    if allowed.contains_key(&key) {
                        explained.insert(key);
                    } else {
                        unexplained.push(format!("{}/{stem}:\n{detail}", key.0));
                    }
                }
            }
        }
    }
    eprintln!(
        "pySigma cross-check: {same} of {compared} (target, rule file) pairs identical, {} listed differences",
        explained.len()
    );
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences from pySigma:\n\n{}",
        unexplained.len(),
        unexplained.join("\n\n")
    );
    for key in allowed.keys() {
        assert!(
            explained.contains(key) || !fixture_exists(key),
            "DIFFERENCES.tsv lists {}/{} but there is no such difference",
            key.0,
            key.1
        );
    }
    assert!(compared >= 150, "only {compared} fixtures found");
    // Most rules must agree exactly, or the cross-check has stopped meaning anything.
    assert!(
        same * 10 >= compared * 8,
        "only {same} of {compared} identical"
    );
}

fn fixture_exists(key: &(String, String)) -> bool {
    Path::new(&format!("{FIXTURES}/{}/{}.txt", key.0, key.1)).exists()
}

#[test]
fn kusto_field_unquoting_touches_only_field_positions() {
    assert_eq!(
        kusto_unquote_fields(
            r#"'http_request.url.path' =~ "'1'='1" and isnull('a.b') and ''c-d'' endswith "('x')""#
        ),
        r#"http_request.url.path =~ "'1'='1" and isnull(a.b) and ['c-d'] endswith "('x')""#
    );
}
