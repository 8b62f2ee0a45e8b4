//! Verification keys: parsing JWKs (from a JWKS or the config) and PEM public keys into
//! [`VerifyKey`]s that know their exact type, and the [`KeySet`] lookup by `kid`.
//!
//! The key *type* decides which algorithms a key may verify — never the token: an RSA key only
//! verifies RS*/PS*, a P-256 key only ES256, a P-384 key only ES384, an Ed25519 key only
//! EdDSA, and an HMAC secret only HS*. That is what defeats the RS256→HS256 confusion attack
//! even if a provider listed both families.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, ParsedPublicKey,
    RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// JWK members are base64url without padding (RFC 7517), but some IdPs pad: accept both, as
/// the JWKS comes from a trusted endpoint. Tokens themselves are decoded strictly elsewhere.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The bounds aws-lc enforces when verifying (`RSA_PKCS1_2048_8192_*`); checked at load so a
/// weak key is reported once instead of failing every token.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// What a key is, precisely enough to say which algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
    Hmac,
}

impl KeyKind {
    /// Whether a key of this kind may verify `alg`.
    pub(crate) fn accepts(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (KeyKind::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (KeyKind::EcP256, ES256)
                | (KeyKind::EcP384, ES384)
                | (KeyKind::Ed25519, EdDSA)
                | (KeyKind::Hmac, HS256 | HS384 | HS512)
        )
    }
}

/// One key that can verify signatures.
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The key's own `alg` restriction, if it declared one.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
    /// SHA-256 over the key material: tells whether a cached verification was made with a
    /// key that is still published.
    pub fingerprint: [u8; 32],
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        self.kind.accepts(alg) && self.alg.is_none_or(|a| a == alg)
    }

    fn new(
        kid: Option<String>,
        kind: KeyKind,
        alg: Option<Algorithm>,
        key: DecodingKey,
        material: &[&[u8]],
    ) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(format!("{kind:?}").as_bytes());
        for part in material {
            // Length-prefix each part so (n, e) pairs cannot collide by shifting bytes.
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(ctx.finish().as_ref());
        Self {
            kid,
            kind,
            alg,
            key,
            fingerprint,
        }
    }

    /// The HMAC secret of an HMAC provider.
    pub(crate) fn hmac(secret: &[u8]) -> Result<Self, String> {
        let key = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        Ok(Self::new(None, KeyKind::Hmac, None, key, &[secret]))
    }
}

/// The outcome of looking a token's key up.
pub(crate) enum Lookup<'a> {
    Found(&'a Arc<VerifyKey>),
    /// The `kid` names keys, but none may verify this `alg` (e.g. an ES256 token naming an
    /// RSA key): refused without trying.
    WrongType,
    NotFound,
}

/// The keys of one provider.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Vec<Arc<VerifyKey>>>,
    all: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    pub(crate) fn new(keys: Vec<VerifyKey>) -> Self {
        let mut set = KeySet::default();
        for key in keys {
            let key = Arc::new(key);
            if let Some(kid) = &key.kid {
                set.by_kid
                    .entry(kid.clone())
                    .or_default()
                    .push(Arc::clone(&key));
            }
            set.all.push(key);
        }
        set
    }

    pub(crate) fn len(&self) -> usize {
        self.all.len()
    }

    /// Find the key for a token. A `kid` is an opaque map key: compared for equality, never
    /// interpreted (so `../../dev/null` or `' OR '1'='1` simply match nothing). Without a
    /// `kid`, the token is verified only if exactly one key may verify its `alg`: trying every
    /// key would multiply the signature work an attacker can cause.
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        if let Some(keys) = kid.and_then(|kid| self.by_kid.get(kid)) {
            return keys
                .iter()
                .find(|k| k.accepts(alg))
                .map_or(Lookup::WrongType, Lookup::Found);
        }
        // A kid-less token may use the only key usable for its alg; a token whose kid names
        // nothing may use the only *kid-less* key usable for its alg (a configured key often
        // omits the kid the IdP puts in tokens). Both keys are trusted; this only decides
        // which one to try, and never tries more than one.
        let mut candidates = self
            .all
            .iter()
            .filter(|k| k.accepts(alg) && (kid.is_none() || k.kid.is_none()));
        match (candidates.next(), candidates.next()) {
            (Some(key), None) => Lookup::Found(key),
            _ => Lookup::NotFound,
        }
    }

    /// Whether any key may verify `alg`.
    pub(crate) fn any_accepts(&self, alg: Algorithm) -> bool {
        self.all.iter().any(|k| k.accepts(alg))
    }

    /// Whether a key with this fingerprint is still in the set.
    pub(crate) fn contains(&self, fingerprint: &[u8; 32]) -> bool {
        self.all.iter().any(|k| &k.fingerprint == fingerprint)
    }
}

/// Parse a JWKS document, skipping (with a log line) every key we will not use. Fails only if
/// the document is not a JWKS or yields no usable key: then the previous set is kept.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<KeySet, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err("no \"keys\" array".to_owned());
    };
    let mut out = Vec::new();
    for (index, jwk) in keys.iter().enumerate() {
        let kid = jwk.get("kid").and_then(Value::as_str);
        match parse_jwk(jwk, None) {
            Ok(Some(key)) => out.push(key),
            Ok(None) => tracing::debug!(index, kid, "JWKS key skipped: not a signature key"),
            Err(reason) => tracing::warn!(index, kid, reason, "JWKS key skipped"),
        }
    }
    if out.is_empty() {
        return Err("no usable signature key".to_owned());
    }
    Ok(KeySet::new(out))
}

/// Parse one JWK. `Ok(None)`: a key that is legitimately not for us (encryption key, other
/// `kty`); `Err`: a signature key that is broken or unsafe.
pub(crate) fn parse_jwk(
    jwk: &Value,
    kid_override: Option<String>,
) -> Result<Option<VerifyKey>, String> {
    let Some(obj) = jwk.as_object() else {
        return Err("not a JSON object".to_owned());
    };
    let kty = str_member(obj, "kty")?.ok_or("missing kty")?;
    // RFC 7517 §4.2/4.3: a key for encryption, or without a verify operation, is not ours.
    if let Some(use_) = str_member(obj, "use")?
        && use_ != "sig"
    {
        return Ok(None);
    }
    if let Some(ops) = obj.get("key_ops") {
        let ops = ops.as_array().ok_or("key_ops is not an array")?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Ok(None);
        }
    }
    // A published private key means anyone can forge tokens with it: refuse the key rather
    // than keep trusting it.
    if ["d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .any(|m| obj.contains_key(*m))
    {
        return Err("contains private key material".to_owned());
    }
    let alg = match str_member(obj, "alg")? {
        None => None,
        // An `alg` we do not know (e.g. RSA-OAEP, or `none`) means the key is not one of our
        // signature keys.
        Some(name) => match Algorithm::from_str(name) {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None),
        },
    };
    let kid = kid_override.or_else(|| obj.get("kid").and_then(Value::as_str).map(str::to_owned));

    let key = match kty {
        "RSA" => {
            let n = b64_member(obj, "n")?;
            let e = b64_member(obj, "e")?;
            let n_trimmed = trim_leading_zeros(&n);
            let bits = bit_len(n_trimmed);
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(format!(
                    "RSA modulus of {bits} bits (need {RSA_MIN_BITS}..={RSA_MAX_BITS})"
                ));
            }
            let e_trimmed = trim_leading_zeros(&e);
            if e_trimmed.is_empty() {
                return Err("RSA exponent is zero".to_owned());
            }
            let key = DecodingKey::from_rsa_raw_components(n_trimmed, e_trimmed);
            VerifyKey::new(kid, KeyKind::Rsa, alg, key, &[n_trimmed, e_trimmed])
        }
        "EC" => {
            let (kind, size) = match str_member(obj, "crv")? {
                Some("P-256") => (KeyKind::EcP256, 32),
                Some("P-384") => (KeyKind::EcP384, 48),
                other => return Err(format!("unsupported EC curve {other:?}")),
            };
            let x = b64_member(obj, "x")?;
            let y = b64_member(obj, "y")?;
            if x.len() != size || y.len() != size {
                return Err("EC coordinate of the wrong length".to_owned());
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ec_key(kid, kind, alg, &point)?
        }
        "OKP" => {
            match str_member(obj, "crv")? {
                Some("Ed25519") => {}
                other => return Err(format!("unsupported OKP curve {other:?}")),
            }
            let x = b64_member(obj, "x")?;
            ed_key(kid, alg, &x)?
        }
        // Symmetric keys are never taken from a JWKS or a static key list: a public document
        // holding an HMAC secret would let anyone sign.
        "oct" => return Err("symmetric (oct) keys are not accepted".to_owned()),
        _ => return Ok(None),
    };
    // A declared `alg` that the key type cannot do (an RSA key saying ES256) is a
    // misconfigured key: skip it rather than guess.
    if let Some(alg) = alg
        && !key.kind.accepts(alg)
    {
        return Err(format!("alg {alg:?} conflicts with the key type"));
    }
    Ok(Some(key))
}

/// Parse a PEM public key (`PUBLIC KEY` SPKI of RSA, P-256, P-384 or Ed25519, or PKCS#1
/// `RSA PUBLIC KEY`).
pub(crate) fn parse_pem(
    kid: Option<String>,
    alg: Option<Algorithm>,
    pem: &str,
) -> Result<VerifyKey, String> {
    let labels: Vec<&str> = pem
        .match_indices("-----BEGIN ")
        .filter_map(|(i, m)| {
            pem[i + m.len()..]
                .split_once("-----")
                .map(|(label, _)| label)
        })
        .collect();
    match labels.as_slice() {
        ["PUBLIC KEY"] | ["RSA PUBLIC KEY"] => {}
        [] => return Err("no PEM block".to_owned()),
        // A private key in the gateway's config is a secret it does not need; a certificate
        // would need chain validation we do not do.
        [one] => return Err(format!("PEM block {one:?} is not a public key")),
        _ => return Err("more than one PEM block".to_owned()),
    }
    let key = if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        let der = key.try_get_as_bytes().map_err(|e| e.to_string())?;
        let public =
            aws_lc_rs::rsa::PublicKey::from_der(der).map_err(|e| format!("RSA key: {e}"))?;
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(&public);
        let n = trim_leading_zeros(&components.n);
        let e = trim_leading_zeros(&components.e);
        let bits = bit_len(n);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(format!(
                "RSA modulus of {bits} bits (need {RSA_MIN_BITS}..={RSA_MAX_BITS})"
            ));
        }
        let decoding = DecodingKey::from_rsa_raw_components(n, e);
        VerifyKey::new(kid, KeyKind::Rsa, alg, decoding, &[n, e])
    } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
        let point = key.try_get_as_bytes().map_err(|e| e.to_string())?;
        let kind = match point.len() {
            65 => KeyKind::EcP256,
            97 => KeyKind::EcP384,
            _ => return Err("unsupported EC curve".to_owned()),
        };
        ec_key(kid, kind, alg, point)?
    } else if let Ok(key) = DecodingKey::from_ed_pem(pem.as_bytes()) {
        ed_key(kid, alg, key.try_get_as_bytes().map_err(|e| e.to_string())?)?
    } else {
        return Err("not an RSA, EC (P-256/P-384) or Ed25519 public key".to_owned());
    };
    if let Some(alg) = alg
        && !key.kind.accepts(alg)
    {
        return Err(format!("alg {alg:?} conflicts with the key type"));
    }
    Ok(key)
}

/// An EC key from its uncompressed point, checked to be on the curve now rather than at
/// every verification.
fn ec_key(
    kid: Option<String>,
    kind: KeyKind,
    alg: Option<Algorithm>,
    point: &[u8],
) -> Result<VerifyKey, String> {
    let verification = if kind == KeyKind::EcP256 {
        &ECDSA_P256_SHA256_FIXED
    } else {
        &ECDSA_P384_SHA384_FIXED
    };
    ParsedPublicKey::new(verification, point).map_err(|e| format!("EC point: {e}"))?;
    Ok(VerifyKey::new(
        kid,
        kind,
        alg,
        DecodingKey::from_ec_der(point),
        &[point],
    ))
}

fn ed_key(kid: Option<String>, alg: Option<Algorithm>, x: &[u8]) -> Result<VerifyKey, String> {
    if x.len() != 32 {
        return Err("Ed25519 key of the wrong length".to_owned());
    }
    ParsedPublicKey::new(&ED25519, x).map_err(|e| format!("Ed25519 key: {e}"))?;
    Ok(VerifyKey::new(
        kid,
        KeyKind::Ed25519,
        alg,
        DecodingKey::from_ed_der(x),
        &[x],
    ))
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let s = str_member(obj, name)?.ok_or_else(|| format!("missing {name}"))?;
    JWK_B64
        .decode(s)
        .map_err(|_| format!("{name} is not base64url"))
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_len(trimmed: &[u8]) -> usize {
    match trimmed.first() {
        None => 0,
        Some(first) => (trimmed.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kind_accepts_only_its_algorithms() {
        assert!(KeyKind::Rsa.accepts(Algorithm::PS512));
        assert!(!KeyKind::Rsa.accepts(Algorithm::HS256));
        assert!(!KeyKind::EcP256.accepts(Algorithm::ES384));
        assert!(!KeyKind::EcP384.accepts(Algorithm::ES256));
        assert!(!KeyKind::Ed25519.accepts(Algorithm::ES256));
        assert!(!KeyKind::Hmac.accepts(Algorithm::RS256));
    }

    #[test]
    fn jwks_skips_encryption_symmetric_and_private_keys() {
        let small_n = JWK_B64.encode([0xffu8; 128]);
        let jwks = json!({"keys": [
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": small_n, "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
        ]});
        let body = serde_json::to_vec(&jwks).unwrap_or_default();
        assert!(parse_jwks(&body).is_err());
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }

    #[test]
    fn rsa_key_with_private_exponent_is_refused() {
        let n = JWK_B64.encode([0xffu8; 256]);
        let jwk = json!({"kty": "RSA", "n": n, "e": "AQAB", "d": "AQAB"});
        assert!(parse_jwk(&jwk, None).is_err());
        let jwk = json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "ES256"});
        assert!(parse_jwk(&jwk, None).is_err());
        let jwk = json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "PS256", "kid": "a"});
        let key = parse_jwk(&jwk, None).ok().flatten();
        assert!(key.as_ref().is_some_and(|k| k.accepts(Algorithm::PS256)));
        assert!(key.as_ref().is_some_and(|k| !k.accepts(Algorithm::RS256)));
    }

    #[test]
    fn pem_private_keys_and_certificates_are_refused() {
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(parse_pem(None, None, private).is_err_and(|e| e.contains("not a public key")));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(parse_pem(None, None, cert).is_err());
        assert!(parse_pem(None, None, "hello").is_err());
    }

    #[test]
    fn lookup_without_kid_needs_a_single_candidate() {
        let a = VerifyKey::hmac(&[1; 32]).ok();
        let b = VerifyKey::hmac(&[2; 32]).ok();
        let one = KeySet::new(a.into_iter().collect());
        assert!(matches!(
            one.lookup(None, Algorithm::HS256),
            Lookup::Found(_)
        ));
        // The only kid-less key also serves tokens whose kid names nothing.
        assert!(matches!(
            one.lookup(Some("x"), Algorithm::HS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            one.lookup(Some("x"), Algorithm::HS384),
            Lookup::Found(_)
        ));
        assert!(matches!(
            one.lookup(Some("x"), Algorithm::RS256),
            Lookup::NotFound
        ));
        let a = VerifyKey::hmac(&[1; 32]).ok();
        let two = KeySet::new(a.into_iter().chain(b).collect());
        assert!(matches!(
            two.lookup(None, Algorithm::HS256),
            Lookup::NotFound
        ));
    }
}
