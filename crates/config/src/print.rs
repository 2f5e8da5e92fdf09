//! `cove serve --print-config`: every setting, its value and where it came from.

use crate::{AuthMode, Settings, Source};
use std::fmt::Write as _;

/// Keys whose values are never printed.
const SECRETS: &[&str] = &[
    "password",
    "admin-password",
    "hashed-password",
    "database-url",
    "s3-secret-access-key",
];

/// One setting as it is shown.
#[derive(Debug, Clone)]
pub(crate) struct Shown {
    /// The long flag, which is also the config file's key.
    pub(crate) key: String,
    /// The raw values after precedence; `None` when unset.
    pub(crate) values: Option<Vec<String>>,
    /// Whether the flag repeats.
    pub(crate) list: bool,
    pub(crate) source: Source,
}

pub(crate) fn render(settings: &Settings) -> String {
    let file = &settings.config_file;
    let mut out = String::from(
        "# The settings of `cove serve`, each with where its value comes from\n\
         # (default < config file < environment < flag). Secrets are masked.\n",
    );
    let _ = writeln!(
        out,
        "config: {} ({}; {})",
        file.path.display(),
        file.chosen_by,
        if file.found { "read" } else { "no such file" }
    );
    for shown in settings.shown.iter().filter(|s| s.key != "config") {
        let value = match &shown.values {
            Some(_) if SECRETS.contains(&shown.key.as_str()) => "********".to_owned(),
            Some(values) if shown.list => format!("[{}]", values.join(", ")),
            Some(values) => values.join(" "),
            None if shown.key == "data-dir" => match settings.data_dir() {
                Ok(dir) => dir.display().to_string(),
                Err(e) => format!("(none: {e})"),
            },
            None if shown.key == "password"
                && settings.args.auth == AuthMode::Password
                && settings.password().is_none() =>
            {
                format!(
                    "(not set: a random one is written into {} at start)",
                    file.path.display()
                )
            }
            None => "(not set)".to_owned(),
        };
        let _ = writeln!(out, "{}: {value} ({})", shown.key, shown.source);
    }
    if let Some(admin) = settings.password() {
        let _ = writeln!(
            out,
            "# The password used: {} ({}).",
            match admin.setting {
                crate::PasswordSetting::Plain(_) => "password",
                crate::PasswordSetting::Hashed(_) => "hashed-password",
            },
            admin.source
        );
    }
    out
}
