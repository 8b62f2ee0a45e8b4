//! `portcullis demo`: the sample API behind the gateway with its features switched on, and
//! curl lines to try. The gateway is configured through the same YAML path as `serve`; the
//! demo only generates what a real deployment would bring: an API key, a JWT issuer's key
//! pair (so it can print tokens), and the admin token.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::signature::{self, KeyPair};
use portcullis_gateway::{RunningGateway, config};

use crate::sample_api;

const ISSUER: &str = "https://idp.demo.portcullis.invalid";
const AUDIENCE: &str = "sample-api";

pub async fn run(port: u16, admin_port: u16) -> anyhow::Result<ExitCode> {
    let api = sample_api::start()
        .await
        .context("cannot start the sample API")?;
    let token = format!("{:032x}", rand::random::<u128>());
    let (api_key, api_key_hash) = portcullis_identity::apikey::generate_key();

    // The demo plays the identity provider too: an ES256 key pair whose public half the
    // gateway trusts, and whose private half mints the tokens printed below.
    let dir = std::env::temp_dir().join(format!("portcullis-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("cannot create the demo's temporary directory")?;
    let issuer = DemoIssuer::new()?;
    let public_pem = dir.join("idp-public.pem");
    std::fs::write(&public_pem, issuer.public_pem()).context("cannot write the demo IdP key")?;

    let openapi_spec = dir.join("sample-api.openapi.yaml");
    std::fs::write(&openapi_spec, sample_api::OPENAPI)
        .context("cannot write the sample API's OpenAPI document")?;

    let yaml = demo_config(&DemoSettings {
        api: api.to_string(),
        port,
        admin_port,
        admin_token: token.clone(),
        api_key_hash,
        idp_public_pem: public_pem.display().to_string(),
        openapi_spec: openapi_spec.display().to_string(),
    });
    let path = PathBuf::from("portcullis-demo.yaml");
    let cfg = config::parse(&path, &yaml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = RunningGateway::start(cfg, None)
        .await
        .context("cannot start the gateway (is the port in use? try --port)")?;
    let gw = running.listeners.first().map_or(port, |a| a.port());
    let redirect = running.listeners.get(1).map_or(0, |a| a.port());
    let base = format!("https://localhost:{gw}");
    let alice_writer = issuer.token("alice", "items:read items:write", &["pwd", "mfa"])?;
    let bob_reader = issuer.token("bob", "items:read", &["pwd"])?;
    println!(
        r#"
Portcullis demo
  sample API (upstream)  http://{api}   (not exposed; reach it through the gateway)
  gateway                {base}   (self-signed certificate: curl -k)
  redirect listener      http://localhost:{redirect} → HTTPS (308)
  admin API              http://127.0.0.1:{admin_port}   token: {token}
  events                 ./portcullis-events.jsonl

Credentials the demo made for you:
  API key (principal orders-svc, scope items:read)
    KEY={api_key}
  JWT for alice (scopes items:read items:write, MFA)     JWT for bob (scope items:read)
    ALICE={alice_writer}
    BOB={bob_reader}

Try:
  # no credentials: 401 with WWW-Authenticate challenges
  curl -ki {base}/api/items

  # an API key in a header (never in the URL), or a bearer token
  curl -ki {base}/api/items -H "x-api-key: $KEY"
  curl -ki {base}/api/items -H "authorization: Bearer $BOB"

  # the key in the URL is refused (400); the event records the parameter name only
  curl -ki "{base}/api/items?api_key=$KEY"

  # writes need the items:write scope: bob gets 403 insufficient_scope, alice creates the item
  curl -ki -X POST {base}/api/items -H "authorization: Bearer $BOB" -H 'content-type: application/json' -d '{{"name":"tnt"}}'
  curl -ki -X POST {base}/api/items -H "authorization: Bearer $ALICE" -H 'content-type: application/json' -d '{{"name":"tnt"}}'

  # object ownership: alice reads her profile, bob asking for alice's gets 404
  curl -ki {base}/api/users/alice/profile -H "authorization: Bearer $ALICE"
  curl -ki {base}/api/users/alice/profile -H "authorization: Bearer $BOB"

  # rate limits: 429 with Retry-After and RateLimit headers once the per-principal budget is spent
  for i in $(seq 15); do curl -ks -o /dev/null -w '%{{http_code}} ' {base}/api/items -H "x-api-key: $KEY"; done; echo

  # brute force: five wrong keys block this client for 30 s (403 blocked), even with the right key
  for i in $(seq 6); do curl -ks -o /dev/null -w '%{{http_code}} ' {base}/api/items -H 'x-api-key: wrong'; done; echo

  # the API contract (OpenAPI): mass assignment refused (400, the problem lists /body/admin)
  curl -ki -X POST {base}/api/items -H "authorization: Bearer $ALICE" -H 'content-type: application/json' -d '{{"name":"tnt","admin":true}}'

  # attack payloads: SQL injection in a path parameter refused (403 attack_detected)
  curl -ki "{base}/api/catalog/1'%20UNION%20SELECT%20password%20FROM%20users--"

  # data leaving: the upstream's password_hash and is_admin are removed, the card number masked
  curl -ks {base}/api/users/alice/profile -H "authorization: Bearer $ALICE"

  # oversize body refused before it reaches the API (413)
  head -c 20000 /dev/zero | curl -ki -X POST {base}/api/items -H "authorization: Bearer $ALICE" -H 'content-type: application/json' --data-binary @-

  # upstream error masked: the stack trace stays behind the gateway (500, problem+json)
  curl -ki {base}/api/debug/crash

  # plain HTTP is redirected to HTTPS
  curl -i http://localhost:{redirect}/api/items

  # the JWKS upstreams use to verify the gateway's identity token (x-portcullis-token)
  curl -ks {base}/.well-known/portcullis-jwks.json

  # admin: metrics and the active config (secrets redacted)
  curl -s -H 'authorization: Bearer {token}' http://127.0.0.1:{admin_port}/metrics | head -20
  curl -s -H 'authorization: Bearer {token}' http://127.0.0.1:{admin_port}/config

  # watch the events
  tail -f portcullis-events.jsonl

Ctrl-C stops the demo.
"#
    );
    crate::wait_for_signals(&running).await;
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

struct DemoSettings {
    api: String,
    port: u16,
    admin_port: u16,
    admin_token: String,
    api_key_hash: String,
    idp_public_pem: String,
    openapi_spec: String,
}

/// The demo's config: the same schema an operator writes (see examples/).
fn demo_config(s: &DemoSettings) -> String {
    let DemoSettings {
        api,
        port,
        admin_port,
        admin_token,
        api_key_hash,
        idp_public_pem,
        openapi_spec,
    } = s;
    let redirect = if *port == 8443 {
        8080
    } else {
        port.wrapping_add(1)
    };
    format!(
        r#"
listeners:
  - name: https
    address: 127.0.0.1:{port}
    tls: self_signed
  - name: redirect
    address: 127.0.0.1:{redirect}
    redirect_https_port: {port}
upstreams:
  sample-api:
    targets: [http://{api}]
defaults:
  request:
    max_body: 16KiB
identity:
  api_keys:
    keys:
      - id: demo-key-1
        hash: {api_key_hash}
        principal: orders-svc
        scopes: [items:read]
  jwt:
    - name: demo
      issuer: {ISSUER}
      audiences: [{AUDIENCE}]
      algorithms: [ES256]
      keys: [{idp_public_pem}]
  upstream_token:
    public_jwks_path: /.well-known/portcullis-jwks.json
rate_limit:
  limits:
    per-ip: {{ rate: 10, per: 1s, burst: 20, key: ip }}
    per-principal: {{ rate: 5, per: 1s, burst: 10, key: principal }}
access:
  brute_force: {{ threshold: 5, window: 1m, blocks: [30s, 2m, 10m] }}
routes:
  - name: health
    match: {{ path_prefix: /api/health }}
    upstream: sample-api
    auth: {{ public: true }}
  - name: debug
    match: {{ path_prefix: /api/debug }}
    upstream: sample-api
    auth: {{ public: true }}
  - name: catalog
    match: {{ path_prefix: /api/catalog }}
    upstream: sample-api
    auth: {{ public: true }}
    openapi: {{ spec: "{openapi_spec}" }}
    inspect: {{ mode: enforce }}
  - name: items-read
    match: {{ path_prefix: /api/items, methods: [GET, HEAD, OPTIONS] }}
    upstream: sample-api
    auth: {{ methods: [api_key, jwt:demo] }}
    authorize: {{ scopes_all: [items:read] }}
    rate_limits: {{ before_auth: [per-ip], after_auth: [per-principal], headers: true }}
    openapi: {{ spec: "{openapi_spec}" }}
    inspect: {{ mode: enforce }}
    cors:
      allow_origins: [https://app.example.com]
      allow_methods: [GET, POST, PUT, DELETE]
      allow_headers: [content-type, authorization]
      max_age: 600
  - name: items-write
    match: {{ path_prefix: /api/items, methods: [POST, PUT, DELETE] }}
    upstream: sample-api
    auth: {{ methods: [jwt:demo] }}
    authorize: {{ scopes_all: [items:write] }}
    request:
      allowed_content_types: [application/json]
    openapi: {{ spec: "{openapi_spec}", reject_unknown_properties: true }}
    inspect: {{ mode: enforce }}
  - name: profiles
    match: {{ path_prefix: /api/users, path_template: "/api/users/{{user_id}}/profile" }}
    upstream: sample-api
    auth: {{ methods: [jwt:demo] }}
    authorize:
      ownership: [{{ path_param: user_id, claim: sub }}]
    openapi: {{ spec: "{openapi_spec}", responses: filter }}
    inspect: {{ mode: enforce }}
    data_protection:
      detectors: {{ "*": mask }}
events:
  file: portcullis-events.jsonl
admin:
  address: 127.0.0.1:{admin_port}
  token: "{admin_token}"
"#
    )
}

/// The demo's stand-in identity provider.
struct DemoIssuer {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl DemoIssuer {
    fn new() -> anyhow::Result<Self> {
        let kp = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| anyhow::anyhow!("cannot generate the demo IdP key"))?;
        let pkcs8 = kp
            .to_pkcs8v1()
            .map_err(|_| anyhow::anyhow!("cannot encode the demo IdP key"))?
            .as_ref()
            .to_vec();
        Ok(DemoIssuer {
            public: kp.public_key().as_ref().to_vec(),
            pkcs8,
        })
    }

    /// SubjectPublicKeyInfo PEM for a P-256 key: a fixed DER prefix before the point.
    fn public_pem(&self) -> String {
        use base64::Engine;
        const P256_SPKI_PREFIX: [u8; 26] = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.public);
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// A token valid for 12 hours.
    fn token(&self, sub: &str, scope: &str, amr: &[&str]) -> anyhow::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "scope": scope, "amr": amr,
            "iat": now, "exp": now + 12 * 3600, "jti": format!("{:016x}", rand::random::<u64>()),
        });
        let key = jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8);
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &key,
        )
        .context("cannot sign a demo token")
    }
}
