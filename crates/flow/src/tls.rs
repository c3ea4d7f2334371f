//! TLS for the RPC sources (`avro`, `thrift`: `ssl`, `keystore`, `keystore-password`,
//! `keystore-type`) and sinks (`ssl`, `truststore`, `truststore-password`, `truststore-type`,
//! `trust-all-certs`), with rustls (ring backend).
//!
//! Key and trust stores are PEM files; Java keystores (JKS, PKCS12) are refused with the
//! commands that convert them:
//!
//! - keystore: one PEM file with the certificate chain (server certificate first) and the
//!   unencrypted private key (PKCS#8, PKCS#1 or SEC1):
//!   `keytool -importkeystore -srckeystore keystore.jks -srcstoretype JKS -destkeystore
//!   keystore.p12 -deststoretype PKCS12` (JKS only), then
//!   `openssl pkcs12 -in keystore.p12 -nodes -out keystore.pem`. An EC key exported from Java
//!   lacks the public key that ring needs; write it with `openssl ec` instead:
//!   `openssl pkcs12 -in keystore.p12 -nokeys -out keystore.pem; openssl pkcs12 -in
//!   keystore.p12 -nodes -nocerts | openssl ec >> keystore.pem`.
//! - truststore: a PEM file of trusted certificates:
//!   `keytool -list -rfc -keystore truststore.jks -storepass PASSWORD > truststore.pem`
//!   (text around the PEM blocks is ignored), or
//!   `openssl pkcs12 -in truststore.p12 -nokeys -out truststore.pem`.
//!
//! The passwords are accepted and unused (PEM certificates and unencrypted keys have none).
//! Without `truststore` (and without `trust-all-certs`), the system's CA bundle is used
//! (`SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt` or
//! `/etc/pki/tls/certs/ca-bundle.crt`), as Java uses its `cacerts`.
//! A server certificate found as is in the truststore (a self-signed certificate, as
//! `openssl req -x509` or `keytool -genkeypair` make) is trusted as Java trusts it, without
//! further checks. Any other certificate must chain to a truststore certificate and, unlike
//! Java Flume, name `hostname` (a DNS or IP subject alternative name).
//! `trust-all-certs = true` skips every check.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::Context;
use crate::error::FlowError;

/// A bidirectional byte stream (TCP, or TLS over TCP).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// How long a source waits for a client's TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads a source's `ssl` (default false, Flume's), `keystore` (required with `ssl`) and
/// `keystore-type`; `None` without `ssl`.
pub fn keystore_from_context(ctx: &Context) -> crate::Result<Option<KeystoreSettings>> {
    if !ctx.boolean("ssl", false) {
        return Ok(None);
    }
    Ok(Some(KeystoreSettings {
        path: ctx.require("keystore")?.trim().into(),
        kind: ctx.get("keystore-type").map(|k| k.trim().to_string()),
    }))
}

/// Reads a sink's `ssl` (default false, Flume's), `truststore`, `truststore-type` and
/// `trust-all-certs` (default false); `None` without `ssl`. Unless all certificates are
/// trusted, `hostname` must be a valid server name.
pub fn truststore_from_context(
    ctx: &Context,
    hostname: &str,
) -> crate::Result<Option<TruststoreSettings>> {
    let tls = ctx.boolean("ssl", false).then(|| TruststoreSettings {
        path: ctx.get("truststore").map(|p| p.trim().into()),
        kind: ctx.get("truststore-type").map(|k| k.trim().to_string()),
        trust_all: ctx.boolean("trust-all-certs", false),
    });
    if let Some(t) = &tls {
        if !t.trust_all {
            server_name(hostname).map_err(|m| ctx.error("hostname", m))?;
        }
    }
    Ok(tls)
}

/// Reads the keystore (on a blocking thread) into a TLS acceptor for `component`'s
/// connections; `None` without TLS.
pub async fn acceptor(
    settings: Option<KeystoreSettings>,
    component: String,
) -> crate::Result<Option<TlsAcceptor>> {
    let Some(k) = settings else {
        return Ok(None);
    };
    let config = crate::source::blocking(move || {
        server_config(&k).map_err(|m| FlowError::config(component, "keystore", None, m))
    })
    .await?;
    Ok(Some(TlsAcceptor::from(config)))
}

/// An accepted connection, after the TLS handshake (within [`HANDSHAKE_TIMEOUT`]) when the
/// source has an acceptor.
pub async fn accept(
    acceptor: Option<&TlsAcceptor>,
    stream: TcpStream,
) -> std::io::Result<Box<dyn Stream>> {
    Ok(match acceptor {
        None => Box::new(stream),
        Some(acceptor) => Box::new(
            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| std::io::Error::other("TLS handshake timed out"))??,
        ),
    })
}

/// The client side of a sink's TLS: the rustls configuration and the name expected in the
/// server's certificate.
#[derive(Clone)]
pub struct Connector {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Reads the trust store of `component` (blocking: it reads files) for connections to
    /// `hostname`.
    pub fn new(t: &TruststoreSettings, component: &str, hostname: &str) -> crate::Result<Self> {
        let key = if t.path.is_some() {
            "truststore"
        } else {
            "ssl"
        };
        let config = client_config(t).map_err(|m| FlowError::config(component, key, None, m))?;
        // With trust-all-certs the name is not checked; any valid name will do.
        let name = server_name(hostname)
            .or_else(|_| server_name("localhost"))
            .map_err(|m| FlowError::config(component, "hostname", None, m))?;
        Ok(Connector {
            connector: TlsConnector::from(config),
            name,
        })
    }
}

/// A connected TCP stream to `target`, after the TLS handshake when `tls` is set.
pub async fn connect(
    tls: Option<&Connector>,
    stream: TcpStream,
    target: &str,
) -> Result<Box<dyn Stream>, String> {
    Ok(match tls {
        None => Box::new(stream),
        Some(c) => Box::new(
            c.connector
                .connect(c.name.clone(), stream)
                .await
                .map_err(|e| format!("TLS handshake with {target} failed: {e}"))?,
        ),
    })
}

/// Where the source's certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoreSettings {
    /// `keystore`: the PEM file (certificate chain and private key). Required with `ssl`.
    pub path: PathBuf,
    /// `keystore-type`: `PEM`; unset means "look at the file" (Flume's default, `JKS`, is
    /// refused with the conversion commands).
    pub kind: Option<String>,
}

/// How the sink checks the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruststoreSettings {
    /// `truststore`: PEM file of trusted certificates. Default: the system's CA bundle.
    pub path: Option<PathBuf>,
    /// `truststore-type`: `PEM`; unset means "look at the file".
    pub kind: Option<String>,
    /// `trust-all-certs`: accept any certificate (Flume's default: false).
    pub trust_all: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The commands converting a Java store at `path` to PEM.
fn conversion(path: &Path, kind: &str, key_store: bool) -> String {
    let p = path.display();
    let jks = kind.eq_ignore_ascii_case("JKS");
    if key_store {
        let p12 = if jks {
            format!("keytool -importkeystore -srckeystore {p} -srcstoretype JKS -destkeystore keystore.p12 -deststoretype PKCS12; ")
        } else {
            String::new()
        };
        let src = if jks {
            "keystore.p12".to_string()
        } else {
            p.to_string()
        };
        format!(
            "`{p}` is a {kind} keystore, which Flumen cannot read: convert it to one PEM file \
             with the certificate chain and the unencrypted key ({p12}openssl pkcs12 -in {src} \
             -nodes -out keystore.pem), then set keystore = keystore.pem and keystore-type = PEM"
        )
    } else {
        let cmd = if jks {
            format!("keytool -list -rfc -keystore {p} -storepass PASSWORD > truststore.pem")
        } else {
            format!("openssl pkcs12 -in {p} -nokeys -out truststore.pem")
        };
        format!(
            "`{p}` is a {kind} truststore, which Flumen cannot read: export its certificates \
             to PEM ({cmd}), then set truststore = truststore.pem and truststore-type = PEM"
        )
    }
}

/// Reads a store file, refusing Java formats (by `kind`, or by content when unset).
fn read_store(path: &Path, kind: Option<&str>, key_store: bool) -> Result<Vec<u8>, String> {
    if let Some(k) = kind {
        if k.eq_ignore_ascii_case("JKS") || k.eq_ignore_ascii_case("PKCS12") {
            return Err(conversion(path, k, key_store));
        }
        if !k.eq_ignore_ascii_case("PEM") {
            return Err(format!("type `{k}` is not supported (only PEM)"));
        }
    }
    let data = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if memchr::memmem::find(&data, b"-----BEGIN ").is_none() {
        let k = if data.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) {
            "JKS"
        } else {
            "PKCS12"
        };
        return Err(conversion(path, k, key_store));
    }
    Ok(data)
}

fn certificates(data: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM in `{}`: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no CERTIFICATE in `{}`", path.display()));
    }
    Ok(certs)
}

/// The source's TLS configuration.
pub fn server_config(k: &KeystoreSettings) -> Result<Arc<ServerConfig>, String> {
    let data = read_store(&k.path, k.kind.as_deref(), true)?;
    let path = k.path.display();
    let certs = certificates(&data, &k.path)?;
    if memchr::memmem::find(&data, b"-----BEGIN ENCRYPTED PRIVATE KEY").is_some() {
        return Err(format!(
            "the private key in `{path}` is encrypted; write it unencrypted \
             (openssl pkey -in {path} -out key.pem, then put the certificates and key.pem in one file)"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&data)
        .map_err(|e| format!("no usable PRIVATE KEY in `{path}`: {e}"))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            let hint = if e.to_string().contains("failed to parse private key") {
                " (an EC key exported from a Java keystore lacks its public key: write it with \
                 `openssl pkcs12 -in keystore.p12 -nokeys -out keystore.pem; openssl pkcs12 -in \
                 keystore.p12 -nodes -nocerts | openssl ec >> keystore.pem`)"
            } else {
                ""
            };
            format!("certificate and key in `{path}` do not fit: {e}{hint}")
        })?;
    Ok(Arc::new(config))
}

/// The system's CA bundle.
fn system_bundle() -> Result<PathBuf, String> {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ]
            .map(PathBuf::from),
        );
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    Err("no truststore given and no system CA bundle found; set truststore".into())
}

/// The sink's TLS configuration.
pub fn client_config(t: &TruststoreSettings) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if t.trust_all {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustAll(provider())))
            .with_no_client_auth()
    } else {
        let (path, kind) = match &t.path {
            Some(p) => (p.clone(), t.kind.as_deref()),
            None => (system_bundle()?, Some("PEM")),
        };
        let data = read_store(&path, kind, false)?;
        let mut roots = RootCertStore::empty();
        let pinned = certificates(&data, &path)?;
        for c in &pinned {
            roots
                .add(c.clone())
                .map_err(|e| format!("bad certificate in `{}`: {e}", path.display()))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| format!("bad truststore `{}`: {e}", path.display()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki { pinned, webpki }))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The name the sink expects in the server's certificate.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("`{host}` is not a valid TLS server name: {e}"))
}

/// A truststore: a server certificate that is itself in the store is trusted (as Java's
/// trust manager does, for self-signed certificates); any other goes through webpki
/// (chain to a store certificate, validity, `hostname`).
#[derive(Debug)]
struct PinnedOrWebPki {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `trust-all-certs = true`: any certificate is accepted (signatures are still checked,
/// so the peer holds the certificate's key).
#[derive(Debug)]
struct TrustAll(Arc<CryptoProvider>);

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Test fixtures shared by the TLS tests of the RPC sources and sinks.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    /// Writes a self-signed certificate for `localhost` and `127.0.0.1` into `dir`: a PEM
    /// keystore (certificate + key) and a PEM truststore (the certificate); their paths.
    pub(crate) fn self_signed_stores(dir: &Path) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let ks = dir.join("ks.pem");
        std::fs::write(
            &ks,
            format!("{}{}", cert.cert.pem(), cert.key_pair.serialize_pem()),
        )
        .unwrap();
        let ts = dir.join("ts.pem");
        std::fs::write(&ts, cert.cert.pem()).unwrap();
        (ks, ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_stores_are_refused_with_the_conversion() {
        let dir = tempfile::tempdir().unwrap();
        let jks = dir.path().join("k.jks");
        std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        let k = KeystoreSettings {
            path: jks.clone(),
            kind: None,
        };
        let e = server_config(&k).unwrap_err();
        assert!(
            e.contains("JKS keystore") && e.contains("openssl pkcs12"),
            "{e}"
        );
        let k = KeystoreSettings {
            path: jks.clone(),
            kind: Some("pkcs12".into()),
        };
        assert!(server_config(&k).unwrap_err().contains("pkcs12 keystore"));
        let t = TruststoreSettings {
            path: Some(jks),
            kind: Some("JKS".into()),
            trust_all: false,
        };
        let e = client_config(&t).unwrap_err();
        assert!(e.contains("keytool -list -rfc"), "{e}");
    }

    #[test]
    fn pem_keystore_and_truststore_load() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let ks = dir.path().join("ks.pem");
        std::fs::write(
            &ks,
            format!("{}{}", cert.cert.pem(), cert.key_pair.serialize_pem()),
        )
        .unwrap();
        server_config(&KeystoreSettings {
            path: ks.clone(),
            kind: Some("PEM".into()),
        })
        .unwrap();
        let ts = dir.path().join("ts.pem");
        std::fs::write(&ts, format!("Alias name: x\n{}", cert.cert.pem())).unwrap();
        client_config(&TruststoreSettings {
            path: Some(ts.clone()),
            kind: None,
            trust_all: false,
        })
        .unwrap();
        // A certificate without its key is not a keystore.
        let e = server_config(&KeystoreSettings {
            path: ts,
            kind: None,
        })
        .unwrap_err();
        assert!(e.contains("PRIVATE KEY"), "{e}");
    }
}
