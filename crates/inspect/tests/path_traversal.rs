//! Path traversal and local file inclusion: `../` in every encoding, sensitive files,
//! Windows paths, `file://`, dot-directories in the request path; ordinary paths are clean.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::request::*;

#[test]
fn traversal_and_sensitive_files_are_blocked() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "../../../etc/passwd",
            "..\\..\\windows\\win.ini",
            "/proc/self/environ",
            "file:///etc/shadow",
            "C:\\Windows\\System32\\drivers\\etc\\hosts",
            "....//....//etc/hosts",
            "/home/app/.ssh/id_rsa",
        ],
    );
}

#[test]
fn traversal_in_the_raw_path_and_dot_directories() {
    let det = detector();
    let i = path(&det, "/static/..%2f..%2fetc/passwd");
    assert!(i.score >= 5, "{:?}", ids(&i));
    let i = path(&det, "/.git/config");
    assert!(ids(&i).contains(&"lfi.dot_directory"), "{:?}", ids(&i));
    assert_eq!(
        i.findings
            .iter()
            .find(|f| f.id == "lfi.dot_directory")
            .unwrap()
            .location,
        "/path/0"
    );
    let i = path(&det, "/.well-known/openid-configuration");
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

#[test]
fn multipart_file_names_are_inspected() {
    let det = detector();
    let body = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../shell.php\"\r\n\r\nx\r\n--b--\r\n";
    let i = inspect(
        &det,
        "/upload",
        None,
        &[],
        Some("multipart/form-data; boundary=b"),
        Some(body),
    );
    let got = ids(&i);
    assert!(
        got.contains(&"lfi.traversal") && got.contains(&"php.script_upload"),
        "{got:?}"
    );
    assert!(i.findings.iter().any(|f| f.location == "/form/f/filename"));
}

#[test]
fn ordinary_paths_and_file_names_are_clean() {
    let det = detector();
    assert_clean(
        &det,
        &[
            "docs/guide/intro",
            "report-2024.pdf",
            "photos/2024/summer/beach.png",
            "Wait... what?",
            "v1.2.3",
        ],
    );
    let i = path(&det, "/api/v2/users/42/files/report-2024.pdf");
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}
