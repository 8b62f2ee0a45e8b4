//! The admin API: a separate listener (loopback by default) for health, metrics, the active
//! config, reloads and the upstream-token JWKS. Everything but the health probes and the
//! (public) JWKS needs the bearer token, compared in constant time.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Secret;
use crate::server::Gateway;

#[derive(Clone)]
struct AdminState {
    gw: Arc<Gateway>,
    token: Secret,
}

pub fn router(gw: Arc<Gateway>, token: Secret) -> Router {
    let state = AdminState { gw, token };
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/config", get(config))
        .route("/reload", post(reload))
        .route("/blocks", get(list_blocks).post(add_block))
        .route("/blocks/{*key}", axum::routing::delete(remove_block))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        // The upstream-token public keys are public information (upstreams fetch them to
        // verify `x-portcullis-token`), so they are served without the admin token.
        .route("/jwks", get(jwks))
        .merge(protected)
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "Not Found") })
        .with_state(state)
}

pub async fn serve(
    tcp: TcpListener,
    gw: Arc<Gateway>,
    token: Secret,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(gw, token);
    let result = axum::serve(tcp, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "admin API stopped");
    }
}

async fn require_token(
    State(state): State<AdminState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = presented
        .as_bytes()
        .ct_eq(state.token.expose().as_bytes())
        .into();
    if !ok {
        let mut resp = problem(StatusCode::UNAUTHORIZED, "Unauthorized");
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"portcullis-admin\""),
        );
        return resp;
    }
    next.run(req).await
}

fn problem(status: StatusCode, title: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn ready(State(state): State<AdminState>) -> Response {
    let snap = state.gw.snapshot();
    let body = serde_json::json!({
        "ready": true,
        "config_generation": snap.generation,
        "routes": snap.config.routes.len(),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The JWKS of the gateway-signed upstream identity token; 404 when none is configured.
async fn jwks(State(state): State<AdminState>) -> Response {
    let snap = state.gw.snapshot();
    match snap.identity.upstream_jwks() {
        Some(jwks) => (
            [(header::CONTENT_TYPE, "application/jwk-set+json")],
            jwks.to_string(),
        )
            .into_response(),
        None => problem(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let text = state
        .gw
        .metrics
        .render(state.gw.emitter.emitted(), state.gw.emitter.dropped());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn config(State(state): State<AdminState>) -> Response {
    let snap = state.gw.snapshot();
    match serde_json::to_value(&*snap.config) {
        Ok(v) => axum::Json(serde_json::json!({
            "generation": snap.generation,
            "config": v,
        }))
        .into_response(),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

async fn reload(State(state): State<AdminState>) -> Response {
    match state.gw.reload().await {
        Ok(generation) => axum::Json(serde_json::json!({
            "reloaded": true,
            "generation": generation,
        }))
        .into_response(),
        Err(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({
                "reloaded": false,
                "generation": state.gw.generation(),
                "errors": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
    }
}

/// `ip:1.2.3.4`, `cidr:10.0.0.0/8`, `principal:alice` or `key:<api key id>`; checked so a
/// typo cannot silently block nothing. Returns the key as the request path looks it up.
/// Fix: addresses and ranges were stored as typed, but requests look up `ip:<address>` in
/// its canonical form, so a valid block spelled otherwise (`ip:0:0:0:0:0:0:0:1` for `::1`)
/// was accepted and blocked nothing.
fn canonical_block_key(key: &str) -> Option<String> {
    match key.split_once(':') {
        Some(("ip", ip)) => ip
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| format!("ip:{ip}")),
        Some(("cidr", net)) => net
            .parse::<ipnet::IpNet>()
            .ok()
            .map(|net| format!("cidr:{net}")),
        Some(("principal" | "key", id)) => {
            (!id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control))
                .then(|| key.to_string())
        }
        _ => None,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBlock {
    key: String,
    /// `30s`, `5m`, `1h`, `1d`.
    ttl: String,
}

async fn list_blocks(State(state): State<AdminState>) -> Response {
    let snap = state.gw.snapshot();
    let blocks: Vec<serde_json::Value> = snap
        .protection
        .limiter
        .list_blocks()
        .await
        .into_iter()
        .map(|(key, left)| serde_json::json!({ "key": key, "expires_in_seconds": left.as_secs() }))
        .collect();
    axum::Json(serde_json::json!({ "blocks": blocks })).into_response()
}

async fn add_block(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<NewBlock>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expected {\"key\": \"ip:1.2.3.4\", \"ttl\": \"10m\"}",
        );
    };
    let Some(key) = canonical_block_key(&req.key) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "key must be ip:<address>, cidr:<range>, principal:<id> or key:<api key id>",
        );
    };
    let req = NewBlock { key, ..req };
    let Ok(ttl) = crate::config::units::parse_duration(&req.ttl) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "ttl must be a duration such as 10m",
        );
    };
    let snap = state.gw.snapshot();
    match snap.protection.limiter.block(&req.key, ttl).await {
        Ok(()) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "key": req.key, "expires_in_seconds": ttl.as_secs() })),
        )
            .into_response(),
        // The block holds on this instance; it could not be shared.
        Err(e) => (
            StatusCode::ACCEPTED,
            axum::Json(
                serde_json::json!({ "key": req.key, "shared": false, "error": e.to_string() }),
            ),
        )
            .into_response(),
    }
}

async fn remove_block(
    State(state): State<AdminState>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Response {
    let key = canonical_block_key(&key).unwrap_or(key);
    let snap = state.gw.snapshot();
    match snap.protection.limiter.unblock(&key).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("could not remove the block: {e}"),
        ),
    }
}
