//! TLS for the collector: loading the server certificate, and making a private CA for sites that
//! have no PKI (`cntt-collector tls init`).
//!
//! The collector serves HTTPS only. Agents pin the CA they were given at enrollment, so a private
//! CA is as safe as a public one here, and works on a provincial WAN with no Internet.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use time::{Duration, OffsetDateTime};

use crate::config::TlsConfig;

/// The crypto provider of every TLS endpoint we make: ring, so the tree has no C crypto library
/// other than ring's own.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the certificate chain and key named in the config into a rustls server config (HTTP/1.1).
///
/// # Errors
///
/// When a file is missing or holds no certificate or key, or the key does not match.
pub fn server_config(tls: &TlsConfig) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("reading certificate file {}", tls.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate file {}", tls.cert.display()))?;
    if certs.is_empty() {
        bail!(
            "certificate file {} holds no certificate",
            tls.cert.display()
        );
    }
    refuse_readable_by_others(&tls.key, "tls.key (the server's private key)")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("reading private key file {}", tls.key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "using certificate {} with key {}",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Stateless session tickets (keys kept in memory, rotated every 6 hours): an agent that
    // reconnects, such as one over `limits.keep_alive_connections`, resumes its session instead
    // of a full handshake, and the server keeps nothing per client. The default server-side cache
    // holds only 256 sessions, far fewer than a province's agents.
    config.ticketer =
        rustls::crypto::ring::Ticketer::new().context("making TLS session tickets")?;
    Ok(Arc::new(config))
}

/// Refuses a secret file (private key, token) that the group or others may read or write: on a
/// shared machine such a file is no longer a secret (issue 13, L4).
///
/// # Errors
///
/// When the file cannot be inspected, or has group or other permission bits, with the `chmod`
/// that fixes it.
pub fn refuse_readable_by_others(path: &Path, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata =
        fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{what} {} may be read by other users (mode {mode:03o}); make it owner-only with `chmod 600 {}` and give it to the collector's user",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// The files `tls init` writes.
#[derive(Debug, Clone)]
pub struct InitFiles {
    /// CA certificate: give it to agents (`cntt-agent enroll --ca`).
    pub ca_cert: PathBuf,
    /// CA private key: keep offline if you can; needed only to issue new server certificates.
    pub ca_key: PathBuf,
    /// Server certificate chain (leaf then CA): `tls.cert` in the config.
    pub server_cert: PathBuf,
    /// Server private key: `tls.key` in the config.
    pub server_key: PathBuf,
}

/// Makes a private CA (10 years) and a server certificate (825 days) for `hosts` in `dir`.
/// Private keys are written with owner-only permissions. Existing files are kept unless `force`.
///
/// # Errors
///
/// When `hosts` is empty, a file exists and `force` is not set, or a file cannot be written.
pub fn init(dir: &Path, hosts: &[String], force: bool) -> anyhow::Result<InitFiles> {
    if hosts.is_empty() {
        bail!("name at least one --host: the DNS name or IP address agents will use to reach the collector");
    }
    let files = InitFiles {
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca-key.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
    };
    for path in [
        &files.ca_cert,
        &files.ca_key,
        &files.server_cert,
        &files.server_key,
    ] {
        if path.exists() && !force {
            bail!(
                "{} already exists; pass --force to replace the whole set",
                path.display()
            );
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))?;
    let now = OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().context("generating CA key")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("CNTT Collector Private CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - Duration::hours(1);
    ca_params.not_after = now + Duration::days(3650);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("signing CA certificate")?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate().context("generating server key")?;
    let mut server_params = CertificateParams::default();
    server_params.distinguished_name = name(&hosts[0]);
    server_params.subject_alt_names = hosts
        .iter()
        .map(|host| match host.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(
                host.as_str()
                    .try_into()
                    .with_context(|| format!("{host:?} is not a DNS name"))?,
            )),
        })
        .collect::<anyhow::Result<_>>()?;
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.not_before = now - Duration::hours(1);
    server_params.not_after = now + Duration::days(825);
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .context("signing server certificate")?;

    write_file(&files.ca_key, &ca_key.serialize_pem(), true)?;
    write_file(&files.ca_cert, &ca_cert.pem(), false)?;
    write_file(&files.server_key, &server_key.serialize_pem(), true)?;
    write_file(
        &files.server_cert,
        &format!("{}{}", server_cert.pem(), ca_cert.pem()),
        false,
    )?;
    Ok(files)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "CNTT monitoring");
    name
}

/// Writes a file, owner-only when `private`, replacing any earlier one.
fn write_file(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // An existing file keeps its old mode when opened; set it explicitly.
        fs::set_permissions(
            path,
            fs::Permissions::from_mode(if private { 0o600 } else { 0o644 }),
        )
        .with_context(|| format!("setting permissions of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_makes_a_loadable_set_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let files = init(dir.path(), &hosts, false).unwrap();
        server_config(&TlsConfig {
            cert: files.server_cert.clone(),
            key: files.server_key.clone(),
        })
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&files.server_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "private keys are owner-only");
            // A key others may read is refused with the fix (issue 13, L4).
            fs::set_permissions(&files.server_key, fs::Permissions::from_mode(0o640)).unwrap();
            let err = server_config(&TlsConfig {
                cert: files.server_cert.clone(),
                key: files.server_key.clone(),
            })
            .unwrap_err();
            assert!(format!("{err:#}").contains("chmod 600"), "{err:#}");
            fs::set_permissions(&files.server_key, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = init(dir.path(), &hosts, false).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        init(dir.path(), &hosts, true).unwrap();
        assert!(init(dir.path(), &[], true)
            .unwrap_err()
            .to_string()
            .contains("--host"));
    }

    #[test]
    fn missing_files_are_named() {
        let err = server_config(&TlsConfig {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/cert.pem"),
            "{err:#}"
        );
    }
}
