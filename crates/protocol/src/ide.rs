//! The IDE's own routes beside the protocol's sockets: language servers (`GET
//! /api/workspaces/{id}/lsp`, and the socket `/lsp/{language}` that carries LSP messages, one
//! JSON-RPC message per WebSocket text message) and search across files (`GET
//! /api/workspaces/{id}/search`, answered as newline-delimited JSON as matches are found).

use serde::{Deserialize, Serialize};

/// `GET /api/workspaces/{id}/lsp`: the language servers this workspace can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LanguageServers {
    /// The workspace root as the language servers see it (`file:///...`): documents are
    /// named by URIs beneath it.
    pub root_uri: String,
    pub servers: Vec<LanguageServer>,
}

/// Whether `language` can be a language server's key: 1-32 letters, digits, `-` or `_` (it
/// is a segment of the socket's path, on the server and on the runner).
pub fn valid_language(language: &str) -> bool {
    (1..=32).contains(&language.len())
        && language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One language and the server that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LanguageServer {
    /// The key of the socket (`python`, `typescript`, `rust`, `go`, `c`, or a name the
    /// workspace's `.cove/languages.json` adds).
    pub language: String,
    /// The program and its arguments, as it is started.
    pub command: Vec<String>,
    /// Where the command came from: `workspace` (`.cove/languages.json`) or `path`.
    pub source: String,
    /// What the editor passes as `initializationOptions` in `initialize`, where the server
    /// needs to be told something about this machine (typescript-language-server: where
    /// TypeScript is installed, when the workspace has none of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "unknown"))]
    pub initialization_options: Option<serde_json::Value>,
}

/// The query of `GET /api/workspaces/{id}/search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchQuery {
    pub query: String,
    /// `query` is a regular expression (Rust/ripgrep syntax), not literal text.
    #[serde(default)]
    pub regex: bool,
    #[serde(default)]
    pub case_sensitive: bool,
    #[serde(default)]
    pub whole_word: bool,
    /// Comma-separated globs a file must match (`src/**,*.{ts,tsx}`: a comma inside braces is
    /// the glob's own).
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub include: Option<String>,
    /// Comma-separated globs a file must not match.
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub exclude: Option<String>,
    /// At most this many matching lines (default and ceiling: 10,000).
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub max_results: Option<u32>,
}

/// One line of a search's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SearchLine {
    /// A line that matches, and where in it.
    #[serde(rename_all = "camelCase")]
    Match {
        path: String,
        /// 1-based.
        line: u64,
        text: String,
        /// `[start, end)` character offsets (UTF-16 code units, as the browser counts) of
        /// each match in `text`.
        ranges: Vec<(u32, u32)>,
        /// Where the first match starts in the whole line (UTF-16, 0-based): `text` is cut
        /// around the match when the line is long (minified files), `ranges` are within it.
        column: u32,
        /// `text` is a cut of a longer line.
        clipped: bool,
    },
    /// The search is over: matching lines and files, and whether it stopped at `maxResults`.
    #[serde(rename_all = "camelCase")]
    Done {
        matches: u64,
        files: u64,
        truncated: bool,
        elapsed_ms: u64,
    },
    /// The search could not run or stopped (a bad regular expression, a failed `rg`).
    Error { message: String },
}

/// `GET/PUT /api/users/me/settings`: a person's IDE settings, kept on the server so that they
/// follow the person. Every field is optional: what is not set is the IDE's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// `light`, `dark` or `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub theme: Option<String>,
    /// A CSS font family list for the editor and terminals (at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub font_family: Option<String>,
    /// 8-32 pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub font_size: Option<u8>,
    /// 1-16 columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tab_size: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub word_wrap: Option<bool>,
    /// `default` or `vim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub keymap: Option<String>,
    /// Format a document with its language server when it is saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub format_on_save: Option<bool>,
}

impl Settings {
    /// Why these settings cannot be stored, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let one_of = |field: &str, value: &Option<String>, allowed: &[&str]| {
            value
                .as_deref()
                .filter(|v| !allowed.contains(v))
                .map(|v| format!("{field} must be one of {}, not {v:?}", allowed.join(", ")))
        };
        let within = |field: &str, value: Option<u8>, low: u8, high: u8| {
            value
                .filter(|v| !(low..=high).contains(v))
                .map(|v| format!("{field} must be {low}-{high}, not {v}"))
        };
        one_of("theme", &self.theme, &["light", "dark", "system"])
            .or_else(|| one_of("keymap", &self.keymap, &["default", "vim"]))
            .or_else(|| within("fontSize", self.font_size, 8, 32))
            .or_else(|| within("tabSize", self.tab_size, 1, 16))
            .or_else(|| {
                self.font_family
                    .as_deref()
                    .filter(|f| {
                        f.chars().count() > 200
                            || f.chars()
                                .any(|c| c.is_control() || matches!(c, ';' | '{' | '}' | '<' | '>'))
                    })
                    .map(|_| {
                        "fontFamily must be at most 200 characters of a CSS font list".to_string()
                    })
            })
    }
}

/// `GET /api/workspaces/{id}/git/status`: the workspace's repository as `git status` sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GitStatus {
    /// Whether the workspace root is (inside) a git repository.
    pub repository: bool,
    /// The branch checked out; `None` when detached or before the first commit's branch exists.
    pub branch: Option<String>,
    pub upstream: Option<String>,
    pub ahead: u32,
    pub behind: u32,
    pub files: Vec<GitFile>,
    /// Local branches.
    pub branches: Vec<String>,
}

/// A changed path: its state in the index and in the working tree, as `git status` letters
/// (`M` modified, `A` added, `D` deleted, `R` renamed, `?` untracked, `.` unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GitFile {
    pub path: String,
    pub index: String,
    pub worktree: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub renamed_from: Option<String>,
}

/// The query of `GET /api/workspaces/{id}/git/show`: a file as it is in `HEAD` or in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitShowQuery {
    pub path: String,
    /// `head` or `index`.
    pub from: String,
}

/// The query of `GET /api/workspaces/{id}/lsp/file`: a file outside the workspace that a
/// language server points at (a library's source, the standard library's stubs), by its
/// absolute path as the workspace's programs see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutsideFileQuery {
    pub path: String,
}

/// The answer of `GET .../lsp/file`: the file's text, read in the workspace's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct OutsideFile {
    pub path: String,
    pub content: String,
}

/// The answer of `GET .../git/show`: the text, or `None` where the file is not (new, deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GitShown {
    pub content: Option<String>,
}

/// `POST /api/workspaces/{id}/git`: one git operation, run by the real `git` in the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "op", rename_all = "camelCase")]
// Refused fields stay refused; ts-rs (tests only) cannot read the attribute on a tagged enum.
#[cfg_attr(not(test), serde(deny_unknown_fields))]
pub enum GitRequest {
    /// `git init` in the workspace root.
    Init,
    Stage {
        paths: Vec<String>,
    },
    Unstage {
        paths: Vec<String>,
    },
    /// Throws away the working tree's changes to tracked paths (untracked ones are deleted).
    Discard {
        paths: Vec<String>,
    },
    /// Puts `content` in the index as `path` (what staging one hunk comes to).
    SetIndex {
        path: String,
        content: String,
    },
    Commit {
        message: String,
    },
    /// `git switch` (`create`: `git switch -c`).
    Switch {
        branch: String,
        create: bool,
    },
    Pull,
    Push,
    /// Stores a credential in the workspace's own git credential store (`~/.git-credentials`,
    /// never in cove's database) and makes git use it.
    Credentials {
        url: String,
        username: String,
        password: String,
    },
}

/// What a git operation said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct GitReply {
    pub ok: bool,
    /// git's output (stdout then stderr), at most 64 KiB.
    pub output: String,
    /// The push or pull failed for want of a credential: the IDE asks for one.
    pub needs_credentials: bool,
}
