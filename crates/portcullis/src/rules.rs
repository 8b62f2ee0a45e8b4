//! `portcullis rules`: lint Sigma rules, replay stored events through them, and convert them
//! into SIEM queries over the Portcullis event fields.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use portcullis_sigma::convert::{FieldNames, Target, convert_dir};
use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, RuleSet};

/// Load every rule under `dir`, printing unsupported ones and errors.
fn load(dir: &Path) -> anyhow::Result<(RuleSet, usize)> {
    let (rules, problems) = RuleSet::load_dir(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    for p in &problems {
        eprintln!("{p}");
    }
    Ok((rules, problems.len()))
}

/// `rules check DIR`: exit 1 if any rule fails to load.
pub fn check(dir: &Path) -> anyhow::Result<ExitCode> {
    let (rules, problems) = load(dir)?;
    let count = rules.rules().count();
    println!("{count} rules loaded from {}", dir.display());
    for meta in rules.rules() {
        println!(
            "  {:<36} {:<13} {}",
            meta.key(),
            meta.level.map_or("-", |l| l.as_str()),
            meta.title
        );
    }
    if problems > 0 {
        println!("{problems} rules could not be loaded (listed above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `rules test DIR --events FILE`: replay a JSON-lines event file and print each match.
pub fn test(dir: &Path, events: &Path) -> anyhow::Result<ExitCode> {
    let (rules, _) = load(dir)?;
    let mut engine = Engine::new(
        rules,
        FieldMapping::web_to_ocsf(),
        CorrelationLimits::default(),
    );
    let file =
        std::fs::File::open(events).with_context(|| format!("cannot open {}", events.display()))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut seen, mut matched) = (0u64, 0u64);
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", events.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a JSON event", events.display(), n + 1))?;
        seen += 1;
        let time_ms = event
            .get("time")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_default();
        for m in engine.evaluate(&event, time_ms) {
            matched += 1;
            let request = event
                .pointer("/metadata/uid")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("-");
            writeln!(
                out,
                "{}:{}\t{}\t{}\t{}\trequest {request}",
                events.display(),
                n + 1,
                m.level.as_str(),
                m.rule_id,
                m.title
            )?;
        }
    }
    writeln!(out, "{seen} events, {matched} matches")?;
    Ok(ExitCode::SUCCESS)
}

/// `rules convert --target T DIR`: one query per rule (several for some correlations). A rule
/// the target cannot express is reported on stderr with the reason, and the exit code is 1.
pub fn convert(dir: &Path, target: &str) -> anyhow::Result<ExitCode> {
    let Some(target) = Target::parse(target) else {
        anyhow::bail!("unknown target `{target}`: use splunk, lucene, esql or kql");
    };
    let result = convert_dir(dir, target, &FieldNames::default());
    let mut failures = result.problems.len();
    for (file, e) in &result.problems {
        eprintln!("{}: {e}", file.display());
    }
    for c in &result.converted {
        match &c.queries {
            Ok(queries) => {
                println!("# {} ({})", c.title, c.file.display());
                for q in queries {
                    println!("{q}");
                }
            }
            Err(e) => {
                eprintln!("{}: {}: {e}", c.file.display(), c.title);
                failures += 1;
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
