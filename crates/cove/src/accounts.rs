//! `cove serve`'s account settings from its flags: who signs in, the administrator's
//! password (given, or generated once and kept in the data dir) and the default quotas.

use anyhow::Context as _;

/// Where a generated administrator password is kept.
const PASSWORD_FILE: &str = "admin-password";

/// Accounts from the flags. With `--auth password` and no password given, the password is
/// the one in `<data dir>/admin-password`, generated (mode 0600) at first start; where it
/// is, is printed, as code-server does.
pub(crate) fn settings(
    args: &crate::ServeArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<cove_server::AccountSettings> {
    use cove_server::{AdminPassword, Auth};
    let auth = match args.auth {
        crate::AuthMode::Password => Auth::Password,
        crate::AuthMode::None => Auth::None,
    };
    let admin_password = match (&args.password, &args.hashed_password) {
        _ if auth == Auth::None => None,
        (Some(plain), _) => Some(AdminPassword::Plain(plain.clone())),
        (None, Some(hash)) => Some(AdminPassword::Hashed(hash.clone())),
        (None, None) => {
            let path = data_dir.join(PASSWORD_FILE);
            let password = read_or_make_password(&path)?;
            println!(
                "Sign in as {:?} with the password in {} (or set $PASSWORD)",
                args.admin_username,
                path.display()
            );
            Some(AdminPassword::Plain(password))
        }
    };
    let mut settings = cove_server::AccountSettings {
        auth,
        admin_password,
        admin_username: args.admin_username.clone(),
        ..Default::default()
    };
    let quotas = &mut settings.default_quotas;
    quotas.workspaces = args.quota_workspaces;
    quotas.running = args.quota_running;
    quotas.sessions = Some(args.quota_sessions);
    quotas.connections = Some(args.quota_connections);
    Ok(settings)
}

/// The password kept in `path`, or a new random one written there (mode 0600, created
/// exclusively). A link there is not followed, and a file that others could read or that is
/// not ours is refused rather than trusted.
fn read_or_make_password(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let existing = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    match existing {
        Ok(mut file) => {
            let meta = file.metadata()?;
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if !meta.is_file() || meta.uid() != me || meta.mode() & 0o077 != 0 {
                anyhow::bail!(
                    "{} must be a file of this user that only it can read (chmod 600 it, or remove it to make a new password)",
                    path.display()
                );
            }
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            if !text.trim().is_empty() {
                return Ok(text.trim().to_string());
            }
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let password: String = bytes
        .iter()
        .map(|b| {
            // 64 characters without look-alikes' worries: base64url.
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            ALPHABET[usize::from(*b) % 64] as char
        })
        .collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{password}")?;
    tracing::info!(path = %path.display(), "generated the administrator's password");
    Ok(password)
}
