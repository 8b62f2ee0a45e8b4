//! `portcullis demo`: the sample API behind the gateway with its features switched on, and
//! curl lines to try. The gateway is configured through the same YAML path as `serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use portcullis_gateway::{RunningGateway, config};

use crate::sample_api;

pub async fn run(port: u16, admin_port: u16) -> anyhow::Result<ExitCode> {
    let api = sample_api::start()
        .await
        .context("cannot start the sample API")?;
    let token = format!("{:032x}", rand::random::<u128>());
    let yaml = demo_config(&api.to_string(), port, admin_port, &token);
    let path = PathBuf::from("portcullis-demo.yaml");
    let cfg = config::parse(&path, &yaml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = RunningGateway::start(cfg, None)
        .await
        .context("cannot start the gateway (is the port in use? try --port)")?;
    let gw = running.listeners.first().map_or(port, |a| a.port());
    let redirect = running.listeners.get(1).map_or(0, |a| a.port());
    let base = format!("https://localhost:{gw}");
    println!(
        r#"
Portcullis demo
  sample API (upstream)  http://{api}   (not exposed; reach it through the gateway)
  gateway                {base}   (self-signed certificate: curl -k)
  redirect listener      http://localhost:{redirect} → HTTPS (308)
  admin API              http://127.0.0.1:{admin_port}   token: {token}
  events                 ./portcullis-events.jsonl

Try:
  # allowed: proxied, fingerprinting headers stripped, security headers added
  curl -ki {base}/api/items

  # create an item (JSON only: other media types get 415)
  curl -ki -X POST {base}/api/items -H 'content-type: application/json' -d '{{"name":"tnt","price":3}}'

  # oversize body refused before it reaches the API (413)
  head -c 20000 /dev/zero | curl -ki -X POST {base}/api/items -H 'content-type: application/json' --data-binary @-

  # credential in the URL refused (400); the event records the parameter name only
  curl -ki '{base}/api/items?api_key=hunter2'

  # upstream error masked: the stack trace stays behind the gateway (500, problem+json)
  curl -ki {base}/api/debug/crash

  # plain HTTP is redirected to HTTPS
  curl -i http://localhost:{redirect}/api/items

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
    Ok(ExitCode::SUCCESS)
}

/// The demo's config: the same schema an operator writes (see examples/).
fn demo_config(api: &str, port: u16, admin_port: u16, token: &str) -> String {
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
routes:
  - name: items
    match: {{ path_prefix: /api }}
    upstream: sample-api
    auth:
      public: true
    request:
      allowed_methods: [GET, POST, PUT, DELETE, OPTIONS]
      allowed_content_types: [application/json]
    cors:
      allow_origins: [https://app.example.com]
      allow_methods: [GET, POST, PUT, DELETE]
      allow_headers: [content-type, authorization]
      max_age: 600
events:
  file: portcullis-events.jsonl
admin:
  address: 127.0.0.1:{admin_port}
  token: "{token}"
"#,
        redirect = if port == 8443 {
            8080
        } else {
            port.wrapping_add(1)
        },
    )
}
