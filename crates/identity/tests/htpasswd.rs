//! HTTP Basic against htpasswd files made by Debian's real `htpasswd` and `argon2` tools
//! (fixtures under `tests/fixtures/htpasswd/`, see the README there), plus one test that runs
//! the installed `htpasswd` at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use portcullis_identity::basic::{
    BasicError, BasicOptions, HtpasswdStore, REASON_INVALID_CREDENTIALS, REASON_MALFORMED,
    REASON_TOO_LARGE, WeakHash,
};
use portcullis_identity::htpasswd::HashKind;
use portcullis_identity::{AuthError, AuthMethod};

/// (user, password) of every entry in `users.htpasswd`.
const USERS: &[(&str, &str)] = &[
    ("bcrypt", "bcrypt-secret"),
    ("bcrypt2b", "bcrypt2b-secret"),
    ("bcrypt2a", "bcrypt2a-secret"),
    ("sha256", "sha256-secret"),
    ("sha512", "sha512-secret"),
    ("sha512rounds", "sha512rounds-secret"),
    ("argon2id", "argon2id-secret"),
    ("argon2i", "argon2i-secret"),
    ("apr1", "apr1-secret"),
    ("sha1", "sha1-secret"),
    ("utf8", "pa:ss wörd"),
];

const REFUSED: AuthError = AuthError::Invalid {
    reason: REASON_INVALID_CREDENTIALS,
};
const MALFORMED: AuthError = AuthError::Invalid {
    reason: REASON_MALFORMED,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/htpasswd")
        .join(name)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn users() -> HtpasswdStore {
    HtpasswdStore::load(fixture("users.htpasswd")).unwrap()
}

fn temp_htpasswd(content: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(content).unwrap();
    file
}

#[test]
fn every_hash_type_accepts_right_password_and_refuses_wrong() {
    let store = users();
    assert_eq!(store.len(), USERS.len());
    for (user, password) in USERS {
        let identity = store
            .authenticate(&basic(user, password))
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(identity.method, AuthMethod::Basic);
        assert_eq!(identity.principal, *user);
        assert_eq!(identity.credential_id, None);

        let wrong = format!("{password}x");
        assert_eq!(
            store.authenticate(&basic(user, &wrong)),
            Err(REFUSED),
            "{user} accepted a wrong password"
        );
        // Another user's password is wrong too.
        assert_eq!(
            store.authenticate(&basic(user, "bcrypt-secret2")),
            Err(REFUSED),
            "{user}"
        );
    }
}

#[test]
fn unknown_user_refused_like_wrong_password_and_costs_a_verification() {
    let store = users();
    let before = store.verifications();
    assert_eq!(
        store.authenticate(&basic("mallory", "bcrypt-secret")),
        Err(REFUSED)
    );
    // The dummy hash was verified, so timing resembles a real user's.
    assert_eq!(store.verifications(), before + 1);
    // Same client-visible reason as a wrong password.
    assert_eq!(store.authenticate(&basic("bcrypt", "nope")), Err(REFUSED));
    // User names are case-sensitive, as in Apache.
    assert_eq!(
        store.authenticate(&basic("BCRYPT", "bcrypt-secret")),
        Err(REFUSED)
    );
}

#[test]
fn malformed_headers_refused_without_hashing() {
    let store = users();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let oversize = format!("Basic {}", "A".repeat(5000));
    let cases: Vec<(String, AuthError)> = vec![
        (String::new(), AuthError::Missing),
        ("   ".to_owned(), AuthError::Missing),
        (
            "Bearer eyJhbGciOiJub25lIn0.e30.".to_owned(),
            AuthError::Missing,
        ),
        ("ApiKey pk_abc".to_owned(), AuthError::Missing),
        ("Basic".to_owned(), MALFORMED),
        ("Basic ".to_owned(), MALFORMED),
        ("Basic !!!not-base64!!!".to_owned(), MALFORMED),
        (format!("Basic {}", b64("no-colon-here")), MALFORMED),
        (
            format!("Basic {}", b64(":password-without-user")),
            MALFORMED,
        ),
        // Unpadded: "bcrypt:x" encodes with one '=' of padding.
        (
            format!("Basic {}", b64("bcrypt:x").trim_end_matches('=')),
            MALFORMED,
        ),
        // URL-safe alphabet is not the standard one.
        (
            format!("Basic {}", b64("bcrypt:??>").replace('/', "_")),
            MALFORMED,
        ),
        (
            format!("{} trailing", basic("bcrypt", "bcrypt-secret")),
            MALFORMED,
        ),
        (format!("Basic {}", b64("ctl\u{1}user:pw")), MALFORMED),
        (
            oversize,
            AuthError::Invalid {
                reason: REASON_TOO_LARGE,
            },
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            store.authenticate(&header),
            Err(expected),
            "header {:?}",
            &header[..header.len().min(60)]
        );
    }
    assert_eq!(
        store.verifications(),
        0,
        "malformed input must not cost a hash"
    );

    // Scheme is case-insensitive and 1*SP is allowed after it.
    let encoded = b64("bcrypt:bcrypt-secret");
    assert!(store.authenticate(&format!("bAsIc {encoded}")).is_ok());
    assert!(store.authenticate(&format!("Basic   {encoded}")).is_ok());
}

#[test]
fn weak_hashes_reported_and_logged_by_user_never_hash() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer_logs = Arc::clone(&logs);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || LogWriter(Arc::clone(&writer_logs)))
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let store = tracing::subscriber::with_default(subscriber, users);

    assert_eq!(
        store.weak_hashes(),
        &[
            WeakHash {
                user: "apr1".to_owned(),
                kind: HashKind::Apr1,
                line: 11,
            },
            WeakHash {
                user: "sha1".to_owned(),
                kind: HashKind::Sha1,
                line: 12,
            },
        ]
    );
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logs.matches("weak legacy password hash").count(),
        2,
        "{logs}"
    );
    assert!(
        logs.contains("user=apr1") && logs.contains("user=sha1"),
        "{logs}"
    );
    let file = std::fs::read_to_string(fixture("users.htpasswd")).unwrap();
    for line in file
        .lines()
        .filter(|l| l.starts_with("apr1:") || l.starts_with("sha1:"))
    {
        let hash = line.split_once(':').unwrap().1;
        assert!(!logs.contains(hash), "hash leaked into logs: {logs}");
    }

    assert!(HtpasswdStore::load(fixture("des.htpasswd")).is_err());
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plain_text_line_refused_with_line_number() {
    let path = fixture("plaintext.htpasswd");
    let err = HtpasswdStore::load(&path).unwrap_err();
    match &err {
        BasicError::Line { path: p, line, .. } => {
            assert_eq!(p, &path);
            assert_eq!(*line, 3);
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("plaintext.htpasswd:3:"), "{message}");
    assert!(message.contains("plain-text"), "{message}");
    assert!(
        !message.contains("plain-secret"),
        "password echoed: {message}"
    );
}

#[test]
fn des_crypt_line_refused_with_line_number() {
    let err = HtpasswdStore::load(fixture("des.htpasswd")).unwrap_err();
    assert!(matches!(err, BasicError::Line { line: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("DES"), "{err}");
}

#[test]
fn load_errors_name_file_and_line() {
    let missing = fixture("does-not-exist.htpasswd");
    let err = HtpasswdStore::load(&missing).unwrap_err();
    assert!(matches!(err, BasicError::Io { .. }));
    assert!(err.to_string().contains("does-not-exist.htpasswd"), "{err}");

    let bcrypt_line = std::fs::read_to_string(fixture("users.htpasswd"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("bcrypt:"))
        .unwrap()
        .to_owned();
    let cases: Vec<(Vec<u8>, usize, &str)> = vec![
        (format!("{bcrypt_line}\n{bcrypt_line}\n").into_bytes(), 2, "duplicate user"),
        (format!("# c\n\n{bcrypt_line}\nno-colon\n").into_bytes(), 4, "user:hash"),
        (
            // Cost 31 would take days per request.
            b"x:$2y$31$L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u\n".to_vec(),
            1,
            "cost 31",
        ),
        (
            b"x:$6$rounds=999999999$salt$8zVd0e3.7p0Ot2L6CWEEh0CgCv8g1vLHaFWhuR1lNLfc8.qXJbXDy5HyN.VdOBDMXQwPb8x7ZC7Hg3x9YvLy01\n"
                .to_vec(),
            1,
            "rounds",
        ),
        (b"x:$argon2d$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n".to_vec(), 1, "argon2d"),
        (
            [format!("{bcrypt_line}\nb").as_bytes(), b"\xff:x\n"].concat(),
            2,
            "UTF-8",
        ),
    ];
    for (content, line, needle) in cases {
        let file = temp_htpasswd(&content);
        let err = HtpasswdStore::load(file.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, BasicError::Line { line: l, .. } if l == line),
            "expected line {line}: {message}"
        );
        assert!(message.contains(needle), "expected {needle:?} in {message}");
    }
}

#[test]
fn cache_hit_avoids_recomputation() {
    let store = users();
    let header = basic("bcrypt", "bcrypt-secret");
    store.authenticate(&header).unwrap();
    assert_eq!(store.verifications(), 1);
    for _ in 0..5 {
        assert_eq!(store.authenticate(&header).unwrap().principal, "bcrypt");
    }
    assert_eq!(store.verifications(), 1, "cached success must not re-hash");
    // Failures are never cached, and a cached success does not vouch for another password.
    assert_eq!(store.authenticate(&basic("bcrypt", "wrong")), Err(REFUSED));
    assert_eq!(store.authenticate(&basic("bcrypt", "wrong")), Err(REFUSED));
    assert_eq!(store.verifications(), 3);

    // With the cache off every request verifies.
    let uncached = HtpasswdStore::load_with(
        fixture("users.htpasswd"),
        BasicOptions {
            cache_ttl: Duration::ZERO,
            ..BasicOptions::default()
        },
    )
    .unwrap();
    uncached.authenticate(&header).unwrap();
    uncached.authenticate(&header).unwrap();
    assert_eq!(uncached.verifications(), 2);

    // A reload is a new store with an empty cache: revocation takes effect at once.
    let reloaded = users();
    reloaded.authenticate(&header).unwrap();
    assert_eq!(reloaded.verifications(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_wrapper_verifies_on_blocking_pool_and_caches() {
    let store = Arc::new(users());
    let header = basic("sha512", "sha512-secret");
    let identity = store.authenticate_async(&header).await.unwrap();
    assert_eq!(identity.principal, "sha512");
    store.authenticate_async(&header).await.unwrap();
    assert_eq!(store.verifications(), 1);
    assert_eq!(
        store.authenticate_async(&basic("sha512", "x")).await,
        Err(REFUSED)
    );
    assert_eq!(
        store.authenticate_async("Bearer x").await,
        Err(AuthError::Missing)
    );
    // Concurrent requests all complete.
    let tasks: Vec<_> = USERS
        .iter()
        .map(|(user, password)| {
            let store = Arc::clone(&store);
            let header = basic(user, password);
            tokio::spawn(async move { store.authenticate_async(&header).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
}

/// Runs Debian's `htpasswd` at test time when it is installed (the project's test script
/// installs apache2-utils, so CI always runs it); otherwise prints a note and passes.
#[test]
fn fresh_bcrypt_from_installed_htpasswd() {
    let output = match std::process::Command::new("htpasswd")
        .args(["-nbB", "-C", "10", "fresh", "fresh s3cret:with colon"])
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "SKIPPED fresh_bcrypt_from_installed_htpasswd: htpasswd not installed (apt-get install apache2-utils)"
            );
            return;
        }
        Err(e) => panic!("running htpasswd: {e}"),
    };
    assert!(output.status.success(), "htpasswd failed: {output:?}");
    let file = temp_htpasswd(&output.stdout);
    let store = HtpasswdStore::load(file.path()).unwrap();
    assert!(store.weak_hashes().is_empty());
    let identity = store
        .authenticate(&basic("fresh", "fresh s3cret:with colon"))
        .unwrap();
    assert_eq!(identity.principal, "fresh");
    assert_eq!(
        store.authenticate(&basic("fresh", "fresh s3cret:with colo")),
        Err(REFUSED)
    );
}
