//! `cove user`, `cove token` and `cove audit`: accounts of a data dir from the command line,
//! while the server runs or not (the operations are `cove_server::AccountsAdmin`'s).

use anyhow::Context as _;
use clap::Subcommand;
use cove_protocol::accounts::{AuditQuery, CreateToken, CreateUser, Role, UpdateUser};
use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;

/// Where the accounts are.
#[derive(Debug, clap::Args)]
pub(crate) struct DataDir {
    /// The server's data dir [default: $XDG_DATA_HOME/cove or ~/.local/share/cove].
    #[arg(long, env = "COVE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The server's database when it is not the data dir's SQLite file, e.g.
    /// `postgres://cove@db.internal/cove` (as `cove serve --database-url`).
    #[arg(long, env = "COVE_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    data: DataDir,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Make a user. The password is read from standard input when it is not a terminal,
    /// else a random one is made and printed once.
    Add {
        username: String,
        /// `admin`, `user` or `viewer`.
        #[arg(long, default_value = "user", value_parser = parse_role)]
        role: Role,
        /// Shorthand for --role admin.
        #[arg(long, conflicts_with = "role")]
        admin: bool,
    },
    /// List users: username, role, whether disabled, when made.
    List,
    /// Remove a user (their sessions and tokens end; refused while they own workspaces).
    Remove { username: String },
    /// Set a user's password (read from standard input, or made and printed); their other
    /// sessions end.
    Passwd { username: String },
    /// Change a user's role.
    Role {
        username: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Disable a user: their sessions and tokens stop working.
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    data: DataDir,
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Make an API token (`Authorization: Bearer <token>`); the token is printed once.
    Create {
        /// What it is for, e.g. `ci`.
        name: String,
        /// Whose token it is [default: the first administrator].
        #[arg(long)]
        user: Option<String>,
        /// Days until it expires [default: never].
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    data: DataDir,
    /// Only this user's entries.
    #[arg(long)]
    user: Option<String>,
    /// Only this action (`login`, `user.create`, `socket.refused`...).
    #[arg(long)]
    action: Option<String>,
    /// At most this many entries (newest first; at most 500).
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role: admin, user or viewer"))
}

async fn open(data: &DataDir) -> anyhow::Result<cove_server::AccountsAdmin> {
    let store = match &data.database_url {
        Some(url) => cove_server::Store::parse(url)?,
        None => {
            let dir = match &data.data_dir {
                Some(dir) => dir.clone(),
                None => cove_config::Dirs::from_env().data_dir()?,
            };
            if !dir.join("cove.db").exists() {
                anyhow::bail!(
                    "no cove database in {} (start `cove serve` once, or pass --data-dir)",
                    dir.display()
                );
            }
            cove_server::Store::in_data_dir(&dir)
        }
    };
    cove_server::AccountsAdmin::open(&store)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.reply.message))
}

/// The server's words for a refusal, as the command's error.
fn refused(e: cove_server::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.reply.message)
}

/// A password from standard input (its first line) when that is not a terminal, else a new
/// random one, printed.
fn password_for(username: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("read the password")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if !password.is_empty() {
            return Ok(password);
        }
    }
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let password: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % 64] as char)
        .collect();
    println!("password for {username}: {password}");
    Ok(password)
}

pub(crate) async fn user(args: UserArgs) -> anyhow::Result<()> {
    let admin = open(&args.data).await?;
    match args.action {
        UserAction::Add {
            username,
            role,
            admin: as_admin,
        } => {
            let password = password_for(&username)?;
            let role = if as_admin { Role::Admin } else { role };
            let user = admin
                .create_user(&CreateUser {
                    username,
                    password,
                    role,
                })
                .await
                .map_err(refused)?;
            println!("made {} ({})", user.username, user.role);
        }
        UserAction::List => {
            for user in admin.list_users().await.map_err(refused)? {
                let disabled = if user.disabled { "  disabled" } else { "" };
                println!(
                    "{:<24} {:<7} {}{disabled}",
                    user.username, user.role, user.created_at
                );
            }
        }
        UserAction::Remove { username } => {
            admin.delete_user(&username).await.map_err(refused)?;
            println!("removed {username}");
        }
        UserAction::Passwd { username } => {
            let password = password_for(&username)?;
            let change = UpdateUser {
                password: Some(password),
                ..UpdateUser::default()
            };
            admin
                .update_user(&username, &change)
                .await
                .map_err(refused)?;
            println!("changed the password of {username}; their other sessions ended");
        }
        UserAction::Role { username, role } => {
            let change = UpdateUser {
                role: Some(role),
                ..UpdateUser::default()
            };
            let user = admin
                .update_user(&username, &change)
                .await
                .map_err(refused)?;
            println!("{} is now {}", user.username, user.role);
        }
        UserAction::Disable { username } => {
            let change = UpdateUser {
                disabled: Some(true),
                ..UpdateUser::default()
            };
            admin
                .update_user(&username, &change)
                .await
                .map_err(refused)?;
            println!("disabled {username}");
        }
        UserAction::Enable { username } => {
            let change = UpdateUser {
                disabled: Some(false),
                ..UpdateUser::default()
            };
            admin
                .update_user(&username, &change)
                .await
                .map_err(refused)?;
            println!("enabled {username}");
        }
    }
    admin.close().await;
    Ok(())
}

pub(crate) async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let admin = open(&args.data).await?;
    match args.action {
        TokenAction::Create { name, user, days } => {
            let owner = user.unwrap_or_else(|| "admin".into());
            let created = admin
                .create_token(
                    &owner,
                    &CreateToken {
                        name,
                        expires_in_days: days,
                    },
                )
                .await
                .map_err(refused)?;
            // The secret alone on stdout, for `TOKEN=$(cove token create ...)`.
            eprintln!(
                "token {:?} of {owner} (id {}), expires {}; it is not shown again",
                created.name,
                created.id,
                created.expires_at.as_deref().unwrap_or("never")
            );
            println!("{}", created.token);
        }
    }
    admin.close().await;
    Ok(())
}

pub(crate) async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let admin = open(&args.data).await?;
    let query = AuditQuery {
        user: args.user,
        action: args.action,
        limit: Some(args.limit),
        ..AuditQuery::default()
    };
    let (entries, _) = admin.audit(&query).await.map_err(refused)?;
    for e in entries {
        println!(
            "{} {:<16} {:<8} {:<18} {} {}{}",
            e.at,
            if e.user.is_empty() { "-" } else { &e.user },
            if e.outcome == cove_protocol::accounts::Outcome::Success {
                "ok"
            } else {
                "refused"
            },
            e.action,
            e.target,
            if e.address.is_empty() {
                "-"
            } else {
                &e.address
            },
            if e.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.detail)
            },
        );
    }
    admin.close().await;
    Ok(())
}
