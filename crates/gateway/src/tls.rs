//! TLS for listeners and upstreams: rustls with the aws-lc-rs provider, TLS 1.2 and 1.3 only,
//! modern AEAD cipher suites only, certificates chosen by SNI.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("certificate {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("cannot generate the self-signed certificate: {0}")]
    SelfSigned(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider: aws-lc-rs with only forward-secret AEAD suites (no CBC, no RSA key
/// exchange). Every TLS config in the process is built from this.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    p.cipher_suites = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(p)
}

/// Install the process-wide default provider (call first thing in `main`; harmless twice).
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Build a listener's server config. ALPN offers h2 and http/1.1.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let mut resolver = SniResolver::default();
    for files in &cfg.certificates {
        let key = load_certified_key(&files.cert, &files.key, &provider)?;
        resolver.add(key);
    }
    if !cfg.self_signed.is_empty() {
        let key = self_signed(&cfg.self_signed, &provider)?;
        tracing::warn!(
            names = ?cfg.self_signed,
            "TLS uses a self-signed certificate generated at start: for development only"
        );
        resolver.add(key);
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if cfg.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)?;
    let builder = match &cfg.client_auth {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(&ca.ca)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: ca.ca.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if ca.required {
                verifier.build()
            } else {
                verifier.allow_unauthenticated().build()
            }
            .map_err(|e| TlsError::Pem {
                path: ca.ca.display().to_string(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut sc = builder.with_cert_resolver(Arc::new(resolver));
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    sc.ignore_client_order = true;
    Ok(Arc::new(sc))
}

/// Client config for `https://` upstreams: system roots, or only the given CA bundle.
/// (ALPN is left to the connector, which offers http/1.1.)
pub fn upstream_client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A broken system certificate must not stop the gateway; it is just not trusted.
                let _ = roots.add(cert);
            }
        }
    }
    let cc = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cc)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Pem {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate found".into()));
    }
    Ok(certs)
}

fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs(cert)?;
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let ck = CertifiedKey::from_der(chain, der, provider).map_err(|e| TlsError::Key {
        path: cert.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(ck)
}

/// A development certificate (ECDSA P-256) for `names`, valid from now for a year.
pub fn self_signed(names: &[String], provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    let der = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    CertifiedKey::from_der(vec![generated.cert.der().clone()], der, provider)
        .map_err(|e| TlsError::SelfSigned(e.to_string()))
}

/// Chooses the certificate whose names match the SNI; the first certificate otherwise.
#[derive(Debug, Default)]
struct SniResolver {
    /// (lowercase DNS name or `*.suffix`, key)
    by_name: Vec<(String, Arc<CertifiedKey>)>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    fn add(&mut self, key: CertifiedKey) {
        let key = Arc::new(key);
        for name in dns_names(&key) {
            self.by_name.push((name.to_ascii_lowercase(), key.clone()));
        }
        if self.default.is_none() {
            self.default = Some(key);
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = hello.server_name() {
            let sni = sni.to_ascii_lowercase();
            if let Some((_, k)) = self.by_name.iter().find(|(n, _)| *n == sni) {
                return Some(k.clone());
            }
            if let Some((_, k)) = self.by_name.iter().find(|(n, _)| {
                n.strip_prefix("*.").is_some_and(|suffix| {
                    sni.split_once('.').is_some_and(|(_, rest)| rest == suffix)
                })
            }) {
                return Some(k.clone());
            }
        }
        self.default.clone()
    }
}

/// The DNS subject alternative names of a certificate's leaf (used only to index the
/// resolver; rustls still verifies nothing here because the client does the checking).
fn dns_names(key: &CertifiedKey) -> Vec<String> {
    let Some(leaf) = key.cert.first() else {
        return Vec::new();
    };
    match webpki::EndEntityCert::try_from(leaf) {
        Ok(cert) => cert.valid_dns_names().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

/// The principal a verified client certificate stands for: the first URI SAN (SPIFFE ids),
/// else the first DNS SAN, else the first email SAN, else the subject's common name.
/// The chain was verified by rustls during the handshake; this only reads names.
pub fn client_principal(leaf: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        let names = &san.value.general_names;
        let pick = |want: fn(&GeneralName<'_>) -> Option<String>| names.iter().find_map(want);
        if let Some(uri) = pick(|n| match n {
            GeneralName::URI(u) => Some((*u).to_string()),
            _ => None,
        }) {
            return Some(uri);
        }
        if let Some(dns) = pick(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_string()),
            _ => None,
        }) {
            return Some(dns);
        }
        if let Some(email) = pick(|n| match n {
            GeneralName::RFC822Name(e) => Some((*e).to_string()),
            _ => None,
        }) {
            return Some(email);
        }
    }
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}
