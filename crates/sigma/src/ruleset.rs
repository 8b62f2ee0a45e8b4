//! [`RuleSet`]: rules read from YAML, checked and compiled, with their metadata, before they are
//! bound to a field mapping by the [`crate::Engine`].
//!
//! References between rules (a correlation naming the rules it counts, a filter naming the
//! rules it tunes) may point to rules in other files, so they are resolved once everything is
//! loaded ([`RuleSet::resolve`]); a correlation that still points nowhere is dropped and
//! reported.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::ast::{Rule, RuleBody, RuleMeta};
use crate::compile::{self, CompiledDetection};
use crate::error::{LoadProblem, SigmaError};
use crate::parse;

/// How rules are referred to: the id, else the name, else the title.
pub type RuleId = String;

#[derive(Clone, Debug)]
pub(crate) struct StoredRule {
    pub ast: Rule,
    /// The compiled detection of a detection or filter rule.
    pub compiled: Option<CompiledDetection>,
}

/// Parsed and compiled Sigma rules, filters and correlations.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub(crate) rules: Vec<StoredRule>,
    placeholders: HashMap<String, Vec<String>>,
    resolved: bool,
}

impl RuleSet {
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Values of a placeholder for the `expand` modifier (`%name%`, without the percent signs).
    /// Set placeholders before adding the rules that use them.
    pub fn set_placeholder(&mut self, name: impl Into<String>, values: Vec<String>) {
        self.placeholders.insert(name.into(), values);
    }

    /// Parses and compiles every document of `text` (one file; `origin` names it in errors).
    /// All or nothing: on error no rule of the file is added. References to other rules are
    /// checked later, by [`RuleSet::resolve`] (or [`RuleSet::load_dir`], or `Engine::new`).
    pub fn add_yaml(&mut self, text: &str, origin: &Path) -> Result<Vec<RuleId>, SigmaError> {
        let parsed = parse::parse_rules(text, origin)?;
        let mut known: HashSet<String> = HashSet::new();
        for r in &self.rules {
            if let Some(id) = &r.ast.meta.id {
                known.insert(format!("id:{id}"));
            }
            if let Some(name) = &r.ast.meta.name {
                known.insert(format!("name:{name}"));
            }
        }
        let mut stored = Vec::new();
        for rule in parsed {
            for (kind, value) in [("id", &rule.meta.id), ("name", &rule.meta.name)] {
                if let Some(value) = value
                    && !known.insert(format!("{kind}:{value}"))
                {
                    return Err(SigmaError::new(
                        origin,
                        Some(rule.meta.line),
                        format!("duplicate rule {kind} '{value}'"),
                    ));
                }
            }
            let compiled = match &rule.body {
                RuleBody::Detection(d) => Some(d),
                RuleBody::Filter(f) => Some(&f.detection),
                RuleBody::Correlation(_) => None,
            }
            .map(|d| compile::compile_detection(d, &self.placeholders))
            .transpose()
            .map_err(|(line, message)| SigmaError::new(origin, Some(line), message))?;
            stored.push(StoredRule {
                ast: rule,
                compiled,
            });
        }
        let ids = stored
            .iter()
            .map(|r| r.ast.meta.key().to_string())
            .collect();
        self.rules.extend(stored);
        self.resolved = false;
        Ok(ids)
    }

    /// Loads every `*.yml` / `*.yaml` file under `dir` (recursively, in path order). Files that
    /// cannot be read, parsed or compiled, and correlations whose references do not resolve,
    /// are skipped and reported; only an unreadable `dir` is an error.
    pub fn load_dir(dir: &Path) -> Result<(RuleSet, Vec<LoadProblem>), SigmaError> {
        let mut set = RuleSet::new();
        let problems = set.add_dir(dir)?;
        Ok((set, problems))
    }

    /// [`RuleSet::load_dir`] into an existing set (e.g. one with placeholders configured).
    pub fn add_dir(&mut self, dir: &Path) -> Result<Vec<LoadProblem>, SigmaError> {
        let files = rule_files(dir)
            .map_err(|e| SigmaError::new(dir, None, format!("cannot read rule directory: {e}")))?;
        let mut problems = Vec::new();
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    if let Err(e) = self.add_yaml(&text, &file) {
                        tracing::warn!(error = %e, "sigma rule skipped");
                        problems.push(e.into());
                    }
                }
                Err(e) => problems.push(LoadProblem {
                    file,
                    line: None,
                    reason: format!("cannot read: {e}"),
                }),
            }
        }
        problems.extend(self.resolve().into_iter().map(LoadProblem::from));
        Ok(problems)
    }

    /// Checks references between rules. Correlations referring to unknown rules (or through
    /// aliases to rules they do not list, or in a cycle) are removed; filters naming no loaded
    /// rule are kept but reported. Returns the problems found.
    pub fn resolve(&mut self) -> Vec<SigmaError> {
        let mut problems = Vec::new();
        loop {
            let mut removed = false;
            let mut keep = vec![true; self.rules.len()];
            for (i, rule) in self.rules.iter().enumerate() {
                if let RuleBody::Correlation(c) = &rule.ast.body {
                    for reference in &c.rules {
                        match self.find(reference) {
                            None => {
                                problems.push(SigmaError::new(
                                    &rule.ast.meta.file,
                                    Some(c.line),
                                    format!(
                                        "correlation '{}' refers to unknown rule '{reference}'",
                                        rule.ast.meta.title
                                    ),
                                ));
                                keep[i] = false;
                            }
                            Some(j) if j == i => {
                                problems.push(SigmaError::new(
                                    &rule.ast.meta.file,
                                    Some(c.line),
                                    "correlation refers to itself",
                                ));
                                keep[i] = false;
                            }
                            Some(_) => {}
                        }
                    }
                    for alias in &c.aliases {
                        for (rule_ref, _) in &alias.fields {
                            if !c.rules.iter().any(|r| {
                                r == rule_ref
                                    || self.find(r).is_some_and(|j| {
                                        let m = &self.rules[j].ast.meta;
                                        m.name.as_deref() == Some(rule_ref)
                                            || m.id.as_deref() == Some(rule_ref)
                                    })
                            }) {
                                problems.push(SigmaError::new(
                                    &rule.ast.meta.file,
                                    Some(c.line),
                                    format!(
                                        "alias '{}' names rule '{rule_ref}', which the correlation does not list",
                                        alias.name
                                    ),
                                ));
                                keep[i] = false;
                            }
                        }
                    }
                }
            }
            if keep.iter().any(|k| !k) {
                removed = true;
                let mut k = keep.into_iter();
                self.rules.retain(|_| k.next().unwrap_or(true));
            }
            if let Some(cycle) = self.find_cycle() {
                let rule = &self.rules[cycle];
                problems.push(SigmaError::new(
                    &rule.ast.meta.file,
                    Some(rule.ast.meta.line),
                    "correlation rules refer to each other in a cycle",
                ));
                self.rules.remove(cycle);
                removed = true;
            }
            if !removed {
                break;
            }
        }
        for rule in &self.rules {
            if let RuleBody::Filter(f) = &rule.ast.body
                && !f.rules.iter().any(|r| self.find(r).is_some())
            {
                problems.push(SigmaError::new(
                    &rule.ast.meta.file,
                    Some(f.line),
                    format!(
                        "filter '{}' names no loaded rule ({})",
                        rule.ast.meta.title,
                        f.rules.join(", ")
                    ),
                ));
            }
        }
        self.resolved = true;
        problems
    }

    pub(crate) fn is_resolved(&self) -> bool {
        self.resolved
    }

    /// Index of the rule with this id or name.
    pub(crate) fn find(&self, reference: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.ast.meta.id.as_deref() == Some(reference))
            .or_else(|| {
                self.rules
                    .iter()
                    .position(|r| r.ast.meta.name.as_deref() == Some(reference))
            })
    }

    fn find_cycle(&self) -> Option<usize> {
        // Depth-first search over correlation → referenced correlation edges.
        fn visit(set: &RuleSet, i: usize, state: &mut [u8]) -> Option<usize> {
            if state[i] == 1 {
                return Some(i);
            }
            if state[i] == 2 {
                return None;
            }
            state[i] = 1;
            if let RuleBody::Correlation(c) = &set.rules[i].ast.body {
                for r in &c.rules {
                    if let Some(j) = set.find(r)
                        && let Some(found) = visit(set, j, state)
                    {
                        return Some(found);
                    }
                }
            }
            state[i] = 2;
            None
        }
        let mut state = vec![0u8; self.rules.len()];
        (0..self.rules.len()).find_map(|i| visit(self, i, &mut state))
    }

    /// Metadata of every loaded document (detection, correlation and filter rules).
    pub fn rules(&self) -> impl Iterator<Item = &RuleMeta> {
        self.rules.iter().map(|r| &r.ast.meta)
    }

    /// The parsed, uncompiled rules (for converters to other query languages).
    pub fn parsed(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.ast)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Every rule file (`*.yml` / `*.yaml`) under `path`, recursively, in path order; `path`
/// itself when it is a file. The one directory walk the engine, the converter and the
/// gateway's config all use.
pub fn rule_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if path.is_file() {
        out.push(path.to_path_buf());
    } else {
        collect_files(path, &mut out)?;
        out.sort();
    }
    Ok(out)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
        {
            out.push(path);
        }
    }
    Ok(())
}
