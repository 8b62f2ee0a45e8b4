//! Every error the config code can produce, one fixture each, and secret resolution.
//!
//! Each file in `tests/fixtures/config/invalid/` starts with its expectations:
//!
//! ```yaml
//! # expect: routes[0].request.max_bdy | unknown field `max_bdy`
//! # line: 12:7
//! ```
//!
//! `# expect: FIELD | SUBSTRING` names an error that must be reported (field path exactly,
//! message containing the substring); a `# line: N` or `# line: N:C` right after it pins the
//! position that error must point at. A fixture must produce exactly the errors it expects,
//! no more, so one fixture keeps testing one thing. `(file)` stands for the empty field path
//! (an error about the file as a whole).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_gateway::config::{self, ConfigError};

const INVALID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config/invalid");

/// Referenced by `admin_env_token_unset.yaml` and friends: must never be set.
const UNSET_VAR: &str = "PORTCULLIS_FIXTURE_UNSET_TOKEN";

#[derive(Debug)]
struct Expect {
    field: String,
    message: String,
    line: Option<u64>,
    column: Option<u64>,
}

/// The `# expect:` / `# line:` header of a fixture.
fn expectations(file: &Path, text: &str) -> Vec<Expect> {
    let mut out: Vec<Expect> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# expect:") {
            let (field, message) = rest
                .split_once('|')
                .unwrap_or_else(|| panic!("{}: `# expect: FIELD | MESSAGE`", file.display()));
            let field = field.trim();
            out.push(Expect {
                field: if field == "(file)" { "" } else { field }.to_string(),
                message: message.trim().to_string(),
                line: None,
                column: None,
            });
        } else if let Some(rest) = line.strip_prefix("# line:") {
            let last = out
                .last_mut()
                .unwrap_or_else(|| panic!("{}: `# line:` before any `# expect:`", file.display()));
            let (l, c) = match rest.trim().split_once(':') {
                Some((l, c)) => (l, Some(c)),
                None => (rest.trim(), None),
            };
            last.line = Some(l.parse().unwrap());
            last.column = c.map(|c| c.parse().unwrap());
        }
    }
    out
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(INVALID)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Check one fixture; return a description of each way it fails.
fn check_fixture(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let mut problems = Vec::new();
    if !text.starts_with("# expect: ") {
        problems.push(format!("{name}: must start with a `# expect:` line"));
    }
    let expects = expectations(path, &text);
    if expects.is_empty() {
        problems.push(format!("{name}: has no `# expect:` line"));
        return problems;
    }
    let errors = match config::load(path) {
        Ok(_) => {
            problems.push(format!("{name}: loaded without errors"));
            return problems;
        }
        Err(e) => e.0,
    };
    let listing = errors
        .iter()
        .map(|e| format!("    {e}"))
        .collect::<Vec<_>>()
        .join("\n");
    for e in &errors {
        if e.file != path {
            problems.push(format!("{name}: error names file {}", e.file.display()));
        }
        if e.line == 0 || e.column == 0 {
            problems.push(format!("{name}: error without a position: {e}"));
        }
        let field = if e.field.is_empty() {
            "(file)"
        } else {
            &e.field
        };
        let shown = format!(
            "{}:{}:{}: {}: {}",
            path.display(),
            e.line,
            e.column,
            field,
            e.message
        );
        if e.to_string() != shown {
            problems.push(format!("{name}: displayed as `{e}`, expected `{shown}`"));
        }
        if e.message.starts_with("error: line ") {
            problems.push(format!("{name}: message repeats the position: {e}"));
        }
    }
    for x in &expects {
        let found: Vec<&ConfigError> = errors
            .iter()
            .filter(|e| e.field == x.field && e.message.contains(&x.message))
            .collect();
        let Some(e) = found.first() else {
            problems.push(format!(
                "{name}: no error `{}: …{}…`; got:\n{listing}",
                x.field, x.message
            ));
            continue;
        };
        if let Some(line) = x.line
            && e.line != line
        {
            problems.push(format!(
                "{name}: `{}` at line {}, expected {line}",
                x.field, e.line
            ));
        }
        if let Some(column) = x.column
            && e.column != column
        {
            problems.push(format!(
                "{name}: `{}` at column {}, expected {column}",
                x.field, e.column
            ));
        }
    }
    if errors.len() != expects.len() {
        problems.push(format!(
            "{name}: {} errors for {} expectations; got:\n{listing}",
            errors.len(),
            expects.len()
        ));
    }
    problems
}

#[test]
fn every_invalid_fixture_reports_its_errors() {
    assert!(
        std::env::var_os(UNSET_VAR).is_none(),
        "{UNSET_VAR} must not be set: fixtures rely on it being absent"
    );
    let files = fixtures();
    assert!(
        files.len() >= 30,
        "expected at least 30 fixtures in {INVALID}, found {}",
        files.len()
    );
    let problems: Vec<String> = files.iter().flat_map(|f| check_fixture(f)).collect();
    assert!(
        problems.is_empty(),
        "{} fixture problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Nested fields are positioned at the offending key or value, not at their section.
#[test]
fn nested_fields_have_lines_asserted() {
    for name in [
        "unknown_field_nested.yaml",
        "unknown_field_tls.yaml",
        "missing_cert_file.yaml",
        "cors_bad_origin.yaml",
        "bad_media_type.yaml",
        "multi_error.yaml",
    ] {
        let path = Path::new(INVALID).join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let expects = expectations(&path, &text);
        assert!(
            expects
                .iter()
                .all(|x| x.line.is_some() && x.column.is_some()),
            "{name}: every expectation should pin line and column"
        );
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let path = Path::new(INVALID).join("multi_error.yaml");
    let errors = config::load(&path).unwrap_err().0;
    let fields: BTreeSet<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.len() >= 5,
        "expected at least 5 distinct errors, got {}:\n{}",
        fields.len(),
        config::ConfigErrors(errors.clone())
    );
    // Errors from every part of the file: listeners, limits, upstreams, routes, events, admin.
    for section in [
        "listeners",
        "limits",
        "trusted_proxies",
        "upstreams",
        "routes",
        "events",
        "admin",
    ] {
        assert!(
            fields.iter().any(|f| f.starts_with(section)),
            "no error in `{section}`"
        );
    }
    // A bad listener address does not hide the same listener's TLS errors.
    assert!(fields.contains("listeners[0].address"));
    assert!(fields.contains("listeners[0].tls.min_version"));
}

#[test]
fn zero_byte_file_is_reported_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("zero.yaml", ""), ("blank.yaml", "\n  \n\n")] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let errors = config::load(&path).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].message, "the config file is empty");
        assert_eq!((errors[0].line, errors[0].column), (1, 1));
        assert_eq!(
            errors[0].to_string(),
            format!("{}:1:1: (file): the config file is empty", path.display())
        );
    }
}

#[test]
fn unreadable_file_names_the_file() {
    let path = Path::new(INVALID).join("no-such-config.yaml");
    let errors = config::load(&path).unwrap_err().0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, path);
    assert!(errors[0].message.contains("cannot read config file"));
}

const BASE: &str = "listeners:
  - address: 127.0.0.1:8080
upstreams:
  api:
    targets: [http://127.0.0.1:3000]
routes:
  - name: api
    upstream: api
    auth:
      public: true
";

fn with_admin(token: &str) -> String {
    format!("{BASE}admin:\n  address: 127.0.0.1:9901\n  token: {token}\n")
}

#[test]
fn file_secret_is_read_relative_to_the_config_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/admin-token"),
        "s3cret-from-a-file\r\n",
    )
    .unwrap();
    let path = dir.path().join("portcullis.yaml");

    // Relative to the config file's folder, not the working directory.
    std::fs::write(&path, with_admin("${file:secrets/admin-token}")).unwrap();
    let cfg = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let admin = cfg.admin.unwrap();
    assert_eq!(admin.token.expose(), "s3cret-from-a-file");
    assert!(
        !format!("{admin:?}").contains("s3cret"),
        "Debug leaks the secret"
    );
    let json = serde_json::to_string(&admin).unwrap();
    assert!(
        !json.contains("s3cret"),
        "Serialize leaks the secret: {json}"
    );

    // Absolute paths work too.
    let abs = dir.path().join("secrets/admin-token");
    std::fs::write(&path, with_admin(&format!("${{file:{}}}", abs.display()))).unwrap();
    let cfg = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.admin.unwrap().token.expose(), "s3cret-from-a-file");

    // A file holding only a newline is an empty secret.
    std::fs::write(dir.path().join("secrets/blank"), "\n").unwrap();
    std::fs::write(&path, with_admin("${file:secrets/blank}")).unwrap();
    let errors = config::load(&path).unwrap_err().0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "admin.token");
    assert_eq!(errors[0].message, "secret is empty");
}

#[test]
fn literal_secret_is_taken_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.yaml");
    std::fs::write(&path, with_admin("literal-token-value")).unwrap();
    let cfg = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.admin.unwrap().token.expose(), "literal-token-value");
}

const ENV_VAR: &str = "PORTCULLIS_CONFIG_ERRORS_TEST_TOKEN";
const ENV_VALUE: &str = "token-from-the-environment";

/// `std::env::set_var` is unsafe in edition 2024 and the workspace forbids unsafe code, so
/// this test runs itself again in a child process that has the variable set.
#[test]
fn env_secret_is_read_from_the_environment() {
    if std::env::var_os(ENV_VAR).is_none() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "env_secret_is_read_from_the_environment",
                "--test-threads=1",
            ])
            .env(ENV_VAR, ENV_VALUE)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.yaml");
    std::fs::write(&path, with_admin(&format!("${{env:{ENV_VAR}}}"))).unwrap();
    let cfg = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.admin.unwrap().token.expose(), ENV_VALUE);

    // Public address: the same token is long enough (≥ 16 characters).
    let text = with_admin(&format!("${{env:{ENV_VAR}}}")).replace("127.0.0.1:9901", "0.0.0.0:9901");
    std::fs::write(&path, text).unwrap();
    config::load(&path).unwrap_or_else(|e| panic!("{e}"));
}
