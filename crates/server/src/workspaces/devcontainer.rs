//! The parts of a project's `.devcontainer/devcontainer.json` (or `.devcontainer.json`) that
//! mean something in a cove workspace: `postCreateCommand` (run once, after the first start),
//! `postStartCommand` (after every start), `containerEnv` and `remoteEnv` (the environment of
//! those commands), and `forwardPorts` (logged; every listening port is previewable anyway).
//! The file is JSON with comments and trailing commas, as the spec allows. Image, build and
//! feature settings are not cove's to follow: a workspace's root filesystem is the server's.

use cove_protocol::Env;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Where the file may be, in the order the spec looks.
pub(super) const PLACES: [&str; 2] = [".devcontainer/devcontainer.json", ".devcontainer.json"];
/// The largest devcontainer.json read.
pub(super) const MAX_BYTES: usize = 256 * 1024;

/// A lifecycle command: a shell line, a program with its arguments, or several of either
/// run side by side under names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(super) enum Command {
    Shell(String),
    Program(Vec<String>),
    Named(BTreeMap<String, Command>),
}

/// One process to start: its id suffix, command line or program and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Step {
    pub name: Option<String>,
    pub command: String,
    pub args: Option<Vec<String>>,
}

impl Command {
    /// The processes this command is (a named group is one per name; nesting goes no deeper).
    pub(super) fn steps(&self) -> Vec<Step> {
        match self {
            Command::Shell(line) if !line.trim().is_empty() => vec![Step {
                name: None,
                command: line.clone(),
                args: None,
            }],
            Command::Program(words) if !words.is_empty() => vec![Step {
                name: None,
                command: words[0].clone(),
                args: Some(words[1..].to_vec()),
            }],
            Command::Named(group) => group
                .iter()
                .flat_map(|(name, command)| match command {
                    Command::Named(_) => Vec::new(),
                    command => command
                        .steps()
                        .into_iter()
                        .map(|step| Step {
                            name: Some(name.clone()),
                            ..step
                        })
                        .collect(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DevContainer {
    #[serde(default)]
    pub post_create_command: Option<Command>,
    #[serde(default)]
    pub post_start_command: Option<Command>,
    #[serde(default)]
    pub container_env: BTreeMap<String, String>,
    #[serde(default)]
    pub remote_env: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub forward_ports: Vec<serde_json::Value>,
}

impl DevContainer {
    /// Reads a devcontainer.json: JSON with `//` and `/* */` comments and trailing commas.
    pub(super) fn parse(text: &str) -> Result<DevContainer, String> {
        serde_json::from_str(&plain_json(text)).map_err(|e| e.to_string())
    }

    /// The commands' environment: `containerEnv`, then `remoteEnv` over it (a `null` in
    /// `remoteEnv` removes a variable). A value that refers to another (`${containerEnv:PATH}`)
    /// is left out: cove does not expand them, and a literal `${...}` in PATH would hide every
    /// program.
    pub(super) fn env(&self) -> Env {
        let mut env: Env = self.container_env.clone();
        for (name, value) in &self.remote_env {
            match value {
                Some(value) => env.insert(name.clone(), value.clone()),
                None => env.remove(name),
            };
        }
        env.retain(|name, value| {
            let plain = !value.contains("${");
            if !plain {
                tracing::warn!(variable = %name, "devcontainer.json: ${{...}} in a variable is not expanded; left out");
            }
            plain
        });
        env
    }
}

/// JSON with comments and trailing commas made plain JSON: comments become spaces and a comma
/// before `}` or `]` goes; strings are left exactly as they are.
fn plain_json(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                out.extend_from_slice(&bytes[start..i]);
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
                out.push(b' ');
            }
            b',' => {
                let next = bytes[i + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map(|at| bytes[i + 1 + at]);
                // A comma before a comment that precedes `}` stays; serde then names the spot.
                if !matches!(next, Some(b'}' | b']')) {
                    out.push(b',');
                }
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_s_shapes_are_read() {
        let text = r#"// A comment first
        {
            "name": "demo // not a comment",
            /* a block
               comment */
            "postCreateCommand": "npm install && echo \"done\"",
            "postStartCommand": {
                "server": ["npm", "start"],
                "watch": "npm run watch",
            },
            "containerEnv": { "A": "1", "B": "2" },
            "remoteEnv": { "B": "3", "A": null, "PATH": "${containerEnv:PATH}:/x", },
            "forwardPorts": [3000, "db:5432"],
        }"#;
        let dev = DevContainer::parse(text).unwrap();
        assert_eq!(
            dev.post_create_command.clone().unwrap().steps(),
            [Step {
                name: None,
                command: "npm install && echo \"done\"".into(),
                args: None
            }]
        );
        let start = dev.post_start_command.clone().unwrap().steps();
        assert_eq!(start.len(), 2);
        assert_eq!(start[0].name.as_deref(), Some("server"));
        assert_eq!(start[0].args.as_deref(), Some(&["start".to_string()][..]));
        assert_eq!(start[1].command, "npm run watch");
        assert_eq!(dev.env(), Env::from([("B".to_string(), "3".to_string())]));
        assert_eq!(dev.forward_ports.len(), 2);
    }

    #[test]
    fn what_is_not_json_says_why() {
        assert!(DevContainer::parse("{ \"postCreateCommand\": 3 }").is_err());
        assert!(DevContainer::parse("{ unquoted: 1 }").is_err());
        assert!(DevContainer::parse("\"unterminated").is_err());
        assert_eq!(DevContainer::parse("{}").unwrap(), DevContainer::default());
        assert!(Command::Shell("  ".into()).steps().is_empty());
        assert!(Command::Program(vec![]).steps().is_empty());
    }
}
