#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The bundled rule pack (`rules/` at the repository root) against the engine.
//!
//! Every rule file `rules/<stem>.yml` has replay tests `rules/tests/<stem>.positive.jsonl` and
//! `.negative.jsonl`: OCSF HTTP Activity events, one per line, replayed in order with their
//! `time` as the event time. The file's rule (its correlation when it has one, else its single
//! detection rule) must fire on the positive replay and stay quiet on the negative one. For a
//! detection rule every positive event must match on its own; for a correlation the sequence
//! must cross the threshold exactly at its last event, so that a looser or stricter threshold,
//! window or grouping than the one documented fails the test. The pack's metadata (ids, tags,
//! required attributes) and its ATT&CK tags' names are checked here too.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use portcullis_sigma::ast::{RuleBody, RuleMeta};
use portcullis_sigma::attack_names::{tactic_name, technique_name};
use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, MatchKind, RuleSet};

const RULES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");
const TESTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/tests");
const SIGMAHQ_WEB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/sigma/rules-web/rules"
);

/// One rule file of the pack and the rule its tests are about.
struct RuleFile {
    stem: String,
    main: RuleMeta,
    is_correlation: bool,
    /// The file's rules read fields inside the `unmapped.findings` array of objects.
    reads_findings: bool,
}

fn load_pack() -> RuleSet {
    let (set, problems) = RuleSet::load_dir(Path::new(RULES_DIR)).unwrap();
    assert!(
        problems.is_empty(),
        "bundled rules must load without problems: {problems:?}"
    );
    set
}

fn rule_files() -> Vec<RuleFile> {
    let set = load_pack();
    let mut by_file: BTreeMap<PathBuf, Vec<_>> = BTreeMap::new();
    for rule in set.parsed() {
        by_file
            .entry(rule.meta.file.clone())
            .or_default()
            .push(rule.clone());
    }
    by_file
        .into_iter()
        .map(|(file, rules)| {
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            let correlations: Vec<_> = rules
                .iter()
                .filter(|r| matches!(r.body, RuleBody::Correlation(_)))
                .collect();
            let detections: Vec<_> = rules
                .iter()
                .filter(|r| matches!(r.body, RuleBody::Detection(_)))
                .collect();
            let main = match (correlations.as_slice(), detections.as_slice()) {
                ([corr], _) => corr.meta.clone(),
                ([], [det]) => det.meta.clone(),
                _ => panic!(
                    "{stem}: a rule file holds one correlation (with its base rules) or one detection rule"
                ),
            };
            let reads_findings = detections.iter().any(|r| match &r.body {
                RuleBody::Detection(d) => d.searches.iter().any(|s| {
                    s.alternatives.iter().flatten().any(|m| {
                        m.field
                            .as_deref()
                            .is_some_and(|f| f.starts_with("unmapped.findings."))
                    })
                }),
                _ => false,
            });
            RuleFile {
                stem,
                main,
                is_correlation: !correlations.is_empty(),
                reads_findings,
            }
        })
        .collect()
}

fn read_events(stem: &str, kind: &str) -> Vec<serde_json::Value> {
    let path = format!("{TESTS_DIR}/{stem}.{kind}.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

/// Replays events through a fresh engine holding the whole pack; for each event, whether the
/// file's rule fired on it (and with which kind of match).
fn replay(file: &RuleFile, kind: &str) -> Vec<Option<MatchKind>> {
    let mut engine = Engine::new(
        load_pack(),
        FieldMapping::web_to_ocsf(),
        CorrelationLimits::default(),
    );
    let id = file.main.id.as_deref().unwrap();
    read_events(&file.stem, kind)
        .iter()
        .map(|event| {
            let time = event["time"].as_i64().expect("every test event has a time");
            engine
                .evaluate(event, time)
                .into_iter()
                .find(|m| m.rule_id == id)
                .map(|m| m.kind)
        })
        .collect()
}

/// Why the file's rule misbehaved on its positive replay, if it did.
fn positive_failure(file: &RuleFile) -> Option<String> {
    let fired = replay(file, "positive");
    if file.is_correlation {
        let first = fired.iter().position(Option::is_some);
        let last = fired.len() - 1;
        match (first, &fired[last]) {
            (Some(i), Some(MatchKind::Correlation { .. })) if i == last => None,
            (None, _) => Some(format!("{}: correlation never fired", file.stem)),
            (Some(i), _) => Some(format!(
                "{}: correlation fired first at event {i} (and at the last event: {}), expected exactly at the last event {last}",
                file.stem,
                fired[last].is_some()
            )),
        }
    } else {
        let missed: Vec<usize> = fired
            .iter()
            .enumerate()
            .filter(|(_, m)| !matches!(m, Some(MatchKind::Event)))
            .map(|(i, _)| i)
            .collect();
        (!missed.is_empty()).then(|| format!("{}: no match on events {missed:?}", file.stem))
    }
}

#[test]
fn pack_has_at_least_25_rules_each_with_positive_and_negative_tests() {
    let files = rule_files();
    assert!(files.len() >= 25, "only {} rule files", files.len());
    let stems: HashSet<&str> = files.iter().map(|f| f.stem.as_str()).collect();
    for stem in &stems {
        for kind in ["positive", "negative"] {
            let events = read_events(stem, kind);
            assert!(!events.is_empty(), "{stem}.{kind}.jsonl is empty");
        }
    }
    // and no test file without its rule
    for entry in std::fs::read_dir(TESTS_DIR).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let stem = name
            .strip_suffix(".positive.jsonl")
            .or_else(|| name.strip_suffix(".negative.jsonl"))
            .unwrap_or_else(|| panic!("unexpected file rules/tests/{name}"));
        assert!(stems.contains(stem), "rules/tests/{name} has no rule file");
    }
    assert!(files.iter().filter(|f| f.is_correlation).count() >= 10);
}

#[test]
fn rules_fire_on_their_positive_events() {
    let failures: Vec<String> = rule_files().iter().filter_map(positive_failure).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Rules reading `unmapped.findings.<member>` reach into an array of objects, where a value
/// matches when ANY element matches. Their positive events list a non-matching finding first
/// (or the matching one only), so this fails if only the first element were read.
#[test]
fn finding_rules_match_any_element_of_the_findings_array() {
    let files = rule_files();
    let finding_files: Vec<&RuleFile> = files.iter().filter(|f| f.reads_findings).collect();
    assert!(
        finding_files.len() >= 15,
        "{} finding rules",
        finding_files.len()
    );
    for file in finding_files {
        let events = read_events(&file.stem, "positive");
        let later_element = events.iter().any(|e| {
            e["unmapped"]["findings"]
                .as_array()
                .is_some_and(|f| f.len() > 1)
        });
        assert!(
            later_element,
            "{}: no positive event with several findings",
            file.stem
        );
        assert_eq!(positive_failure(file), None);
    }
}

#[test]
fn rules_stay_quiet_on_their_negative_events() {
    let mut failures = Vec::new();
    for file in rule_files() {
        let fired: Vec<usize> = replay(&file, "negative")
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_some())
            .map(|(i, _)| i)
            .collect();
        if !fired.is_empty() {
            failures.push(format!("{}: fired on events {fired:?}", file.stem));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn is_uuid_v4(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

/// Every document of every rule file, as YAML data (the engine's model does not keep `fields`).
fn documents() -> Vec<(String, serde_json::Value)> {
    let mut docs = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(RULES_DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        for doc in serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap() {
            docs.push((stem.clone(), doc));
        }
    }
    docs
}

#[test]
fn every_rule_carries_the_required_metadata() {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for (stem, doc) in documents() {
        let title = doc["title"]
            .as_str()
            .unwrap_or_else(|| panic!("{stem}: title"));
        let what = format!("{stem} / {title}");
        let id = doc["id"].as_str().unwrap_or_else(|| panic!("{what}: id"));
        assert!(
            is_uuid_v4(id),
            "{what}: id {id} is not a lower-case UUID v4"
        );
        assert!(ids.insert(id.to_string()), "{what}: duplicate id {id}");
        if let Some(name) = doc["name"].as_str() {
            assert!(names.insert(name.to_string()), "{what}: duplicate name");
        }
        for key in ["status", "description", "date", "level"] {
            assert!(
                doc[key].as_str().is_some_and(|v| !v.is_empty()),
                "{what}: {key}"
            );
        }
        assert_eq!(doc["author"], "Portcullis", "{what}: author");
        for key in ["falsepositives", "fields", "tags"] {
            assert!(
                doc[key].as_array().is_some_and(|v| !v.is_empty()),
                "{what}: {key}"
            );
        }
        let tags: Vec<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(
            tags.iter().any(|t| technique_name(t).is_some()),
            "{what}: no ATT&CK technique tag"
        );
        assert!(
            tags.iter().any(|t| tactic_name(t).is_some()),
            "{what}: no ATT&CK tactic tag"
        );
        if doc.get("correlation").is_some() {
            assert_eq!(doc["generate"], false, "{what}: generate: false");
        } else {
            assert_eq!(doc["logsource"]["product"], "portcullis", "{what}: product");
        }
    }
    assert!(ids.len() >= 25);
}

/// Every `attack.` tag of the pack and of SigmaHQ's web rules that names a tactic or a
/// technique resolves to a name in the ATT&CK table.
#[test]
fn attack_tags_of_bundled_and_sigmahq_web_rules_have_names() {
    let mut tags = HashSet::new();
    let mut sets = vec![load_pack()];
    let (sigmahq, _) = RuleSet::load_dir(Path::new(SIGMAHQ_WEB)).unwrap();
    assert!(sigmahq.len() >= 40, "SigmaHQ web rules not found");
    sets.push(sigmahq);
    for set in &sets {
        for meta in set.rules() {
            tags.extend(meta.tags.iter().cloned());
        }
    }
    let mut unnamed = Vec::new();
    let mut techniques = 0;
    for tag in &tags {
        let Some(rest) = tag.strip_prefix("attack.") else {
            continue;
        };
        let is_technique =
            rest.starts_with('t') && rest[1..].starts_with(|c: char| c.is_ascii_digit());
        // software (s0190), groups (g0001) and the like are not in the table
        let is_other_object = rest.len() >= 2
            && rest.starts_with(['s', 'g', 'm', 'a'])
            && rest[1..].bytes().all(|b| b.is_ascii_digit());
        if is_technique {
            techniques += 1;
            if technique_name(tag).is_none() {
                unnamed.push(tag.clone());
            }
        } else if !is_other_object && tactic_name(tag).is_none() {
            unnamed.push(tag.clone());
        }
    }
    unnamed.sort();
    assert!(unnamed.is_empty(), "tags without a name: {unnamed:?}");
    assert!(techniques >= 30, "only {techniques} technique tags seen");
}
