//! Every `examples/*.yaml` in the repository must validate.
//!
//! An example may reference files (certificates, keys, CA bundles, `${file:…}` secrets) and
//! environment variables (`${env:…}`). Each example is copied into a temporary directory, the
//! relative files it references are created there (certificates made by rcgen), the variables
//! are set, and then it goes through the same `config::load` as `portcullis check`. New
//! examples are picked up automatically.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis_gateway::config::{self, Config};

/// Marks the child run that has the examples' environment variables set.
const CHILD_MARKER: &str = "PORTCULLIS_EXAMPLES_CHECK_CHILD";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// A token value for an environment variable: long enough for a public admin address.
fn env_value(name: &str) -> String {
    format!(
        "examples-check-{}-0123456789abcdef",
        name.to_ascii_lowercase()
    )
}

/// Every `${env:NAME}` in `text`.
fn env_refs(text: &str) -> BTreeSet<String> {
    text.split("${env:")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

/// `std::env::set_var` is unsafe in edition 2024 and the workspace forbids unsafe code, so
/// the test body runs in a child process of this same test binary with the variables set.
/// Returns true in the child (go on with the test), false in the parent (already checked).
fn in_child_with_env(test: &str) -> bool {
    if std::env::var_os(CHILD_MARKER).is_some() {
        return true;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD_MARKER, "1");
    for file in examples() {
        for name in env_refs(&std::fs::read_to_string(&file).unwrap()) {
            cmd.env(&name, env_value(&name));
        }
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed in its child run:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Copy `example` into `dir` and create every relative file it references.
fn stage(example: &Path, dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(example).unwrap();
    let target = dir.join(example.file_name().unwrap());
    let raw: config::raw::RawConfig = serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: does not parse: {e}", example.display()));
    // The OpenAPI documents an example names ship beside it; rule folders are the repo's.
    for spec in raw
        .routes
        .iter()
        .filter_map(|r| r.openapi.as_ref())
        .map(|o| &o.spec)
    {
        if Path::new(spec).is_relative() {
            copy_relative(&examples_dir().join(spec), dir, spec);
        }
    }
    for rules in raw.detection.iter().flat_map(|d| &d.rules) {
        if Path::new(rules).is_relative() {
            let real = examples_dir().join(rules).canonicalize().unwrap();
            text = text.replace(&format!("[{rules}]"), &format!("[\"{}\"]", real.display()));
        }
    }
    std::fs::write(&target, &text).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut certificate = |cert: &str, key: Option<&str>| {
        let host = Path::new(cert)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "localhost".into());
        n += 1;
        let made = common::make_cert(scratch.path(), &format!("c{n}"), &[&host]);
        copy_relative(&made.cert_path, dir, cert);
        if let Some(key) = key {
            copy_relative(&made.key_path, dir, key);
        }
    };
    for l in &raw.listeners {
        for c in l.tls.iter().flat_map(|t| &t.certificates) {
            certificate(&c.cert, Some(&c.key));
        }
    }
    for u in raw.upstreams.values() {
        if let Some(ca) = &u.ca {
            certificate(ca, None);
        }
    }
    for secret in text.split("${file:").skip(1) {
        if let Some((path, _)) = secret.split_once('}')
            && Path::new(path).is_relative()
        {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "examples-check-file-secret-0123456789\n").unwrap();
        }
    }
    target
}

/// Copy `from` to `rel` under `dir`, unless `rel` is absolute (then the example must not be
/// pointing at a real system file we could clobber: leave it, validation will say so).
fn copy_relative(from: &Path, dir: &Path, rel: &str) {
    if Path::new(rel).is_absolute() {
        return;
    }
    let to = dir.join(rel);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// Validate a staged example, and load its TLS certificates the way the listener would.
fn validate(path: &Path) -> Config {
    let cfg = config::load(path).unwrap_or_else(|e| panic!("{} is invalid:\n{e}", path.display()));
    for l in &cfg.listeners {
        if let Some(tls) = &l.tls {
            portcullis_gateway::tls::server_config(tls)
                .unwrap_or_else(|e| panic!("{}: listener {}: {e}", path.display(), l.name));
        }
    }
    cfg
}

#[test]
fn every_example_validates() {
    if !in_child_with_env("every_example_validates") {
        return;
    }
    common::init();
    let files = examples();
    assert!(
        !files.is_empty(),
        "no examples/*.yaml found in {}",
        examples_dir().display()
    );
    for example in &files {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(example, dir.path());
        validate(&staged);
        eprintln!("{}: ok", example.display());
    }
}

#[test]
fn production_example_validates_with_its_certificates_and_token() {
    if !in_child_with_env("production_example_validates_with_its_certificates_and_token") {
        return;
    }
    common::init();
    let example = examples_dir().join("production.yaml");
    let dir = tempfile::tempdir().unwrap();
    let staged = stage(&example, dir.path());
    for f in [
        "certs/api.example.com.pem",
        "certs/api.example.com.key",
        "certs/partners.example.com.pem",
        "certs/partners.example.com.key",
        "certs/internal-ca.pem",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} was not created");
    }
    let cfg = validate(&staged);
    assert_eq!(cfg.listeners.len(), 2);
    assert_eq!(cfg.routes.len(), 2);
    assert_eq!(cfg.upstreams.len(), 2);
    let tls = cfg.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.certificates.len(), 2);
    assert_eq!(
        tls.certificates[0].cert,
        dir.path().join("certs/api.example.com.pem"),
        "certificate paths are relative to the config file"
    );
    assert_eq!(
        tls.hsts.as_deref(),
        Some("max-age=63072000; includeSubDomains")
    );
    assert_eq!(cfg.listeners[1].redirect_https_port, Some(443));
    let admin = cfg.admin.unwrap();
    assert_eq!(
        admin.token.expose(),
        env_value("PORTCULLIS_ADMIN_TOKEN"),
        "token comes from ${{env:PORTCULLIS_ADMIN_TOKEN}}"
    );
}

/// Without its files the production example fails, naming each one: the staging above is
/// what makes it pass, not a lax validator.
#[test]
fn production_example_without_its_files_fails() {
    if !in_child_with_env("production_example_without_its_files_fails") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("production.yaml");
    std::fs::copy(examples_dir().join("production.yaml"), &path).unwrap();
    let errors = config::load(&path).unwrap_err().0;
    let fields: BTreeSet<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "listeners[0].tls.certificates[0].cert",
        "listeners[0].tls.certificates[0].key",
        "listeners[0].tls.certificates[1].cert",
        "listeners[0].tls.certificates[1].key",
        "upstreams.partners.ca",
    ]
    .into();
    assert_eq!(fields, expected, "{}", config::ConfigErrors(errors.clone()));
}
