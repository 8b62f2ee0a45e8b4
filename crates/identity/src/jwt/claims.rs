//! Claim validation on the raw JSON of a signature-verified payload, and the [`Identity`] built
//! from it.
//!
//! The checks read `serde_json::Value`s directly instead of deserializing into a struct so
//! that nothing coerces: a string `"exp":"9999999999"` is refused as `invalid_claim_type`
//! rather than parsed as a number (or silently skipped, as a lenient validator might).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::Rejection;
use crate::{AuthMethod, Identity};

/// What the payload must satisfy, taken from the provider config.
#[derive(Debug)]
pub(crate) struct ClaimPolicy {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub required: Vec<String>,
    pub leeway_secs: f64,
}

/// A validated token: who it identifies and until when.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    /// Shared, not owned: every cache hit hands out this `Arc` (a reference-count increment)
    /// rather than a deep copy of the claims map.
    pub identity: Arc<Identity>,
    pub exp: f64,
    pub nbf: Option<f64>,
}

/// Validate `claims` at time `now` (seconds since the epoch) and build the identity.
pub(crate) fn validate(
    claims: Map<String, Value>,
    policy: &ClaimPolicy,
    now: f64,
) -> Result<Validated, Rejection> {
    // Types first, so a wrongly typed claim is reported as such whatever its value.
    let exp = match claims.get("exp") {
        None | Some(Value::Null) => return Err(Rejection::MissingClaim),
        Some(v) => numeric_date(v)?,
    };
    let nbf = optional_numeric_date(claims.get("nbf"))?;
    let iat = optional_numeric_date(claims.get("iat"))?;
    let iss = optional_str(claims.get("iss"))?;
    let sub = optional_str(claims.get("sub"))?;
    let jti = optional_str(claims.get("jti"))?;
    let aud = audience(claims.get("aud"))?;
    let scopes = scopes(&claims)?;

    let leeway = policy.leeway_secs;
    if is_expired(exp, now, leeway) {
        return Err(Rejection::Expired);
    }
    if is_not_yet_valid(nbf, now, leeway) {
        return Err(Rejection::NotYetValid);
    }
    // A token "issued" in the future is either a skewed IdP or a forged lifetime extension;
    // either way it is not trustworthy now.
    if iat.is_some_and(|iat| iat > now + leeway) {
        return Err(Rejection::IssuedInFuture);
    }

    match iss {
        None => return Err(Rejection::MissingClaim),
        // Exact comparison: no trailing-slash or case normalisation, which would let a
        // look-alike issuer through.
        Some(iss) if iss != policy.issuer => return Err(Rejection::WrongIssuer),
        Some(_) => {}
    }
    match aud {
        None => return Err(Rejection::MissingClaim),
        Some(aud) if !aud.iter().any(|a| policy.audiences.iter().any(|p| p == a)) => {
            return Err(Rejection::WrongAudience);
        }
        Some(_) => {}
    }
    let principal = match sub {
        Some(sub) if !sub.is_empty() => sub.to_owned(),
        _ => return Err(Rejection::MissingClaim),
    };
    for name in &policy.required {
        if matches!(claims.get(name), None | Some(Value::Null)) {
            return Err(Rejection::MissingClaim);
        }
    }

    let credential_id = jti.map(str::to_owned);
    let identity = Arc::new(Identity {
        method: AuthMethod::Jwt,
        principal,
        credential_id,
        scopes,
        claims: claims.into_iter().collect::<BTreeMap<_, _>>(),
        tier: None,
    });
    Ok(Validated { identity, exp, nbf })
}

/// RFC 7519 §4.1.4: the current time must be before `exp`; leeway extends that.
pub(crate) fn is_expired(exp: f64, now: f64, leeway: f64) -> bool {
    now - leeway >= exp
}

/// RFC 7519 §4.1.5: the current time must be at or after `nbf`; leeway advances that.
pub(crate) fn is_not_yet_valid(nbf: Option<f64>, now: f64, leeway: f64) -> bool {
    nbf.is_some_and(|nbf| now + leeway < nbf)
}

/// A NumericDate: a JSON number (integer or not), never a string.
fn numeric_date(value: &Value) -> Result<f64, Rejection> {
    match value {
        Value::Number(n) => n.as_f64().ok_or(Rejection::InvalidClaimType),
        _ => Err(Rejection::InvalidClaimType),
    }
}

fn optional_numeric_date(value: Option<&Value>) -> Result<Option<f64>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => numeric_date(v).map(Some),
    }
}

fn optional_str(value: Option<&Value>) -> Result<Option<&str>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Rejection::InvalidClaimType),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn audience(value: Option<&Value>) -> Result<Option<Vec<&str>>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.as_str()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or(Rejection::InvalidClaimType))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(Rejection::InvalidClaimType),
    }
}

/// Scopes from `scope` (RFC 8693 / RFC 9068: space-separated string) or, failing that, `scp`
/// (Azure AD / Okta style: an array of strings, or a space-separated string).
fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, Rejection> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    };
    match claims.get("scope") {
        Some(Value::String(s)) => s.split_whitespace().for_each(&mut push),
        None | Some(Value::Null) => match claims.get("scp") {
            Some(Value::String(s)) => s.split_whitespace().for_each(&mut push),
            Some(Value::Array(items)) => {
                for item in items {
                    push(item.as_str().ok_or(Rejection::InvalidClaimType)?);
                }
            }
            None | Some(Value::Null) => {}
            Some(_) => return Err(Rejection::InvalidClaimType),
        },
        Some(_) => return Err(Rejection::InvalidClaimType),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: f64 = 1_700_000_000.0;

    fn policy() -> ClaimPolicy {
        ClaimPolicy {
            issuer: "https://idp".into(),
            audiences: vec!["api".into(), "other".into()],
            required: vec!["tenant".into()],
            leeway_secs: 30.0,
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://idp", "aud": "api", "sub": "alice", "exp": NOW + 600.0,
            "iat": NOW, "tenant": "t1"
        });
        if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        match base {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn check(extra: Value) -> Result<Validated, Rejection> {
        validate(claims(extra), &policy(), NOW)
    }

    #[test]
    fn time_claims_respect_leeway() {
        assert_eq!(check(json!({"exp": NOW - 10.0})).err(), None);
        assert_eq!(
            check(json!({"exp": NOW - 30.0})).err(),
            Some(Rejection::Expired)
        );
        assert_eq!(check(json!({"nbf": NOW + 20.0})).err(), None);
        assert_eq!(
            check(json!({"nbf": NOW + 31.0})).err(),
            Some(Rejection::NotYetValid)
        );
        assert_eq!(
            check(json!({"iat": NOW + 31.0})).err(),
            Some(Rejection::IssuedInFuture)
        );
        assert_eq!(check(json!({"exp": NOW + 0.5e3})).err(), None);
    }

    #[test]
    fn wrong_types_are_refused() {
        for bad in [
            json!({"exp": "9999999999"}),
            json!({"nbf": "1"}),
            json!({"iat": true}),
            json!({"iss": 1}),
            json!({"aud": [1]}),
            json!({"aud": {"a": 1}}),
            json!({"sub": 7}),
            json!({"jti": []}),
            json!({"scope": ["a"]}),
            json!({"scp": [1]}),
        ] {
            assert_eq!(
                check(bad.clone()).err(),
                Some(Rejection::InvalidClaimType),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_and_wrong_values() {
        let mut c = claims(json!({}));
        c.remove("exp");
        assert_eq!(
            validate(c, &policy(), NOW).err(),
            Some(Rejection::MissingClaim)
        );
        let mut c = claims(json!({}));
        c.remove("tenant");
        assert_eq!(
            validate(c, &policy(), NOW).err(),
            Some(Rejection::MissingClaim)
        );
        assert_eq!(
            check(json!({"sub": ""})).err(),
            Some(Rejection::MissingClaim)
        );
        assert_eq!(
            check(json!({"iss": "https://idp/"})).err(),
            Some(Rejection::WrongIssuer)
        );
        assert_eq!(
            check(json!({"aud": []})).err(),
            Some(Rejection::WrongAudience)
        );
        assert_eq!(check(json!({"aud": ["x", "other"]})).err(), None);
    }

    #[test]
    fn identity_takes_sub_jti_and_scopes() {
        let v = check(json!({"jti": "j1", "scope": "read  write read"}));
        let id = v.map(|v| v.identity);
        assert_eq!(id.as_ref().map(|i| i.principal.as_str()), Ok("alice"));
        assert_eq!(
            id.as_ref().map(|i| i.credential_id.clone()),
            Ok(Some("j1".into()))
        );
        assert_eq!(
            id.as_ref().map(|i| i.scopes.clone()),
            Ok(vec!["read".into(), "write".into()])
        );
        let v = check(json!({"scp": ["a", "b"]})).map(|v| v.identity.scopes.clone());
        assert_eq!(v, Ok(vec!["a".to_owned(), "b".to_owned()]));
        let v = check(json!({"scp": "a b"})).map(|v| v.identity.scopes.clone());
        assert_eq!(v, Ok(vec!["a".to_owned(), "b".to_owned()]));
    }
}
