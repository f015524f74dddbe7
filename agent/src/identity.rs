//! The agent's identity: enrollment with the collector, and the credential and pinned CA it leaves
//! in the state folder.
//!
//! Files in the state folder: `credential.json` (owner-only: the secret that authenticates every
//! upload) and `ca.pem` (the CA given at enrollment; the only CA the agent trusts from then on, so
//! a rogue certificate from a public CA cannot intercept it).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cntt_common::wire::{EnrollRequest, EnrollResponse, ErrorBody, ENROLL_PATH, PROTOCOL_VERSION};
use cntt_common::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

/// File name of the credential in the state folder.
pub const CREDENTIAL_FILE: &str = "credential.json";

/// File name of the pinned CA in the state folder.
pub const CA_FILE: &str = "ca.pem";

/// What enrollment leaves behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The agent's id.
    pub agent_id: uuid::Uuid,
    /// Its unit's code.
    pub unit_code: String,
    /// Its unit's name.
    pub unit_name: String,
    /// Collector base URL, e.g. `https://collector.example:8443`.
    pub server: String,
    /// The secret.
    pub credential: Secret,
    /// The collector's warning at enrollment (for example: the unit has ended), shown once by
    /// `cntt-agent enroll`; not saved.
    #[serde(skip)]
    pub enroll_warning: Option<String>,
}

impl Identity {
    /// Reads the identity from a state folder.
    ///
    /// # Errors
    ///
    /// When the agent is not enrolled (with the command to run) or the file is damaged.
    pub fn load(state_dir: &Path) -> anyhow::Result<Identity> {
        let path = state_dir.join(CREDENTIAL_FILE);
        warn_if_readable_by_others(&path);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
                "this agent is not enrolled ({} is missing); run: cntt-agent enroll --server URL --ca CA.pem (it reads the token from standard input or CNTT_ENROLL_TOKEN)",
                path.display()
            ),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; enroll again with a new token",
                path.display()
            )
        })
    }

    /// Writes the identity with owner-only permissions, atomically (temporary file, then rename).
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding credential")?;
        write_atomically(&state_dir.join(CREDENTIAL_FILE), text.as_bytes(), true)
    }
}

/// Logs a warning when a credential file may be read by other users of the machine (issue 13,
/// L4): the agent keeps working, since refusing would stop monitoring, but says how to fix it.
pub fn warn_if_readable_by_others(path: &Path) {
    if let Some(problem) = crate::platform::privacy_problem(path) {
        tracing::warn!(
            file = %path.display(),
            problem,
            "the agent credential may be read by other users"
        );
    }
}

/// The most bytes of a collector's reply the agent reads by default (acknowledgements, errors,
/// enrollment answers).
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// Reads a reply's body, at most `limit` bytes: a `Content-Length` above the limit is refused
/// before reading, and a longer body (chunked, or lying about its length) is refused as soon as it
/// passes the limit, so a hostile or broken server cannot grow the agent's memory (issue 13, L3).
///
/// # Errors
///
/// When the body is too large or cannot be read.
pub async fn read_reply(mut response: reqwest::Response, limit: usize) -> anyhow::Result<Vec<u8>> {
    if let Some(length) = response.content_length() {
        if length > limit as u64 {
            bail!("the collector's answer is {length} bytes, more than the {limit} bytes accepted");
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .context("reading the collector's answer")?
    {
        if body.len() + chunk.len() > limit {
            bail!("the collector's answer is longer than the {limit} bytes accepted");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An HTTPS client that trusts only the CA in `ca_pem`.
///
/// # Errors
///
/// When the file holds no usable certificate.
pub fn pinned_client(ca_pem: &Path, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    client_with(pinned_tls(ca_pem)?, timeout)
}

/// The TLS settings of [`pinned_client`]: only the CA in `ca_pem` is trusted.
///
/// # Errors
///
/// When the file holds no usable certificate.
pub fn pinned_tls(ca_pem: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_pem)
        .with_context(|| format!("reading CA file {}", ca_pem.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing CA file {}", ca_pem.display()))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        bail!("CA file {} holds no usable certificate", ca_pem.display());
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("choosing TLS versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tls)
}

/// An HTTPS client over `tls` (from [`pinned_tls`]); each client has its own connections.
///
/// # Errors
///
/// When reqwest cannot build the client.
pub fn client_with(
    tls: rustls::ClientConfig,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("cntt-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building HTTPS client")
}

/// Enrolls with the collector at `server` using a one-time `token`, trusting only `ca_file`, and
/// saves the credential and a copy of the CA in `state_dir`.
///
/// # Errors
///
/// When an identity already exists and `force` is not set, the collector cannot be reached or
/// refuses the token (its message is passed on), or the files cannot be written.
pub async fn enroll(
    server: &str,
    token: &Secret,
    ca_file: &Path,
    state_dir: &Path,
    force: bool,
) -> anyhow::Result<Identity> {
    let server = server.trim_end_matches('/');
    if !server.starts_with("https://") {
        bail!("--server {server:?} must start with https://: the collector serves HTTPS only");
    }
    let credential_path = state_dir.join(CREDENTIAL_FILE);
    if credential_path.exists() && !force {
        bail!(
            "{} exists: this agent is already enrolled; pass --force to enroll again",
            credential_path.display()
        );
    }
    let client = pinned_client(ca_file, Duration::from_secs(30))?;
    let hostname = sysinfo::System::host_name().unwrap_or_else(|| "unknown".into());
    let request = EnrollRequest {
        version: PROTOCOL_VERSION,
        token: token.clone(),
        hostname,
        agent_version: env!("CARGO_PKG_VERSION").into(),
    };
    let url = format!("{server}{ENROLL_PATH}");
    let response = client
        .post(&url)
        .json(&request)
        .send()
        .await
        .with_context(|| format!("reaching the collector at {url} (is the address right, and is --ca the collector's CA?)"))?;
    let status = response.status();
    let body = read_reply(response, MAX_REPLY_BYTES)
        .await
        .context("reading the collector's enrollment answer")?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&body).into_owned();
        let message = serde_json::from_str::<ErrorBody>(&body).map_or(body, |error| error.message);
        bail!("the collector refused enrollment ({status}): {message}");
    }
    let enrolled: EnrollResponse =
        serde_json::from_slice(&body).context("reading the collector's enrollment answer")?;
    fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state folder {}", state_dir.display()))?;
    restrict_dir(state_dir)?;
    let ca = fs::read(ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
    write_atomically(&state_dir.join(CA_FILE), &ca, false)?;
    let identity = Identity {
        agent_id: enrolled.agent_id,
        unit_code: enrolled.unit_code,
        unit_name: enrolled.unit_name,
        server: server.to_owned(),
        credential: enrolled.credential,
        enroll_warning: enrolled.warning,
    };
    identity.save(state_dir)?;
    Ok(identity)
}

/// The pinned CA of a state folder.
pub fn ca_path(state_dir: &Path) -> PathBuf {
    state_dir.join(CA_FILE)
}

fn restrict_dir(dir: &Path) -> anyhow::Result<()> {
    crate::platform::restrict_dir(dir)
        .with_context(|| format!("restricting {} to its owner", dir.display()))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`; a
/// `private` file is owner-only (Unix) or for SYSTEM and Administrators only (Windows) from its
/// creation on.
fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = crate::platform::create_file(&tmp, private)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity {
            agent_id: uuid::Uuid::nil(),
            unit_code: "663".into(),
            unit_name: "Huyện Đắk Mil".into(),
            server: "https://collector:8443".into(),
            credential: Secret::new("cntt_agent_x"),
            enroll_warning: None,
        };
        identity.save(dir.path()).unwrap();
        assert_eq!(Identity::load(dir.path()).unwrap(), identity);
        assert_eq!(
            crate::platform::privacy_problem(&dir.path().join(CREDENTIAL_FILE)),
            None,
            "the credential is private from its creation"
        );
        assert!(
            !format!("{identity:?}").contains("cntt_agent_x"),
            "Debug must not show the credential"
        );
    }

    #[test]
    fn missing_and_damaged_identities_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", Identity::load(dir.path()).unwrap_err());
        assert!(err.contains("cntt-agent enroll"), "{err}");
        fs::write(dir.path().join(CREDENTIAL_FILE), "{not json").unwrap();
        let err = format!("{:#}", Identity::load(dir.path()).unwrap_err());
        assert!(err.contains("damaged"), "{err}");
    }
}
