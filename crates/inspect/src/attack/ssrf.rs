//! Server-side request forgery: values that are URLs (or bare `host/...` references)
//! pointing at loopback, private, link-local or cloud-metadata destinations.
//!
//! Hosts are parsed rather than pattern-matched so that every spelling of an internal
//! address is caught: dotted decimal, a single decimal/hex/octal integer (`2130706433`,
//! `0x7f000001`, `0177.0.0.1`), short forms (`127.1`), IPv6 (`[::1]`, ULA `fd00::/8`,
//! link-local `fe80::/10`, IPv4-mapped `::ffff:127.0.0.1`) and well-known internal names.

use std::net::{Ipv4Addr, Ipv6Addr};

/// What kind of internal destination a value points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InternalTarget {
    /// Cloud instance metadata (169.254.169.254, `metadata.google.internal`, ...).
    Metadata,
    /// Loopback or an internal/container host name.
    Loopback,
    /// RFC 1918, CGNAT, link-local, unique-local or unspecified addresses.
    Private,
}

/// Host names that always resolve to the local machine or an internal service.
const INTERNAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "localhost4",
    "localhost4.localdomain4",
    "localhost6",
    "localhost6.localdomain6",
    "ip6-localhost",
    "ip6-loopback",
    "lvh.me",
    "localtest.me",
    "vcap.me",
];

const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Finds the first internal destination referenced by `text` (already decoded and
/// lower-cased). URLs are recognised anywhere (`scheme://host`, `//host`); a value that is
/// only `host/...` or `host:port` is also treated as a destination.
pub(crate) fn internal_target(text: &str) -> Option<InternalTarget> {
    if text.len() > 4096 {
        return None;
    }
    let mut found = None;
    let mut search = text;
    while let Some(pos) = find_double_slash(search) {
        let scheme_ok = pos == 0 || {
            let before = &search[..pos];
            before.ends_with(':')
                || before.ends_with(|c: char| c.is_whitespace() || "\"'=(".contains(c))
        };
        let rest = &search[pos + 2..];
        if scheme_ok && let Some(t) = classify_authority(rest, false) {
            found = worse(found, t);
        }
        search = rest;
    }
    if found.is_none() && !has_scheme_separator(text) {
        let trimmed = text.trim();
        let bare = trimmed.contains('/') || trimmed.contains(':') || trimmed.starts_with('[');
        if bare && !trimmed.contains(char::is_whitespace) {
            found = classify_authority(trimmed, true);
        }
    }
    found
}

/// `text.find("//")` as a byte-pair scan: cheaper than a substring search on short values.
fn find_double_slash(text: &str) -> Option<usize> {
    text.as_bytes().windows(2).position(|w| w == b"//")
}

/// `text.contains("://")` as a byte scan.
fn has_scheme_separator(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w == b"://")
}

fn worse(current: Option<InternalTarget>, new: InternalTarget) -> Option<InternalTarget> {
    match (current, new) {
        (Some(InternalTarget::Metadata), _) | (_, InternalTarget::Metadata) => {
            Some(InternalTarget::Metadata)
        }
        (Some(InternalTarget::Loopback), _) | (_, InternalTarget::Loopback) => {
            Some(InternalTarget::Loopback)
        }
        _ => Some(new),
    }
}

/// Classifies the authority at the start of `rest` (`user@host:port/...`). Without a
/// scheme (`strict`), only names and full dotted quads count: `00:30` is a time, not 0.0.0.0.
fn classify_authority(rest: &str, strict: bool) -> Option<InternalTarget> {
    let end = rest
        .find(|c: char| matches!(c, '/' | '?' | '#' | '\\') || c.is_whitespace())
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(inner) = host_port.strip_prefix('[') {
        inner.split(']').next().unwrap_or(inner)
    } else if host_port.matches(':').count() > 1 {
        host_port
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    let host = host.trim_end_matches('.');
    if strict {
        let named = host.bytes().any(|b| b.is_ascii_alphabetic()) && !host.contains(':');
        let dotted_quad = host.split('.').count() == 4
            && host
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let bracketed = rest.starts_with('[');
        if !(named || dotted_quad || bracketed) {
            return None;
        }
    }
    classify_host(host)
}

fn classify_host(host: &str) -> Option<InternalTarget> {
    if host.is_empty() {
        return None;
    }
    // Every internal name and name suffix below has a letter outside `a-f` and `x`, and
    // every address form parsed below (decimal, octal, `0x` hex, IPv6, `+` signs Rust's
    // integer parser accepts) has none: one byte pass sends a host down one branch only.
    // Dates and ordinary host names then skip the address parsers.
    let address_like = host
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'x' | b'+'));
    if address_like {
        if host.contains(':') {
            return host.parse::<Ipv6Addr>().ok().and_then(classify_v6);
        }
        return parse_ipv4_loose(host).and_then(classify_v4);
    }
    if METADATA_NAMES.contains(&host) {
        return Some(InternalTarget::Metadata);
    }
    if INTERNAL_NAMES.contains(&host)
        || host.ends_with(".localhost")
        || host.ends_with(".internal") && !host.ends_with("metadata.google.internal")
        || host.ends_with(".lvh.me")
        || host.ends_with(".localtest.me")
    {
        return Some(InternalTarget::Loopback);
    }
    if host.contains(':') {
        // Not an IPv6 address (it has other letters), and no name with a colon is internal.
        return None;
    }
    // Wildcard DNS services that embed an IP (`127.0.0.1.nip.io`).
    for suffix in [".nip.io", ".sslip.io", ".xip.io"] {
        if let Some(embedded) = host.strip_suffix(suffix) {
            let tail: Vec<&str> = embedded.rsplit(['.', '-']).take(4).collect();
            if tail.len() == 4 {
                let dotted: Vec<&str> = tail.into_iter().rev().collect();
                return parse_ipv4_loose(&dotted.join(".")).and_then(classify_v4);
            }
        }
    }
    None
}

/// Parses IPv4 the way `inet_aton` does: 1–4 parts, each decimal, `0x` hex or `0` octal,
/// the last part filling the remaining bytes.
fn parse_ipv4_loose(host: &str) -> Option<Ipv4Addr> {
    // A fixed array rather than a `Vec`: every URL-looking value gets here.
    let mut values = [0u64; 4];
    let mut count = 0;
    for part in host.split('.') {
        if count == values.len() {
            return None;
        }
        values[count] = parse_ip_number(part)?;
        count += 1;
    }
    let (last, leading) = values[..count].split_last()?;
    let mut addr: u64 = 0;
    for (i, v) in leading.iter().enumerate() {
        if *v > 255 {
            return None;
        }
        addr |= v << (8 * (3 - i));
    }
    let remaining_bits = 8 * (4 - leading.len()) as u32;
    if remaining_bits < 64 && *last >= (1u64 << remaining_bits) {
        return None;
    }
    addr |= last;
    u32::try_from(addr).ok().map(Ipv4Addr::from)
}

fn parse_ip_number(part: &str) -> Option<u64> {
    if part.is_empty() || part.len() > 12 {
        return None;
    }
    if let Some(hex) = part.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok();
    }
    if part.len() > 1 && part.starts_with('0') {
        return u64::from_str_radix(part, 8).ok();
    }
    part.parse().ok()
}

fn classify_v4(ip: Ipv4Addr) -> Option<InternalTarget> {
    let o = ip.octets();
    if o == [169, 254, 169, 254] || o == [169, 254, 170, 2] || o == [100, 100, 100, 200] {
        return Some(InternalTarget::Metadata);
    }
    if ip.is_loopback() {
        return Some(InternalTarget::Loopback);
    }
    let cgnat = o[0] == 100 && (64..128).contains(&o[1]);
    if ip.is_private() || ip.is_link_local() || ip.is_unspecified() || cgnat {
        return Some(InternalTarget::Private);
    }
    None
}

fn classify_v6(ip: Ipv6Addr) -> Option<InternalTarget> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(InternalTarget::Metadata);
    }
    if ip.is_loopback() {
        return Some(InternalTarget::Loopback);
    }
    let first = ip.segments()[0];
    if ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 {
        return Some(InternalTarget::Private);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_encodings_of_loopback_are_recognised() {
        for url in [
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://127.0.0.1.nip.io/",
        ] {
            assert!(internal_target(url).is_some(), "{url}");
        }
    }

    #[test]
    fn metadata_and_private_ranges() {
        assert_eq!(
            internal_target("http://169.254.169.254/latest/meta-data/"),
            Some(InternalTarget::Metadata)
        );
        assert_eq!(
            internal_target("https://metadata.google.internal/computeMetadata/v1/"),
            Some(InternalTarget::Metadata)
        );
        assert_eq!(
            internal_target("http://10.1.2.3/admin"),
            Some(InternalTarget::Private)
        );
        assert_eq!(
            internal_target("http://[fd12::1]/"),
            Some(InternalTarget::Private)
        );
        assert_eq!(
            internal_target("localhost:8080/x"),
            Some(InternalTarget::Loopback)
        );
    }

    #[test]
    fn public_hosts_and_plain_numbers_are_not_internal() {
        for value in [
            "https://example.com/a?b=c",
            "http://8.8.8.8/",
            "2130706433",
            "10.5",
            "version 1.2.3",
            "00:30",
            "2024-01-01T00:00:00Z",
            "https://docs.rs/regex/1.0/regex/",
        ] {
            assert_eq!(internal_target(value), None, "{value}");
        }
    }
}
