//! Shared by the CRS corpus test and the `crs_report` example: loads the OWASP Core Rule
//! Set v4 regression requests (Apache-2.0, see `../shared/corpora/crs/SOURCE` and
//! `LICENSE-crs`), parses each raw HTTP request with `httparse` and inspects it.

use std::collections::BTreeMap;

use base64::Engine as _;
use portcullis_inspect::{AttackDetector, Inspection, RequestView};

pub const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/crs/tests.jsonl"
);

/// The CRS families this crate covers, by rule file number.
pub const FAMILIES: [(&str, &str); 9] = [
    ("930", "LFI"),
    ("931", "RFI"),
    ("932", "RCE"),
    ("933", "PHP"),
    ("934", "GENERIC"),
    ("941", "XSS"),
    ("942", "SQLI"),
    ("943", "SESSION-FIXATION"),
    ("944", "JAVA"),
];

pub struct Case {
    pub id: String,
    pub family: String,
    pub paranoia_level: Option<u64>,
    pub expect: String,
    pub raw: Vec<u8>,
}

pub fn load() -> Vec<Case> {
    let text = std::fs::read_to_string(CORPUS).expect("CRS corpus present at ../shared");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
            Case {
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                family: v["family"].as_str().unwrap_or_default().to_owned(),
                paranoia_level: v["paranoia_level"].as_u64(),
                expect: v["expect"].as_str().unwrap_or_default().to_owned(),
                raw: base64::engine::general_purpose::STANDARD
                    .decode(v["raw_b64"].as_str().unwrap_or_default())
                    .expect("raw_b64 is base64"),
            }
        })
        .collect()
}

/// Parses a raw request and inspects it; `None` when it is not parseable HTTP/1.
pub fn inspect_raw(detector: &AttackDetector, raw: &[u8]) -> Option<Inspection> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let body_start = match req.parse(raw).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let target = req.path?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut map = http::HeaderMap::new();
    for h in req.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(h.name.as_bytes()),
            http::HeaderValue::from_bytes(h.value),
        ) {
            map.append(name, value);
        }
    }
    let content_type = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .and_then(|h| std::str::from_utf8(h.value).ok());
    let body = &raw[body_start..];
    let view = RequestView {
        path,
        path_params: &[],
        query,
        headers: &map,
        content_type,
        body: (!body.is_empty()).then_some(body),
        json: None,
    };
    Some(detector.inspect(&view))
}

/// Per family: (detected, total) over paranoia-level-1 `attack` cases, plus the ids missed.
pub fn measure(
    detector: &AttackDetector,
    cases: &[Case],
    threshold: u32,
) -> BTreeMap<&'static str, (usize, usize, Vec<String>)> {
    let mut out = BTreeMap::new();
    for (number, _) in FAMILIES {
        out.insert(number, (0, 0, Vec::new()));
    }
    for case in cases {
        if case.paranoia_level != Some(1) || case.expect != "attack" {
            continue;
        }
        let Some((number, _)) = FAMILIES
            .iter()
            .find(|(n, _)| case.family.starts_with(&format!("REQUEST-{n}-")))
        else {
            continue;
        };
        let entry = out.get_mut(number).expect("family initialised");
        entry.1 += 1;
        match inspect_raw(detector, &case.raw) {
            Some(i) if i.score >= threshold => entry.0 += 1,
            _ => entry.2.push(case.id.clone()),
        }
    }
    out
}
