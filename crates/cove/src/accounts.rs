//! `cove serve`'s account settings: who signs in, the administrator's password (given, or
//! generated once into the config file) and the default quotas.

use cove_config::{AuthMode, PasswordSetting, Settings, Source};

/// Accounts from the settings. With `--auth password` and no password given anywhere, a
/// random one is written into the config file (mode 0600); where the password is, is
/// printed, never the password, as code-server does.
pub(crate) fn settings(settings: &Settings) -> anyhow::Result<cove_server::AccountSettings> {
    use cove_server::{AdminPassword, Auth};
    let args = &settings.args;
    let (auth, admin_password) = match args.auth {
        AuthMode::None => (Auth::None, None),
        AuthMode::Password => {
            let admin = settings.admin_password()?;
            let place = match &admin.source {
                Source::File(path) | Source::Generated(path) => {
                    format!("the password in {}", path.display())
                }
                other => format!("the password from {other}"),
            };
            println!("Sign in as {:?} with {place}", args.admin_username);
            let password = match admin.setting {
                PasswordSetting::Plain(secret) => AdminPassword::Plain(secret.expose().to_owned()),
                PasswordSetting::Hashed(hash) => AdminPassword::Hashed(hash.expose().to_owned()),
            };
            (Auth::Password, Some(password))
        }
    };
    let mut accounts = cove_server::AccountSettings {
        auth,
        admin_password,
        admin_username: args.admin_username.clone(),
        ..Default::default()
    };
    let quotas = &mut accounts.default_quotas;
    quotas.workspaces = args.quota_workspaces;
    quotas.running = args.quota_running;
    quotas.sessions = Some(args.quota_sessions);
    quotas.connections = Some(args.quota_connections);
    Ok(accounts)
}
