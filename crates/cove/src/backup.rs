//! `cove backup DIR` and `cove restore DIR`: a data dir's database and object store, copied
//! out while the server may run, and into a new data dir (`cove_server::backup`).

use std::path::PathBuf;

/// Where the data is.
#[derive(Debug, clap::Args)]
pub(crate) struct Place {
    /// The server's data dir [default: $XDG_DATA_HOME/cove or ~/.local/share/cove].
    #[arg(long, env = "COVE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The server's database when it is not the data dir's SQLite file (PostgreSQL is backed
    /// up with pg_dump; this command then says so).
    #[arg(long, env = "COVE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BackupArgs {
    /// An empty (or new) directory to write the backup into.
    to: PathBuf,
    #[command(flatten)]
    place: Place,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    /// A directory `cove backup` wrote.
    from: PathBuf,
    /// The data dir to restore into: it must have no database yet, and no server running.
    #[arg(long, env = "COVE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

fn data_dir(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(dir) => dir.clone(),
        None => cove_config::Dirs::from_env().data_dir()?,
    })
}

fn print(report: &cove_server::BackupReport, verb: &str) {
    println!(
        "{verb} the database ({}) and {} objects ({:.1} MB)",
        report.database.display(),
        report.objects,
        report.object_bytes as f64 / 1e6
    );
    if !report.included.is_empty() {
        println!(
            "workspaces with their files (hibernated): {}",
            report.included.join(", ")
        );
    }
    if !report.not_included.is_empty() {
        println!(
            "workspaces whose files stay on the original machine (hibernate them first to include them): {}",
            report.not_included.join(", ")
        );
    }
}

pub(crate) async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let dir = data_dir(&args.place.data_dir)?;
    let store = match &args.place.database_url {
        Some(url) => cove_server::Store::parse(url)?,
        None => {
            anyhow::ensure!(
                dir.join("cove.db").exists(),
                "no cove database in {} (pass --data-dir)",
                dir.display()
            );
            cove_server::Store::in_data_dir(&dir)
        }
    };
    let report = cove_server::backup(&store, &dir, &args.to).await?;
    print(&report, "backed up");
    Ok(())
}

pub(crate) async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let dir = data_dir(&args.data_dir)?;
    let report = cove_server::restore(&args.from, &dir).await?;
    print(&report, "restored");
    Ok(())
}
