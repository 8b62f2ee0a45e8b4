//! A generator of realistic, clean API traffic, for false-positive measurement and benches.
//!
//! Requests are built from the OWASP crAPI OpenAPI document (Apache-2.0, see
//! `../shared/specs/`): every operation's path, query and JSON body schemas are walked and
//! filled with values chosen by field name and format, drawn from hand-written pools of
//! realistic data — names with apostrophes, prose with punctuation and SQL-ish words,
//! markdown and code snippets, URLs to public hosts, e-mail addresses, dates, UUIDs, base64
//! blobs and JWTs, file names and relative paths. Deterministic (seeded xorshift), so a
//! false positive is reproducible.

#![allow(dead_code)]

use serde_json::{Map, Value, json};

pub const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/specs/crapi-openapi.json"
);

/// A generated request, owned.
pub struct BenignRequest {
    pub method: &'static str,
    pub path: String,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    pub content_type: Option<String>,
    pub body: Option<Vec<u8>>,
    pub json: Option<Value>,
}

/// Small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

pub const NAMES: &[&str] = &[
    "O'Brien",
    "D'Angelo",
    "Anne-Marie O'Neil",
    "Renée Zellweger",
    "José Núñez",
    "Zoë Kravitz",
    "Siobhán Ní Bhriain",
    "李小龍",
    "Mc'Kenzie",
    "Jean-Luc Picard",
    "Ruby",
    "Perl Jensen",
    "Dr. Sarah Connor",
    "Ólafur Arnalds",
    "Nguyễn Văn An",
    "Smith & Sons",
    "Mary-Kate",
    "Robert'); Tables",
    "Cat Stevens",
    "Echo Park",
    "Chris \"CJ\" Jones",
    "Sleepy Hollow Inc.",
];

pub const PROSE: &[&str] = &[
    "select the best option; then drop me a line",
    "Union Station is closed on Sunday",
    "1=1 is a math fact",
    "Please update my address; thanks!",
    "I'd like to order 2 items & get a discount",
    "Delete from my cart the blue one, please.",
    "The car makes a noise when I drive over 50 mph -- please check",
    "Where's order #1234? It's been 3 days.",
    "It's 5 o'clock; time to go home",
    "He said \"hello\" and left; she didn't.",
    "Is 3 < 5 and 7 > 2? Yes, obviously.",
    "email me: jane.doe@example.com or call +1 (555) 010-2030",
    "See https://www.example.com/docs?page=2&sort=asc for details",
    "C'est la vie — naïve café, crème brûlée",
    "Road trip 🚗💨 was great!!!",
    "Costs $25 (approx.) or €20",
    "I need sleep (8 hours at least) before the drive",
    "Order by Friday; select express shipping if you can",
    "Drop me a line or call me — whatever works",
    "The script of the movie was great",
    "Tom & Jerry's garage fixed the brakes (finally)",
    "50% off? Great! Where do I sign up?",
    "My VIN is 1HGCM82633A004352, the dashboard shows error P0420",
    "Brakes squeak when cold; after 5 minutes it's fine. Dealer said it's normal?",
    "If the light is on, then stop; otherwise continue.",
    "The table for two is booked at 7pm",
    "Execute the plan: first wash, then wax, then polish.",
    "I love Python, Ruby & Go; Perl not so much.",
    "Where to find the cat food? Aisle 5.",
    "P.S. thanks for the quick help!",
    "Insert coin, select drink, enjoy.",
    "Fix: the 'reset' button doesn't work (iOS 17.2)",
    "From: Alice; To: Bob; Subject: tyres",
    "Can you echo this back to the team? Appreciated.",
    "Replace the wiper blades - both sides - before winter",
    "Version 2.3.1 -> 2.4.0 upgrade went fine",
    "Half-price sale: 2 for 1 (today only)",
    "Q&A session at 10:30; bring questions.",
    "Rate: 4/5 — would buy again",
    "Admin's note: ticket closed; customer satisfied.",
    "We're in Raleigh; NC is lovely in spring",
    "Tabs vs spaces? Spaces, obviously; 4 of them.",
    "\"Quoted\" text and 'single quotes' in the same line",
    "Line one\nLine two\nPS: line three",
    "Total = price * quantity + tax",
    "Sort by date, then by name (ascending)",
    "Use the drop-down to select your region, then press OK",
    "221B Baker St., London NW1 6XE",
    "1600 Amphitheatre Pkwy, Mountain View, CA 94043",
    "Apt. #4; 2nd floor (ring twice)",
    "c/o Jane Doe, P.O. Box 123",
    "5/5 would recommend!!! :-)",
    "Not bad... could be better :/",
    "<3 this app",
    "10/10 — the UI's great (esp. dark mode)",
    "Price: $1,299.00 (incl. VAT)",
    "A+B=C and x < y > z",
    "100% cotton; machine-washable",
    "#rust #webdev @jane",
    "C:\\Users\\jane\\Documents\\report.pdf",
    "~/projects/app/README.md",
    "I'm 100% sure; let's go!",
    "Wait -- what?",
    "Name: O'Hara; Age: 42",
    "He's 6'2\" tall",
    "Call 1-800-FLOWERS",
    "semi;colon;separated;list",
    "a|b|c",
    "key=value&other=thing",
    "If you need help, call us; we're open 9-5",
    "Don't forget: ${name} is replaced when the e-mail is sent",
    "{{first_name}}, your order has shipped!",
    "Meet me at 5 & bring snacks; cat food too",
    "Refund of $25 for order #A-1001 (see ticket 42)",
    "Symptoms: engine light on, RPM > 3000 when idle",
    "The mechanic said: \"it's the O2 sensor\" -- fair enough",
    "Ping me when it's ready (I'm at work until 6)",
    "Top 10 tips: wash, wax, repeat",
    "Set the tyre pressure to 2.4 bar / 35 psi",
    "Source: https://www.nhtsa.gov/recalls?nhtsaId=24V123",
    "Grade: A-; Comments: 'excellent'",
    "export the report as CSV, please",
    "Pick-up time 10:30–11:00; drop-off 17:00",
];

pub const CODE: &[&str] = &[
    "```js\nif (a < b) { return; }\n```",
    "Use `npm install` and then `npm start` to run it",
    "x = [1, 2, 3]\nprint(sum(x))",
    "for (let i = 0; i < n; i++) { total += items[i].price; }",
    "SELECT is just a keyword in my SQL class notes",
    "The regex ^[a-z]+$ matches lowercase words",
    "while (queue.length > 0) { handle(queue.pop()); }",
    "`git commit -m \"fix\"` then push",
    "Set `retries: 3` in config.yaml",
    "fn main() { println!(\"hi\"); }",
    "a && b || c",
    "Try `ls -la` in your home folder to see hidden files",
    "<b>bold</b> and <i>italic</i>",
    "def area(r): return 3.14 * r ** 2",
    "$total = $price * 2; // php-style note",
];

pub const URLS: &[&str] = &[
    "https://www.example.com/",
    "https://cdn.example.org/img/car-42.png",
    "http://example.net/search?q=union+station",
    "https://maps.google.com/?q=40.7128,-74.0060",
    "https://github.com/OWASP/crAPI/blob/main/README.md",
    "https://en.wikipedia.org/wiki/Rust_(programming_language)",
    "https://example.com/a/b/c?utm_source=newsletter&utm_medium=email",
    "https://images.example.com/u/8f14e45f/avatar.jpg?size=128",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "data:text/plain;charset=utf-8,Hello%2C%20World",
];

pub const EMAILS: &[&str] = &[
    "jane.doe@example.com",
    "o'brien@example.ie",
    "first+tag@sub.example.org",
    "support@crapi.example",
    "x_y.z@example.co.uk",
];

pub const FILES: &[&str] = &[
    "report-2024.pdf",
    "IMG_0042.JPG",
    "invoice (1).pdf",
    "my.resume.docx",
    "notes.txt",
    "docs/guide/intro",
    "src/main.rs",
    "photos/2024/summer/beach.png",
    "data.csv",
    "video.mp4",
];

pub const SEARCHES: &[&str] = &[
    "union station",
    "drop shipping",
    "select comfort mattress",
    "table for two",
    "cat food",
    "ls engine swap",
    "curl hair products",
    "python tutorial",
    "ruby on rails",
    "echo dot",
    "find my car",
    "id card renewal",
    "sleep apnea",
    "where is my order",
    "or else",
    "and more",
    "c++ vs rust",
    "tom & jerry",
    "50% off",
    "o'reilly books",
    "null pointer",
    "1=1",
    "script writing",
    "java developer",
    "alert system",
    "document management",
    "window tint",
    "bash party",
    "exec summary",
    "system design",
    "include tax",
    "process improvement",
];

pub const WORDS: &[&str] = &[
    "pending",
    "delivered",
    "returned",
    "active",
    "blue",
    "Sedan",
    "SUV",
    "Electric",
    "Hybrid",
    "Tesla",
    "BMW",
    "Audi",
    "Toyota",
    "Model 3",
    "X5",
    "A4",
    "Corolla",
    "en-US",
    "fr-FR",
    "Europe/Paris",
    "America/New_York",
    "SAVE-20",
    "TRAC075",
    "yes",
    "no",
    "N/A",
    "-",
    "n/a",
];

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next();
    let b = rng.next();
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

fn base64_blob(rng: &mut Rng, len: usize) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn jwt(rng: &mut Rng) -> String {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = e.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = e.encode(
        format!(
            r#"{{"sub":"{}","name":"Jane O'Brien","iat":{}}}"#,
            uuid(rng),
            1_700_000_000 + rng.below(10_000_000)
        )
        .as_bytes(),
    );
    let sig: Vec<u8> = (0..64).map(|_| rng.next() as u8).collect();
    format!("{header}.{payload}.{}", e.encode(sig))
}

fn date(rng: &mut Rng, with_time: bool) -> String {
    let (y, m, d) = (2020 + rng.below(6), 1 + rng.below(12), 1 + rng.below(28));
    if with_time {
        format!(
            "{y}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rng.below(24),
            rng.below(60),
            rng.below(60)
        )
    } else {
        format!("{y}-{m:02}-{d:02}")
    }
}

/// A free-text value: prose, code, names, searches, URLs, file names or emails.
pub fn free_text(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=3 => rng.pick(PROSE).to_owned(),
        4 => rng.pick(CODE).to_owned(),
        5 => rng.pick(NAMES).to_owned(),
        6 => rng.pick(SEARCHES).to_owned(),
        7 => rng.pick(URLS).to_owned(),
        8 => rng.pick(FILES).to_owned(),
        _ => format!(
            "{} {} {}",
            rng.pick(PROSE),
            rng.pick(NAMES),
            rng.pick(PROSE)
        ),
    }
}

/// A string value chosen from the field's name and format.
pub fn string_for(name: &str, format: Option<&str>, rng: &mut Rng) -> String {
    let n = name.to_ascii_lowercase();
    match format {
        Some("email") => return rng.pick(EMAILS).to_owned(),
        Some("date-time") => return date(rng, true),
        Some("date") => return date(rng, false),
        Some("uuid") => return uuid(rng),
        Some("uri" | "url") => return rng.pick(URLS).to_owned(),
        _ => {}
    }
    if n.contains("email") {
        rng.pick(EMAILS).to_owned()
    } else if n.contains("password") {
        rng.pick(&[
            "Tr0ub4dor&3",
            "correct horse battery staple",
            "P@ssw0rd!2024",
            "hunter2'",
            "s3cr3t;pass",
            "O'Neil#99",
        ])
        .to_owned()
    } else if n.contains("name") {
        rng.pick(NAMES).to_owned()
    } else if n.contains("token") {
        jwt(rng)
    } else if n.contains("url") || n.contains("picture") || n.contains("link") {
        rng.pick(URLS).to_owned()
    } else if n.contains("date") || n.contains("_on") || n.contains("time") {
        date(rng, true)
    } else if n.contains("vin") {
        rng.pick(&[
            "1HGCM82633A004352",
            "5YJ3E1EA7KF317000",
            "WBA3A5C51CF256651",
        ])
        .to_owned()
    } else if n.contains("number") || n.contains("phone") {
        rng.pick(&[
            "+1 (555) 010-2030",
            "555-0199",
            "+44 20 7946 0958",
            "0612345678",
        ])
        .to_owned()
    } else if n.contains("otp") || n.contains("code") {
        rng.pick(&["1234", "TRAC075", "SAVE-20", "0042", "AB12-CD34"])
            .to_owned()
    } else if n.contains("video") || n.contains("file") {
        rng.pick(FILES).to_owned()
    } else if n.contains("id") {
        uuid(rng)
    } else if n.contains("status") {
        rng.pick(&["delivered", "return pending", "returned", "cancelled"])
            .to_owned()
    } else if n.contains("image") || n.contains("blob") || n.contains("data") {
        let len = 48 + rng.below(64);
        base64_blob(rng, len)
    } else {
        free_text(rng)
    }
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let path = r.trim_start_matches("#/");
        let mut node = spec;
        for part in path.split('/') {
            node = &node[part];
        }
        return node;
    }
    schema
}

/// Fills a schema with realistic values.
pub fn fill(spec: &Value, schema: &Value, name: &str, rng: &mut Rng, depth: usize) -> Value {
    let schema = resolve(spec, schema);
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.is_empty()
    {
        return values[rng.below(values.len())].clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") | None if schema.get("properties").is_some() && depth < 6 => {
            let mut map = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in props {
                    map.insert(k.clone(), fill(spec, v, k, rng, depth + 1));
                }
            }
            Value::Object(map)
        }
        Some("array") if depth < 6 => {
            let n = 1 + rng.below(3);
            Value::Array(
                (0..n)
                    .map(|_| fill(spec, &schema["items"], name, rng, depth + 1))
                    .collect(),
            )
        }
        Some("integer") => json!(rng.below(100_000)),
        Some("number") => json!(rng.below(100_000) as f64 / 100.0),
        Some("boolean") => json!(rng.chance(50)),
        _ => Value::String(string_for(
            name,
            schema.get("format").and_then(Value::as_str),
            rng,
        )),
    }
}

/// `application/x-www-form-urlencoded` encoding of one component.
pub fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "crAPI-mobile/2.4.1 (iPhone; iOS 17.4.1; Scale/3.00)",
    "PostmanRuntime/7.37.3",
];

fn headers(rng: &mut Rng) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("host", "crapi.example.com".to_owned());
    set("user-agent", rng.pick(USER_AGENTS).to_owned());
    set("accept", "application/json, text/plain, */*".to_owned());
    set("accept-language", "en-US,en;q=0.9,fr;q=0.8".to_owned());
    if rng.chance(60) {
        set(
            "referer",
            format!(
                "https://crapi.example.com/{}",
                rng.pick(&["dashboard", "shop", "forum?page=2", "past-orders"])
            ),
        );
    }
    if rng.chance(50) {
        set(
            "cookie",
            format!(
                "session={}; theme=dark; JSESSIONID={:016X}; _ga=GA1.2.{}.{}",
                uuid(rng),
                rng.next(),
                rng.below(1_000_000_000),
                1_700_000_000 + rng.below(1_000_000)
            ),
        );
    }
    if rng.chance(40) {
        set(
            "x-forwarded-for",
            format!(
                "203.0.113.{}, 10.0.{}.{}",
                rng.below(255),
                rng.below(255),
                rng.below(255)
            ),
        );
    }
    if rng.chance(30) {
        set("x-client-version", "2.4.1".to_owned());
    }
    if rng.chance(20) {
        set("x-correlation-id", uuid(rng));
    }
    h
}

/// Generates `per_operation` requests for every crAPI operation plus search requests.
pub fn generate(per_operation: usize, seed: u64) -> Vec<BenignRequest> {
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(SPEC).expect("crAPI spec"))
        .expect("spec is JSON");
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let paths = spec["paths"].as_object().expect("paths");
    for (template, ops) in paths {
        let Some(ops) = ops.as_object() else { continue };
        for (method, op) in ops {
            let method: &'static str = match method.as_str() {
                "get" => "GET",
                "post" => "POST",
                "put" => "PUT",
                "delete" => "DELETE",
                "patch" => "PATCH",
                _ => continue,
            };
            for _ in 0..per_operation {
                let mut path = String::new();
                for seg in template.split('/').filter(|s| !s.is_empty()) {
                    path.push('/');
                    if seg.starts_with('{') {
                        if rng.chance(50) {
                            path.push_str(&rng.below(10_000).to_string());
                        } else {
                            path.push_str(&uuid(&mut rng));
                        }
                    } else {
                        path.push_str(seg);
                    }
                }
                let mut query = Vec::new();
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "query" {
                        let name = p["name"].as_str().unwrap_or("q");
                        let v = fill(&spec, &p["schema"], name, &mut rng, 0);
                        let s = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        query.push(format!("{}={}", form_encode(name), form_encode(&s)));
                    }
                }
                let content = &op["requestBody"]["content"];
                let (content_type, body, json_value) = if let Some(schema) =
                    content.get("application/json").map(|c| &c["schema"])
                {
                    let v = fill(&spec, schema, "body", &mut rng, 0);
                    let bytes = serde_json::to_vec(&v).expect("serialises");
                    (Some("application/json".to_owned()), Some(bytes), Some(v))
                } else if content.get("multipart/form-data").is_some() {
                    let boundary = format!("----WebKitFormBoundary{:016x}", rng.next());
                    let file = rng.pick(FILES);
                    let body = format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{}\r\n--{boundary}--\r\n",
                        base64_blob(&mut rng, 300),
                        free_text(&mut rng)
                    );
                    (
                        Some(format!("multipart/form-data; boundary={boundary}")),
                        Some(body.into_bytes()),
                        None,
                    )
                } else {
                    (None, None, None)
                };
                out.push(BenignRequest {
                    method,
                    path,
                    query: (!query.is_empty()).then(|| query.join("&")),
                    headers: headers(&mut rng),
                    content_type,
                    body,
                    json: json_value,
                });
            }
        }
    }
    // Search and filter requests with free text in the query, and url-encoded forms.
    for i in 0..per_operation * 10 {
        let q = if i % 2 == 0 {
            rng.pick(SEARCHES).to_owned()
        } else {
            free_text(&mut rng)
        };
        let query = format!(
            "q={}&page={}&sort={}&filter%5Bstatus%5D={}",
            form_encode(&q),
            rng.below(20),
            rng.pick(&["price", "-created_on", "name,asc"]),
            rng.pick(&["active", "pending"])
        );
        let form = format!(
            "comment={}&name={}&email={}&website={}",
            form_encode(&free_text(&mut rng)),
            form_encode(rng.pick(NAMES)),
            form_encode(rng.pick(EMAILS)),
            form_encode(rng.pick(URLS))
        );
        let is_form = i % 3 == 0;
        out.push(BenignRequest {
            method: if is_form { "POST" } else { "GET" },
            path: format!(
                "/community/api/v2/search/{}",
                form_encode(rng.pick(WORDS)).replace('+', "%20")
            ),
            query: Some(query),
            headers: headers(&mut rng),
            content_type: is_form.then(|| "application/x-www-form-urlencoded".to_owned()),
            body: is_form.then(|| form.into_bytes()),
            json: None,
        });
    }
    out
}
