//! Taking a compact JWS apart, and every check that must happen before a key is looked up:
//! segment count, strict base64url, strict JSON (duplicate keys refused at every level),
//! `alg` against the provider's list (`none` in any spelling refused), keys carried in the
//! header (`jwk`, `jku`, `x5u`, `x5c`) and `crit`.
//!
//! Nothing here trusts the token: the result only says which key to try and what to verify.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::Rejection;

/// Header parameters that carry or point to a key. Honouring any of them lets the token
/// choose the key that verifies it (CVE-2018-0114 for `jwk`; SSRF plus forged keys for
/// `jku`/`x5u`), so their mere presence refuses the token.
const EMBEDDED_KEY_PARAMS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// A token whose structure and header passed every pre-key check.
#[derive(Debug)]
pub(crate) struct ParsedToken<'a> {
    /// `base64(header) "." base64(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    /// The signature segment, still base64url (checked to decode).
    pub signature_b64: &'a str,
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// The payload claims (signature not yet verified!).
    pub claims: Map<String, Value>,
}

/// Parse `token` and apply the header policy. `allowed` is the provider's algorithm list.
pub(crate) fn parse<'a>(
    token: &'a str,
    allowed: &[Algorithm],
) -> Result<ParsedToken<'a>, Rejection> {
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        // JWE (5 segments), unsecured JWS without the trailing dot, or garbage.
        return Err(Rejection::Malformed);
    };
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];

    let header = parse_object(&decode_segment(header_b64)?)?;

    let alg = match header.get("alg") {
        Some(Value::String(name)) => name,
        _ => return Err(Rejection::Malformed),
    };
    // `Algorithm::from_str` has no `none` and is case-sensitive, so every spelling of
    // `none` already fails below; the explicit test documents the intent and keeps it true
    // if the library ever grows a `none` variant.
    if alg.eq_ignore_ascii_case("none") {
        return Err(Rejection::AlgNotAllowed);
    }
    let alg = Algorithm::from_str(alg).map_err(|_| Rejection::AlgNotAllowed)?;
    if !allowed.contains(&alg) {
        return Err(Rejection::AlgNotAllowed);
    }

    if EMBEDDED_KEY_PARAMS.iter().any(|p| header.contains_key(*p)) {
        return Err(Rejection::EmbeddedKey);
    }
    // RFC 7515 §4.1.11: a recipient that does not understand a listed extension must refuse
    // the token. We implement no extension (not even RFC 7797 `b64`), so any `crit` refuses.
    if header.contains_key("crit") {
        return Err(Rejection::UnknownCrit);
    }

    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(Rejection::Malformed),
    };

    let claims = parse_object(&decode_segment(payload_b64)?)?;

    // Decode now so that a garbled signature is `malformed`, not a failed verification, and
    // so no key is looked up (or JWKS fetched) for it.
    URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| Rejection::Malformed)?;

    Ok(ParsedToken {
        signing_input,
        signature_b64,
        alg,
        kid,
        claims,
    })
}

/// Strict base64url without padding (RFC 7515 §2); an empty header or payload is malformed.
fn decode_segment(segment: &str) -> Result<Vec<u8>, Rejection> {
    if segment.is_empty() {
        return Err(Rejection::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Rejection::Malformed)
}

/// Parse a JSON object, refusing duplicate member names at any depth.
///
/// serde_json silently keeps the last of duplicate keys, while other JWT libraries (and the
/// IdP that minted the token, or a policy engine downstream) may keep the first: a token with
/// `{"sub":"alice","sub":"admin"}` then means different things to different readers. RFC 7519
/// §4 lets us refuse it, so we do.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Rejection> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match (StrictValue {
        duplicate: &duplicate,
    })
    .deserialize(&mut de)
    {
        Ok(value) => value,
        Err(_) if duplicate.get() => return Err(Rejection::DuplicateClaim),
        Err(_) => return Err(Rejection::Malformed),
    };
    // Trailing bytes after the object (`{...}garbage`) are malformed.
    de.end().map_err(|_| Rejection::Malformed)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Rejection::Malformed),
    }
}

/// Builds a `serde_json::Value` like its own `Deserialize`, but flags duplicate object keys.
#[derive(Clone, Copy)]
struct StrictValue<'c> {
    duplicate: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Keys are compared after JSON unescaping, so `"s\u0075b"` duplicates `"sub"`.
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                self.duplicate.set(true);
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(self)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn tok(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
    }

    const RS: &[Algorithm] = &[Algorithm::RS256];

    #[test]
    fn duplicate_keys_are_found_after_unescaping_and_nested() {
        assert_eq!(
            parse_object(br#"{"sub":"a","s\u0075b":"b"}"#),
            Err(Rejection::DuplicateClaim)
        );
        assert_eq!(
            parse_object(br#"{"x":{"r":1,"r":2}}"#),
            Err(Rejection::DuplicateClaim)
        );
        assert_eq!(
            parse_object(br#"{"x":[{"r":1,"r":2}]}"#),
            Err(Rejection::DuplicateClaim)
        );
        assert!(parse_object(br#"{"a":{"r":1},"b":{"r":2}}"#).is_ok());
    }

    #[test]
    fn non_objects_and_trailing_bytes_are_malformed() {
        assert_eq!(parse_object(b"[1]"), Err(Rejection::Malformed));
        assert_eq!(parse_object(br#"{"a":1} x"#), Err(Rejection::Malformed));
        assert_eq!(parse_object(br#"{"a":1"#), Err(Rejection::Malformed));
        assert_eq!(parse_object(b"\xff"), Err(Rejection::Malformed));
    }

    #[test]
    fn header_checks_come_in_order() {
        let p = r#"{"sub":"a"}"#;
        assert_eq!(
            parse(&tok(r#"{"alg":"none"}"#, p), RS).err(),
            Some(Rejection::AlgNotAllowed)
        );
        assert_eq!(
            parse(&tok(r#"{"alg":"rs256"}"#, p), RS).err(),
            Some(Rejection::AlgNotAllowed)
        );
        assert_eq!(
            parse(&tok(r#"{"alg":"ES256"}"#, p), RS).err(),
            Some(Rejection::AlgNotAllowed)
        );
        assert_eq!(
            parse(&tok(r#"{"alg":5}"#, p), RS).err(),
            Some(Rejection::Malformed)
        );
        assert_eq!(
            parse(&tok(r#"{}"#, p), RS).err(),
            Some(Rejection::Malformed)
        );
        let embedded = tok(r#"{"alg":"RS256","x5c":["AAAA"]}"#, p);
        assert_eq!(parse(&embedded, RS).err(), Some(Rejection::EmbeddedKey));
        let crit = tok(r#"{"alg":"RS256","crit":[]}"#, p);
        assert_eq!(parse(&crit, RS).err(), Some(Rejection::UnknownCrit));
        let kid = tok(r#"{"alg":"RS256","kid":7}"#, p);
        assert_eq!(parse(&kid, RS).err(), Some(Rejection::Malformed));
        let ok = tok(r#"{"alg":"RS256","kid":"k"}"#, p);
        assert_eq!(parse(&ok, RS).map(|t| t.kid), Ok(Some("k".to_owned())));
    }

    #[test]
    fn padding_and_empty_segments_are_malformed() {
        let h = b64(r#"{"alg":"RS256"}"#);
        let p = b64(r#"{"sub":"a"}"#);
        assert_eq!(
            parse(&format!("{h}=.{p}.AA"), RS).err(),
            Some(Rejection::Malformed)
        );
        assert_eq!(
            parse(&format!(".{p}.AA"), RS).err(),
            Some(Rejection::Malformed)
        );
        assert_eq!(
            parse(&format!("{h}..AA"), RS).err(),
            Some(Rejection::Malformed)
        );
        assert_eq!(
            parse(&format!("{h}.{p}.A"), RS).err(),
            Some(Rejection::Malformed)
        );
        // An empty signature decodes (to nothing): it fails at verification, not here.
        assert!(parse(&format!("{h}.{p}."), RS).is_ok());
    }
}
