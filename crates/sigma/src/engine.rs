//! [`Engine`]: a [`RuleSet`] bound to a [`FieldMapping`], evaluating events one at a time.
//!
//! Binding resolves every Sigma field name of every rule to an event path once, and numbers the
//! distinct paths ("slots"). Evaluating an event reads each slot at most once, lazily, the first
//! time a rule needs it, so an event costs one lookup per distinct field the rules actually
//! reach — not one per rule. Conditions short-circuit left to right; each rule is skipped
//! outright when one of the fields its every alternative requires is absent from the event
//! ("required fields", computed at binding), or when its gate fails: an exact value it needs
//! (shared by the rules needing the same values), a keyword list, or literals of which one must
//! occur in a field (searched for all rules at once, one walk per field and event).
//!
//! The bundled pack is evaluated on every request the gateway serves, so the per-event path is
//! kept free of allocation once warm: buffers that borrow nothing from the event live in the
//! engine and are reused ([`Scratch`]), and correlation windows are updated by `&str` keys.
//!
//! Correlation rules then see which of the rules they reference matched, and update their
//! windows ([`crate::correlation`]). Rules referenced by a correlation are not reported on their
//! own unless the correlation says `generate: true`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, StartKind};

use crate::ast::{Condition, CorrelationType, Level, RuleBody, RuleMeta};
use crate::compile::{AnyOf, CompiledDetection, CompiledItem, KEYWORD_SEPARATOR, ValueTest};
use crate::condition::select_names;
use crate::correlation::{Contribution, CorrelationLimits, CorrelationStats, Windows};
use crate::event::{Event, FieldValue};
use crate::mapping::{FieldMapping, FieldTarget};
use crate::ruleset::RuleSet;

/// What matched.
#[derive(Clone, Debug, PartialEq)]
pub enum MatchKind {
    /// A detection rule matched this event.
    Event,
    /// A correlation rule fired on this event.
    Correlation {
        correlation: CorrelationType,
        /// `group-by` field names and this group's values.
        group: Vec<(String, String)>,
        /// The aggregate that met the condition: the event count, distinct value count, number
        /// of rules seen (temporal), sum or average.
        value: f64,
        /// Event time of the oldest and newest event of the window.
        first_ms: i64,
        last_ms: i64,
    },
}

/// A rule match.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    pub tags: Vec<String>,
    pub kind: MatchKind,
    /// For correlations: ids (the mapping's `event_id_field`) of contributing events, newest
    /// last, capped at `CorrelationLimits::max_event_ids`. Empty for single-event matches.
    pub event_ids: Vec<String>,
}

#[derive(Clone, Debug)]
enum Cond {
    Search(usize),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

fn lower_condition(c: &Condition, names: &[String]) -> Cond {
    let index = |n: &str| names.iter().position(|x| x == n).unwrap_or(usize::MAX);
    let selected = |pattern: Option<&str>| -> Vec<Cond> {
        select_names(pattern, names)
            .into_iter()
            .map(|n| Cond::Search(index(n)))
            .collect()
    };
    match c {
        Condition::Search(n) => Cond::Search(index(n)),
        Condition::And(parts) => {
            Cond::And(parts.iter().map(|p| lower_condition(p, names)).collect())
        }
        Condition::Or(parts) => Cond::Or(parts.iter().map(|p| lower_condition(p, names)).collect()),
        Condition::Not(inner) => Cond::Not(Box::new(lower_condition(inner, names))),
        Condition::OneOf(p) => Cond::Or(selected(Some(p))),
        Condition::AllOf(p) => Cond::And(selected(Some(p))),
        Condition::OneOfThem => Cond::Or(selected(None)),
        Condition::AllOfThem => Cond::And(selected(None)),
    }
}

#[derive(Clone, Debug)]
struct BoundItem {
    /// Slot of the field; `None` for keywords.
    slot: Option<usize>,
    test: ValueTest,
    negate: bool,
    /// Slots of `fieldref` fields.
    ref_slots: Vec<usize>,
}

#[derive(Clone, Debug)]
struct BoundDetection {
    searches: Vec<Vec<Vec<BoundItem>>>,
    condition: Cond,
}

#[derive(Debug)]
struct BoundRule {
    rule_id: String,
    title: String,
    level: Level,
    tags: Vec<String>,
    detection: BoundDetection,
    filters: Vec<BoundDetection>,
    /// Slots that must be present for the rule to possibly match.
    required: Vec<usize>,
    /// A test the rule cannot match without (see [`Gate`]).
    gate: Option<usize>,
    /// Report single-event matches of this rule.
    emit: bool,
}

#[derive(Debug)]
struct BoundCorrelation {
    rule_id: String,
    title: String,
    level: Level,
    tags: Vec<String>,
    group_names: Vec<String>,
    /// Per member (referenced rule): group-by slots and value-field slots.
    group_slots: Vec<Vec<usize>>,
    field_slots: Vec<Vec<usize>>,
    windows: Windows,
    emit: bool,
}

/// A cheap test that a rule cannot match without: an exact-value item every match needs
/// (`sc-status: 404`, `cs-method: GET`), or a keyword list every match needs (searched in the
/// event's keyword buffer, built once per event). Rules with equal field gates share one,
/// evaluated at most once per event. A failed gate skips its rules without evaluating them.
///
/// Rules with neither have a needle gate when every match needs a literal in some field (the
/// web rules' path prefixes and suffixes, user-agent substrings): all the literals of a field,
/// from every rule, are searched in one pass per event ([`NeedleScan`]), and a rule none of
/// whose literals occurs is skipped — one scan instead of one test per rule and literal.
#[derive(Debug)]
enum Gate {
    Field {
        slot: usize,
        test: AnyOf,
    },
    Keywords {
        test: ValueTest,
    },
    /// Passes when one of these needles (ids of [`NeedleScan`] patterns) occurs, or when a
    /// scanned field holds something other than a string (undecided: the rule decides).
    Needles {
        scans: Vec<usize>,
        ids: Vec<usize>,
    },
}

/// The literal needles of one field, from every rule's needle gate, in one automaton searched
/// once per event over the field's lowercased value. Pattern `i` is needle id `first + i`.
#[derive(Debug)]
struct NeedleScan {
    slot: usize,
    /// Walked byte by byte with the low-level automaton interface: a table lookup per byte and
    /// every needle ending there at once (standard semantics), without the per-call set-up of
    /// the search API or a prefilter, which cost more than they save on values of a few dozen
    /// bytes (measured).
    dfa: DFA,
    first: usize,
}

impl NeedleScan {
    /// Marks in `found` every needle that occurs in `haystack`; false if the automaton cannot
    /// search (never, for an unanchored automaton).
    fn mark(&self, haystack: &[u8], found: &mut [bool]) -> bool {
        let Ok(mut state) = self.dfa.start_state(Anchored::No) else {
            return false;
        };
        for &byte in haystack {
            state = self.dfa.next_state(Anchored::No, state, byte);
            if self.dfa.is_special(state) && self.dfa.is_match(state) {
                for i in 0..self.dfa.match_len(state) {
                    let id = self.first + self.dfa.match_pattern(state, i).as_usize();
                    if let Some(slot) = found.get_mut(id) {
                        *slot = true;
                    }
                }
            }
        }
        true
    }
}

/// A literal that occurs in `slot` whenever the rule matches (see [`AnyOf::needles`]).
type Needle = (usize, String);

/// Needles one of which occurs in every match of `cond`, or `None` when no such set is known.
fn necessary_needles(cond: &Cond, d: &BoundDetection) -> Option<Vec<Needle>> {
    // The fewer short needles a set has, the more selective it is.
    fn best(sets: impl Iterator<Item = Vec<Needle>>) -> Option<Vec<Needle>> {
        sets.max_by_key(|set| {
            let shortest = set.iter().map(|(_, n)| n.len()).min().unwrap_or(0);
            (shortest.min(4), std::cmp::Reverse(set.len()))
        })
    }
    fn item_needles(item: &BoundItem) -> Option<Vec<Needle>> {
        if item.negate {
            return None;
        }
        let slot = item.slot?;
        let needles = match &item.test {
            ValueTest::Str(any) => any.needles(),
            // Every value must match: the needles of any one of them are necessary.
            ValueTest::StrAll(each) => each.iter().find_map(AnyOf::needles),
            _ => None,
        }?;
        Some(needles.into_iter().map(|n| (slot, n)).collect())
    }
    match cond {
        Cond::Search(i) => {
            let alts = d.searches.get(*i)?;
            if alts.is_empty() {
                return None;
            }
            let mut all = Vec::new();
            for items in alts {
                all.extend(best(items.iter().filter_map(item_needles))?);
            }
            Some(all)
        }
        Cond::And(parts) => best(parts.iter().filter_map(|p| necessary_needles(p, d))),
        Cond::Or(parts) => {
            let mut all = Vec::new();
            for p in parts {
                all.extend(necessary_needles(p, d)?);
            }
            (!all.is_empty()).then_some(all)
        }
        Cond::Not(_) => None,
    }
}

/// Whom a rule's match feeds: (correlation index, member index).
type Feeds = Vec<(usize, usize)>;

/// Evaluates events against a rule set.
#[derive(Debug)]
pub struct Engine {
    slots: Vec<FieldTarget>,
    rules: Vec<BoundRule>,
    rule_feeds: Vec<Feeds>,
    correlations: Vec<BoundCorrelation>,
    correlation_feeds: Vec<Feeds>,
    /// Correlation evaluation order (referenced before referencing).
    correlation_order: Vec<usize>,
    event_id_slot: usize,
    limits: CorrelationLimits,
    stats: CorrelationStats,
    gates: Vec<Gate>,
    needle_scans: Vec<NeedleScan>,
    /// Metadata of every rule, by the id matches report (description, author, references…).
    metas: HashMap<String, RuleMeta>,
    scratch: Scratch,
}

struct Binder<'m> {
    mapping: &'m FieldMapping,
    slots: Vec<FieldTarget>,
    index: HashMap<FieldTarget, usize>,
}

impl Binder<'_> {
    fn slot(&mut self, sigma_field: &str) -> usize {
        let target = self.mapping.resolve(sigma_field);
        self.path_slot(target)
    }

    fn path_slot(&mut self, target: FieldTarget) -> usize {
        if let Some(i) = self.index.get(&target) {
            return *i;
        }
        let i = self.slots.len();
        self.slots.push(target.clone());
        self.index.insert(target, i);
        i
    }

    fn bind_item(&mut self, item: &CompiledItem) -> BoundItem {
        let ref_slots = match &item.test {
            ValueTest::FieldRef(r) => r.fields.iter().map(|f| self.slot(f)).collect(),
            _ => Vec::new(),
        };
        BoundItem {
            slot: item.field.as_deref().map(|f| self.slot(f)),
            test: item.test.clone(),
            negate: item.negate,
            ref_slots,
        }
    }

    fn bind(
        &mut self,
        compiled: &CompiledDetection,
        conditions: &[Condition],
        names: &[String],
    ) -> BoundDetection {
        let searches = compiled
            .searches
            .iter()
            .map(|alts| {
                alts.iter()
                    .map(|items| items.iter().map(|i| self.bind_item(i)).collect())
                    .collect()
            })
            .collect();
        let lowered: Vec<Cond> = conditions
            .iter()
            .map(|c| lower_condition(c, names))
            .collect();
        let condition = if lowered.len() == 1 {
            lowered.into_iter().next().unwrap_or(Cond::Or(Vec::new()))
        } else {
            Cond::Or(lowered)
        };
        BoundDetection {
            searches,
            condition,
        }
    }
}

/// Slots that every way of satisfying `cond` needs present (a conservative subset).
fn required_slots(cond: &Cond, d: &BoundDetection) -> HashSet<usize> {
    match cond {
        Cond::Search(i) => {
            let Some(alts) = d.searches.get(*i) else {
                return HashSet::new();
            };
            let per_alt: Vec<HashSet<usize>> = alts
                .iter()
                .map(|items| {
                    items
                        .iter()
                        .filter(|it| !matches!(it.test, ValueTest::Null | ValueTest::Exists(false)))
                        .filter_map(|it| it.slot)
                        .collect()
                })
                .collect();
            intersect(per_alt)
        }
        Cond::And(parts) => parts.iter().flat_map(|p| required_slots(p, d)).collect(),
        Cond::Or(parts) => intersect(parts.iter().map(|p| required_slots(p, d)).collect()),
        Cond::Not(_) => HashSet::new(),
    }
}

/// Items that every match of `cond` needs true (from searches with a single alternative that
/// are required positively).
fn mandatory_items<'a>(cond: &Cond, d: &'a BoundDetection, out: &mut Vec<&'a BoundItem>) {
    match cond {
        Cond::Search(i) => {
            if let Some(alts) = d.searches.get(*i)
                && alts.len() == 1
            {
                out.extend(alts[0].iter());
            }
        }
        Cond::And(parts) => parts.iter().for_each(|p| mandatory_items(p, d, out)),
        Cond::Or(_) | Cond::Not(_) => {}
    }
}

/// Chooses and registers gates for every rule, and builds the needle scans the needle gates
/// share.
fn assign_gates(rules: &mut [BoundRule]) -> (Vec<Gate>, Vec<NeedleScan>) {
    let mut gates = Vec::new();
    let mut needle_rules: Vec<(usize, Vec<Needle>)> = Vec::new();
    let mut shared: HashMap<(usize, Vec<String>), usize> = HashMap::new();
    for (ri, rule) in rules.iter_mut().enumerate() {
        let mut items = Vec::new();
        mandatory_items(&rule.detection.condition, &rule.detection, &mut items);
        // Preference: exact integers (status codes: rare matches), then keywords (one shared
        // scan, very selective), then other exact values.
        let mut best: Option<(u8, &BoundItem)> = None;
        for item in items {
            if item.negate {
                continue;
            }
            let ValueTest::Str(any) = &item.test else {
                continue;
            };
            let rank = match item.slot {
                Some(_) if any.is_integer_set() => 0,
                None if item.test.matches_keyword_buffer("").is_some() => 1,
                Some(_) if any.exact_key().is_some() => 2,
                _ => continue,
            };
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, item));
            }
        }
        let Some((_, item)) = best else {
            // Gated below, once every field's needles are known.
            if let Some(needles) = necessary_needles(&rule.detection.condition, &rule.detection) {
                needle_rules.push((ri, needles));
            }
            continue;
        };
        let ValueTest::Str(any) = &item.test else {
            continue;
        };
        rule.gate = Some(match item.slot {
            Some(slot) => {
                let key = (slot, any.exact_key().unwrap_or_default());
                *shared.entry(key).or_insert_with(|| {
                    gates.push(Gate::Field {
                        slot,
                        test: any.clone(),
                    });
                    gates.len() - 1
                })
            }
            None => {
                gates.push(Gate::Keywords {
                    test: item.test.clone(),
                });
                gates.len() - 1
            }
        });
    }
    let scans = build_needle_scans(rules, &mut gates, needle_rules);
    (gates, scans)
}

/// Numbers every distinct needle, field by field, builds one automaton per field, and gives
/// each rule of `needle_rules` a gate on its needles.
fn build_needle_scans(
    rules: &mut [BoundRule],
    gates: &mut Vec<Gate>,
    needle_rules: Vec<(usize, Vec<Needle>)>,
) -> Vec<NeedleScan> {
    let mut per_slot: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (_, needles) in &needle_rules {
        for (slot, needle) in needles {
            per_slot.entry(*slot).or_default().push(needle.clone());
        }
    }
    let mut scans = Vec::new();
    let mut ids: HashMap<(usize, String), (usize, usize)> = HashMap::new();
    let mut next_id = 0;
    for (slot, mut needles) in per_slot {
        needles.sort();
        needles.dedup();
        // Standard semantics: every needle that occurs is reported, not just the leftmost,
        // since each rule asks about its own needles.
        let built = DFA::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(&needles);
        let dfa = match built {
            Ok(dfa) => dfa,
            Err(e) => {
                tracing::warn!(error = %e, "sigma needle index not built; rules evaluated in full");
                continue;
            }
        };
        let scan = scans.len();
        for (i, needle) in needles.into_iter().enumerate() {
            ids.insert((slot, needle), (scan, next_id + i));
        }
        scans.push(NeedleScan {
            slot,
            dfa,
            first: next_id,
        });
        next_id += scans
            .last()
            .map_or(0, |s: &NeedleScan| s.dfa.patterns_len());
    }
    'rules: for (ri, needles) in needle_rules {
        let mut gate_scans = Vec::new();
        let mut gate_ids = Vec::new();
        for needle in needles {
            // Missing when the field's automaton could not be built: no gate then.
            let Some(&(scan, id)) = ids.get(&needle) else {
                continue 'rules;
            };
            gate_scans.push(scan);
            gate_ids.push(id);
        }
        gate_scans.sort_unstable();
        gate_scans.dedup();
        gate_ids.sort_unstable();
        gate_ids.dedup();
        rules[ri].gate = Some(gates.len());
        gates.push(Gate::Needles {
            scans: gate_scans,
            ids: gate_ids,
        });
    }
    scans
}

fn intersect(sets: Vec<HashSet<usize>>) -> HashSet<usize> {
    let mut iter = sets.into_iter();
    let Some(mut acc) = iter.next() else {
        return HashSet::new();
    };
    for s in iter {
        acc.retain(|x| s.contains(x));
    }
    acc
}

/// Buffers of per-event work that borrows nothing from the event, kept by the engine and
/// reused: once warm, an event that feeds no correlation allocates only its field table.
#[derive(Debug, Default)]
struct Scratch {
    /// Every keyword string of the event, ASCII-lowercased and separated, built on first use
    /// so that keyword tests search one buffer instead of calling back per string.
    keywords: String,
    keywords_built: bool,
    /// ASCII-lowercased copies of string field values, one after the other, made on first use
    /// by a substring test; `lowered_spans[slot]` is where the slot's copy is (`Some(None)`:
    /// the value is not a string).
    lowered: String,
    lowered_spans: Vec<Option<Option<(usize, usize)>>>,
    /// Gate results this event: 0 not evaluated yet, 1 passed, 2 failed.
    gate_state: Vec<u8>,
    /// Needle scans this event: 0 not run yet, 1 run (`needle_found` filled), 2 undecided
    /// (the field holds something other than a string).
    scan_state: Vec<u8>,
    /// By needle id: found in this event.
    needle_found: Vec<bool>,
    /// (correlation, member) fed by this event's matches.
    hits: Vec<(usize, usize)>,
    /// A correlation group's key and value text, built in place.
    key: String,
    text: String,
}

impl Scratch {
    fn reset(&mut self, slots: usize, gates: usize, scans: &[NeedleScan]) {
        self.keywords.clear();
        self.keywords_built = false;
        self.lowered.clear();
        self.lowered_spans.clear();
        self.lowered_spans.resize(slots, None);
        self.gate_state.clear();
        self.gate_state.resize(gates, 0);
        self.scan_state.clear();
        self.scan_state.resize(scans.len(), 0);
        let needles = scans.last().map_or(0, |s| s.first + s.dfa.patterns_len());
        self.needle_found.clear();
        self.needle_found.resize(needles, false);
        self.hits.clear();
    }
}

/// Per-event lazily filled field values.
struct Fields<'e, 's, E: Event + ?Sized> {
    event: &'e E,
    slots: &'e [FieldTarget],
    values: Vec<Option<Option<FieldValue<'e>>>>,
    scratch: &'s mut Scratch,
}

impl<'e, E: Event + ?Sized> Fields<'e, '_, E> {
    fn get(&mut self, slot: usize) -> Option<&FieldValue<'e>> {
        if self.values[slot].is_none() {
            let target = &self.slots[slot];
            let value = self
                .event
                .field(&target.path)
                .and_then(|v| target.derive(v));
            self.values[slot] = Some(value);
        }
        self.values[slot].as_ref().and_then(Option::as_ref)
    }

    /// The value of a string slot and its lowercased copy (`None` for other values).
    fn with_lowered(&mut self, slot: usize) -> Option<(&str, &str)> {
        self.get(slot);
        if self.scratch.lowered_spans[slot].is_none() {
            let span = match &self.values[slot] {
                Some(Some(FieldValue::Str(s))) => {
                    let start = self.scratch.lowered.len();
                    self.scratch.lowered.push_str(s);
                    self.scratch.lowered[start..].make_ascii_lowercase();
                    Some((start, self.scratch.lowered.len()))
                }
                _ => None,
            };
            self.scratch.lowered_spans[slot] = Some(span);
        }
        match (&self.values[slot], self.scratch.lowered_spans[slot]) {
            (Some(Some(FieldValue::Str(s))), Some(Some((start, end)))) => {
                Some((s.as_ref(), &self.scratch.lowered[start..end]))
            }
            _ => None,
        }
    }

    /// Runs needle scan `k` (once per event): marks the needles found in the field's
    /// lowercased value. False when the field holds something other than a string, which the
    /// scan cannot decide.
    fn scan_needles(&mut self, k: usize, scan: &NeedleScan) -> bool {
        if self.scratch.scan_state[k] == 0 {
            let state = match self.get(scan.slot) {
                None => 1,
                Some(FieldValue::Str(_)) => {
                    self.with_lowered(scan.slot);
                    match self.scratch.lowered_spans[scan.slot] {
                        Some(Some((start, end)))
                            if scan.mark(
                                &self.scratch.lowered.as_bytes()[start..end],
                                &mut self.scratch.needle_found,
                            ) =>
                        {
                            1
                        }
                        _ => 2,
                    }
                }
                Some(_) => 2,
            };
            self.scratch.scan_state[k] = state;
        }
        self.scratch.scan_state[k] == 1
    }

    fn keyword_buffer(&mut self) -> &str {
        if !self.scratch.keywords_built {
            let buffer = &mut self.scratch.keywords;
            self.event.keywords(&mut |s| {
                buffer.push_str(s);
                buffer.push(KEYWORD_SEPARATOR);
                false
            });
            buffer.make_ascii_lowercase();
            self.scratch.keywords_built = true;
        }
        &self.scratch.keywords
    }

    fn text(&mut self, slot: usize) -> Option<String> {
        let mut out = String::new();
        self.push_text(slot, &mut out).then_some(out)
    }

    /// Appends the slot's value as text (a list's items joined by commas) to `out`; false when
    /// it has none (absent or null).
    fn push_text(&mut self, slot: usize, out: &mut String) -> bool {
        fn scalar(v: &FieldValue<'_>, out: &mut String) -> bool {
            use std::fmt::Write;
            match v {
                FieldValue::Str(s) => out.push_str(s),
                FieldValue::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                FieldValue::Float(f) => {
                    let _ = write!(out, "{f}");
                }
                FieldValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                FieldValue::Null | FieldValue::List(_) => return false,
            }
            true
        }
        match self.get(slot) {
            None | Some(FieldValue::Null) => false,
            Some(FieldValue::List(items)) => {
                let mut first = true;
                for item in items {
                    let at = out.len();
                    if !first {
                        out.push(',');
                    }
                    if scalar(item, out) {
                        first = false;
                    } else {
                        out.truncate(at);
                    }
                }
                true
            }
            Some(other) => scalar(other, out),
        }
    }
}

fn item_matches<E: Event + ?Sized>(item: &BoundItem, fields: &mut Fields<'_, '_, E>) -> bool {
    let Some(slot) = item.slot else {
        let hit = match item.test.matches_keyword_buffer(fields.keyword_buffer()) {
            Some(hit) => hit,
            None => item.test.matches_keywords(&KeywordsOf(fields.event)),
        };
        return hit != item.negate;
    };
    if let ValueTest::FieldRef(r) = &item.test {
        let Some(value) = fields
            .get(slot)
            .and_then(|v| v.as_text())
            .map(|t| t.into_owned())
        else {
            return false;
        };
        let results: Vec<bool> = item
            .ref_slots
            .iter()
            .map(|s| {
                fields
                    .get(*s)
                    .and_then(|v| v.as_text())
                    .is_some_and(|reference| r.compare(&value, &reference))
            })
            .collect();
        let hit = if r.all {
            results.iter().all(|b| *b)
        } else {
            results.iter().any(|b| *b)
        };
        return hit != item.negate;
    }
    if let ValueTest::Str(any) = &item.test
        && any.has_lowered()
        && let Some((text, lowered)) = fields.with_lowered(slot)
    {
        return any.is_match_str_lowered(text, lowered) != item.negate;
    }
    let value = fields.get(slot);
    if item.negate {
        value.is_some() && !item.test.matches(value)
    } else {
        item.test.matches(value)
    }
}

/// Adapter: lets compiled keyword tests call back into any event type.
struct KeywordsOf<'a, E: Event + ?Sized>(&'a E);

impl<E: Event + ?Sized> Event for KeywordsOf<'_, E> {
    fn field(&self, path: &str) -> Option<FieldValue<'_>> {
        self.0.field(path)
    }
    fn keywords(&self, visit: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0.keywords(visit)
    }
}

fn eval_cond<E: Event + ?Sized>(
    c: &Cond,
    d: &BoundDetection,
    fields: &mut Fields<'_, '_, E>,
) -> bool {
    match c {
        Cond::Search(i) => d.searches.get(*i).is_some_and(|alts| {
            alts.iter()
                .any(|items| items.iter().all(|item| item_matches(item, fields)))
        }),
        Cond::And(parts) => parts.iter().all(|p| eval_cond(p, d, fields)),
        Cond::Or(parts) => parts.iter().any(|p| eval_cond(p, d, fields)),
        Cond::Not(inner) => !eval_cond(inner, d, fields),
    }
}

/// Writes the key of the event's correlation group (the `group-by` values) into `key`; false
/// when a value is missing (the event is not correlated). Several values are each followed by
/// their length, so that no choice of values can forge another group's key.
fn group_key<E: Event + ?Sized>(
    slots: &[usize],
    fields: &mut Fields<'_, '_, E>,
    key: &mut String,
) -> bool {
    use std::fmt::Write;
    key.clear();
    for slot in slots {
        let start = key.len();
        if !fields.push_text(*slot, key) {
            return false;
        }
        if slots.len() > 1 {
            let len = key.len() - start;
            let _ = write!(key, "\u{1f}{len}\u{1f}");
        }
    }
    true
}

fn level_of(meta: &crate::ast::RuleMeta) -> Level {
    meta.level.unwrap_or_default()
}

impl Engine {
    /// Binds `rules` to `mapping`. Unresolved references are resolved first (problems are
    /// logged; use [`RuleSet::resolve`] beforehand to get them).
    pub fn new(mut rules: RuleSet, mapping: FieldMapping, limits: CorrelationLimits) -> Self {
        if !rules.is_resolved() {
            for problem in rules.resolve() {
                tracing::warn!(%problem, "sigma rule reference problem");
            }
        }
        let mut binder = Binder {
            mapping: &mapping,
            slots: Vec::new(),
            index: HashMap::new(),
        };
        let event_id_slot = binder.path_slot(FieldTarget::path(mapping.event_id_field.clone()));

        // Detection rules, and which stored index each took.
        let mut rule_index: HashMap<usize, usize> = HashMap::new();
        let mut bound_rules = Vec::new();
        for (i, stored) in rules.rules.iter().enumerate() {
            let (RuleBody::Detection(d), Some(compiled)) = (&stored.ast.body, &stored.compiled)
            else {
                continue;
            };
            let names: Vec<String> = d.searches.iter().map(|s| s.name.clone()).collect();
            let detection = binder.bind(compiled, &d.conditions, &names);
            let required: Vec<usize> = required_slots(&detection.condition, &detection)
                .into_iter()
                .collect();
            let meta = &stored.ast.meta;
            rule_index.insert(i, bound_rules.len());
            bound_rules.push(BoundRule {
                rule_id: meta.key().to_string(),
                title: meta.title.clone(),
                level: level_of(meta),
                tags: meta.tags.clone(),
                detection,
                filters: Vec::new(),
                required,
                gate: None,
                emit: true,
            });
        }
        // Filters.
        for stored in &rules.rules {
            let (RuleBody::Filter(f), Some(compiled)) = (&stored.ast.body, &stored.compiled) else {
                continue;
            };
            let names: Vec<String> = f
                .detection
                .searches
                .iter()
                .map(|s| s.name.clone())
                .collect();
            for target in &f.rules {
                let Some(ti) = rules.find(target) else {
                    continue;
                };
                let Some(&bi) = rule_index.get(&ti) else {
                    continue;
                };
                if !stored
                    .ast
                    .meta
                    .logsource
                    .covers(&rules.rules[ti].ast.meta.logsource)
                {
                    tracing::warn!(filter = %stored.ast.meta.title, rule = %target,
                        "sigma filter not applied: log source differs");
                    continue;
                }
                let bound = binder.bind(compiled, &f.detection.conditions, &names);
                bound_rules[bi].filters.push(bound);
            }
        }
        // Correlations.
        let mut corr_index: HashMap<usize, usize> = HashMap::new();
        for (i, stored) in rules.rules.iter().enumerate() {
            if matches!(stored.ast.body, RuleBody::Correlation(_)) {
                corr_index.insert(i, corr_index.len());
            }
        }
        let mut correlations = Vec::new();
        let mut rule_feeds: Vec<Feeds> = vec![Vec::new(); bound_rules.len()];
        let mut correlation_feeds: Vec<Feeds> = vec![Vec::new(); corr_index.len()];
        for (i, stored) in rules.rules.iter().enumerate() {
            let RuleBody::Correlation(c) = &stored.ast.body else {
                continue;
            };
            let ci = corr_index.get(&i).copied().unwrap_or_default();
            let mut group_slots = Vec::new();
            let mut field_slots = Vec::new();
            for (member, reference) in c.rules.iter().enumerate() {
                let target = rules.find(reference);
                let target_meta = target.map(|t| &rules.rules[t].ast.meta);
                let field_for = |name: &str| -> String {
                    c.aliases
                        .iter()
                        .find(|a| a.name == name)
                        .and_then(|a| {
                            a.fields.iter().find(|(r, _)| {
                                r == reference
                                    || target_meta.is_some_and(|m| {
                                        m.name.as_deref() == Some(r) || m.id.as_deref() == Some(r)
                                    })
                            })
                        })
                        .map_or_else(|| name.to_string(), |(_, f)| f.clone())
                };
                group_slots.push(
                    c.group_by
                        .iter()
                        .map(|g| binder.slot(&field_for(g)))
                        .collect(),
                );
                field_slots.push(
                    c.fields
                        .iter()
                        .map(|f| binder.slot(&field_for(f)))
                        .collect(),
                );
                match target {
                    Some(t) => {
                        if let Some(&r) = rule_index.get(&t) {
                            rule_feeds[r].push((ci, member));
                            if !c.generate {
                                bound_rules[r].emit = false;
                            }
                        } else if let Some(&other) = corr_index.get(&t) {
                            correlation_feeds[other].push((ci, member));
                        }
                    }
                    None => {
                        tracing::warn!(reference = %reference, "sigma correlation member missing")
                    }
                }
            }
            if c.kind == CorrelationType::EventCount
                && let Some((_, t)) = c
                    .condition
                    .iter()
                    .find(|(op, _)| matches!(op, crate::ast::CmpOp::Gt | crate::ast::CmpOp::Gte))
                && *t >= limits.max_events_per_group as f64
            {
                tracing::warn!(rule = %stored.ast.meta.title, threshold = *t,
                    limit = limits.max_events_per_group,
                    "sigma event_count threshold at or above max_events_per_group: cannot fire");
            }
            let meta = &stored.ast.meta;
            correlations.push(BoundCorrelation {
                rule_id: meta.key().to_string(),
                title: meta.title.clone(),
                level: level_of(meta),
                tags: meta.tags.clone(),
                group_names: c.group_by.clone(),
                group_slots,
                field_slots,
                windows: Windows::new(c.kind, c.timespan_ms, c.condition.clone(), c.rules.len()),
                emit: true,
            });
        }
        // A correlation referenced by another is an intermediate step: not reported itself
        // unless every referencing correlation says `generate: true`.
        for (ci, feeds) in correlation_feeds.iter().enumerate() {
            if !feeds.is_empty() {
                let generate = rules
                    .rules
                    .iter()
                    .filter_map(|r| match &r.ast.body {
                        RuleBody::Correlation(c) => Some(c),
                        _ => None,
                    })
                    .enumerate()
                    .filter(|(i, _)| feeds.iter().any(|(t, _)| t == i))
                    .all(|(_, c)| c.generate);
                if !generate {
                    correlations[ci].emit = false;
                }
            }
        }
        // Order: a correlation after every correlation it references (the graph is acyclic).
        let mut order = Vec::new();
        let mut placed = vec![false; correlations.len()];
        while order.len() < correlations.len() {
            let before = order.len();
            for ci in 0..correlations.len() {
                if placed[ci] {
                    continue;
                }
                let deps_placed = correlation_feeds
                    .iter()
                    .enumerate()
                    .filter(|(_, feeds)| feeds.iter().any(|(t, _)| *t == ci))
                    .all(|(dep, _)| placed[dep]);
                if deps_placed {
                    placed[ci] = true;
                    order.push(ci);
                }
            }
            if order.len() == before {
                break;
            }
        }
        let (gates, needle_scans) = assign_gates(&mut bound_rules);
        let metas = rules
            .rules
            .iter()
            .map(|r| (r.ast.meta.key().to_string(), r.ast.meta.clone()))
            .collect();
        Engine {
            gates,
            needle_scans,
            metas,
            slots: binder.slots,
            rules: bound_rules,
            rule_feeds,
            correlations,
            correlation_feeds,
            correlation_order: order,
            event_id_slot,
            limits,
            stats: CorrelationStats::default(),
            scratch: Scratch::default(),
        }
    }

    /// Evaluates one event at event time `time_ms`: the detection rules that match it, and the
    /// correlation rules that fire because of it.
    pub fn evaluate<E: Event + ?Sized>(&mut self, event: &E, time_ms: i64) -> Vec<Match> {
        self.scratch
            .reset(self.slots.len(), self.gates.len(), &self.needle_scans);
        let mut fields = Fields {
            event,
            slots: &self.slots,
            values: vec![None; self.slots.len()],
            scratch: &mut self.scratch,
        };
        let mut out = Vec::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            if let Some(g) = rule.gate {
                if fields.scratch.gate_state[g] == 0 {
                    let pass = match &self.gates[g] {
                        Gate::Field { slot, test } => {
                            fields.get(*slot).is_some_and(|v| test.is_match(v))
                        }
                        Gate::Keywords { test } => {
                            let buffer = fields.keyword_buffer();
                            test.matches_keyword_buffer(buffer).unwrap_or(true)
                        }
                        Gate::Needles { scans, ids } => {
                            let mut undecided = false;
                            for &k in scans {
                                undecided |= !fields.scan_needles(k, &self.needle_scans[k]);
                            }
                            undecided || ids.iter().any(|&id| fields.scratch.needle_found[id])
                        }
                    };
                    fields.scratch.gate_state[g] = if pass { 1 } else { 2 };
                }
                if fields.scratch.gate_state[g] == 2 {
                    continue;
                }
            }
            if rule.required.iter().any(|s| fields.get(*s).is_none()) {
                continue;
            }
            if !eval_cond(&rule.detection.condition, &rule.detection, &mut fields) {
                continue;
            }
            if rule
                .filters
                .iter()
                .any(|f| eval_cond(&f.condition, f, &mut fields))
            {
                continue;
            }
            if rule.emit {
                out.push(Match {
                    rule_id: rule.rule_id.clone(),
                    title: rule.title.clone(),
                    level: rule.level,
                    tags: rule.tags.clone(),
                    kind: MatchKind::Event,
                    event_ids: Vec::new(),
                });
            }
            fields
                .scratch
                .hits
                .extend(self.rule_feeds[ri].iter().copied());
        }
        if fields.scratch.hits.is_empty() {
            return out;
        }
        // Taken out of the scratch so that `fields` stays usable while they are filled.
        let mut hits = std::mem::take(&mut fields.scratch.hits);
        let mut key = std::mem::take(&mut fields.scratch.key);
        let mut text = std::mem::take(&mut fields.scratch.text);
        // The event's id, shared by every window it enters; made on first use.
        let mut event_id: Option<Option<Arc<str>>> = None;
        for &ci in &self.correlation_order {
            let mut fired_here = false;
            // `hits` grows while we walk it (correlations feeding correlations), so by index.
            let mut h = 0;
            while h < hits.len() {
                let (c, member) = hits[h];
                h += 1;
                if c != ci {
                    continue;
                }
                let corr = &mut self.correlations[ci];
                if !group_key(&corr.group_slots[member], &mut fields, &mut key) {
                    continue;
                }
                let value_slots = &corr.field_slots[member];
                // Only what the aggregate reads: the joined values for value_count, the first
                // value as a number for value_sum / value_avg.
                let value_text = match corr.windows.kind {
                    CorrelationType::ValueCount if !value_slots.is_empty() => {
                        text.clear();
                        let mut complete = true;
                        for (i, slot) in value_slots.iter().enumerate() {
                            if i > 0 {
                                text.push('\u{1f}');
                            }
                            if !fields.push_text(*slot, &mut text) {
                                complete = false;
                                break;
                            }
                        }
                        complete.then_some(text.as_str())
                    }
                    _ => None,
                };
                let number = match corr.windows.kind {
                    CorrelationType::ValueSum | CorrelationType::ValueAvg => value_slots
                        .first()
                        .and_then(|s| fields.get(*s))
                        .and_then(FieldValue::as_f64),
                    _ => None,
                };
                let event_id = event_id
                    .get_or_insert_with(|| match fields.get(self.event_id_slot) {
                        Some(FieldValue::Str(id)) => Some(Arc::from(id.as_ref())),
                        _ => fields.text(self.event_id_slot).map(Arc::from),
                    })
                    .clone();
                let contribution = Contribution {
                    time_ms,
                    member,
                    text: value_text,
                    number,
                    event_id,
                };
                let fired = corr
                    .windows
                    .add(&key, contribution, &self.limits, &mut self.stats);
                if let Some(f) = fired {
                    fired_here = true;
                    if corr.emit {
                        let group = corr
                            .group_names
                            .iter()
                            .zip(&corr.group_slots[member])
                            .map(|(name, slot)| {
                                (name.clone(), fields.text(*slot).unwrap_or_default())
                            })
                            .collect();
                        out.push(Match {
                            rule_id: corr.rule_id.clone(),
                            title: corr.title.clone(),
                            level: corr.level,
                            tags: corr.tags.clone(),
                            kind: MatchKind::Correlation {
                                correlation: corr.windows.kind,
                                group,
                                value: f.value,
                                first_ms: f.first_ms,
                                last_ms: f.last_ms,
                            },
                            event_ids: f.event_ids,
                        });
                    }
                }
            }
            if fired_here {
                hits.extend(self.correlation_feeds[ci].iter().copied());
            }
        }
        fields.scratch.hits = hits;
        fields.scratch.key = key;
        fields.scratch.text = text;
        out
    }

    /// Counters of the correlation limits.
    pub fn stats(&self) -> CorrelationStats {
        let mut stats = self.stats;
        stats.groups_open = self
            .correlations
            .iter()
            .map(|c| c.windows.open_groups() as u64)
            .sum();
        stats
    }

    /// Metadata of a rule by the id its matches carry ([`Match::rule_id`]).
    pub fn rule(&self, rule_id: &str) -> Option<&RuleMeta> {
        self.metas.get(rule_id)
    }

    /// Number of detection rules bound (excluding filters and correlations).
    pub fn detection_rules(&self) -> usize {
        self.rules.len()
    }

    /// Number of distinct event fields the rules read.
    pub fn field_slots(&self) -> usize {
        self.slots.len()
    }
}
