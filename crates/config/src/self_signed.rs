//! The self-signed certificate of `--cert` without a path: made once, kept in
//! `DATA_DIR/tls/`, and made again only when the names it must cover change or it nears
//! its end.

use crate::{Error, TlsFiles};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// How long a new certificate is valid: the most browsers accept for a server certificate.
const VALIDITY: Duration = Duration::days(397);
/// A certificate with less time left than this is replaced at start.
const RENEW_BEFORE: Duration = Duration::days(30);

/// The certificate for `hosts` (names and IP addresses) in `dir`: the one made before if it
/// covers exactly these names and is not about to expire, else a new one (ECDSA P-256; the
/// key file 0600, the folder 0700).
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<TlsFiles, Error> {
    let files = TlsFiles {
        cert: dir.join("self-signed.crt"),
        key: dir.join("self-signed.key"),
    };
    let about = dir.join("self-signed.about");
    let mut wanted: Vec<String> = hosts.to_vec();
    wanted.sort();
    wanted.dedup();
    let now = OffsetDateTime::now_utc();
    if files.cert.is_file()
        && files.key.is_file()
        && std::fs::read_to_string(&about)
            .ok()
            .and_then(|text| About::parse(&text))
            .is_some_and(|old| old.hosts == wanted && old.not_after - RENEW_BEFORE > now)
    {
        tracing::debug!(cert = %files.cert.display(), "reusing the self-signed certificate");
        return Ok(files);
    }

    let fail = |what: &str, e: &dyn std::fmt::Display| Error::SelfSigned {
        dir: dir.to_owned(),
        message: format!("{what}: {e}"),
    };
    let mut params = rcgen::CertificateParams::new(wanted.clone())
        .map_err(|e| fail("a host name cannot be in a certificate", &e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cove (self-signed)");
    params.not_before = now - Duration::days(1);
    params.not_after = now + VALIDITY;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().map_err(|e| fail("cannot make a key", &e))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| fail("cannot sign the certificate", &e))?;

    let io = |e: std::io::Error| fail("cannot write the certificate", &e);
    create_private_dir(dir).map_err(io)?;
    write(&files.key, key.serialize_pem().as_bytes(), 0o600).map_err(io)?;
    write(&files.cert, cert.pem().as_bytes(), 0o644).map_err(io)?;
    let about_text = About {
        hosts: wanted,
        not_after: params.not_after,
    }
    .render();
    write(&about, about_text.as_bytes(), 0o644).map_err(io)?;
    tracing::info!(
        cert = %files.cert.display(),
        "made a self-signed certificate; browsers will warn until it is trusted"
    );
    Ok(files)
}

/// What a certificate was made for, kept beside it (reading the certificate back would need
/// an X.509 parser).
struct About {
    hosts: Vec<String>,
    not_after: OffsetDateTime,
}

impl About {
    fn render(&self) -> String {
        let mut text = format!(
            "# What cove made self-signed.crt for; it makes a new one when this changes.\nnot-after {}\n",
            self.not_after.unix_timestamp()
        );
        for host in &self.hosts {
            text.push_str(&format!("host {host}\n"));
        }
        text
    }

    fn parse(text: &str) -> Option<About> {
        let mut not_after = None;
        let mut hosts = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            match line.split_once(' ')? {
                ("not-after", secs) => {
                    not_after = Some(OffsetDateTime::from_unix_timestamp(secs.parse().ok()?).ok()?);
                }
                ("host", host) => hosts.push(host.to_owned()),
                _ => return None,
            }
        }
        Some(About {
            hosts,
            not_after: not_after?,
        })
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes a file whole (a temp file renamed over it), created with `mode`.
pub(crate) fn write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let temp = path.with_extension(format!("{}.tmp", std::process::id()));
    let result = (|| {
        // A stale temp file would keep its old mode: start afresh.
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
