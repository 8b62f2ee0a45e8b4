//! TLS client settings shared by the syslog (RFC 5425) and HTTPS sinks:
//! rustls with the aws-lc-rs provider, certificates always verified, against
//! a configured CA bundle or the system roots.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::error::EventsError;

/// A verifying client configuration trusting `ca_file` (PEM) or, without
/// one, the operating system's roots.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, EventsError> {
    let invalid = |reason: String| EventsError::InvalidConfig(reason);
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| invalid(format!("CA file {}: {e}", path.display())))?
                .collect::<Result<_, _>>()
                .map_err(|e| invalid(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(invalid(format!(
                    "CA file {}: no certificate found",
                    path.display()
                )));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| invalid(format!("CA file {}: {e}", path.display())))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A broken system certificate is just not trusted.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
