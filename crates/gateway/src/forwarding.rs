//! Proxy header hygiene: hop-by-hop headers, the client's real address behind trusted
//! proxies, `X-Forwarded-*` / `Forwarded`, and the request id.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

/// Headers that describe one hop and must never be forwarded (RFC 9110 §7.6.1), plus the
/// legacy ones that proxies historically honoured.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Remove hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    let mut candidate = peer;
    while let Some(ip) = chain.pop() {
        candidate = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    candidate
}

/// A valid incoming request id is kept so traces join up; anything else is replaced.
pub fn request_id(headers: &HeaderMap) -> String {
    if let Some(v) = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok())
        && !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return v.to_string();
    }
    let id: u128 = rand::random();
    format!("{id:032x}")
}

/// What the upstream is told about the original request.
pub struct ForwardedFor<'a> {
    pub peer: IpAddr,
    pub peer_trusted: bool,
    pub proto: &'static str,
    pub host: &'a str,
    pub request_id: &'a str,
}

/// Rewrite the request headers for the upstream.
pub fn set_forwarding_headers(headers: &mut HeaderMap, f: &ForwardedFor<'_>) {
    let peer = canonical(f.peer);
    let peer_text = peer.to_string();
    if !f.peer_trusted {
        // Whatever an untrusted client claims about earlier hops is discarded.
        headers.remove(&X_FORWARDED_FOR);
        headers.remove(&X_FORWARDED_PROTO);
        headers.remove(&X_FORWARDED_HOST);
        headers.remove(&FORWARDED);
    }
    // Fix: only the first field line of `X-Forwarded-For` / `Forwarded` used to be kept, so a
    // hop a trusted proxy added as a line of its own was lost and the upstream saw a chain
    // (and a client address) different from the one `client_ip` reads. Every line counts.
    let xff = match joined(headers, &X_FORWARDED_FOR) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {peer_text}"),
        _ => peer_text.clone(),
    };
    set(headers, X_FORWARDED_FOR, &xff);
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        set(headers, X_FORWARDED_PROTO, f.proto);
    }
    if !headers.contains_key(&X_FORWARDED_HOST) {
        set(headers, X_FORWARDED_HOST, f.host);
    }
    let node = match peer {
        IpAddr::V6(_) => format!("\"[{peer_text}]\""),
        IpAddr::V4(_) => peer_text,
    };
    let host = if f
        .host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
    {
        f.host.to_string()
    } else {
        format!("\"{}\"", f.host.replace(['"', '\\'], ""))
    };
    let element = format!("for={node};proto={};host={host}", f.proto);
    let forwarded = match joined(headers, &FORWARDED) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {element}"),
        _ => element,
    };
    set(headers, FORWARDED, &forwarded);
    set(headers, X_REQUEST_ID, f.request_id);
}

/// Every field line of `name`, joined into one list (RFC 9110 §5.3).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        let ip = client_ip("203.0.113.9".parse().unwrap(), &h, &nets(&["10.0.0.0/8"]));
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let mut h = HeaderMap::new();
        h.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_static("6.6.6.6, 198.51.100.7, 10.0.0.2"),
        );
        let ip = client_ip("10.0.0.1".parse().unwrap(), &h, &nets(&["10.0.0.0/8"]));
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn spoofed_forwarding_headers_are_replaced() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("1.2.3.4"));
        h.insert(FORWARDED, HeaderValue::from_static("for=1.2.3.4"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        set_forwarding_headers(
            &mut h,
            &ForwardedFor {
                peer: "203.0.113.9".parse().unwrap(),
                peer_trusted: false,
                proto: "http",
                host: "api.example.com",
                request_id: "abc",
            },
        );
        assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.9");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(
            h[&FORWARDED],
            "for=203.0.113.9;proto=http;host=api.example.com"
        );
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn request_ids() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("bad id<script>"));
        assert_eq!(request_id(&h).len(), 32);
    }
}
