//! Compatibility with the SigmaHQ community rules for web servers and proxies
//! (`shared/corpora/sigma/rules-web`, Detection Rule License 1.1, authors and references kept in
//! the rule files): every rule loads (or is a known, explained exception), and every loaded
//! rule fires on an OCSF event synthesised from its own detection through the default
//! `web_to_ocsf` field mapping — once per alternative and value, so every value of every rule
//! is exercised — and stays quiet on benign traffic and when its filters apply.
//!
//! The synthesis follows the rule: for `contains` the value is put inside a longer string, for
//! `startswith`/`endswith` it is followed/preceded by filler, wildcards become filler, `cidr`
//! takes the network address, `re` uses a sample string known to match, `null` leaves the field
//! out; for `not X` the fields of `X` are left out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use portcullis_sigma::ast::{Condition, Detection, FieldMatch, Modifier, RuleBody, Value};
use portcullis_sigma::condition::select_names;
use portcullis_sigma::mapping::Derive;
use portcullis_sigma::modifiers::{WildPart, parse_wildcards};
use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, RuleSet};
use serde_json::{Value as Json, json};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/sigma/rules-web"
);

/// Strings known to match the `re` values of the corpus.
fn regex_sample(pattern: &str) -> String {
    match pattern {
        r"(?i)(ipfs\.io/|ipfs\.io\s).+\..+@.+\.[a-z]+" => {
            "https://ipfs.io/ipfs/bafy/login.html#victim@example.com".to_string()
        }
        other => panic!("no sample string for regex {other}: add one"),
    }
}

/// One constraint of a scenario: a field (None = keyword) and the text or number to put there.
#[derive(Clone, Debug)]
struct Constraint {
    field: Option<String>,
    value: Json,
    position: Option<Modifier>,
}

type Scenario = Vec<Constraint>;

fn value_text(v: &Value) -> String {
    v.as_text().unwrap_or_default()
}

/// A literal string matching a Sigma string value (wildcards become filler).
fn literal_for(raw: &str) -> String {
    parse_wildcards(raw)
        .into_iter()
        .map(|p| match p {
            WildPart::Literal(s) => s,
            WildPart::AnyMany => String::new(),
            WildPart::AnyOne => "x".to_string(),
        })
        .collect()
}

fn constraint_for(item: &FieldMatch, value_index: usize) -> Option<Constraint> {
    let position = item.modifiers.iter().copied().find(|m| {
        matches!(
            m,
            Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith
        )
    });
    let has = |m: Modifier| item.modifiers.contains(&m);
    let pick = &item.values[value_index.min(item.values.len() - 1)];
    let value = if matches!(pick, Value::Null) {
        return None; // null: leave the field absent
    } else if has(Modifier::Re) {
        json!(regex_sample(&value_text(pick)))
    } else if has(Modifier::Cidr) {
        let net: ipnet::IpNet = value_text(pick).parse().unwrap();
        json!(net.network().to_string())
    } else if has(Modifier::All) {
        let joined: Vec<String> = item
            .values
            .iter()
            .map(|v| literal_for(&value_text(v)))
            .collect();
        json!(joined.join(" "))
    } else {
        match pick {
            Value::Int(i) => json!(i),
            other => json!(literal_for(&value_text(other))),
        }
    };
    Some(Constraint {
        field: item.field.clone(),
        value,
        position,
    })
}

/// Scenarios satisfying a search: one per alternative and value index.
fn search_scenarios(detection: &Detection, name: &str) -> Vec<Scenario> {
    let search = detection.searches.iter().find(|s| s.name == name).unwrap();
    let mut out = Vec::new();
    for alternative in &search.alternatives {
        let widest = alternative
            .iter()
            .map(|i| i.values.len())
            .max()
            .unwrap_or(1);
        for v in 0..widest {
            out.push(
                alternative
                    .iter()
                    .filter_map(|item| constraint_for(item, v))
                    .collect(),
            );
        }
    }
    out
}

/// Scenarios making `condition` true; `negated` collects the searches that must be false
/// (their fields are left out, and they are used for the filter checks).
fn scenarios(
    detection: &Detection,
    condition: &Condition,
    negated: &mut Vec<String>,
) -> Vec<Scenario> {
    let names: Vec<String> = detection.searches.iter().map(|s| s.name.clone()).collect();
    let expand = |pattern: Option<&str>| -> Vec<Condition> {
        select_names(pattern, &names)
            .into_iter()
            .map(|n| Condition::Search(n.to_string()))
            .collect()
    };
    match condition {
        Condition::Search(name) => search_scenarios(detection, name),
        Condition::Or(parts) => parts
            .iter()
            .flat_map(|p| scenarios(detection, p, negated))
            .collect(),
        Condition::OneOf(p) => scenarios(detection, &Condition::Or(expand(Some(p))), negated),
        Condition::OneOfThem => scenarios(detection, &Condition::Or(expand(None)), negated),
        Condition::AllOf(p) => scenarios(detection, &Condition::And(expand(Some(p))), negated),
        Condition::AllOfThem => scenarios(detection, &Condition::And(expand(None)), negated),
        Condition::Not(inner) => {
            match inner.as_ref() {
                Condition::Search(n) => negated.push(n.clone()),
                Condition::OneOf(p) => {
                    negated.extend(select_names(Some(p), &names).iter().map(|s| s.to_string()))
                }
                other => panic!("negation of {other:?} not synthesised"),
            }
            vec![Vec::new()]
        }
        Condition::And(parts) => {
            // Vary one part at a time over the first scenario of the others.
            let per_part: Vec<Vec<Scenario>> = parts
                .iter()
                .map(|p| scenarios(detection, p, negated))
                .collect();
            let mut out = Vec::new();
            for (i, part) in per_part.iter().enumerate() {
                for s in part {
                    let mut combined = Vec::new();
                    for (j, other) in per_part.iter().enumerate() {
                        if i == j {
                            combined.extend(s.iter().cloned());
                        } else {
                            combined.extend(other[0].iter().cloned());
                        }
                    }
                    out.push(combined);
                }
            }
            out
        }
    }
}

/// Sets a mapped path in a JSON object, creating objects (and header entries) on the way.
fn set_path(root: &mut Json, path: &str, value: Json) {
    let mut current = root;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i == segments.len() - 1;
        if let Some(open) = segment.find('[') {
            let key = &segment[..open];
            let (member, wanted) = segment[open + 1..segment.len() - 1]
                .split_once('=')
                .unwrap();
            let list = current
                .as_object_mut()
                .unwrap()
                .entry(key)
                .or_insert_with(|| json!([]));
            let items = list.as_array_mut().unwrap();
            items.push(json!({ member: wanted }));
            current = items.last_mut().unwrap();
            continue;
        }
        let map = current.as_object_mut().unwrap();
        if last {
            map.insert((*segment).to_string(), value);
            return;
        }
        current = map.entry(*segment).or_insert_with(|| json!({}));
    }
}

fn get_path<'a>(root: &'a Json, path: &str) -> Option<&'a Json> {
    portcullis_sigma::event::json_field(root, path)?;
    let mut current = root;
    for seg in path.split('.') {
        if seg.contains('[') {
            return None;
        }
        current = current.get(seg)?;
    }
    Some(current)
}

/// Builds the OCSF event for a scenario.
fn build_event(scenario: &Scenario, mapping: &FieldMapping) -> Json {
    let mut event = json!({"metadata": {"uid": "synthetic"}});
    for (n, c) in scenario.iter().enumerate() {
        let Some(field) = &c.field else {
            let text = format!("zz {} zz", c.value.as_str().unwrap());
            set_path(&mut event, &format!("unmapped.keyword_{n}"), json!(text));
            continue;
        };
        let target = mapping.resolve(field);
        let mut value = c.value.clone();
        if let Some(text) = value.as_str() {
            let text = match c.position {
                Some(Modifier::Contains) => format!("zz{text}zz"),
                Some(Modifier::StartsWith) => format!("{text}zz"),
                Some(Modifier::EndsWith) => format!("zz{text}"),
                _ => text.to_string(),
            };
            value = json!(text);
        }
        if target.derive == Derive::Extension {
            value = json!(format!("/download/file.{}", value.as_str().unwrap()));
        }
        // Two constraints on one field: combine them so both hold.
        if let (Some(existing), Some(new)) = (
            get_path(&event, &target.path).and_then(Json::as_str),
            value.as_str(),
        ) {
            value = match c.position {
                Some(Modifier::StartsWith) => json!(format!("{new}{existing}")),
                _ => json!(format!("{existing}{new}")),
            };
        }
        set_path(&mut event, &target.path, value);
    }
    event
}

fn benign_events() -> Vec<Json> {
    vec![
        json!({"metadata": {"uid": "b1"}}),
        json!({
            "time": 1767225600123_i64,
            "metadata": {"uid": "b2"},
            "src_endpoint": {"ip": "203.0.113.42", "port": 51522},
            "dst_endpoint": {"ip": "198.51.100.7", "port": 443},
            "http_request": {
                "http_method": "GET",
                "version": "HTTP/1.1",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "referrer": "https://www.example.com/",
                "length": 0,
                "url": {"scheme": "https", "hostname": "api.example.com", "path": "/v1/orders/17",
                        "query_string": "page=2&sort=date", "url_string": "/v1/orders/17?page=2&sort=date"},
                "http_headers": [{"name": "accept", "value": "application/json"},
                                 {"name": "cookie", "value": "session=abc"}]
            },
            "http_response": {"code": 200, "length": 512},
            "actor": {"user": {"uid": "alice", "name": "alice"}},
            "unmapped": {"route": "orders", "auth": {"method": "jwt"}}
        }),
    ]
}

/// Rules of the corpus this engine reports as unsupported, with the reason (expected: none).
const EXPECTED_UNSUPPORTED: &[(&str, &str)] = &[];

#[test]
fn every_web_rule_loads_fires_on_its_own_event_and_not_on_benign_ones() {
    let (set, problems) = RuleSet::load_dir(Path::new(RULES)).unwrap();
    let unsupported: Vec<(String, String)> = problems
        .iter()
        .map(|p| {
            (
                p.file.file_name().unwrap().to_string_lossy().into_owned(),
                p.reason.clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = EXPECTED_UNSUPPORTED
        .iter()
        .map(|(f, r)| (f.to_string(), r.to_string()))
        .collect();
    assert_eq!(unsupported, expected, "unexpected load problems");
    let files = walk(Path::new(RULES));
    assert_eq!(files, 45, "corpus changed");
    assert_eq!(set.len() + EXPECTED_UNSUPPORTED.len(), files);

    let mapping = FieldMapping::web_to_ocsf();
    let rules: Vec<_> = set.parsed().cloned().collect();
    let mut engine = Engine::new(set, mapping.clone(), CorrelationLimits::default());
    let mut checked_events = 0;
    let mut filter_checks = 0;
    let mut failures = Vec::new();
    for rule in &rules {
        let RuleBody::Detection(detection) = &rule.body else {
            continue;
        };
        let id = rule.meta.id.clone().unwrap();
        let mut negated = Vec::new();
        let all: Vec<Scenario> = detection
            .conditions
            .iter()
            .flat_map(|c| scenarios(detection, c, &mut negated))
            .collect();
        assert!(!all.is_empty(), "{}: no scenario", rule.meta.title);
        for scenario in &all {
            let event = build_event(scenario, &mapping);
            checked_events += 1;
            let hits = engine.evaluate(&event, 0);
            if !hits.iter().any(|m| m.rule_id == id) {
                failures.push(format!("{} did not fire on {event}", rule.meta.title));
            }
        }
        // With a negated search (a filter) satisfied as well, the rule must stay quiet.
        for name in &negated {
            for filter in search_scenarios(detection, name) {
                let base = &all[0];
                let overlaps = filter
                    .iter()
                    .any(|f| base.iter().any(|b| b.field.is_some() && b.field == f.field));
                if overlaps {
                    continue;
                }
                let mut combined = base.clone();
                combined.extend(filter);
                let event = build_event(&combined, &mapping);
                filter_checks += 1;
                let hits = engine.evaluate(&event, 0);
                if hits.iter().any(|m| m.rule_id == id) {
                    failures.push(format!(
                        "{} fired despite '{name}' on {event}",
                        rule.meta.title
                    ));
                }
            }
        }
        for benign in benign_events() {
            if engine.evaluate(&benign, 0).iter().any(|m| m.rule_id == id) {
                failures.push(format!("{} fired on benign {benign}", rule.meta.title));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{checked_events} positive events, {filter_checks} filter checks");
    // Every value of every rule was exercised (the corpus has several hundred).
    assert!(checked_events > 500, "only {checked_events} events");
    assert!(filter_checks > 10, "only {filter_checks} filter checks");
}

#[test]
fn metadata_of_web_rules_is_kept() {
    let (set, _) = RuleSet::load_dir(Path::new(RULES)).unwrap();
    let by_id: BTreeMap<&str, _> = set.rules().map(|m| (m.id.as_deref().unwrap(), m)).collect();
    let sqli = by_id["5513deaf-f49a-46c2-a6c8-3f111b5cb453"];
    assert_eq!(sqli.title, "SQL Injection Strings In URI");
    assert_eq!(sqli.logsource.category.as_deref(), Some("webserver"));
    assert!(sqli.author.as_deref().unwrap().contains("Saw Win Naung"));
    assert!(!sqli.references.is_empty());
    assert!(sqli.file.ends_with("web_sql_injection_in_access_logs.yml"));
    let (tactics, techniques) = portcullis_sigma::attack_ids(&sqli.tags);
    assert_eq!(tactics, vec!["initial-access"]);
    assert_eq!(techniques, vec!["T1190"]);
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "yml"))
            }
        })
        .sum()
}
