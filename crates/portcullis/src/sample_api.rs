//! A small JSON API for the demo: items with create / read / update / delete, and an endpoint
//! that fails the way real frameworks do (a stack trace in a 500), so the gateway has
//! something to protect. It deliberately advertises itself with fingerprinting headers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The sample API's OpenAPI document: the contract the demo's gateway enforces.
pub const OPENAPI: &str = include_str!("sample_api.openapi.yaml");

#[derive(Default)]
struct Store {
    next_id: u64,
    items: BTreeMap<u64, Value>,
}

/// Start the sample API on a free loopback port and return its address.
pub async fn start() -> anyhow::Result<SocketAddr> {
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    let store = Arc::new(Mutex::new(Store::default()));
    if let Ok(mut s) = store.lock() {
        for name in ["anvil", "rocket skates"] {
            s.next_id += 1;
            let id = s.next_id;
            s.items
                .insert(id, json!({"id": id, "name": name, "price": 10 * id}));
        }
    }
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = tcp.accept().await else {
                continue;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(store.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn handle(
    store: Arc<Mutex<Store>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (status, value) = match (method, segments.as_slice()) {
        (Method::GET, ["api", "health"]) => (StatusCode::OK, json!({"status": "ok"})),
        (Method::GET, ["api", "debug", "crash"]) => {
            return Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/html",
                "<h1>Internal Server Error</h1><pre>Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 42, in crash\n    db.execute(\"SELECT * FROM users WHERE id=%s\" % uid)\npsycopg2.errors.SyntaxError: syntax error at or near \"'\"\n  DATABASE_URL=postgres://app:s3cr3t@10.0.3.7/app</pre>".into(),
            ));
        }
        // Leaks on purpose: a password hash and an internal flag the contract never promised
        // (the gateway removes them) and a full card number (the gateway masks it).
        (Method::GET, ["api", "users", user, "profile"]) => (
            StatusCode::OK,
            json!({
                "user": user,
                "email": format!("{user}@example.com"),
                "plan": "gold",
                "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                "is_admin": false,
                "payment": {"card_number": "4111 1111 1111 1111", "expiry": "12/29"}
            }),
        ),
        (Method::GET, ["api", "catalog", sku]) => (
            StatusCode::OK,
            json!({"sku": sku, "name": "Portcullis T-shirt", "price": 19.5}),
        ),
        (Method::GET, ["api", "items"]) => {
            let items: Vec<Value> = store
                .lock()
                .map(|s| s.items.values().cloned().collect())
                .unwrap_or_default();
            (StatusCode::OK, json!({"items": items}))
        }
        (Method::POST, ["api", "items"]) => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut obj)) => match store.lock() {
                Ok(mut s) => {
                    s.next_id += 1;
                    let id = s.next_id;
                    obj.insert("id".into(), id.into());
                    let v = Value::Object(obj);
                    s.items.insert(id, v.clone());
                    (StatusCode::CREATED, v)
                }
                Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "store"})),
            },
            _ => (
                StatusCode::BAD_REQUEST,
                json!({"error": "expected a JSON object"}),
            ),
        },
        (m, ["api", "items", id]) => {
            let Ok(id) = id.parse::<u64>() else {
                return Ok(json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"error": "no such item"}),
                ));
            };
            let Ok(mut s) = store.lock() else {
                return Ok(json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({})));
            };
            match m {
                Method::GET => match s.items.get(&id) {
                    Some(v) => (StatusCode::OK, v.clone()),
                    None => (StatusCode::NOT_FOUND, json!({"error": "no such item"})),
                },
                Method::PUT => match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Object(mut obj)) if s.items.contains_key(&id) => {
                        obj.insert("id".into(), id.into());
                        let v = Value::Object(obj);
                        s.items.insert(id, v.clone());
                        (StatusCode::OK, v)
                    }
                    Ok(_) if !s.items.contains_key(&id) => {
                        (StatusCode::NOT_FOUND, json!({"error": "no such item"}))
                    }
                    _ => (
                        StatusCode::BAD_REQUEST,
                        json!({"error": "expected a JSON object"}),
                    ),
                },
                Method::DELETE => match s.items.remove(&id) {
                    Some(_) => (StatusCode::NO_CONTENT, Value::Null),
                    None => (StatusCode::NOT_FOUND, json!({"error": "no such item"})),
                },
                _ => (StatusCode::METHOD_NOT_ALLOWED, json!({"error": "method"})),
            }
        }
        _ => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
    };
    Ok(json_response(status, &value))
}

fn json_response(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    if v.is_null() {
        return respond(status, "application/json", Bytes::new());
    }
    respond(status, "application/json", Bytes::from(v.to_string()))
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    // What a typical framework leaks: the gateway strips these.
    h.insert(
        http::header::SERVER,
        http::HeaderValue::from_static("gunicorn/19.9.0"),
    );
    h.insert(
        "x-powered-by",
        http::HeaderValue::from_static("Django/2.1.1"),
    );
    resp
}
