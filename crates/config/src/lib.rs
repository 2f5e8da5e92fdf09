//! The settings of `cove serve`: every flag, where each value comes from, and which wins.
//!
//! Owns: the `serve` flags with their defaults and environment variables, the config file
//! (finding it, reading it, adding a generated password to it), the precedence default <
//! config file < environment < flag, the admin password setting, and the files of the
//! self-signed certificate.
//! Must not know: what any setting does: HTTP, TLS handshakes, workspaces, sandboxes,
//! sign-in, or how a password is verified.
//!
//! `crates/cove` parses the command line with [`ServeArgs`] (clap reads flags and
//! environment variables), then [`Settings::resolve`] adds the config file and says where
//! every value came from.

mod file;
mod flags;
mod layers;
mod password;
mod print;
pub mod self_signed;

pub use flags::{AuthMode, CertArg, NetworkMode, SandboxMode, ServeArgs};
pub use password::{AdminPassword, PasswordSetting, Secret};

use layers::Layer;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default (or no value at all).
    Default,
    /// The config file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// This command-line flag (`--bind-addr`).
    Flag(String),
    /// Made by cove at this start and written into this file (the password).
    Generated(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(var) => write!(f, "env ${var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Generated(path) => write!(f, "generated into {}", path.display()),
        }
    }
}

/// The directories the defaults are found from (`$HOME`, `$XDG_CONFIG_HOME`,
/// `$XDG_DATA_HOME`); given, not read, so that tests choose them.
#[derive(Debug, Clone, Default)]
pub struct Dirs {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `$XDG_DATA_HOME`.
    pub xdg_data_home: Option<PathBuf>,
}

impl Dirs {
    /// This process's `$HOME`, `$XDG_CONFIG_HOME` and `$XDG_DATA_HOME` (empty ones unset).
    pub fn from_env() -> Dirs {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Dirs {
            home: var("HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            xdg_data_home: var("XDG_DATA_HOME"),
        }
    }

    /// cove's default data dir: `$XDG_DATA_HOME/cove`, else `~/.local/share/cove`.
    pub fn data_dir(&self) -> Result<PathBuf, Error> {
        self.cove_dir(&self.xdg_data_home, ".local/share", "data dir")
    }

    /// `$XDG_x/cove`, else `$HOME/<fallback>/cove`.
    fn cove_dir(
        &self,
        xdg: &Option<PathBuf>,
        fallback: &str,
        what: &'static str,
    ) -> Result<PathBuf, Error> {
        match (xdg, &self.home) {
            (Some(base), _) => Ok(base.join("cove")),
            (None, Some(home)) => Ok(home.join(fallback).join("cove")),
            (None, None) => Err(Error::NoHome(what)),
        }
    }
}

/// The config file: its path, what chose it, and whether it existed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Where it is (or would be).
    pub path: PathBuf,
    /// `--config`, `$COVE_CONFIG` or [`Source::Default`].
    pub chosen_by: Source,
    /// Whether there was a file to read.
    pub found: bool,
}

/// Whether and how `cove serve` speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain HTTP.
    Off,
    /// The given certificate and key.
    Files(TlsFiles),
    /// A self-signed certificate cove makes (see [`self_signed::ensure`]).
    SelfSigned,
}

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate, then its chain.
    pub cert: PathBuf,
    /// The certificate's private key.
    pub key: PathBuf,
}

/// Everything that can be wrong with the settings. Messages name the key or flag and the
/// file, and never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot find the default {0}: neither $HOME nor the XDG variable is set")]
    NoHome(&'static str),
    #[error("cannot read the config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error(
        "the config file {path} has unknown keys: {keys}. Its keys are the long flags of \
         `cove serve` without `--` (see `cove serve --help`)"
    )]
    UnknownKeys { path: PathBuf, keys: String },
    #[error("the config file {path}: `{key}` is a command-line flag, not a setting")]
    NotInFile { path: PathBuf, key: String },
    #[error("the config file {path}: bad value for `{key}`: {message}")]
    BadValue {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{0}")]
    Flags(String),
    #[error("the hashed password from {from} is refused: {message}")]
    BadHash { from: Source, message: String },
    #[error("cannot get random bytes for a password: {0}")]
    Random(getrandom::Error),
    #[error("cannot write the generated password into {path}: {source}")]
    WritePassword {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot add a generated password to {path} (it has an empty `password:` key, or is a \
         mapping in flow style); set `password` or `hashed-password` there, or give \
         $PASSWORD"
    )]
    CannotAddPassword { path: PathBuf },
    #[error("{0}")]
    Tls(String),
    #[error("cannot make a self-signed certificate in {dir}: {message}")]
    SelfSigned { dir: PathBuf, message: String },
}

/// The settings of one `cove serve`, every value with its source.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Every flag's value after precedence.
    pub args: ServeArgs,
    /// The config file that was read (or would have been).
    pub config_file: ConfigFile,
    /// By flag id (`bind_addr`): where its value came from.
    sources: BTreeMap<String, Source>,
    /// Every setting as `--print-config` shows it, in `--help` order.
    shown: Vec<print::Shown>,
    dirs: Dirs,
}

impl Settings {
    /// The settings from `cove serve`'s parsed command line (`matches`, which clap filled
    /// from flags and environment variables through [`ServeArgs`]) plus the config file,
    /// found from `dirs` unless `--config` or `$COVE_CONFIG` names it.
    pub fn resolve(matches: &clap::ArgMatches, dirs: Dirs) -> Result<Settings, Error> {
        let with_env = layers::serve_command_with_env();
        let flags = Layer::from_matches(matches, clap::parser::ValueSource::CommandLine, &with_env);
        let env = Layer::from_matches(matches, clap::parser::ValueSource::EnvVariable, &with_env);
        Self::from_layers(flags, env, dirs)
    }

    /// The settings from the command line's and the environment's layers; the config file
    /// is read here.
    pub(crate) fn from_layers(flags: Layer, env: Layer, dirs: Dirs) -> Result<Settings, Error> {
        let cmd = layers::serve_command();
        let (path, chosen_by) = match flags.get("config").or_else(|| env.get("config")) {
            Some(given) => (
                PathBuf::from(given.values.last().cloned().unwrap_or_default()),
                given.source.clone(),
            ),
            None => (
                dirs.cove_dir(&dirs.xdg_config_home, ".config", "config file")?
                    .join("config.yaml"),
                Source::Default,
            ),
        };
        let file = file::read(&path, &cmd)?;
        let config_file = ConfigFile {
            path,
            chosen_by,
            found: file.is_some(),
        };
        let merged = layers::merge(&cmd, [Some(flags), Some(env), file])?;
        let settings = Settings {
            args: merged.args,
            config_file,
            sources: merged.sources,
            shown: merged.shown,
            dirs,
        };
        if let Some(hash) = &settings.args.hashed_password {
            password::check_hash(hash.expose()).map_err(|message| Error::BadHash {
                from: settings.source("hashed_password"),
                message,
            })?;
        }
        settings.tls()?;
        Ok(settings)
    }

    /// Where the value of the flag with this id (`bind_addr`, the field's name) came from.
    pub fn source(&self, id: &str) -> Source {
        self.sources.get(id).cloned().unwrap_or(Source::Default)
    }

    /// `--data-dir`, else `$XDG_DATA_HOME/cove`, else `~/.local/share/cove`.
    pub fn data_dir(&self) -> Result<PathBuf, Error> {
        match &self.args.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => self.dirs.data_dir(),
        }
    }

    /// The password setting that wins, if any (without generating one): `--password`, then
    /// `$PASSWORD`, then `--admin-password` (`$ADMIN_PASSWORD` or file), then `hashed-password`
    /// (flag, `$HASHED_PASSWORD` or file), then the
    /// config file's `password`.
    pub fn password(&self) -> Option<AdminPassword> {
        let plain = |secret: &Secret| AdminPassword {
            setting: PasswordSetting::Plain(secret.clone()),
            source: self.source("password"),
        };
        let password = self.args.password.as_ref();
        if let Some(secret) =
            password.filter(|_| matches!(self.source("password"), Source::Flag(_) | Source::Env(_)))
        {
            return Some(plain(secret));
        }
        if let Some(secret) = &self.args.admin_password {
            return Some(AdminPassword {
                setting: PasswordSetting::Plain(secret.clone()),
                source: self.source("admin_password"),
            });
        }
        if let Some(hash) = &self.args.hashed_password {
            return Some(AdminPassword {
                setting: PasswordSetting::Hashed(hash.clone()),
                source: self.source("hashed_password"),
            });
        }
        password.map(plain)
    }

    /// The password setting of `--auth password`: [`Settings::password`], or else a new
    /// random one written into the config file (see [`AdminPassword::describe`] for the
    /// line that says where it is).
    pub fn admin_password(&self) -> Result<AdminPassword, Error> {
        let admin = match self.password() {
            Some(admin) => admin,
            None => {
                let secret = password::generate().map_err(Error::Random)?;
                let path = &self.config_file.path;
                file::add_password(path, &secret, &layers::serve_command())?;
                AdminPassword {
                    setting: PasswordSetting::Plain(secret),
                    source: Source::Generated(path.clone()),
                }
            }
        };
        if let Source::File(path) = &admin.source {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path).map(|m| m.permissions().mode());
            if mode.is_ok_and(|mode| mode & 0o077 != 0) {
                tracing::warn!(
                    "{} holds the password and other users may read it: chmod 600 it",
                    path.display()
                );
            }
        }
        Ok(admin)
    }

    /// `--cert` and `--cert-key`, checked to make sense together.
    pub fn tls(&self) -> Result<Tls, Error> {
        let (cert, key) = (&self.args.cert, &self.args.cert_key);
        match (cert, key) {
            (None | Some(CertArg::Off), None) => Ok(Tls::Off),
            (Some(CertArg::File(cert)), Some(key)) => Ok(Tls::Files(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (Some(CertArg::File(_)), None) => Err(Error::Tls(format!(
                "--cert PATH needs --cert-key PATH, the certificate's private key (cert from {})",
                self.source("cert")
            ))),
            (Some(CertArg::SelfSigned), None) => Ok(Tls::SelfSigned),
            (Some(CertArg::SelfSigned), Some(_)) => Err(Error::Tls(format!(
                "--cert-key (from {}) goes with --cert PATH; a generated certificate has its \
                 own key. Give the certificate's path, or drop --cert-key",
                self.source("cert_key")
            ))),
            (None | Some(CertArg::Off), Some(_)) => Err(Error::Tls(format!(
                "--cert-key (from {}) needs --cert PATH",
                self.source("cert_key")
            ))),
        }
    }

    /// The names a self-signed certificate covers: the bind address (unless it is 0.0.0.0
    /// or ::), each --allowed-host, previews under --preview-domain, `localhost` and its
    /// previews, 127.0.0.1 and ::1.
    pub fn certificate_hosts(&self) -> Vec<String> {
        let mut hosts = Vec::new();
        let ip = self.args.bind_addr.ip();
        if !ip.is_unspecified() {
            hosts.push(ip.to_string());
        }
        hosts.extend(self.args.allowed_hosts.iter().cloned());
        if let Some(domain) = &self.args.preview_domain {
            hosts.push(format!("*.{domain}"));
        }
        hosts.extend(["localhost", "*.localhost", "127.0.0.1", "::1"].map(String::from));
        let mut seen = std::collections::BTreeSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        hosts
    }

    /// The certificate and key to serve with, if TLS is on: the given files, or the
    /// self-signed certificate in `data_dir/tls/` (made or made again as needed).
    pub fn tls_files(&self, data_dir: &Path) -> Result<Option<TlsFiles>, Error> {
        match self.tls()? {
            Tls::Off => Ok(None),
            Tls::Files(files) => Ok(Some(files)),
            Tls::SelfSigned => {
                self_signed::ensure(&data_dir.join("tls"), &self.certificate_hosts()).map(Some)
            }
        }
    }

    /// The text of `--print-config`: every setting, its value (secrets masked) and where it
    /// came from.
    pub fn render(&self) -> String {
        print::render(self)
    }
}

#[cfg(test)]
mod tests;
