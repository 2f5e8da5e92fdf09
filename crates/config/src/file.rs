//! The config file: where it is, reading it into a [`Layer`] of flag values, and adding a
//! generated password to it.
//!
//! Every key is a long flag of `cove serve` without its `--`; its value goes through the
//! flag's own parser, so the file accepts exactly what the command line accepts. A scalar is
//! read as the text written (`password: 0123` is `0123`, not 83), a list only where the flag
//! repeats (`allowed-host`, `allow-egress`), and `key:` with no value leaves the setting to
//! its default.

use crate::layers::{Given, Layer};
use crate::{Error, Source};
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::Path;

/// Keys that only make sense on the command line.
const NOT_IN_FILE: &[&str] = &["config", "print-config"];

/// A key's value as written in the file.
#[derive(Debug, PartialEq)]
enum Value {
    /// `key:` or `key: ~`.
    Null,
    One(String),
    Many(Vec<String>),
}

/// Reads the file at `path` into a layer, or `None` if there is no such file. `cmd` is
/// `cove serve`'s command (without environment variables), whose flags are the keys.
pub(crate) fn read(path: &Path, cmd: &clap::Command) -> Result<Option<Layer>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::ReadFile {
                path: path.to_owned(),
                source: e,
            });
        }
    };
    parse(&text, path, cmd).map(Some)
}

/// The flag values of a config file's text.
pub(crate) fn parse(text: &str, path: &Path, cmd: &clap::Command) -> Result<Layer, Error> {
    let known: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let lists: Vec<String> = cmd
        .get_arguments()
        .filter(|a| matches!(a.get_action(), clap::ArgAction::Append))
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    // No source snippet in errors: the line might be the password's.
    let options = serde_saphyr::options! { with_snippet: false };
    let entries = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        de::Deserializer::deserialize_option(
            de,
            Root {
                known: &known,
                lists: &lists,
            },
        )
    })
    .map_err(|e| Error::Yaml {
        path: path.to_owned(),
        message: e.to_string(),
    })?;

    let mut unknown = Vec::new();
    let mut values = BTreeMap::new();
    for (key, value) in entries {
        let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(&key)) else {
            unknown.push(key);
            continue;
        };
        if NOT_IN_FILE.contains(&key.as_str()) {
            return Err(Error::NotInFile {
                path: path.to_owned(),
                key,
            });
        }
        let texts = match value {
            Value::Null => continue,
            Value::One(text) => vec![text],
            Value::Many(texts) => texts,
        };
        for text in &texts {
            check_value(cmd, &key, text).map_err(|message| Error::BadValue {
                path: path.to_owned(),
                key: key.clone(),
                message,
            })?;
        }
        values.insert(
            arg.get_id().to_string(),
            Given {
                source: Source::File(path.to_owned()),
                values: texts.into_iter().map(OsString::from).collect(),
            },
        );
    }
    if !unknown.is_empty() {
        let known: Vec<&str> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|k| !NOT_IN_FILE.contains(k))
            .collect();
        return Err(Error::UnknownKeys {
            path: path.to_owned(),
            keys: unknown
                .iter()
                .map(|key| {
                    let line = match line_of(text, key) {
                        Some(line) => format!("line {line}"),
                        None => "a nested key".to_owned(),
                    };
                    match closest(key, &known) {
                        Some(near) => format!("`{key}` ({line}; did you mean `{near}`?)"),
                        None => format!("`{key}` ({line})"),
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(Layer(values))
}

/// The line (from 1) where the top-level `key:` is written, plain or quoted. The parser
/// gives no position for a key it read well, and the settings are one flat mapping, so the
/// first unindented line that starts with the key is the one.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|written| {
                    line.strip_prefix(written.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
        })
        .map(|index| index + 1)
}

/// Runs one value through its flag's parser; the error is clap's, on one line.
pub(crate) fn check_value(cmd: &clap::Command, key: &str, text: &str) -> Result<(), String> {
    match cmd
        .clone()
        .try_get_matches_from(["serve".to_owned(), format!("--{key}={text}")])
    {
        Ok(_) => Ok(()),
        Err(e) => Err(one_line(&e)),
    }
}

/// A clap error without its `error:` prefix and its pointer to `--help`.
pub(crate) fn one_line(e: &clap::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The known key nearest to a misspelt one, if it is near enough to be the one meant.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let above = row[j + 1];
                row[j + 1] = (above + 1)
                    .min(row[j] + 1)
                    .min(diagonal + usize::from(ca != *cb));
                diagonal = above;
            }
        }
        row[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(&key.replace('_', "-"), k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// The document: a mapping of keys to values, or nothing at all (an empty file).
struct Root<'a> {
    /// Every key, lists included.
    known: &'a [String],
    /// The keys whose flags repeat.
    lists: &'a [String],
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of settings (`key: value` lines)")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if self.lists.contains(&key) {
                map.next_value_seed(ListValue)?
            } else if self.known.contains(&key) {
                map.next_value_seed(ScalarValue)?
            } else {
                // Refused after reading, with every other unknown key.
                map.next_value::<IgnoredAny>()?;
                Value::Null
            };
            entries.push((key, value));
        }
        Ok(entries)
    }
}

/// A single value: the scalar's text as written, or nothing.
struct ScalarValue;

impl<'de> DeserializeSeed<'de> for ScalarValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Ok(match Option::<String>::deserialize(d)? {
            Some(text) => Value::One(text),
            None => Value::Null,
        })
    }
}

/// A list, or a single value standing for a list of one.
struct ListValue;

impl<'de> DeserializeSeed<'de> for ListValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or a list of values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::One(v.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::One(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::One(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::One(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::One(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item);
        }
        Ok(Value::Many(items))
    }
}

/// Adds `password: "<secret>"` to the config file at `path`, keeping whatever else it
/// holds (comments included), or creates the file (and its folder) with it. The file ends
/// up with mode 0600. The new text is read back before it is written, so a file this
/// cannot extend (a flow mapping, an empty `password:` key) is left untouched and reported.
pub(crate) fn add_password(
    path: &Path,
    secret: &crate::Secret,
    cmd: &clap::Command,
) -> Result<(), Error> {
    let write_error = |source: std::io::Error| Error::WritePassword {
        path: path.to_owned(),
        source,
    };
    let line = format!("password: \"{}\"\n", secret.expose());
    let text = match std::fs::read_to_string(path) {
        Ok(mut text) => {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text + &line
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "# Settings of `cove serve`: each key is one of its long flags (see `cove serve --help`).\n\
             # Environment variables (COVE_*, PASSWORD, HASHED_PASSWORD) and flags win over this file.\n\
             # bind-addr: 127.0.0.1:8080\n\
             # auth: password\n\
             # cert: false\n\
             {line}"
        ),
        Err(e) => return Err(write_error(e)),
    };
    let added = parse(&text, path, cmd)
        .ok()
        .and_then(|layer| layer.get("password").map(|given| given.values.clone()));
    if added.as_deref() != Some(&[OsString::from(secret.expose())]) {
        return Err(Error::CannotAddPassword {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(write_error)?;
    // Written beside the file and renamed over it: the file is never half-written, and the
    // password is never in a file with wider permissions.
    crate::self_signed::write(path, text.as_bytes(), 0o600).map_err(write_error)
}
