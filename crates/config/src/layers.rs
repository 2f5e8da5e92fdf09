//! Precedence: each place settings come from is a [`Layer`] of raw flag values; for every
//! flag the first layer that has it (command line, then environment, then config file)
//! gives all of its values, and clap parses the result once more, so every value goes
//! through the same parser and the same checks wherever it was written.

use crate::file::one_line;
use crate::print::Shown;
use crate::{Error, ServeArgs, Source};
use clap::parser::ValueSource;
use clap::{ArgAction, Args as _, FromArgMatches as _};
use std::collections::BTreeMap;
use std::ffi::OsString;

/// `cove serve`'s command as `--help` shows it, environment variables included.
pub(crate) fn serve_command_with_env() -> clap::Command {
    ServeArgs::augment_args(clap::Command::new("serve"))
}

/// `cove serve`'s command with no environment variables: what the layers are parsed with,
/// so that the environment enters only as its own layer.
pub(crate) fn serve_command() -> clap::Command {
    serve_command_with_env().mut_args(|arg| arg.env(None))
}

/// One flag's values in one layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Given {
    /// `--flag`, `$VAR` or the file.
    pub(crate) source: Source,
    /// The raw values, one per occurrence (lists have several).
    pub(crate) values: Vec<OsString>,
}

/// What one place says, by flag id (`bind_addr`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layer(pub(crate) BTreeMap<String, Given>);

impl Layer {
    /// The values `matches` got from `origin` (the command line or the environment);
    /// `cmd` names each flag's variable.
    pub(crate) fn from_matches(
        matches: &clap::ArgMatches,
        origin: ValueSource,
        cmd: &clap::Command,
    ) -> Layer {
        let mut layer = Layer::default();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches.value_source(id) != Some(origin) {
                continue;
            }
            let source = match origin {
                ValueSource::EnvVariable => Source::Env(
                    arg.get_env()
                        .map(|v| v.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                _ => Source::Flag(format!("--{}", arg.get_long().unwrap_or(id))),
            };
            let values = matches
                .get_raw(id)
                .into_iter()
                .flatten()
                .map(OsString::from)
                .collect();
            layer.0.insert(id.to_owned(), Given { source, values });
        }
        layer
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Given> {
        self.0.get(id)
    }
}

/// The outcome of [`merge`].
pub(crate) struct Merged {
    pub(crate) args: ServeArgs,
    pub(crate) sources: BTreeMap<String, Source>,
    pub(crate) shown: Vec<Shown>,
}

/// Every flag's values from the first layer that has it, parsed by `cmd`. Layers come in
/// order of precedence, highest first; a missing one (no config file) is `None`.
pub(crate) fn merge<const N: usize>(
    cmd: &clap::Command,
    layers: [Option<Layer>; N],
) -> Result<Merged, Error> {
    let mut argv: Vec<OsString> = vec!["serve".into()];
    let mut sources = BTreeMap::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(given) = layers.iter().flatten().find_map(|layer| layer.get(id)) else {
            continue;
        };
        sources.insert(id.to_owned(), given.source.clone());
        let long = arg.get_long().unwrap_or(id);
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            if given.values.iter().any(|v| v == "true") {
                argv.push(format!("--{long}").into());
            }
            continue;
        }
        for value in &given.values {
            // `--flag=value`, so that a value starting with `-` stays a value.
            let mut word = OsString::from(format!("--{long}="));
            word.push(value);
            argv.push(word);
        }
    }
    let matches = cmd
        .clone()
        .try_get_matches_from(argv)
        .map_err(|e| Error::Flags(one_line(&e)))?;
    let args = ServeArgs::from_arg_matches(&matches).map_err(|e| Error::Flags(one_line(&e)))?;
    let shown = cmd
        .get_arguments()
        .filter(|arg| !matches!(arg.get_action(), ArgAction::SetTrue))
        .map(|arg| {
            let id = arg.get_id().as_str();
            Shown {
                key: arg.get_long().unwrap_or(id).to_owned(),
                values: matches
                    .get_raw(id)
                    .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect()),
                list: matches!(arg.get_action(), ArgAction::Append),
                source: sources.get(id).cloned().unwrap_or(Source::Default),
            }
        })
        .collect();
    Ok(Merged {
        args,
        sources,
        shown,
    })
}
