//! HTTP sinks: Splunk HTTP Event Collector and the Elasticsearch /
//! OpenSearch `_bulk` API.
//!
//! Each runs a small current-thread Tokio runtime on its own worker thread
//! and drives a hyper 1 client (hyper-rustls, aws-lc-rs) from there, so the
//! gateway's runtime never waits on a SIEM. The runtime and client are made
//! on the first delivery, on the worker thread: a runtime must not be dropped
//! inside another one, which could happen if they were built in
//! `Emitter::start` and a later sink failed to start. Credentials live only
//! in the request headers; errors name the endpoint, never a header.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;

use crate::config::{ElasticAuth, ElasticBulkConfig, SplunkHecConfig};
use crate::error::EventsError;
use crate::ocsf::Event;
use crate::worker::{Deliver, SendOutcome};

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The transport part shared by both HTTP sinks.
struct Endpoint {
    /// Full request URI (base URL plus the API path).
    uri: Uri,
    /// `scheme://host:port`, safe to log (no user info, no path).
    display: String,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    /// Built on first use, on the worker thread.
    runtime: Option<(tokio::runtime::Runtime, HttpsClient)>,
}

/// What came back from one POST.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

impl Endpoint {
    fn new(
        base: &str,
        api_path: &str,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<Endpoint, EventsError> {
        let base: Uri = base
            .parse()
            .map_err(|e| EventsError::InvalidConfig(format!("sink URL: {e}")))?;
        let scheme = base.scheme_str().unwrap_or("");
        if scheme != "http" && scheme != "https" {
            return Err(EventsError::InvalidConfig(
                "sink URL must start with http:// or https://".to_owned(),
            ));
        }
        let authority = base
            .authority()
            .ok_or_else(|| EventsError::InvalidConfig("sink URL has no host".to_owned()))?;
        if authority.as_str().contains('@') {
            return Err(EventsError::InvalidConfig(
                "sink URL must not carry credentials; use the auth settings".to_owned(),
            ));
        }
        let prefix = base.path().trim_end_matches('/');
        let uri: Uri = format!("{scheme}://{authority}{prefix}{api_path}")
            .parse()
            .map_err(|e| EventsError::InvalidConfig(format!("sink URL: {e}")))?;
        Ok(Endpoint {
            uri,
            display: format!("{scheme}://{authority}"),
            tls: crate::tls::client_config(ca_file)?,
            timeout,
            runtime: None,
        })
    }

    fn post(
        &mut self,
        body: Vec<u8>,
        headers: &[(header::HeaderName, HeaderValue)],
    ) -> Result<Reply, String> {
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the HTTP sink runtime: {e}"))?;
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(self.timeout));
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((*self.tls).clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            let client = Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector);
            self.runtime = Some((runtime, client));
        }
        let Some((runtime, client)) = &self.runtime else {
            return Err("HTTP sink runtime missing".to_owned());
        };
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        for (name, value) in headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let timeout = self.timeout;
        let display = &self.display;
        runtime.block_on(async move {
            let exchange = async {
                let response = client
                    .request(request)
                    .await
                    .map_err(|e| format!("{display}: {e}"))?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("{display}: reading the response: {e}"))?
                    .to_bytes();
                Ok(Reply { status, body })
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(format!("{display}: no response within {timeout:?}")),
            }
        })
    }
}

/// Whether an HTTP status means "try again later".
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// A response body excerpt for the error log (servers echo no secrets).
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

fn json_string(out: &mut Vec<u8>, value: &str) -> Result<(), String> {
    serde_json::to_writer(&mut *out, value).map_err(|e| e.to_string())
}

/// Splunk HEC: `POST /services/collector/event` with concatenated envelopes.
pub(crate) struct SplunkHecSink {
    endpoint: Endpoint,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    host: String,
    source: String,
    sourcetype: String,
    index: Option<String>,
}

impl SplunkHecSink {
    pub(crate) fn new(cfg: &SplunkHecConfig) -> Result<SplunkHecSink, EventsError> {
        let endpoint = Endpoint::new(
            &cfg.url,
            "/services/collector/event",
            cfg.tls.ca_file.as_deref(),
            cfg.batch.timeout,
        )?;
        if cfg.token.expose().is_empty() {
            return Err(EventsError::InvalidConfig(format!(
                "splunk_hec sink {}: token is required",
                endpoint.display
            )));
        }
        let mut auth =
            HeaderValue::from_str(&format!("Splunk {}", cfg.token.expose())).map_err(|_| {
                EventsError::InvalidConfig("splunk_hec token has invalid characters".to_owned())
            })?;
        auth.set_sensitive(true);
        Ok(SplunkHecSink {
            endpoint,
            headers: vec![
                (header::AUTHORIZATION, auth),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
            ],
            host: cfg
                .host
                .clone()
                .unwrap_or_else(crate::syslog::local_hostname),
            source: cfg.source.clone(),
            sourcetype: cfg.sourcetype.clone(),
            index: cfg.index.clone(),
        })
    }

    pub(crate) fn display(&self) -> &str {
        &self.endpoint.display
    }
}

impl Deliver for SplunkHecSink {
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
        let ms = ev.time_ms();
        out.extend_from_slice(
            format!("{{\"time\":{}.{:03},\"host\":", ms / 1000, ms % 1000).as_bytes(),
        );
        json_string(out, &self.host)?;
        out.extend_from_slice(b",\"source\":");
        json_string(out, &self.source)?;
        out.extend_from_slice(b",\"sourcetype\":");
        json_string(out, &self.sourcetype)?;
        if let Some(index) = &self.index {
            out.extend_from_slice(b",\"index\":");
            json_string(out, index)?;
        }
        out.extend_from_slice(b",\"event\":");
        ev.write_json(&mut *out).map_err(|e| e.to_string())?;
        out.push(b'}');
        Ok(())
    }

    fn send(&mut self, records: &[&[u8]]) -> SendOutcome {
        let body = records.concat();
        match self.endpoint.post(body, &self.headers) {
            Err(err) => SendOutcome::retry_all(records.len(), err),
            Ok(reply) if reply.status.is_success() => SendOutcome::delivered(),
            Ok(reply) => {
                let err = format!(
                    "{}: HTTP {}: {}",
                    self.endpoint.display,
                    reply.status,
                    excerpt(&reply.body)
                );
                if retryable(reply.status) {
                    SendOutcome::retry_all(records.len(), err)
                } else {
                    SendOutcome::reject_all(records.len(), err)
                }
            }
        }
    }
}

/// Elasticsearch / OpenSearch `_bulk` with `create` actions.
pub(crate) struct ElasticBulkSink {
    endpoint: Endpoint,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    /// `{"create":{"_index":"..."}}\n`, the same for every document.
    action: Vec<u8>,
}

impl ElasticBulkSink {
    pub(crate) fn new(cfg: &ElasticBulkConfig) -> Result<ElasticBulkSink, EventsError> {
        let endpoint = Endpoint::new(
            &cfg.url,
            "/_bulk",
            cfg.tls.ca_file.as_deref(),
            cfg.batch.timeout,
        )?;
        if cfg.index.is_empty() {
            return Err(EventsError::InvalidConfig(format!(
                "elastic_bulk sink {}: index is required",
                endpoint.display
            )));
        }
        let mut headers = vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )];
        let auth = match &cfg.auth {
            ElasticAuth::None => None,
            ElasticAuth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose());
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            ElasticAuth::ApiKey(key) => Some(format!("ApiKey {}", key.expose())),
        };
        if let Some(auth) = auth {
            let mut value = HeaderValue::from_str(&auth).map_err(|_| {
                EventsError::InvalidConfig(
                    "elastic_bulk credentials have invalid characters".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            headers.push((header::AUTHORIZATION, value));
        }
        let mut action = b"{\"create\":{\"_index\":".to_vec();
        json_string(&mut action, &cfg.index).map_err(EventsError::InvalidConfig)?;
        action.extend_from_slice(b"}}\n");
        Ok(ElasticBulkSink {
            endpoint,
            headers,
            action,
        })
    }

    pub(crate) fn display(&self) -> &str {
        &self.endpoint.display
    }
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
}

impl Deliver for ElasticBulkSink {
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(&self.action);
        ev.write_json(&mut *out).map_err(|e| e.to_string())?;
        out.push(b'\n');
        Ok(())
    }

    fn send(&mut self, records: &[&[u8]]) -> SendOutcome {
        let body = records.concat();
        let reply = match self.endpoint.post(body, &self.headers) {
            Err(err) => return SendOutcome::retry_all(records.len(), err),
            Ok(reply) => reply,
        };
        let display = &self.endpoint.display;
        if !reply.status.is_success() {
            let err = format!("{display}: HTTP {}: {}", reply.status, excerpt(&reply.body));
            return if retryable(reply.status) {
                SendOutcome::retry_all(records.len(), err)
            } else {
                SendOutcome::reject_all(records.len(), err)
            };
        }
        let parsed: BulkResponse = match serde_json::from_slice(&reply.body) {
            Ok(parsed) => parsed,
            Err(err) => {
                // A 2xx we cannot read: the documents were most likely stored; resending
                // would duplicate them all, so count them delivered and say so.
                tracing::warn!(endpoint = %self.endpoint.display, error = %err, "unreadable _bulk response");
                return SendOutcome::delivered();
            }
        };
        if !parsed.errors {
            return SendOutcome::delivered();
        }
        if parsed.items.len() != records.len() {
            return SendOutcome::retry_all(
                records.len(),
                format!(
                    "{display}: _bulk answered {} items for {} documents",
                    parsed.items.len(),
                    records.len()
                ),
            );
        }
        let mut outcome = SendOutcome::delivered();
        for (i, item) in parsed.items.iter().enumerate() {
            let Some(status) = item.values().next().map(|r| r.status) else {
                outcome.retry.push(i);
                continue;
            };
            match StatusCode::from_u16(status) {
                Ok(s) if s.is_success() => {}
                Ok(s) if retryable(s) => outcome.retry.push(i),
                _ => outcome.rejected.push(i),
            }
        }
        outcome.error = Some(format!(
            "{display}: _bulk item errors: {} to retry, {} rejected",
            outcome.retry.len(),
            outcome.rejected.len()
        ));
        outcome
    }
}
