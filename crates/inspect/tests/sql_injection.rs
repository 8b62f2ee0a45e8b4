//! SQL injection detection: classic payload shapes are blocked, SQL-ish prose is not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_inspect::Family;
use support::request::*;

#[test]
fn classic_sqli_payloads_are_blocked() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "' OR '1'='1",
            "admin'--",
            "1' or 1=1 -- -",
            "x' AND sleep(5) AND 'a'='a",
            "1 UNION ALL SELECT username, password FROM users",
            "1; DROP TABLE users;",
            "'; exec master..xp_cmdshell 'dir'--",
            "1' AND extractvalue(1,concat(0x7e,version()))-- ",
            "'; WAITFOR DELAY '0:0:5'--",
            "1) or pg_sleep(10)--",
            "1 and benchmark(5000000,md5(1))",
            "' union select table_name from information_schema.tables #",
            "1'||(select user from dual)||'",
            "'{\"a\":1}'::jsonb @> '{\"a\":1}'::jsonb",
        ],
    );
}

#[test]
fn findings_are_classified_and_located() {
    let det = detector();
    let i = query(&det, "id=1%27%20or%20%271%27%3D%271&page=2");
    let f = i
        .findings
        .iter()
        .find(|f| f.id == "sqli.tautology")
        .unwrap();
    assert_eq!(f.family, Family::Sqli);
    assert_eq!(f.cwe, 89);
    assert_eq!(f.attack_technique, "T1190");
    assert_eq!(f.location, "/query/id");
    assert_eq!(f.score, 5);
}

#[test]
fn sqlish_prose_and_names_are_clean() {
    let det = detector();
    assert_clean(
        &det,
        &[
            "O'Brien",
            "D'Angelo and O'Neil",
            "select the best option; then drop me a line",
            "union station",
            "1=1 is a math fact",
            "Please update my address; thanks!",
            "I need sleep (8 hours at least)",
            "Delete from my cart the blue one, please.",
            "Order by Friday; select express shipping",
            "Is 3 < 5 and 7 > 2? yes",
            "it's the user's choice -- really",
        ],
    );
}

#[test]
fn sql_function_names_alone_only_score_low() {
    let det = detector();
    let i = query_value(&det, "concat(");
    assert!(i.score > 0 && i.score < 5, "{:?}", ids(&i));
}
