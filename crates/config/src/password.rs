//! The admin password of `--auth password`: which source wins, the check of an Argon2 hash,
//! and a new random password when there is none.

use crate::Source;
use std::fmt;

/// A secret from the settings (a password, a password hash). Its `Debug` and `Display`
/// print `********`, so a secret never reaches a log or `--print-config` by accident; the
/// value is read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself: for the code that checks a password or signs a request, and
    /// nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("it is empty".into());
        }
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// The password people sign in with, as the settings give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSetting {
    /// The password itself (from `--password`, `$PASSWORD`, the config file, or generated).
    Plain(Secret),
    /// An Argon2 hash in PHC form (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), checked to
    /// parse, not verified against anything. code-server's `$argon2i$` hashes are accepted.
    Hashed(Secret),
}

/// The password setting and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPassword {
    /// The password or its hash.
    pub setting: PasswordSetting,
    /// `--password`, `$PASSWORD`, `$HASHED_PASSWORD`, the config file, or
    /// [`Source::Generated`].
    pub source: Source,
}

impl AdminPassword {
    /// The line cove prints at start: where the password is, never the password.
    pub fn describe(&self) -> String {
        let what = match self.setting {
            PasswordSetting::Plain(_) => "Password",
            PasswordSetting::Hashed(_) => "Password hash",
        };
        match &self.source {
            Source::File(path) | Source::Generated(path) => {
                format!("{what} is in {}", path.display())
            }
            other => format!("{what} is from {other}"),
        }
    }
}

/// Checks that `hash` is an Argon2 hash in PHC form that a verifier could use; the error
/// says what is wrong without repeating the value.
pub(crate) fn check_hash(hash: &str) -> Result<(), String> {
    use argon2::password_hash::phc::PasswordHash;
    const FORM: &str = "an Argon2 hash in PHC form, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` \
                        (`echo -n PASSWORD | argon2 SALT -id -e` makes one)";
    let parsed = PasswordHash::new(hash).map_err(|e| format!("it is not {FORM}: {e}"))?;
    argon2::Algorithm::try_from(parsed.algorithm.as_str()).map_err(|_| {
        format!(
            "`{}` is not an Argon2 variant (argon2i, argon2d, argon2id); it must be {FORM}",
            parsed.algorithm
        )
    })?;
    argon2::Params::try_from(&parsed)
        .map_err(|e| format!("its Argon2 parameters are not usable ({e}); it must be {FORM}"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(format!("it has no salt or no hash; it must be {FORM}"));
    }
    Ok(())
}

/// Characters of a generated password: URL-safe, so it can be typed, pasted into a URL
/// or a YAML string without escaping. 64 of them, so each takes exactly 6 random bits.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Length of a generated password: 24 characters, 144 bits from the OS's random source.
pub(crate) const GENERATED_LEN: usize = 24;

/// A new random password.
pub(crate) fn generate() -> Result<Secret, getrandom::Error> {
    let mut bytes = [0u8; GENERATED_LEN];
    getrandom::fill(&mut bytes)?;
    Ok(Secret(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
            .collect(),
    ))
}
