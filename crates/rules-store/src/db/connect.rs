//! Opening a PostgreSQL connection, with or without TLS.
//!
//! `database.url` may carry libpq's `sslmode` (`disable`, `prefer` — the default,
//! as in libpq —, `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM
//! file of the CA certificates to trust; `database.ca_file` says the same). TLS is
//! rustls. The modes mean what they mean to libpq:
//!
//! - `disable`: never TLS;
//! - `prefer`: TLS when the server offers it, plain otherwise; the certificate is
//!   not checked (encryption against eavesdropping, not against a man in the middle);
//! - `require`: TLS or no connection; the certificate is checked against the CA
//!   when one is given (then it is `verify-ca`), not checked otherwise;
//! - `verify-ca`: TLS, and the server's certificate must chain to the CA;
//! - `verify-full`: as `verify-ca`, and the certificate must name the host of the URL.
//!
//! Verification fails closed: a certificate that does not verify refuses the
//! connection, with the reason in the error. The pool, the worker's rule-change
//! listener and the migrations all connect through [`PgTarget::connect`].

use diesel::{ConnectionError, ConnectionResult};
use diesel_async::AsyncPgConnection;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`, the subset with a meaning here (`allow` is not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(text: &str) -> Result<Self, TlsSetupError> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsSetupError::Mode(other.to_owned())),
        })
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a database URL and CA file cannot be used to connect.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("not a PostgreSQL URL: {0}")]
    Url(String),
    #[error("sslmode `{0}` is not one of disable, prefer, require, verify-ca, verify-full")]
    Mode(String),
    #[error("the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error(
        "sslmode={0} verifies the server's certificate and needs the CA to verify it with: \
         set database.ca_file (or sslrootcert in the URL)"
    )]
    NoCa(SslMode),
    #[error(
        "sslrootcert in the URL ({url}) and database.ca_file ({setting}) name different files"
    )]
    TwoCas { url: PathBuf, setting: PathBuf },
}

/// A database to connect to: the parsed URL and, when TLS may be used, the rustls
/// configuration that checks the server as its `sslmode` says.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    mode: SslMode,
    tls: Option<MakeRustlsConnect>,
    shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("target", &self.shown)
            .field("sslmode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Reads `url` (its `sslmode` and `sslrootcert`) and the CA file setting; a
    /// mode that verifies gets its CA here, so a missing or unreadable CA fails at
    /// start, not at the first connection.
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, TlsSetupError> {
        let mut parsed = url::Url::parse(url).map_err(|e| TlsSetupError::Url(e.to_string()))?;
        let mut mode = SslMode::Prefer;
        let mut root_cert: Option<PathBuf> = None;
        // The other options pass through as written: re-encoding them would turn
        // `%20` into `+`, which tokio-postgres (like libpq) takes literally.
        let mut kept: Vec<&str> = Vec::new();
        let query = parsed.query().unwrap_or_default().to_owned();
        for segment in query.split('&').filter(|s| !s.is_empty()) {
            let Some((key, value)) = url::form_urlencoded::parse(segment.as_bytes()).next() else {
                continue;
            };
            match key.as_ref() {
                "sslmode" => mode = SslMode::parse(&value)?,
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                _ => kept.push(segment),
            }
        }
        let kept = kept.join("&");
        parsed.set_query((!kept.is_empty()).then_some(kept.as_str()));
        let ca = match (root_cert, ca_file) {
            (Some(url), Some(setting)) if url != setting => {
                return Err(TlsSetupError::TwoCas {
                    url,
                    setting: setting.to_owned(),
                })
            }
            (Some(path), _) => Some(path),
            (None, setting) => setting.map(Path::to_owned),
        };
        let mut config = tokio_postgres::Config::from_str(parsed.as_str())
            .map_err(|e| TlsSetupError::Url(e.to_string()))?;
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(client_config(mode, ca.as_deref())?)),
        };
        Ok(Self {
            config,
            mode,
            tls,
            shown: shown(&parsed),
        })
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// `host:port/database`, without credentials: how errors name the database.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Opens one connection. A failure names the database and the mode; a
    /// certificate that does not verify is such a failure.
    pub async fn connect(&self) -> ConnectionResult<AsyncPgConnection> {
        let fail = |e: tokio_postgres::Error| {
            ConnectionError::BadConnection(format!(
                "{} (sslmode={}): {}",
                self.shown,
                self.mode,
                error_chain(&e)
            ))
        };
        match &self.tls {
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(fail)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await.map_err(fail)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
        }
    }
}

/// `host:port/database` of a URL.
fn shown(url: &url::Url) -> String {
    format!(
        "{}:{}{}",
        url.host_str().unwrap_or("localhost"),
        url.port().unwrap_or(5432),
        url.path()
    )
}

/// An error and its causes on one line (tokio-postgres keeps the TLS reason as a cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for `mode`: what it checks of the server's certificate.
fn client_config(mode: SslMode, ca: Option<&Path>) -> Result<ClientConfig, TlsSetupError> {
    let provider = provider();
    let roots = ca.map(read_roots).transpose()?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => return Err(TlsSetupError::NoCa(mode)),
        (SslMode::VerifyFull, Some(roots)) => webpki(roots, &provider, ca)?,
        (SslMode::VerifyCa | SslMode::Require, Some(roots)) => Arc::new(Verifier {
            check: Check::ChainOnly(webpki(roots, &provider, ca)?),
            provider: Arc::clone(&provider),
        }),
        // prefer and require without a CA: encrypted, the certificate taken as offered.
        (_, _) => Arc::new(Verifier {
            check: Check::Nothing,
            provider: Arc::clone(&provider),
        }),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Url(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
    ca: Option<&Path>,
) -> Result<Arc<WebPkiServerVerifier>, TlsSetupError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| TlsSetupError::CaFile {
            path: ca.map(Path::to_owned).unwrap_or_default(),
            reason: e.to_string(),
        })
}

/// The CA certificates of a PEM file; a file without one is an error.
fn read_roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let fail = |reason: String| TlsSetupError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| fail(format!("not PEM certificates ({e})")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("a certificate that cannot be used: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail("holds no certificate".into()));
    }
    Ok(roots)
}

/// What a connection checks of the server's certificate, beyond what webpki's
/// `verify-full` does (used as is).
#[derive(Debug)]
enum Check {
    /// `verify-ca` (and `require` with a CA): the chain must verify; the name is not
    /// compared with the host (webpki checks the chain before the name, so a name
    /// mismatch means the chain verified).
    ChainOnly(Arc<WebPkiServerVerifier>),
    /// `prefer` and `require` without a CA: the certificate taken as offered.
    Nothing,
}

/// A verifier for [`Check`]; the handshake's signatures are always verified (the
/// session is bound to the key the server presented).
#[derive(Debug)]
struct Verifier {
    check: Check,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Check::ChainOnly(webpki) = &self.check else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_gives_the_mode_and_keeps_its_other_options() {
        let t = PgTarget::new(
            "postgres://u:secret@db.example:6543/rules_db?application_name=w&sslmode=require",
            None,
        )
        .expect("parses");
        assert_eq!(t.mode(), SslMode::Require);
        assert_eq!(t.shown(), "db.example:6543/rules_db");
        assert_eq!(t.config.get_application_name(), Some("w"));
        // Options keep their encoding (a space as %20, never re-encoded as `+`).
        let t = PgTarget::new(
            "postgres://h/db?options=-c%20plan_cache_mode%3Dforce_generic_plan&sslmode=disable",
            None,
        )
        .expect("parses");
        assert_eq!(
            t.config.get_options(),
            Some("-c plan_cache_mode=force_generic_plan")
        );
        assert_eq!(
            PgTarget::new("postgres://h/db", None)
                .expect("parses")
                .mode(),
            SslMode::Prefer,
            "libpq's default"
        );
        assert!(PgTarget::new("postgres://h/db?sslmode=disable", None)
            .expect("parses")
            .tls
            .is_none());
    }

    #[test]
    fn a_mode_that_verifies_fails_closed_without_a_usable_ca() {
        let err = PgTarget::new("postgres://h/db?sslmode=verify-full", None).expect_err("no CA");
        assert!(
            matches!(err, TlsSetupError::NoCa(SslMode::VerifyFull)),
            "{err}"
        );
        assert!(err.to_string().contains("database.ca_file"), "{err}");
        let err = PgTarget::new("postgres://h/db?sslmode=allow", None).expect_err("allow");
        assert!(matches!(err, TlsSetupError::Mode(_)), "{err}");
        let missing = Path::new("/nonexistent/ca.pem");
        let err = PgTarget::new("postgres://h/db?sslmode=verify-ca", Some(missing))
            .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("rules-connect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = PgTarget::new("postgres://h/db?sslmode=verify-full", Some(&empty))
            .expect_err("no certificate in it");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        let err = PgTarget::new(
            "postgres://h/db?sslmode=verify-full&sslrootcert=/a.pem",
            Some(Path::new("/b.pem")),
        )
        .expect_err("two CAs");
        assert!(matches!(err, TlsSetupError::TwoCas { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
