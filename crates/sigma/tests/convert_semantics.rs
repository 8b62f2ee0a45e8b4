#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Each value modifier, null, keywords and the condition operators, converted to every target.
//! Expected queries are pySigma's output (pySigma 1.5.1 with the Splunk, Elasticsearch and
//! Kusto backends and tools/portcullis_pipeline.yml; for KQL with pySigma's 'a.b' field quoting
//! replaced by the member path) except where a test says it differs, and why.

use std::path::Path;

use portcullis_sigma::convert::{ConvertError, FieldNames, Target, convert_yaml};

/// Converts a rule whose detection section is `detection` (indented by two spaces).
fn convert(detection: &str, target: Target) -> Result<Vec<String>, ConvertError> {
    let yaml = format!(
        "title: t\nid: 11111111-1111-1111-1111-111111111111\nlogsource:\n  category: webserver\ndetection:\n{detection}"
    );
    let mut converted = convert_yaml(&yaml, Path::new("test.yml"), target, &FieldNames::default())?;
    assert_eq!(converted.len(), 1);
    converted.remove(0).queries
}

fn one(detection: &str, target: Target) -> String {
    let queries = convert(detection, target).unwrap_or_else(|e| panic!("{target}: {e}"));
    assert_eq!(queries.len(), 1, "{queries:?}");
    queries.into_iter().next().unwrap()
}

fn check(detection: &str, expected: [&str; 4]) {
    for (target, want) in Target::ALL.into_iter().zip(expected) {
        assert_eq!(one(detection, target), want, "target {target}");
    }
}

#[test]
fn contains() {
    check(
        "  sel:\n    cs-uri-query|contains: 'union select'\n  condition: sel\n",
        [
            r#"http_request.url.query_string="*union select*""#,
            r#"http_request.url.query_string:*union\ select*"#,
            r#"from * metadata _id, _index, _version | where http_request.url.query_string like "*union select*""#,
            r#"http_request.url.query_string contains "union select""#,
        ],
    );
}

#[test]
fn startswith() {
    check(
        "  sel:\n    cs-uri-stem|startswith: '/admin'\n  condition: sel\n",
        [
            r#"http_request.url.path="/admin*""#,
            r#"http_request.url.path:\/admin*"#,
            r#"from * metadata _id, _index, _version | where starts_with(http_request.url.path, "/admin")"#,
            r#"http_request.url.path startswith "/admin""#,
        ],
    );
}

#[test]
fn endswith() {
    check(
        "  sel:\n    cs-uri-stem|endswith: '.php'\n  condition: sel\n",
        [
            r#"http_request.url.path="*.php""#,
            r#"http_request.url.path:*.php"#,
            r#"from * metadata _id, _index, _version | where ends_with(http_request.url.path, ".php")"#,
            r#"http_request.url.path endswith ".php""#,
        ],
    );
}

#[test]
fn contains_all() {
    check(
        "  sel:\n    cs-user-agent|contains|all:\n      - 'curl'\n      - 'linux'\n  condition: sel\n",
        [
            r#"http_request.user_agent="*curl*" http_request.user_agent="*linux*""#,
            r#"http_request.user_agent:*curl* AND http_request.user_agent:*linux*"#,
            r#"from * metadata _id, _index, _version | where http_request.user_agent like "*curl*" and http_request.user_agent like "*linux*""#,
            r#"http_request.user_agent contains "curl" and http_request.user_agent contains "linux""#,
        ],
    );
}

#[test]
fn list() {
    check(
        "  sel:\n    cs-method:\n      - GET\n      - POST\n  condition: sel\n",
        [
            r#"http_request.http_method IN ("GET", "POST")"#,
            r#"http_request.http_method:(GET OR POST)"#,
            r#"from * metadata _id, _index, _version | where http_request.http_method in ("GET", "POST")"#,
            r#"http_request.http_method in~ ("GET", "POST")"#,
        ],
    );
}

#[test]
fn wildcard_mid() {
    check(
        "  sel:\n    cs-uri-stem: '/a*b?c'\n  condition: sel\n",
        [
            r#"http_request.url.path="/a*b*c""#,
            r#"http_request.url.path:\/a*b?c"#,
            r#"from * metadata _id, _index, _version | where http_request.url.path like "/a*b?c""#,
            r#"http_request.url.path matches regex "/a.*b.c""#,
        ],
    );
}

#[test]
fn re_i() {
    check(
        "  sel:\n    cs-uri-query|re|i: 'id=[0-9]+\"x/'\n  condition: sel\n",
        [
            r#"*
| regex http_request.url.query_string="(?i)id=[0-9]+\"x/""#,
            r#"http_request.url.query_string:/(?i)id=[0-9]+"x\//"#,
            r#"from * metadata _id, _index, _version | where http_request.url.query_string rlike "(?i)id=[0-9]+\"x/""#,
            r#"http_request.url.query_string matches regex "(?i)id=[0-9]+\"x/""#,
        ],
    );
}

#[test]
fn cidr() {
    check(
        "  sel:\n    c-ip|cidr:\n      - '10.0.0.0/8'\n      - 'fe80::/10'\n  condition: sel\n",
        [
            r#"src_endpoint.ip="10.0.0.0/8" OR src_endpoint.ip="fe80::/10""#,
            r#"src_endpoint.ip:10.0.0.0\/8 OR src_endpoint.ip:fe80\:\:\/10"#,
            r#"from * metadata _id, _index, _version | where cidr_match(src_endpoint.ip, "10.0.0.0/8") or cidr_match(src_endpoint.ip, "fe80::/10")"#,
            // Differs from pySigma, which tests IPv6 networks with ipv4_is_in_range (always false).
            r#"ipv4_is_in_range(src_endpoint.ip, "10.0.0.0/8") or ipv6_is_in_range(src_endpoint.ip, "fe80::/10")"#,
        ],
    );
}

#[test]
fn exists() {
    check(
        "  sel:\n    cs-referer|exists: true\n    cs-cookie|exists: false\n  condition: sel\n",
        [
            r#"http_request.referrer=* NOT "cs-cookie"=*"#,
            r#"_exists_:http_request.referrer AND NOT _exists_:cs-cookie"#,
            r#"from * metadata _id, _index, _version | where http_request.referrer is not null and `cs-cookie` is null"#,
            r#"isnotempty(http_request.referrer) and isempty(['cs-cookie'])"#,
        ],
    );
}

#[test]
fn compare() {
    check(
        "  sel:\n    sc-status|gte: 500\n    sc-bytes|lt: 100\n    cs-bytes|gt: 1\n    sc-status|lte: 599\n  condition: sel\n",
        [
            r#"http_response.code>=500 http_response.length<100 http_request.length>1 http_response.code<=599"#,
            r#"http_response.code:>=500 AND http_response.length:<100 AND http_request.length:>1 AND http_response.code:<=599"#,
            r#"from * metadata _id, _index, _version | where http_response.code>=500 and http_response.length<100 and http_request.length>1 and http_response.code<=599"#,
            r#"http_response.code >= 500 and http_response.length < 100 and http_request.length > 1 and http_response.code <= 599"#,
        ],
    );
}

#[test]
fn base64() {
    check(
        "  sel:\n    cs-uri-query|base64: 'admin'\n  condition: sel\n",
        [
            r#"http_request.url.query_string="YWRtaW4=""#,
            r#"http_request.url.query_string:YWRtaW4\="#,
            r#"from * metadata _id, _index, _version | where http_request.url.query_string=="YWRtaW4=""#,
            r#"http_request.url.query_string =~ "YWRtaW4=""#,
        ],
    );
}

#[test]
fn base64offset() {
    check(
        "  sel:\n    cs-uri-query|base64offset|contains: 'admin'\n  condition: sel\n",
        [
            r#"http_request.url.query_string="*YWRtaW*" OR http_request.url.query_string="*FkbWlu*" OR http_request.url.query_string="*hZG1pb*""#,
            r#"http_request.url.query_string:(*YWRtaW* OR *FkbWlu* OR *hZG1pb*)"#,
            r#"from * metadata _id, _index, _version | where http_request.url.query_string like "*YWRtaW*" or http_request.url.query_string like "*FkbWlu*" or http_request.url.query_string like "*hZG1pb*""#,
            r#"http_request.url.query_string contains "YWRtaW" or http_request.url.query_string contains "FkbWlu" or http_request.url.query_string contains "hZG1pb""#,
        ],
    );
}

#[test]
fn wide_b64() {
    check(
        "  sel:\n    cs-uri-query|wide|base64offset|contains: 'ping'\n  condition: sel\n",
        [
            r#"http_request.url.query_string="*cABpAG4AZw*" OR http_request.url.query_string="*AAaQBuAGcA*" OR http_request.url.query_string="*wAGkAbgBnA*""#,
            r#"http_request.url.query_string:(*cABpAG4AZw* OR *AAaQBuAGcA* OR *wAGkAbgBnA*)"#,
            r#"from * metadata _id, _index, _version | where http_request.url.query_string like "*cABpAG4AZw*" or http_request.url.query_string like "*AAaQBuAGcA*" or http_request.url.query_string like "*wAGkAbgBnA*""#,
            r#"http_request.url.query_string contains "cABpAG4AZw" or http_request.url.query_string contains "AAaQBuAGcA" or http_request.url.query_string contains "wAGkAbgBnA""#,
        ],
    );
}

#[test]
fn windash() {
    check(
        "  sel:\n    cs-uri-query|windash|contains: ' -exec'\n  condition: sel\n",
        [
            r#"http_request.url.query_string="* -exec*" OR http_request.url.query_string="* /exec*" OR http_request.url.query_string="* –exec*" OR http_request.url.query_string="* —exec*" OR http_request.url.query_string="* ―exec*""#,
            r#"http_request.url.query_string:(*\ \-exec* OR *\ \/exec* OR *\ –exec* OR *\ —exec* OR *\ ―exec*)"#,
            r#"from * metadata _id, _index, _version | where http_request.url.query_string like "* -exec*" or http_request.url.query_string like "* /exec*" or http_request.url.query_string like "* –exec*" or http_request.url.query_string like "* —exec*" or http_request.url.query_string like "* ―exec*""#,
            r#"http_request.url.query_string contains " -exec" or http_request.url.query_string contains " /exec" or http_request.url.query_string contains " –exec" or http_request.url.query_string contains " —exec" or http_request.url.query_string contains " ―exec""#,
        ],
    );
}

#[test]
fn null() {
    check(
        "  sel:\n    cs-referer: null\n  condition: sel\n",
        [
            r#"NOT http_request.referrer=*"#,
            r#"NOT _exists_:http_request.referrer"#,
            r#"from * metadata _id, _index, _version | where http_request.referrer is null"#,
            r#"isnull(http_request.referrer)"#,
        ],
    );
}

#[test]
fn not_null() {
    check(
        "  sel:\n    cs-referer: null\n  condition: not sel\n",
        [
            // Differs from pySigma, which writes `NOT NOT http_request.referrer=*`.
            r#"http_request.referrer=*"#,
            r#"_exists_:http_request.referrer"#,
            r#"from * metadata _id, _index, _version | where not http_request.referrer is null"#,
            r#"not(isnull(http_request.referrer))"#,
        ],
    );
}

#[test]
fn one_of() {
    check(
        "  sel_a:\n    cs-method: PUT\n  sel_b:\n    sc-status: 201\n  filter:\n    c-ip: '127.0.0.1'\n  condition: 1 of sel_* and not filter\n",
        [
            r#"http_request.http_method="PUT" OR http_response.code=201 NOT src_endpoint.ip="127.0.0.1""#,
            r#"(http_request.http_method:PUT OR http_response.code:201) AND (NOT src_endpoint.ip:127.0.0.1)"#,
            r#"from * metadata _id, _index, _version | where (http_request.http_method=="PUT" or http_response.code==201) and not src_endpoint.ip=="127.0.0.1""#,
            r#"(http_request.http_method =~ "PUT" or http_response.code == 201) and (not(src_endpoint.ip =~ "127.0.0.1"))"#,
        ],
    );
}

#[test]
fn all_of_them() {
    check(
        "  sel_a:\n    cs-method: PUT\n  sel_b:\n    sc-status: 201\n  condition: all of them\n",
        [
            r#"http_request.http_method="PUT" http_response.code=201"#,
            r#"http_request.http_method:PUT AND http_response.code:201"#,
            r#"from * metadata _id, _index, _version | where http_request.http_method=="PUT" and http_response.code==201"#,
            r#"http_request.http_method =~ "PUT" and http_response.code == 201"#,
        ],
    );
}

#[test]
fn nested() {
    check(
        "  a:\n    cs-method: PUT\n  b:\n    sc-status: 201\n  c:\n    c-ip: '1.2.3.4'\n  condition: a and (b or c) and not (a and c)\n",
        [
            r#"http_request.http_method="PUT" http_response.code=201 OR src_endpoint.ip="1.2.3.4" NOT (http_request.http_method="PUT" src_endpoint.ip="1.2.3.4")"#,
            r#"http_request.http_method:PUT AND (http_response.code:201 OR src_endpoint.ip:1.2.3.4) AND (NOT (http_request.http_method:PUT AND src_endpoint.ip:1.2.3.4))"#,
            r#"from * metadata _id, _index, _version | where http_request.http_method=="PUT" and (http_response.code==201 or src_endpoint.ip=="1.2.3.4") and not (http_request.http_method=="PUT" and src_endpoint.ip=="1.2.3.4")"#,
            r#"http_request.http_method =~ "PUT" and (http_response.code == 201 or src_endpoint.ip =~ "1.2.3.4") and (not((http_request.http_method =~ "PUT" and src_endpoint.ip =~ "1.2.3.4")))"#,
        ],
    );
}

#[test]
fn escape() {
    check(
        "  sel:\n    cs-uri-query: 'a\"b\\\\c (d) e:f/g\\*h'\n  condition: sel\n",
        [
            r#"http_request.url.query_string="a\"b\\c (d) e:f/g\*h""#,
            r#"http_request.url.query_string:"a\"b\\c \(d\) e\:f\/g\*h""#,
            r#"from * metadata _id, _index, _version | where http_request.url.query_string=="a\"b\\c (d) e:f/g\*h""#,
            r#"http_request.url.query_string =~ "a\"b\\c (d) e:f/g*h""#,
        ],
    );
}

#[test]
fn empty() {
    check(
        "  sel:\n    cs-user-agent: ''\n  condition: sel\n",
        [
            r#"http_request.user_agent="""#,
            r#"http_request.user_agent:"""#,
            r#"from * metadata _id, _index, _version | where http_request.user_agent=="""#,
            r#"http_request.user_agent =~ """#,
        ],
    );
}

#[test]
fn bool() {
    check(
        "  sel:\n    unmapped.tls: true\n  condition: sel\n",
        [
            r#"unmapped.tls=true"#,
            r#"unmapped.tls:true"#,
            r#"from * metadata _id, _index, _version | where unmapped.tls==true"#,
            r#"unmapped.tls =~ true"#,
        ],
    );
}

/// pySigma refuses `cased` on all four backends; each target has a case-sensitive form.
#[test]
fn cased() {
    check(
        "  sel:\n    cs-method|cased: 'GET'\n  condition: sel\n",
        [
            r#"http_request.http_method=CASE("GET")"#,
            // Lucene and ES|QL compare keyword fields case-sensitively already.
            r#"http_request.http_method:GET"#,
            r#"from * metadata _id, _index, _version | where http_request.http_method=="GET""#,
            r#"http_request.http_method == "GET""#,
        ],
    );
    assert_eq!(
        one(
            "  sel:\n    cs-uri-stem|cased|startswith: '/Admin'\n  condition: sel\n",
            Target::Kql
        ),
        r#"http_request.url.path startswith_cs "/Admin""#
    );
    assert_eq!(
        one(
            "  sel:\n    cs-uri-stem|cased|contains: 'Admin'\n  condition: sel\n",
            Target::Kql
        ),
        r#"http_request.url.path contains_cs "Admin""#
    );
}

/// Keywords: pySigma's forms for Splunk and Lucene; ES|QL has no full-text search over all
/// fields (pySigma refuses too); KQL searches every column with `* contains` where pySigma
/// writes a bare string literal, which KQL rejects as a predicate.
#[test]
fn keywords() {
    let detection = "  kw:\n    - 'evil string'\n    - 'x*y'\n  condition: kw\n";
    assert_eq!(one(detection, Target::Splunk), r#""evil string" OR "x*y""#);
    assert_eq!(one(detection, Target::Lucene), r#"*evil\ string* OR *x*y*"#);
    assert!(matches!(
        convert(detection, Target::Esql),
        Err(ConvertError::Unsupported(_))
    ));
    assert_eq!(
        one(detection, Target::Kql),
        r#"* contains "evil string" or * contains "x*y""#
    );
}

#[test]
fn utf16_without_base64_is_refused() {
    let detection = "  sel:\n    cs-uri-query|wide: 'ping'\n  condition: sel\n";
    for target in Target::ALL {
        assert!(matches!(
            convert(detection, target),
            Err(ConvertError::Unsupported(_))
        ));
    }
}

#[test]
fn utf16be_and_bom_variants_encode_differently() {
    let le = one(
        "  sel:\n    cs-uri-query|utf16le|base64: 'ab'\n  condition: sel\n",
        Target::Splunk,
    );
    let be = one(
        "  sel:\n    cs-uri-query|utf16be|base64: 'ab'\n  condition: sel\n",
        Target::Splunk,
    );
    let bom = one(
        "  sel:\n    cs-uri-query|utf16|base64: 'ab'\n  condition: sel\n",
        Target::Splunk,
    );
    // base64 of "a\0b\0", "\0a\0b" and the UTF-8 BOM bytes of U+FEFF followed by "a\0b\0"
    assert_eq!(le, r#"http_request.url.query_string="YQBiAA==""#);
    assert_eq!(be, r#"http_request.url.query_string="AGEAYg==""#);
    assert_eq!(bom, r#"http_request.url.query_string="77u/YQBiAA==""#);
}

#[test]
fn windash_expands_every_option_dash() {
    let q = one(
        "  sel:\n    cs-uri-query|windash: '-a /b'\n  condition: sel\n",
        Target::Esql,
    );
    // Two positions, five dashes each.
    assert_eq!(q.matches(" or ").count(), 24, "{q}");
    assert!(
        q.contains(r#"http_request.url.query_string=="/a -b""#),
        "{q}"
    );
    // pySigma's order: the first dash varies slowest.
    assert!(
        q.starts_with(
            r#"from * metadata _id, _index, _version | where http_request.url.query_string=="-a -b" or http_request.url.query_string=="-a /b" or http_request.url.query_string=="-a –b""#
        ),
        "{q}"
    );
}

#[test]
fn negated_and_or_regex_for_splunk() {
    assert_eq!(
        one(
            "  sel:\n    cs-method: GET\n  re:\n    cs-uri|re: 'a\\d'\n  condition: sel and not re\n",
            Target::Splunk
        ),
        "http_request.http_method=\"GET\"\n| regex http_request.url.url_string!=\"a\\\\d\""
    );
    // Under OR, pySigma's rex/eval rewrite; leading plain terms stay ahead of the rex commands.
    assert_eq!(
        one(
            "  a:\n    cs-method: GET\n    sc-status: 200\n  b:\n    cs-uri|re: 'a\"b'\n  c:\n    cs-uri-query|re:\n      - 'x+'\n      - 'y+'\n  condition: a and (b or c or a)\n",
            Target::Splunk
        ),
        "http_request.http_method=\"GET\" http_response.code=200\n| rex field=http_request.url.url_string \"(?<url_stringMatch>a\\\"b)\"\n| eval url_stringCondition=if(isnotnull(url_stringMatch), \"true\", \"false\")\n| rex field=http_request.url.query_string \"(?<query_stringMatch>x+)\"\n| eval query_stringCondition=if(isnotnull(query_stringMatch), \"true\", \"false\")\n| rex field=http_request.url.query_string \"(?<query_stringMatch2>y+)\"\n| eval query_stringCondition2=if(isnotnull(query_stringMatch2), \"true\", \"false\")\n| search url_stringCondition=\"true\" OR query_stringCondition=\"true\" OR query_stringCondition2=\"true\" OR (http_request.http_method=\"GET\" http_response.code=200)"
    );
    // pySigma would move `http_request.http_method="GET"` out and leave `| search OR …`, and
    // start the query with a pipe; the group name's digest differs too (FNV-1a, not BLAKE2s).
    assert_eq!(
        one(
            "  a:\n    cs-method: GET\n  b:\n    unmapped.some_really_long_field_name_here|re: 'x'\n  condition: a or b\n",
            Target::Splunk
        ),
        "*\n| rex field=unmapped.some_really_long_field_name_here \"(?<some_really_long_fi4b406d66Match>x)\"\n| eval some_really_long_field_name_hereCondition=if(isnotnull(some_really_long_fi4b406d66Match), \"true\", \"false\")\n| search http_request.http_method=\"GET\" OR some_really_long_field_name_hereCondition=\"true\""
    );
}

#[test]
fn fieldref() {
    let detection = "  sel:\n    cs-referer|fieldref: cs-host\n  condition: sel\n";
    assert_eq!(
        one(detection, Target::Esql),
        "from * metadata _id, _index, _version | where http_request.referrer==http_request.url.hostname"
    );
    assert_eq!(
        one(detection, Target::Kql),
        "http_request.referrer == http_request.url.hostname"
    );
    assert_eq!(
        one(detection, Target::Splunk),
        "*\n| where 'http_request.referrer'='http_request.url.hostname'"
    );
    assert!(convert(detection, Target::Lucene).is_err());
}

#[test]
fn expand_placeholders_are_refused() {
    let detection = "  sel:\n    c-ip|expand: '%admin_ips%'\n  condition: sel\n";
    assert!(matches!(
        convert(detection, Target::Splunk),
        Err(ConvertError::Unsupported(_))
    ));
}

#[test]
fn field_names_are_configurable() {
    use portcullis_sigma::convert::convert_rules;
    let yaml = "title: t\nlogsource:\n  category: webserver\ndetection:\n  sel:\n    cs-method: GET\n    c-ip: 1.2.3.4\n  condition: sel\n";
    let names = FieldNames::identity()
        .from_yaml("cs-method: method\n")
        .unwrap();
    let converted = convert_yaml(yaml, Path::new("t.yml"), Target::Splunk, &names).unwrap();
    assert_eq!(
        converted[0].queries.as_ref().unwrap()[0],
        // Splunk field names with characters other than word characters and dots are quoted.
        r#"method="GET" "c-ip"="1.2.3.4""#
    );
    assert_eq!(
        FieldNames::default().resolve("cs-uri-query"),
        "http_request.url.query_string"
    );
    assert_eq!(
        FieldNames::default().resolve("unmapped.reason"),
        "unmapped.reason"
    );
    assert!(convert_rules(&[], Target::Kql, &names).is_empty());
}

#[test]
fn target_names() {
    assert_eq!(Target::parse("kusto"), Some(Target::Kql));
    assert_eq!(Target::parse("ES|QL"), Some(Target::Esql));
    assert_eq!(Target::parse("splunk"), Some(Target::Splunk));
    assert_eq!(Target::parse("lucene"), Some(Target::Lucene));
    assert_eq!(Target::parse("sql"), None);
}

const CORRELATIONS: &str = r#"title: Many 404s
id: 11111111-1111-1111-1111-111111111111
name: many_404
logsource:
    category: webserver
detection:
    selection:
        sc-status: 404
    condition: selection
---
title: Admin probe
id: 22222222-2222-2222-2222-222222222222
name: admin_probe
logsource:
    category: webserver
detection:
    selection:
        cs-uri-stem|startswith: '/admin'
    condition: selection
---
title: Scan burst
id: 33333333-3333-3333-3333-333333333333
correlation:
    type: event_count
    rules:
        - many_404
    group-by:
        - c-ip
    timespan: 5m
    condition:
        gte: 20
---
title: Scan distinct
id: 44444444-4444-4444-4444-444444444444
correlation:
    type: value_count
    rules:
        - many_404
        - admin_probe
    group-by:
        - c-ip
    timespan: 1h
    condition:
        gte: 10
        field: cs-uri-stem
---
title: Probe then 404
id: 55555555-5555-5555-5555-555555555555
correlation:
    type: temporal
    rules:
        - admin_probe
        - many_404
    group-by:
        - c-ip
    timespan: 10m
"#;

fn correlations(target: Target) -> Vec<Result<Vec<String>, ConvertError>> {
    let converted = convert_yaml(
        CORRELATIONS,
        Path::new("c.yml"),
        target,
        &FieldNames::default(),
    )
    .unwrap();
    // The referenced detection rules are not output on their own (generate is false).
    assert_eq!(converted.len(), 3);
    converted.into_iter().map(|c| c.queries).collect()
}

/// Expected: pySigma's output for the same file (Splunk and ES|QL `stats` method).
#[test]
fn correlations_splunk() {
    let q: Vec<String> = correlations(Target::Splunk)
        .into_iter()
        .map(|r| r.unwrap().remove(0))
        .collect();
    assert_eq!(
        q[0],
        "http_response.code=404\n\n| bin _time span=5m\n| stats count as event_count by _time src_endpoint.ip\n\n| search event_count >= 20"
    );
    assert_eq!(
        q[1],
        "| multisearch\n[ search http_response.code=404 | eval event_type=\"many_404\" ]\n[ search http_request.url.path=\"/admin*\" | eval event_type=\"admin_probe\" ]\n\n| bin _time span=1h\n| stats dc(http_request.url.path) as value_count by _time src_endpoint.ip\n\n| search value_count >= 10"
    );
    assert_eq!(
        q[2],
        "| multisearch\n[ search http_request.url.path=\"/admin*\" | eval event_type=\"admin_probe\" ]\n[ search http_response.code=404 | eval event_type=\"many_404\" ]\n\n| bin _time span=10m\n| stats dc(event_type) as event_type_count by _time src_endpoint.ip\n\n| search event_type_count >= 2"
    );
}

#[test]
fn correlations_esql() {
    let q: Vec<String> = correlations(Target::Esql)
        .into_iter()
        .map(|r| r.unwrap().remove(0))
        .collect();
    assert_eq!(
        q[0],
        "from * metadata _id, _index, _version | where http_response.code==404\n| eval timebucket=date_trunc(5minutes, @timestamp) | stats event_count=count() by timebucket, src_endpoint.ip\n| where event_count >= 20"
    );
    assert_eq!(
        q[1],
        "from * metadata _id, _index, _version | where (http_response.code==404) or (starts_with(http_request.url.path, \"/admin\"))\n| eval timebucket=date_trunc(1hours, @timestamp) | stats value_count=count_distinct(http_request.url.path) by timebucket, src_endpoint.ip\n| where value_count >= 10"
    );
    assert_eq!(
        q[2],
        "from * metadata _id, _index, _version | where (starts_with(http_request.url.path, \"/admin\")) or (http_response.code==404)\n| eval event_type=case(starts_with(http_request.url.path, \"/admin\"), \"admin_probe\", http_response.code==404, \"many_404\")\n| eval timebucket=date_trunc(10minutes, @timestamp) | stats event_type_count=count_distinct(event_type) by timebucket, src_endpoint.ip\n| where event_type_count >= 2"
    );
}

/// pySigma has no KQL correlations; this is the project's own `summarize` form.
#[test]
fn correlations_kql() {
    let q: Vec<String> = correlations(Target::Kql)
        .into_iter()
        .map(|r| r.unwrap().remove(0))
        .collect();
    assert_eq!(
        q[0],
        "http_response.code == 404\n| summarize event_count = count() by bin(TimeGenerated, 5m), tostring(src_endpoint.ip)\n| where event_count >= 20"
    );
    assert_eq!(
        q[2],
        "(http_request.url.path startswith \"/admin\") or (http_response.code == 404)\n| extend event_type = case(http_request.url.path startswith \"/admin\", \"admin_probe\", http_response.code == 404, \"many_404\", \"\")\n| summarize event_type_count = dcount(event_type) by bin(TimeGenerated, 10m), tostring(src_endpoint.ip)\n| where event_type_count >= 2"
    );
}

#[test]
fn correlations_lucene_are_refused() {
    for result in correlations(Target::Lucene) {
        assert!(matches!(result, Err(ConvertError::Unsupported(_))));
    }
}

#[test]
fn correlation_alone_needs_its_rules() {
    let yaml = CORRELATIONS.split("---\n").nth(2).unwrap();
    let converted = convert_yaml(
        yaml,
        Path::new("c.yml"),
        Target::Splunk,
        &FieldNames::default(),
    )
    .unwrap();
    assert!(matches!(
        converted[0].queries,
        Err(ConvertError::UnknownRule(ref r)) if r == "many_404"
    ));
}

/// `neq` (Sigma 2.1): the item negated, as pySigma writes it.
#[test]
fn neq() {
    check(
        "  sel:\n    cs-method: GET\n    cs-uri-stem|neq: '/x'\n  condition: sel\n",
        [
            r#"http_request.http_method="GET" NOT http_request.url.path="/x""#,
            r#"http_request.http_method:GET AND (NOT http_request.url.path:\/x)"#,
            r#"from * metadata _id, _index, _version | where http_request.http_method=="GET" and not http_request.url.path=="/x""#,
            r#"http_request.http_method =~ "GET" and (not(http_request.url.path =~ "/x"))"#,
        ],
    );
}

/// The bundled rule pack converts as a directory (correlations find their rules across files).
#[test]
fn convert_dir_converts_the_rule_pack() {
    use portcullis_sigma::convert::convert_dir;
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"));
    if !dir.exists() {
        return;
    }
    let result = convert_dir(dir, Target::Splunk, &FieldNames::default());
    assert!(result.problems.is_empty(), "{:?}", result.problems);
    assert!(!result.converted.is_empty());
    for c in &result.converted {
        let queries = c
            .queries
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", c.rule));
        assert!(!queries.is_empty() && queries.iter().all(|q| !q.is_empty()));
        assert!(c.file.starts_with(dir));
    }
    // Lucene refuses correlations, with a reason, and converts the rest.
    let lucene = convert_dir(dir, Target::Lucene, &FieldNames::default());
    assert!(lucene.converted.iter().any(|c| c.queries.is_ok()));
    assert!(
        lucene
            .converted
            .iter()
            .any(|c| matches!(c.queries, Err(ConvertError::Unsupported(_))))
    );
}

/// A meta-filter naming a rule is applied to it as `and not (filter)`: a match is dropped where
/// the filter matches, as the engine does and as the specification's example ("Filter
/// Administrator account" selecting the `adm_` accounts) means. Differs from pySigma 1.5.1,
/// which ANDs the filter's condition as written.
#[test]
fn filter_rules_apply_to_the_rules_they_name() {
    let yaml = r#"title: Admin access
id: 11111111-1111-1111-1111-111111111111
name: admin_access
logsource:
    category: webserver
detection:
    selection:
        cs-uri-stem|startswith: '/admin'
    condition: selection
---
title: Not from the office
id: 22222222-2222-2222-2222-222222222222
logsource:
    category: webserver
filter:
    rules:
        - admin_access
    selection:
        c-ip|cidr: '10.0.0.0/8'
    condition: selection
"#;
    let converted = convert_yaml(
        yaml,
        Path::new("f.yml"),
        Target::Splunk,
        &FieldNames::default(),
    )
    .unwrap();
    assert_eq!(converted.len(), 1, "the filter has no query of its own");
    assert_eq!(
        converted[0].queries.as_ref().unwrap()[0],
        r#"http_request.url.path="/admin*" NOT src_endpoint.ip="10.0.0.0/8""#
    );
}
