//! The settings from real files in temp dirs, with flag and environment layers built as
//! clap builds them.

use crate::layers::{self, Given, Layer};
use crate::{AuthMode, CertArg, Dirs, Error, PasswordSetting, Settings, Source, Tls};
use clap::parser::ValueSource;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// An Argon2id hash in PHC form (of no password in particular: only its form is checked).
const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQxMjM$RdescudvJCsgt3ub+b+dWRWJTmaaJObG8rGbPw7r9M4";

/// The flags layer of `cove serve ARGS`, as [`Settings::resolve`] makes it.
fn flags(args: &[&str]) -> Layer {
    let cmd = layers::serve_command();
    let matches = cmd
        .clone()
        .try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))
        .expect("valid flags");
    Layer::from_matches(&matches, ValueSource::CommandLine, &cmd)
}

/// The environment layer of `(flag id, variable, value)`s.
fn env(vars: &[(&str, &str, &str)]) -> Layer {
    Layer(
        vars.iter()
            .map(|(id, var, value)| {
                (
                    (*id).to_owned(),
                    Given {
                        source: Source::Env((*var).to_owned()),
                        values: vec![OsString::from(*value)],
                    },
                )
            })
            .collect(),
    )
}

/// Dirs with `$XDG_CONFIG_HOME` and `$XDG_DATA_HOME` inside `home`.
fn dirs(home: &Path) -> Dirs {
    Dirs {
        home: Some(home.to_owned()),
        xdg_config_home: Some(home.join("config")),
        xdg_data_home: Some(home.join("data")),
    }
}

/// Writes the default config file under `home` and returns its path.
fn write_config(home: &Path, text: &str) -> PathBuf {
    let path = home.join("config/cove/config.yaml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn resolve(home: &Path, flags: Layer, env: Layer) -> Result<Settings, Error> {
    Settings::from_layers(flags, env, dirs(home))
}

#[test]
fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let home = tempfile::tempdir().unwrap();
    let file = write_config(
        home.path(),
        "bind-addr: 127.0.0.1:1111\nmax-terminals: 7\nscrollback: 99\n",
    );
    let bind_env = || env(&[("bind_addr", "COVE_BIND_ADDR", "127.0.0.1:2222")]);
    let both = resolve(
        home.path(),
        flags(&["--bind-addr", "127.0.0.1:3333"]),
        bind_env(),
    )
    .unwrap();
    assert_eq!(both.args.bind_addr.port(), 3333);
    assert_eq!(both.source("bind_addr"), Source::Flag("--bind-addr".into()));
    // The file still gives what nobody else says, and the default the rest.
    assert_eq!(both.args.max_terminals, 7);
    assert_eq!(both.source("max_terminals"), Source::File(file.clone()));
    assert_eq!(both.source("max_processes"), Source::Default);

    let env_only = resolve(home.path(), Layer::default(), bind_env()).unwrap();
    assert_eq!(env_only.args.bind_addr.port(), 2222);
    assert_eq!(
        env_only.source("bind_addr"),
        Source::Env("COVE_BIND_ADDR".into())
    );

    let file_only = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    assert_eq!(file_only.args.bind_addr.port(), 1111);
    assert_eq!(file_only.source("bind_addr"), Source::File(file));
    assert!(file_only.config_file.found);
}

#[test]
fn no_file_means_defaults_and_config_chooses_the_file() {
    let home = tempfile::tempdir().unwrap();
    let settings = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    assert!(!settings.config_file.found);
    assert_eq!(
        settings.config_file.path,
        home.path().join("config/cove/config.yaml")
    );
    assert_eq!(settings.args.bind_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.data_dir().unwrap(), home.path().join("data/cove"));

    let other = home.path().join("elsewhere.yaml");
    std::fs::write(&other, "auth: none\n").unwrap();
    let chosen = resolve(
        home.path(),
        flags(&["--config", other.to_str().unwrap()]),
        Layer::default(),
    )
    .unwrap();
    assert_eq!(chosen.config_file.path, other);
    assert_eq!(chosen.args.auth, AuthMode::None);

    // Without XDG variables: under $HOME.
    let plain = Settings::from_layers(
        Layer::default(),
        Layer::default(),
        Dirs {
            home: Some(home.path().to_owned()),
            ..Dirs::default()
        },
    )
    .unwrap();
    assert_eq!(
        plain.config_file.path,
        home.path().join(".config/cove/config.yaml")
    );
}

#[test]
fn code_servers_keys_mean_the_same() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "# code-server's config.yaml\nbind-addr: 0.0.0.0:8443\nauth: password\npassword: 0123\n\
             hashed-password: \"{HASH}\"\ncert: /etc/cove/cert.pem\ncert-key: /etc/cove/key.pem\n"
        ),
    );
    let settings = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    assert_eq!(settings.args.bind_addr.to_string(), "0.0.0.0:8443");
    assert_eq!(settings.args.auth, AuthMode::Password);
    // A scalar is its text: `0123` stays `0123`.
    assert_eq!(settings.args.password.as_ref().unwrap().expose(), "0123");
    // The hash wins over the file's plain password, as in code-server.
    let admin = settings.password().unwrap();
    assert_eq!(
        admin.setting,
        PasswordSetting::Hashed(HASH.parse().unwrap())
    );
    assert_eq!(
        settings.tls().unwrap(),
        Tls::Files(crate::TlsFiles {
            cert: "/etc/cove/cert.pem".into(),
            key: "/etc/cove/key.pem".into(),
        })
    );
    // $PASSWORD wins over the file's hash.
    let with_env = resolve(
        home.path(),
        Layer::default(),
        env(&[("password", "PASSWORD", "from-the-env")]),
    )
    .unwrap();
    let admin = with_env.password().unwrap();
    assert_eq!(
        admin.setting,
        PasswordSetting::Plain("from-the-env".parse().unwrap())
    );
    assert_eq!(admin.source, Source::Env("PASSWORD".into()));
    // $ADMIN_PASSWORD also wins over the file's hash, and $PASSWORD over it.
    let admin_env = env(&[("admin_password", "ADMIN_PASSWORD", "the-admins")]);
    let with_admin = resolve(home.path(), Layer::default(), admin_env).unwrap();
    let admin = with_admin.password().unwrap();
    assert_eq!(
        admin.setting,
        PasswordSetting::Plain("the-admins".parse().unwrap())
    );
    assert_eq!(admin.source, Source::Env("ADMIN_PASSWORD".into()));
    let both = env(&[
        ("admin_password", "ADMIN_PASSWORD", "the-admins"),
        ("password", "PASSWORD", "from-the-env"),
    ]);
    let with_both = resolve(home.path(), Layer::default(), both).unwrap();
    assert_eq!(
        with_both.password().unwrap().source,
        Source::Env("PASSWORD".into())
    );
    assert!(
        !with_both.render().contains("the-admins"),
        "masked in --print-config"
    );

    // `cert: true` is a self-signed certificate, `cert: false` none.
    write_config(home.path(), "cert: true\n");
    let settings = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    assert_eq!(settings.args.cert, Some(CertArg::SelfSigned));
    assert_eq!(settings.tls().unwrap(), Tls::SelfSigned);
    write_config(home.path(), "cert: false\n");
    let settings = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    assert_eq!(settings.tls().unwrap(), Tls::Off);
    // `--cert` alone on the command line is self-signed too.
    let settings = resolve(home.path(), flags(&["--cert"]), Layer::default()).unwrap();
    assert_eq!(settings.tls().unwrap(), Tls::SelfSigned);
}

#[test]
fn cove_keys_and_lists_are_read() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        "allowed-host: [cove.example.com, ide.example.com]\nallow-egress: 10.0.0.0/8\n\
         sandbox: none\ncpu-limit: 1.5\nquota-workspaces: 3\ndata-dir:\n",
    );
    let settings = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    assert_eq!(
        settings.args.allowed_hosts,
        ["cove.example.com", "ide.example.com"]
    );
    assert_eq!(settings.args.allow_egress, ["10.0.0.0/8"]);
    assert_eq!(settings.args.sandbox, crate::SandboxMode::None);
    assert_eq!(settings.args.cpu_limit, 1.5);
    assert_eq!(settings.args.quota_workspaces, Some(3));
    // `key:` with no value leaves the default.
    assert_eq!(settings.args.data_dir, None);
    // A list is taken whole from the place that wins.
    let flagged = resolve(
        home.path(),
        flags(&["--allowed-host", "other.example.com"]),
        Layer::default(),
    )
    .unwrap();
    assert_eq!(flagged.args.allowed_hosts, ["other.example.com"]);
}

#[test]
fn unknown_keys_are_refused_with_the_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    let path = write_config(
        home.path(),
        "# settings\nauth: password\nbind-adr: 0.0.0.0:80\nfavourite-colour: blue\n",
    );
    let error = resolve(home.path(), Layer::default(), Layer::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(
        error.contains("`bind-adr` (line 3; did you mean `bind-addr`?)"),
        "{error}"
    );
    assert!(error.contains("`favourite-colour` (line 4)"), "{error}");

    // A bad value names the key; a YAML error has the line.
    write_config(home.path(), "max-terminals: many\n");
    let error = resolve(home.path(), Layer::default(), Layer::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("`max-terminals`"), "{error}");
    write_config(home.path(), "auth: password\nallowed-host: [a\n");
    let error = resolve(home.path(), Layer::default(), Layer::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("line 2"), "{error}");
    // `config` and `print-config` belong to the command line.
    write_config(home.path(), "print-config: true\n");
    let error = resolve(home.path(), Layer::default(), Layer::default()).unwrap_err();
    assert!(matches!(error, Error::NotInFile { .. }), "{error}");
}

#[test]
fn a_bad_hash_is_refused_without_repeating_it() {
    let home = tempfile::tempdir().unwrap();
    let error = resolve(
        home.path(),
        Layer::default(),
        env(&[("hashed_password", "HASHED_PASSWORD", "not-a-hash-secret")]),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("$HASHED_PASSWORD"), "{error}");
    assert!(!error.contains("not-a-hash-secret"), "{error}");
}

#[test]
fn print_config_masks_secrets_and_says_where_each_value_came_from() {
    let home = tempfile::tempdir().unwrap();
    let file = write_config(home.path(), "password: file-secret-1\nmax-terminals: 9\n");
    let settings = resolve(
        home.path(),
        flags(&["--bind-addr", "127.0.0.1:4444"]),
        env(&[("hashed_password", "HASHED_PASSWORD", HASH)]),
    )
    .unwrap();
    let text = settings.render();
    assert!(!text.contains("file-secret-1"), "{text}");
    assert!(!text.contains("argon2id"), "{text}");
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    assert_eq!(
        line("bind-addr"),
        "bind-addr: 127.0.0.1:4444 (flag --bind-addr)"
    );
    assert_eq!(
        line("password"),
        format!("password: ******** (file {})", file.display())
    );
    assert_eq!(
        line("hashed-password"),
        "hashed-password: ******** (env $HASHED_PASSWORD)"
    );
    assert_eq!(
        line("max-terminals"),
        format!("max-terminals: 9 (file {})", file.display())
    );
    assert!(line("auth").ends_with("(default)"), "{text}");
}

#[test]
fn a_generated_password_goes_into_the_config_file_with_mode_0600() {
    let home = tempfile::tempdir().unwrap();
    // A file that exists keeps what it has.
    let path = write_config(home.path(), "# mine\nmax-terminals: 5\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let settings = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    assert!(settings.password().is_none());
    let admin = settings.admin_password().unwrap();
    assert_eq!(admin.source, Source::Generated(path.clone()));
    let PasswordSetting::Plain(secret) = &admin.setting else {
        panic!("a plain password");
    };
    assert_eq!(secret.expose().len(), crate::password::GENERATED_LEN);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# mine\nmax-terminals: 5\n"), "{text}");
    assert!(admin.describe().contains(&path.display().to_string()));
    assert!(!admin.describe().contains(secret.expose()));

    // The next start reads it back: the same password, from the file.
    let again = resolve(home.path(), Layer::default(), Layer::default()).unwrap();
    let admin_again = again.admin_password().unwrap();
    assert_eq!(admin_again.setting, admin.setting);
    assert_eq!(admin_again.source, Source::File(path));

    // No file at all: made, with its folder.
    let fresh = tempfile::tempdir().unwrap();
    let settings = resolve(fresh.path(), Layer::default(), Layer::default()).unwrap();
    let admin = settings.admin_password().unwrap();
    let made = fresh.path().join("config/cove/config.yaml");
    assert_eq!(admin.source, Source::Generated(made.clone()));
    let mode = std::fs::metadata(&made).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // And it is a config file cove reads.
    let read = resolve(fresh.path(), Layer::default(), Layer::default()).unwrap();
    assert_eq!(read.password().unwrap().setting, admin.setting);
}

#[test]
fn a_self_signed_certificate_is_made_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let files = crate::self_signed::ensure(&tls, &hosts).unwrap();
    let cert = std::fs::read(&files.cert).unwrap();
    let key = std::fs::read(&files.key).unwrap();
    assert!(String::from_utf8_lossy(&cert).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(String::from_utf8_lossy(&key).contains("PRIVATE KEY"));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&files.key), 0o600);
    assert_eq!(mode(&tls), 0o700);

    // The same names in another order: the same certificate.
    let reversed: Vec<String> = hosts.iter().rev().cloned().collect();
    let again = crate::self_signed::ensure(&tls, &reversed).unwrap();
    assert_eq!(again, files);
    assert_eq!(std::fs::read(&again.cert).unwrap(), cert);
    assert_eq!(std::fs::read(&again.key).unwrap(), key);

    // Another name: a new one.
    let more = [hosts.clone(), vec!["cove.example.com".to_owned()]].concat();
    let renewed = crate::self_signed::ensure(&tls, &more).unwrap();
    assert_ne!(std::fs::read(&renewed.cert).unwrap(), cert);
}

#[test]
fn the_certificate_covers_the_bind_address_and_allowed_hosts() {
    let home = tempfile::tempdir().unwrap();
    let settings = resolve(
        home.path(),
        flags(&[
            "--bind-addr",
            "192.0.2.7:443",
            "--allowed-host",
            "cove.example.com",
            "--cert",
        ]),
        Layer::default(),
    )
    .unwrap();
    let hosts = settings.certificate_hosts();
    for host in ["192.0.2.7", "cove.example.com", "localhost", "127.0.0.1"] {
        assert!(hosts.iter().any(|h| h == host), "{host} in {hosts:?}");
    }
    let files = settings.tls_files(home.path()).unwrap().unwrap();
    assert!(files.cert.starts_with(home.path().join("tls")));
}

#[test]
fn tls_flags_that_do_not_go_together_are_refused() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["--cert", "/c.pem"][..],
        &["--cert-key", "/k.pem"],
        &["--cert", "--cert-key", "/k.pem"],
    ] {
        let error = resolve(home.path(), flags(args), Layer::default()).unwrap_err();
        assert!(matches!(error, Error::Tls(_)), "{args:?}: {error}");
    }
}
