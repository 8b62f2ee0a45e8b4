//! Attack-payload detection: the [`AttackDetector`] and its configuration.
//!
//! Built once from [`AttackConfig`], the detector compiles every enabled rule into one
//! `RegexSet` per normalised view (all families of that view together: one lazy-DFA scan
//! instead of one per family measured about six times cheaper), one multi-line set of the
//! rules of every view but the Log4j one, and literal triggers per family (a byte table and
//! an Aho-Corasick automaton). For each request it extracts all user-controlled values
//! (`extract`) and normalises each one (`normalize`). The views of all values are then
//! joined one per line and scanned once with the multi-line set: most requests are proven
//! clean by that single scan. Only when it matches are values re-checked singly, and a value
//! that matches takes the per-value path: look up which families' triggers occur, and scan
//! only the views those families use — first with the cheap yes/no `is_match`, then
//! `matches` to name the rules. Three detectors need more than a regex and are code: SSRF
//! (host parsing, `ssrf`), session ids in parameters, and URLs passed to include-style
//! parameters.

mod extract;
mod model;
mod normalize;
mod rules;
mod ssrf;

use std::borrow::Cow;
use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{Regex, RegexSet, RegexSetBuilder};

pub use model::{AttackFinding, Family, Inspection, Severity};

use crate::InspectError;
use extract::{Collector, Item};
use normalize::ViewBuilder;
use rules::{Rule, View, target};

/// The request as the gateway saw it; everything is borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Raw path as received (percent-encoded), without the query.
    pub path: &'a str,
    /// Decoded path parameters if an OpenAPI operation matched, else empty.
    pub path_params: &'a [(&'a str, String)],
    /// Raw query string, without `?`.
    pub query: Option<&'a str>,
    /// Request headers; user-controlled ones are inspected, credentials and hop-by-hop
    /// headers are skipped.
    pub headers: &'a http::HeaderMap,
    /// The `Content-Type` header value.
    pub content_type: Option<&'a str>,
    /// The raw body.
    pub body: Option<&'a [u8]>,
    /// The body already parsed as JSON by the caller, if it did.
    pub json: Option<&'a serde_json::Value>,
}

/// Attack detection configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackConfig {
    /// Detector ids (`sqli.tautology`) or family names (`sqli`, `xss`, `lfi`, `rfi`, `rce`,
    /// `php`, `ssrf`, `nosqli`, `proto`, `xxe`, `crlf`, `java`, `session`, `node`, `ssti`)
    /// to switch off.
    pub disabled: Vec<String>,
    /// At most this many values are inspected per request (names and values count).
    pub max_values: usize,
    /// At most this many bytes of values are inspected per request.
    pub max_bytes: usize,
}

impl Default for AttackConfig {
    fn default() -> Self {
        Self {
            disabled: Vec::new(),
            max_values: 10_000,
            max_bytes: 1024 * 1024,
        }
    }
}

/// Detectors implemented in code rather than as a regex row.
struct CodeDetector {
    id: &'static str,
    family: Family,
    severity: Severity,
    cwe: u32,
    technique: &'static str,
}

const SSRF_INTERNAL: CodeDetector = CodeDetector {
    id: "ssrf.internal_destination",
    family: Family::Ssrf,
    severity: Severity::Critical,
    cwe: 918,
    technique: "T1190",
};
const SESSION_PARAM: CodeDetector = CodeDetector {
    id: "session.id_in_parameter",
    family: Family::SessionFixation,
    severity: Severity::Critical,
    cwe: 384,
    technique: "T1550",
};
const RFI_INCLUDE_PARAM: CodeDetector = CodeDetector {
    id: "rfi.url_in_include_parameter",
    family: Family::RemoteFileInclusion,
    severity: Severity::Critical,
    cwe: 98,
    technique: "T1190",
};
const CODE_DETECTORS: [&CodeDetector; 3] = [&SSRF_INTERNAL, &SESSION_PARAM, &RFI_INCLUDE_PARAM];

/// The rules of one view, all families together: one lazy-DFA scan answers for every
/// family (measured about six times cheaper than one set per family).
struct ViewSet {
    view: View,
    set: RegexSet,
    /// Index into `AttackDetector::rules` for each pattern of `set`.
    rule_index: Vec<usize>,
    /// Families with rules in this view: the set runs only if one of them was triggered.
    families: u32,
}

/// The compiled attack detector. Build once, share across threads.
pub struct AttackDetector {
    rules: Vec<Rule>,
    /// One compiled set per view.
    view_sets: Vec<ViewSet>,
    /// Multi-character triggers.
    prefilter: AhoCorasick,
    /// Family bit mask for each prefilter pattern.
    trigger_families: Vec<u32>,
    /// For each byte value: the families it triggers alone (low 16 bits) and its
    /// `normalize::class` bits (high 16 bits), so one table lookup per byte answers both.
    byte_bits: [u32; 256],
    /// Every rule of the text, code, command and path views in one multi-line set: one
    /// scan of all values' views, joined one per line, proves most requests clean (see
    /// `inspect`).
    joined_set: RegexSet,
    enabled_families: u32,
    code_enabled: [bool; 3],
    views: ViewBuilder,
    lookups: Regex,
    xml_values: Regex,
    /// Session cookie names of common frameworks: never legitimate as a parameter.
    session_framework_names: Regex,
    /// Generic session-id parameter names: suspicious only with an off-site referer.
    session_generic_names: Regex,
    include_params: Regex,
    max_values: usize,
    max_bytes: usize,
}

impl std::fmt::Debug for AttackDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttackDetector")
            .field("rules", &self.rules.len())
            .field("enabled_families", &self.enabled_families)
            .finish_non_exhaustive()
    }
}

fn compile(id: &str, pattern: &str) -> Result<Regex, InspectError> {
    Regex::new(&crate::pattern::ascii_escapes(pattern)).map_err(|source| InspectError::Pattern {
        id: id.to_owned(),
        source,
    })
}

impl AttackDetector {
    /// Compiles the enabled detectors.
    pub fn new(cfg: &AttackConfig) -> Result<Self, InspectError> {
        if cfg.max_values == 0 || cfg.max_bytes == 0 {
            return Err(InspectError::InvalidLimit(
                "max_values and max_bytes must be > 0",
            ));
        }
        let all_rules = rules::builtin_rules();
        for name in &cfg.disabled {
            let known = all_rules.iter().any(|r| r.id == name)
                || CODE_DETECTORS.iter().any(|d| d.id == name)
                || Family::ALL.iter().any(|f| f.as_str() == name);
            if !known {
                return Err(InspectError::UnknownDetector(name.clone()));
            }
        }
        let is_disabled =
            |id: &str, family: Family| cfg.disabled.iter().any(|d| d == id || d == family.as_str());
        let rules: Vec<Rule> = all_rules
            .into_iter()
            .filter(|r| !is_disabled(r.id, r.family))
            .collect();
        let code_enabled = CODE_DETECTORS.map(|d| !is_disabled(d.id, d.family));

        let mut view_sets = Vec::new();
        let mut enabled_families = 0u32;
        let mut joined_patterns = Vec::new();
        for view in [View::Text, View::Code, View::Cmd, View::Lookup, View::Path] {
            let members: Vec<usize> = (0..rules.len())
                .filter(|&i| rules[i].view == view)
                .collect();
            if members.is_empty() {
                continue;
            }
            for &i in &members {
                // Compile each alone first so an error names the rule.
                compile(rules[i].id, &rules[i].pattern)?;
                if view != View::Lookup {
                    joined_patterns.push(crate::pattern::ascii_escapes(&rules[i].pattern));
                }
            }
            let set = RegexSetBuilder::new(
                members
                    .iter()
                    .map(|&i| crate::pattern::ascii_escapes(&rules[i].pattern)),
            )
            .size_limit(64 * 1024 * 1024)
            .dfa_size_limit(16 * 1024 * 1024)
            .build()
            .map_err(|source| InspectError::Pattern {
                id: format!("{view:?}"),
                source,
            })?;
            let families = members
                .iter()
                .fold(0, |acc, &i| acc | rules[i].family.bit());
            enabled_families |= families;
            view_sets.push(ViewSet {
                view,
                set,
                rule_index: members,
                families,
            });
        }

        let mut trigger_patterns: Vec<&'static str> = Vec::new();
        let mut trigger_families = Vec::new();
        let mut byte_triggers = [0u32; 256];
        const _: () = assert!(
            Family::ALL.len() <= 16,
            "family bits share a u32 with classes"
        );
        for family in Family::ALL {
            if enabled_families & family.bit() == 0 {
                continue;
            }
            for t in rules::family_triggers(family) {
                if let [b] = t.as_bytes() {
                    byte_triggers[usize::from(*b)] |= family.bit();
                    // The table is also read on raw values that are lower-cased later.
                    byte_triggers[usize::from(b.to_ascii_uppercase())] |= family.bit();
                } else if let Some(pos) = trigger_patterns.iter().position(|p| p == t) {
                    trigger_families[pos] |= family.bit();
                } else {
                    trigger_patterns.push(t);
                    trigger_families.push(family.bit());
                }
            }
        }
        // Non-overlapping leftmost-longest search: it can use the SIMD (Teddy) prefilter,
        // unlike an overlapping search. A trigger that is a prefix of a longer one at the
        // same place is not reported, so no family's trigger may be a prefix of another
        // family's trigger unless both would trigger the same views (`proc/`, not `proc`,
        // next to `process`).
        let prefilter = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&trigger_patterns)?;

        let byte_bits =
            std::array::from_fn(|b| byte_triggers[b] | u32::from(normalize::BYTE_CLASS[b]) << 16);
        // Multi-line: `^` and `$` also match at the line breaks between the joined values
        // (which contain none themselves, so a value alone matches exactly as before).
        let joined_set = RegexSetBuilder::new(joined_patterns)
            .multi_line(true)
            .size_limit(64 * 1024 * 1024)
            .dfa_size_limit(16 * 1024 * 1024)
            .build()
            .map_err(|source| InspectError::Pattern {
                id: "joined_set".to_owned(),
                source,
            })?;

        Ok(Self {
            rules,
            view_sets,
            prefilter,
            trigger_families,
            byte_bits,
            joined_set,
            enabled_families,
            code_enabled,
            views: ViewBuilder::new()?,
            lookups: compile(
                "java.lookup_resolution",
                r"\$\{(?:(?:lower|upper)\s*:([^${}]*)|[^${}:]*:[^${}:]*:-([^{}]*)|:{0,2}-([^{}]*))\}",
            )?,
            xml_values: compile("extract.xml_values", r#""([^"]*)"|'([^']*)'|>([^<]+)<"#)?,
            session_framework_names: compile(
                "session.framework_names",
                r"^(?:jsessionid|phpsessid|phpsession|aspsessionid\w*|asp\.net_sessionid|cfid|cftoken|cfsid|jwsession|laravel_session|_flask_session|play_session|koa\.sess(?:\.sig)?|connect\.sid|cakephp|meteor_login_token|shiny-token|(?:__secure-|__host-)?next-auth\.session-token|rack\.session|ci_session|symfony)$",
            )?,
            session_generic_names: compile(
                "session.generic_names",
                r"^(?:\w*[_.-])?(?:session|sess|sid)(?:[_.-]?(?:id|token|key))?$",
            )?,
            include_params: compile(
                "rfi.include_params",
                r"(?:include|require|_path$|^path$|absolute_path|root_?dir|base_?dir|_dir$|^dir$|^file$|^page$|^template$|^inc$)",
            )?,
            max_values: cfg.max_values,
            max_bytes: cfg.max_bytes,
        })
    }

    /// Inspects one request.
    pub fn inspect(&self, req: &RequestView<'_>) -> Inspection {
        let parsed;
        let mut json = req.json;
        if json.is_none()
            && let Some(body) = req.body
        {
            let ct = req.content_type.unwrap_or("").to_ascii_lowercase();
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            if ct.contains("json") || (ct.is_empty() && matches!(first, Some(b'{' | b'['))) {
                parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
                json = parsed.as_ref();
            }
        }
        let body_len = req.body.map_or(0, <[u8]>::len);
        let mut collector = Collector::new(self.max_values, self.max_bytes, body_len);
        extract::extract(req, json, &self.xml_values, &mut collector);
        let offsite_referer = offsite_referer(req.headers);

        // Values are not scanned one by one: the distinct views of every value (text, code,
        // command, path; for most values all four are the text itself) are joined, one per
        // line, and one multi-line scan of every rule of those views proves them all clean
        // at once. A short value costs a scan's set-up more than its bytes, and requests
        // carry many short values (keys, ids, dates). The joined scan is a superset test
        // (any rule against any view), so only when it matches are the values re-checked
        // singly, and those that match take the per-view scans, which decide exactly as
        // before. Values with a line break or a Log4j lookup are scanned singly.
        let mut joined = String::with_capacity(collector.bytes() + collector.items.len());
        let mut joined_items: Vec<JoinedItem> = Vec::with_capacity(collector.items.len());
        // (item index, pass, finding): sorted back into per-value order before the
        // (detector, location) dedup, so the result does not depend on which values took
        // the joined scan.
        let mut raw_findings: Vec<(usize, u8, Finding)> = Vec::new();
        let mut scratch = String::new();
        for (index, item) in collector.items.iter().enumerate() {
            let (text, bits) = self.text_view(item, &mut scratch);
            let class = (bits >> 16) as u16;
            let families = bits & FAMILY_BITS;
            let joinable = class & normalize::class::VIEW_BYTE == 0
                || !(text.contains('\n') || text.contains("${"));
            if joinable {
                let start = joined.len();
                joined.push_str(text);
                let text_end = joined.len();
                if !normalize::views_equal_text(text, class) {
                    // Only the views that differ are built: each builder rescans the value.
                    let changes = normalize::view_changes(text);
                    let unchanged = || Cow::Borrowed(text);
                    let code = if changes.code {
                        self.views.code_view(text)
                    } else {
                        unchanged()
                    };
                    let cmd = if changes.cmd {
                        self.views.cmd_view(text)
                    } else {
                        unchanged()
                    };
                    let path = if changes.path {
                        self.views.path_view(text)
                    } else {
                        unchanged()
                    };
                    let views: [&str; 3] = [&code, &cmd, &path];
                    for (i, view) in views.iter().enumerate() {
                        if *view != text && !views[..i].contains(view) {
                            joined.push('\n');
                            joined.push_str(view);
                        }
                    }
                }
                joined_items.push(JoinedItem {
                    index,
                    text: start..text_end,
                    lines: start..joined.len(),
                    families,
                });
                joined.push('\n');
            } else {
                self.scan_views(item, text, families, &mut |f| {
                    raw_findings.push((index, 0, f));
                });
            }
            self.code_detectors(item, text, class, offsite_referer, &mut |f| {
                raw_findings.push((index, 1, f));
            });
        }
        if !joined_items.is_empty() && self.joined_set.is_match(&joined) {
            for entry in &joined_items {
                let lines = joined.get(entry.lines.clone()).unwrap_or("");
                if self.joined_set.is_match(lines) {
                    let text = joined.get(entry.text.clone()).unwrap_or("");
                    let item = &collector.items[entry.index];
                    self.scan_views(item, text, entry.families, &mut |f| {
                        raw_findings.push((entry.index, 0, f));
                    });
                }
            }
        }
        raw_findings.sort_by_key(|(index, pass, _)| (*index, *pass));

        let mut findings = Vec::new();
        let mut seen: HashSet<(&'static str, &str)> = HashSet::new();
        for (index, _, rule) in raw_findings {
            let location = collector.location(&collector.items[index]);
            if seen.insert((rule.id, location)) {
                findings.push(AttackFinding {
                    id: rule.id,
                    family: rule.family,
                    severity: rule.severity,
                    score: rule.severity.score(),
                    cwe: rule.cwe,
                    attack_technique: rule.technique,
                    location: location.to_owned(),
                });
            }
        }
        let mut scored: HashSet<&'static str> = HashSet::new();
        let score = findings
            .iter()
            .filter(|f| scored.insert(f.id))
            .map(|f| f.score)
            .sum();
        if collector.capped {
            tracing::debug!(
                values = collector.items.len(),
                "attack inspection capped; part of the request was not inspected"
            );
        }
        Inspection {
            findings,
            score,
            capped: collector.capped,
            values_inspected: collector.items.len(),
        }
    }

    /// The text view of a value and the `byte_bits` of that text.
    fn text_view<'s>(&self, item: &'s Item<'_>, scratch: &'s mut String) -> (&'s str, u32) {
        let raw_bits = self.byte_bits(&item.raw);
        let raw_class = (raw_bits >> 16) as u16;
        let text =
            normalize::text_view_classified(&item.raw, raw_class, item.plus_as_space, scratch);
        // Decoding and Unicode normalisation can produce any byte; lower-casing only changes
        // letters, whose bits the table already folds together.
        if normalize::text_keeps_non_letters(raw_class, item.plus_as_space) {
            (text, raw_bits)
        } else {
            (text, self.byte_bits(text))
        }
    }

    /// The detectors written as code rather than as rules (`class`: the text's
    /// `normalize::class` bits).
    fn code_detectors(
        &self,
        item: &Item<'_>,
        text: &str,
        class: u16,
        offsite_referer: bool,
        emit: &mut dyn FnMut(Finding),
    ) {
        // SSRF: values that reference an internal destination. Referer and Origin point at
        // the page the user came from, which may legitimately be an internal host.
        let ssrf_target =
            item.target & (target::QUERY | target::BODY | target::HEADER | target::PATH) != 0
                && !matches!(item.header, Some("referer" | "origin"));
        if self.code_enabled[0]
            && ssrf_target
            && class & normalize::class::URL != 0
            && ssrf::internal_target(text).is_some()
        {
            emit(Finding::from_code(&SSRF_INTERNAL));
        }
        // Session fixation: a session id passed as a request parameter.
        if self.code_enabled[1] && item.is_param_name {
            let name = text.trim();
            if may_be_session_name(name)
                && (self.session_framework_names.is_match(name)
                    || (offsite_referer && self.session_generic_names.is_match(name)))
            {
                emit(Finding::from_code(&SESSION_PARAM));
            }
        }
        // Remote file inclusion: a URL given to an include/path-like parameter.
        if self.code_enabled[2]
            && let Some(param) = &item.param
            && (text.starts_with("http://")
                || text.starts_with("https://")
                || text.starts_with("ftp://"))
            && self.include_params.is_match(&param.to_lowercase())
        {
            emit(Finding::from_code(&RFI_INCLUDE_PARAM));
        }
    }

    /// The per-view scans of one value: the trigger search decides which views' sets run
    /// (`single_byte_families`: the families its bytes trigger alone).
    fn scan_views(
        &self,
        item: &Item<'_>,
        text: &str,
        single_byte_families: u32,
        emit: &mut dyn FnMut(Finding),
    ) {
        let mut mask = single_byte_families;
        if text.starts_with('.') {
            mask |= Family::PathTraversal.bit();
        }
        if mask != self.enabled_families {
            for m in self.prefilter.find_iter(text) {
                mask |= self.trigger_families[m.pattern().as_usize()];
                if mask == self.enabled_families {
                    break;
                }
            }
        }
        if mask == 0 {
            return;
        }
        for view_set in &self.view_sets {
            if mask & view_set.families == 0 {
                continue;
            }
            let haystack: Cow<'_, str> = match view_set.view {
                View::Text => Cow::Borrowed(text),
                View::Code => self.views.code_view(text),
                View::Cmd => self.views.cmd_view(text),
                View::Path => self.views.path_view(text),
                View::Lookup => {
                    if !text.contains("${") {
                        continue;
                    }
                    Cow::Owned(self.resolve_lookups(text))
                }
            };
            let haystack: &str = &haystack;
            // Most triggered values are still clean: the cheaper yes/no scan first.
            if !view_set.set.is_match(haystack) {
                continue;
            }
            for m in view_set.set.matches(haystack).iter() {
                let rule = &self.rules[view_set.rule_index[m]];
                if rule.targets & item.target != 0 {
                    emit(Finding::from_rule(rule));
                }
            }
        }
    }

    /// The union of the `byte_bits` of every byte of `text`.
    fn byte_bits(&self, text: &str) -> u32 {
        // One table lookup per byte instead of a chain of comparisons: this loop sees every
        // byte of every value.
        text.bytes()
            .fold(0, |acc, b| acc | self.byte_bits[usize::from(b)])
    }

    /// Resolves Log4j lookups that only produce characters (`${lower:J}`, `${::-j}`,
    /// `${env:NONE:-j}`), innermost first, so `${${lower:j}ndi:` reads `${jndi:`.
    fn resolve_lookups(&self, text: &str) -> String {
        let mut current = text.to_owned();
        for _ in 0..16 {
            if !current.contains("${") {
                break;
            }
            let next = self
                .lookups
                .replace_all(&current, |caps: &regex::Captures<'_>| {
                    caps.get(1)
                        .or_else(|| caps.get(2))
                        .or_else(|| caps.get(3))
                        .map_or(String::new(), |m| m.as_str().to_owned())
                })
                .into_owned();
            if next == current {
                break;
            }
            current = next;
        }
        current
    }
}

/// A cheap necessary condition for the session-name regexes: every name either of them
/// accepts contains one of these, so most parameter names skip both scans. One byte scan
/// rather than four substring searches: it runs on every parameter and JSON key name.
fn may_be_session_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    name.starts_with("cf")
        || name == "cakephp"
        || name == "symfony"
        || bytes.iter().enumerate().any(|(i, &b)| {
            let rest = &bytes[i..];
            match b {
                b's' => rest.starts_with(b"sess") || rest.starts_with(b"sid"),
                b't' => rest.starts_with(b"token"),
                _ => false,
            }
        })
}

/// Whether the Referer points at a different host than the request (a session id set
/// from another site is the classic fixation set-up).
fn offsite_referer(headers: &http::HeaderMap) -> bool {
    let Some(referer) = headers
        .get(http::header::REFERER)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let referer_host = referer
        .split_once("://")
        .map_or(referer, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    !referer_host.eq_ignore_ascii_case(host)
}

/// The low 16 bits of `byte_bits`: families.
const FAMILY_BITS: u32 = 0xffff;

/// A value waiting for the joined scan.
struct JoinedItem {
    /// Index into the collector's items.
    index: usize,
    /// The value's text view, as a range of the joined views.
    text: std::ops::Range<usize>,
    /// All its distinct views, one per line, as a range of the joined views.
    lines: std::ops::Range<usize>,
    /// The families its bytes trigger alone.
    families: u32,
}

/// The classification of a detector that fired, independent of where.
struct Finding {
    id: &'static str,
    family: Family,
    severity: Severity,
    cwe: u32,
    technique: &'static str,
}

impl Finding {
    fn from_rule(rule: &Rule) -> Self {
        Self {
            id: rule.id,
            family: rule.family,
            severity: rule.severity,
            cwe: rule.cwe,
            technique: rule.technique,
        }
    }

    fn from_code(d: &CodeDetector) -> Self {
        Self {
            id: d.id,
            family: d.family,
            severity: d.severity,
            cwe: d.cwe,
            technique: d.technique,
        }
    }
}

/// Every built-in detector id, for configuration validation and documentation.
pub fn detector_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = rules::builtin_rules().iter().map(|r| r.id).collect();
    ids.extend(CODE_DETECTORS.iter().map(|d| d.id));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_name_precheck_admits_every_name_the_regexes_accept() {
        let detector = AttackDetector::new(&AttackConfig::default()).unwrap();
        let names = [
            "jsessionid",
            "phpsessid",
            "phpsession",
            "aspsessionidabcd",
            "asp.net_sessionid",
            "cfid",
            "cftoken",
            "cfsid",
            "jwsession",
            "laravel_session",
            "_flask_session",
            "play_session",
            "koa.sess",
            "koa.sess.sig",
            "connect.sid",
            "cakephp",
            "meteor_login_token",
            "shiny-token",
            "__secure-next-auth.session-token",
            "rack.session",
            "ci_session",
            "symfony",
            "session",
            "sess_id",
            "sid",
            "user_sessionkey",
            "x.sid-token",
        ];
        for name in names {
            assert!(
                detector.session_framework_names.is_match(name)
                    || detector.session_generic_names.is_match(name),
                "{name} is not a session name"
            );
            assert!(may_be_session_name(name), "{name} skipped");
        }
        for name in ["title", "content", "created_on", "email"] {
            assert!(!may_be_session_name(name), "{name}");
        }
    }
}
