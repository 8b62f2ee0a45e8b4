//! Attack-payload detection: the [`AttackDetector`] and its configuration.
//!
//! Built once from [`AttackConfig`], the detector compiles every enabled rule into one
//! `RegexSet` per normalised view (all families of that view together: one lazy-DFA scan
//! instead of one per family measured about six times cheaper), plus literal triggers per
//! family (a byte table and an Aho-Corasick automaton). For each request it extracts all
//! user-controlled values (`extract`), normalises each one (`normalize`), looks up which
//! families' triggers occur, and scans only the views those families use — first with the
//! cheap yes/no `is_match`, then `matches` to name the rules. Three detectors need more than a regex and are code:
//! SSRF (host parsing, `ssrf`), session ids in parameters, and URLs passed to include-style
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
    /// Family bit mask for each single-byte trigger.
    byte_triggers: [u32; 256],
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
        for family in Family::ALL {
            if enabled_families & family.bit() == 0 {
                continue;
            }
            for t in rules::family_triggers(family) {
                if let [b] = t.as_bytes() {
                    byte_triggers[usize::from(*b)] |= family.bit();
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

        Ok(Self {
            rules,
            view_sets,
            prefilter,
            trigger_families,
            byte_triggers,
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
        let mut collector = Collector::new(self.max_values, self.max_bytes);
        extract::extract(req, json, &self.xml_values, &mut collector);
        let offsite_referer = offsite_referer(req.headers);

        let mut findings = Vec::new();
        let mut seen: HashSet<(&'static str, &str)> = HashSet::new();
        let mut scratch = String::new();
        for item in &collector.items {
            self.inspect_item(item, offsite_referer, &mut scratch, &mut |rule: Finding| {
                let location = collector.location(item);
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
            });
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

    fn inspect_item(
        &self,
        item: &Item<'_>,
        offsite_referer: bool,
        scratch: &mut String,
        emit: &mut dyn FnMut(Finding),
    ) {
        let text = normalize::text_view(&item.raw, item.plus_as_space, scratch);

        let mut mask = 0u32;
        for &b in text.as_bytes() {
            mask |= self.byte_triggers[usize::from(b)];
        }
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
        if mask != 0 {
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

        // SSRF: values that reference an internal destination. Referer and Origin point at
        // the page the user came from, which may legitimately be an internal host.
        let ssrf_target =
            item.target & (target::QUERY | target::BODY | target::HEADER | target::PATH) != 0
                && !matches!(item.header, Some("referer" | "origin"));
        if self.code_enabled[0]
            && ssrf_target
            && (text.contains('/') || text.contains(':'))
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
/// accepts contains one of these, so most parameter names skip both scans.
fn may_be_session_name(name: &str) -> bool {
    name.contains("sess")
        || name.contains("sid")
        || name.starts_with("cf")
        || name.contains("token")
        || name == "cakephp"
        || name == "symfony"
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
