//! How the workspace's programs are started: the shell, a clean environment, the working
//! directory, the CPU group they join, and a session of their own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

use crate::error::Error;
use crate::{Limits, stopping};

/// How programs are started in this workspace: shell, environment, working directory.
#[derive(Debug)]
pub(crate) struct Launch {
    pub(crate) root: PathBuf,
    pub(crate) program_cgroup: Option<std::ffi::CString>,
    pub(crate) home: PathBuf,
    pub(crate) shell: String,
    pub(crate) workspace_id: String,
    pub(crate) limits: Limits,
}

impl Launch {
    /// A `cwd` from a client: relative to the workspace root, absolute as it is.
    fn cwd(&self, cwd: Option<&str>) -> Result<PathBuf, Error> {
        let path = match cwd {
            None | Some("") => return Ok(self.root.clone()),
            Some(c) if c.contains('\0') => {
                return Err(Error::BadRequest("cwd must not contain NUL bytes".into()));
            }
            Some(c) if c.starts_with('/') => PathBuf::from(c),
            Some(c) => self.root.join(c),
        };
        if !path.is_dir() {
            return Err(Error::BadRequest(format!(
                "cwd {:?} is not a directory",
                cwd.unwrap_or_default()
            )));
        }
        Ok(path)
    }

    /// The complete environment of a new program: a clean base plus the client's variables,
    /// and last the program's marker (see `stopping`), which a client cannot replace.
    fn env(
        &self,
        extra: &[(String, String)],
        id_var: (&str, &str),
        marker: &str,
    ) -> Result<Vec<(OsString, OsString)>, Error> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
        let user = std::env::var("USER").unwrap_or_else(|_| "cove".into());
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), self.home.to_string_lossy().into_owned()),
            ("USER".into(), user),
            ("SHELL".into(), self.shell.clone()),
            ("LANG".into(), lang),
            ("TERM".into(), "xterm-256color".into()),
            ("COLORTERM".into(), "truecolor".into()),
            ("COVE_WORKSPACE_ID".into(), self.workspace_id.clone()),
            (id_var.0.into(), id_var.1.into()),
        ];
        for (key, value) in extra {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                return Err(Error::BadRequest(format!(
                    "bad environment variable {key:?}: names must be non-empty without = or NUL"
                )));
            }
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        env.retain(|(k, _)| k != stopping::MARKER_VAR);
        env.push((stopping::MARKER_VAR.into(), marker.into()));
        Ok(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    pub(crate) fn pty_spawn(
        &self,
        command: Option<&str>,
        cwd: Option<&str>,
        env: &[(String, String)],
        size: cove_pty::Size,
        terminal_id: &str,
        marker: &str,
    ) -> Result<cove_pty::Spawn, Error> {
        let (program, args, arg0) = match command {
            None => {
                // A login shell, as ssh and code-server start one: argv[0] = "-bash".
                let name = self.shell.rsplit('/').next().unwrap_or("sh");
                (
                    self.shell.clone(),
                    vec![],
                    Some(OsString::from(format!("-{name}"))),
                )
            }
            Some(line) => (
                "/bin/bash".to_string(),
                vec!["-c".into(), OsString::from(line)],
                None,
            ),
        };
        Ok(cove_pty::Spawn {
            program: program.into(),
            args,
            arg0,
            cwd: self.cwd(cwd)?,
            env: self.env(env, ("COVE_TERMINAL_ID", terminal_id), marker)?,
            size,
            cgroup_procs: self.program_cgroup.clone(),
        })
    }

    /// A command for `run_command`: the program and args as given, or a shell command line
    /// when no args are given. The child leads its own session, so it can be stopped as a group.
    pub(crate) fn command(
        &self,
        command: &str,
        args: Option<&[String]>,
        cwd: Option<&str>,
        env: &[(String, String)],
        process_id: &str,
        marker: &str,
    ) -> Result<tokio::process::Command, Error> {
        let mut cmd = match args {
            Some(args) => {
                let mut cmd = std::process::Command::new(command);
                cmd.args(args);
                cmd
            }
            None => {
                let mut cmd = std::process::Command::new("/bin/bash");
                cmd.arg("-c").arg(command);
                cmd
            }
        };
        let env = self.env(env, ("COVE_PROCESS_ID", process_id), marker)?;
        cmd.current_dir(self.cwd(cwd)?).env_clear().envs(env);
        let cgroup = self.program_cgroup.clone();
        // SAFETY: open/write (join_cgroup), setsid and prctl are async-signal-safe and touch
        // only the child's own state.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(path) = &cgroup {
                    cove_pty::join_cgroup(path)?;
                }
                rustix::process::setsid()?;
                // A runner that dies (even by SIGKILL) takes its processes with it.
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))?;
                Ok(())
            });
        }
        Ok(tokio::process::Command::from(cmd))
    }
}
