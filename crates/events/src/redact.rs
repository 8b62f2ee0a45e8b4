//! Redaction of secrets (credential headers, secret query parameters) from
//! events before they reach any sink.
//!
//! Matching is deliberately generous: header names and query parameter names
//! compare case-insensitively, and query parameter names are percent-decoded
//! first, so `API_KEY`, `api%5Fkey` and `api_key` are all the same secret.
//! A false positive costs a log value; a false negative leaks a credential.

use std::borrow::Cow;

use crate::model::HttpActivity;

/// The replacement for every redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// Headers whose values are always redacted, whatever the configuration.
pub const ALWAYS_SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// A sensible default list of secret query parameter names for callers that
/// have no configuration of their own (used by `Redactor::default`).
pub const DEFAULT_SECRET_QUERY_PARAMS: [&str; 9] = [
    "access_token",
    "api_key",
    "apikey",
    "client_secret",
    "id_token",
    "password",
    "refresh_token",
    "secret",
    "token",
];

/// Knows which header names and query parameter names carry secrets and
/// replaces their values with [`REDACTED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    /// Lowercase header names; small, so a linear scan beats hashing.
    secret_headers: Vec<String>,
    /// Lowercase query parameter names.
    secret_query_params: Vec<String>,
}

impl Redactor {
    /// Builds a redactor for the four always-secret headers plus
    /// `extra_headers`, and exactly the query parameters in
    /// `secret_query_params`. Names are trimmed and matched ignoring case;
    /// empty names are ignored.
    pub fn new(extra_headers: &[String], secret_query_params: &[String]) -> Self {
        let mut secret_headers: Vec<String> = ALWAYS_SECRET_HEADERS
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        secret_headers.extend(
            extra_headers
                .iter()
                .map(|h| h.as_str())
                .filter_map(normalize_name),
        );
        secret_headers.sort();
        secret_headers.dedup();

        let mut params: Vec<String> = secret_query_params
            .iter()
            .map(|p| p.as_str())
            .filter_map(normalize_name)
            .collect();
        params.sort();
        params.dedup();

        Redactor {
            secret_headers,
            secret_query_params: params,
        }
    }

    /// Redacts `ev` in place: values of secret headers (and the
    /// `user_agent` field if `user-agent` is configured as secret) and values
    /// of secret query parameters become [`REDACTED`].
    pub fn redact(&self, ev: &mut HttpActivity) {
        for (name, value) in &mut ev.headers {
            if self.is_secret_header(name) {
                REDACTED.clone_into(value);
            }
        }
        if let Some(user_agent) = &mut ev.user_agent
            && self.is_secret_header("user-agent")
        {
            REDACTED.clone_into(user_agent);
        }
        if let Some(query) = &mut ev.query
            && let Cow::Owned(redacted) = self.redact_query_cow(query)
        {
            *query = redacted;
        }
    }

    /// Returns `q` (a raw query string without `?`) with the values of
    /// secret parameters replaced by [`REDACTED`]. Parameter names, order,
    /// separators and all other parameters are kept byte for byte.
    pub fn redact_query(&self, q: &str) -> String {
        self.redact_query_cow(q).into_owned()
    }

    /// Whether values of header `name` are redacted (case-insensitive).
    pub fn is_secret_header(&self, name: &str) -> bool {
        let name = name.trim();
        self.secret_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether values of query parameter `raw_name` (as it appears in the
    /// query string, possibly percent-encoded) are redacted.
    pub fn is_secret_query_param(&self, raw_name: &str) -> bool {
        self.secret_query_params
            .iter()
            .any(|secret| decoded_eq_ignore_case(raw_name, secret))
    }

    /// Borrows `q` unchanged when nothing needs redacting, which is the
    /// common case, so most events pay no allocation.
    fn redact_query_cow<'q>(&self, q: &'q str) -> Cow<'q, str> {
        if self.secret_query_params.is_empty() {
            return Cow::Borrowed(q);
        }
        let mut out: Option<String> = None;
        let mut rest = q;
        let mut copied_up_to = 0;
        let mut offset = 0;
        loop {
            // Both `&` and `;` separate parameters: some backends accept `;`,
            // and a secret hidden behind one must not slip through.
            let end = rest.find(['&', ';']).unwrap_or(rest.len());
            let pair = &rest[..end];
            if let Some(eq) = pair.find('=') {
                let (name, value) = (&pair[..eq], &pair[eq + 1..]);
                if !value.is_empty() && value != REDACTED && self.is_secret_query_param(name) {
                    let value_start = offset + eq + 1;
                    let buf = out.get_or_insert_with(|| String::with_capacity(q.len()));
                    buf.push_str(&q[copied_up_to..value_start]);
                    buf.push_str(REDACTED);
                    copied_up_to = offset + end;
                }
            }
            if end == rest.len() {
                break;
            }
            offset += end + 1;
            rest = &rest[end + 1..];
        }
        match out {
            Some(mut buf) => {
                buf.push_str(&q[copied_up_to..]);
                Cow::Owned(buf)
            }
            None => Cow::Borrowed(q),
        }
    }
}

impl Default for Redactor {
    /// The always-secret headers and [`DEFAULT_SECRET_QUERY_PARAMS`].
    fn default() -> Self {
        let params: Vec<String> = DEFAULT_SECRET_QUERY_PARAMS
            .iter()
            .map(|p| (*p).to_owned())
            .collect();
        Redactor::new(&[], &params)
    }
}

fn normalize_name(name: &str) -> Option<String> {
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// Compares a raw (form-urlencoded) query parameter name with a lowercase
/// secret name, decoding `%XX` and `+` on the fly so no allocation is needed.
fn decoded_eq_ignore_case(raw: &str, secret_lower: &str) -> bool {
    let mut secret = secret_lower.bytes();
    let mut raw = raw.bytes();
    while let Some(b) = raw.next() {
        let decoded = match b {
            b'+' => b' ',
            b'%' => {
                // Peek two hex digits; an invalid escape stands for itself.
                let mut lookahead = raw.clone();
                match (
                    lookahead.next().and_then(hex),
                    lookahead.next().and_then(hex),
                ) {
                    (Some(hi), Some(lo)) => {
                        raw = lookahead;
                        hi << 4 | lo
                    }
                    _ => b'%',
                }
            }
            other => other,
        };
        if secret.next() != Some(decoded.to_ascii_lowercase()) {
            return false;
        }
    }
    secret.next().is_none()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(headers: &[&str], params: &[&str]) -> Redactor {
        let headers: Vec<String> = headers.iter().map(|s| (*s).to_owned()).collect();
        let params: Vec<String> = params.iter().map(|s| (*s).to_owned()).collect();
        Redactor::new(&headers, &params)
    }

    #[test]
    fn always_secret_headers_match_in_any_case() {
        let r = redactor(&[], &[]);
        for name in [
            "Authorization",
            "PROXY-AUTHORIZATION",
            "cookie",
            "Set-Cookie",
        ] {
            assert!(r.is_secret_header(name), "{name}");
        }
        assert!(!r.is_secret_header("accept"));
    }

    #[test]
    fn extra_headers_are_trimmed_and_case_insensitive() {
        let r = redactor(&[" X-Api-Key ", ""], &[]);
        assert!(r.is_secret_header("x-api-key"));
        assert!(r.is_secret_header("X-API-KEY"));
        assert!(!r.is_secret_header(""));
    }

    #[test]
    fn query_values_of_secret_params_are_replaced_and_names_kept() {
        let r = redactor(&[], &["api_key", "token"]);
        assert_eq!(
            r.redact_query("a=1&api_key=s3cr3t&b=2&token=t0k"),
            "a=1&api_key=[REDACTED]&b=2&token=[REDACTED]"
        );
    }

    #[test]
    fn query_param_names_match_ignoring_case_and_percent_encoding() {
        let r = redactor(&[], &["api_key", "client secret"]);
        assert_eq!(r.redact_query("API_KEY=x"), "API_KEY=[REDACTED]");
        assert_eq!(r.redact_query("api%5Fkey=x"), "api%5Fkey=[REDACTED]");
        assert_eq!(r.redact_query("api%5fKEY=x"), "api%5fKEY=[REDACTED]");
        assert_eq!(
            r.redact_query("client+secret=x"),
            "client+secret=[REDACTED]"
        );
        assert_eq!(
            r.redact_query("client%20secret=x"),
            "client%20secret=[REDACTED]"
        );
        assert_eq!(
            r.redact_query("api_keys=x&xapi_key=y"),
            "api_keys=x&xapi_key=y"
        );
        assert_eq!(r.redact_query("api%5=x&api%=y"), "api%5=x&api%=y");
    }

    #[test]
    fn query_edge_cases_keep_structure() {
        let r = redactor(&[], &["token"]);
        assert_eq!(r.redact_query(""), "");
        assert_eq!(r.redact_query("token"), "token");
        assert_eq!(r.redact_query("token="), "token=");
        assert_eq!(r.redact_query("&&token=a&&"), "&&token=[REDACTED]&&");
        assert_eq!(r.redact_query("token=a=b&x=1"), "token=[REDACTED]&x=1");
        assert_eq!(
            r.redact_query("x=1;token=abc;y=2"),
            "x=1;token=[REDACTED];y=2"
        );
        assert_eq!(
            r.redact_query("token=a&token=b"),
            "token=[REDACTED]&token=[REDACTED]"
        );
        assert_eq!(
            r.redact_query("t%C3%B6ken=a&token=é"),
            "t%C3%B6ken=a&token=[REDACTED]"
        );
    }

    #[test]
    fn nothing_to_redact_borrows() {
        let r = redactor(&[], &["token"]);
        assert!(matches!(r.redact_query_cow("a=1&b=2"), Cow::Borrowed(_)));
        assert!(matches!(
            redactor(&[], &[]).redact_query_cow("token=x"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn user_agent_field_follows_a_secret_user_agent_header() {
        let mut ev = crate::tests_support::sample_event();
        ev.user_agent = Some("curl/8".to_owned());
        redactor(&[], &[]).redact(&mut ev);
        assert_eq!(ev.user_agent.as_deref(), Some("curl/8"));
        redactor(&["User-Agent"], &[]).redact(&mut ev);
        assert_eq!(ev.user_agent.as_deref(), Some(REDACTED));
    }

    #[test]
    fn default_covers_common_secret_params() {
        let r = Redactor::default();
        assert_eq!(
            r.redact_query("access_token=a&page=2&password=p"),
            "access_token=[REDACTED]&page=2&password=[REDACTED]"
        );
    }
}
