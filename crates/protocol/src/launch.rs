//! How a backend starts a runner: one typed description, handed as JSON to `cove runner
//! --spec` (and, sandboxed, to `cove sandbox-init --spec`, which starts the runner with its
//! part). Every limit and default a runner starts with is here and nowhere else.

use serde::{Deserialize, Serialize};

/// What one runner serves, and within which limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunnerSpec {
    pub workspace_id: String,
    /// The workspace's files as the runner sees them (`/workspace` in a sandbox).
    pub root: String,
    /// An inherited descriptor of a bound Unix socket the runner listens on.
    pub listen_fd: i32,
    pub limits: RunnerLimits,
    /// A `cgroup.procs` file each program joins before it runs (cgroup v1, where the CPU
    /// group is delegated and the runner itself stays out of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_cgroup: Option<String>,
}

/// What clients of one runner may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunnerLimits {
    /// Output kept per terminal and per process, in bytes.
    pub scrollback_bytes: u64,
    /// Largest file read or written whole through the API.
    pub max_file_bytes: u64,
    /// Largest control-socket message.
    pub max_message_bytes: u64,
    pub max_terminals: u32,
    pub max_processes: u32,
    /// Storage the workspace's files may take, enforced on API writes (none: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_limit_bytes: Option<u64>,
}

impl RunnerLimits {
    pub const DEFAULT: RunnerLimits = RunnerLimits {
        scrollback_bytes: 1024 * 1024,
        max_file_bytes: 8 * 1024 * 1024,
        max_message_bytes: 16 * 1024 * 1024,
        max_terminals: 64,
        max_processes: 64,
        disk_limit_bytes: None,
    };
}

impl Default for RunnerLimits {
    fn default() -> RunnerLimits {
        RunnerLimits::DEFAULT
    }
}

/// What confines one runner: handed to `cove sandbox-init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxSpec {
    /// Names the cgroups (`cove-<name>`) and the host name.
    pub name: String,
    /// The workspace's files on the host, mounted at `/workspace`.
    pub workspace_dir: String,
    /// An ext4 image holding them, mounted for the sandbox's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_image: Option<String>,
    /// The storage limit: an image made for a smaller one is grown (0: keep its size).
    pub disk_limit_bytes: u64,
    /// Where the runner's output goes on the host (capped and rotated).
    pub log_file: String,
    /// An empty host directory for the new root.
    pub root_dir: String,
    pub uid: u32,
    pub gid: u32,
    pub limits: SandboxLimits,
    /// Size of the private `/tmp`, in bytes.
    pub tmp_bytes: u64,
    pub network: NetworkSpec,
    /// The runner it starts.
    pub runner: RunnerSpec,
}

/// cgroup limits of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxLimits {
    pub memory_bytes: u64,
    /// Thousandths of a core (500 = half a core).
    pub cpu_millis: u64,
    pub pids: u64,
}

impl SandboxLimits {
    pub const DEFAULT: SandboxLimits = SandboxLimits {
        memory_bytes: 512 * 1024 * 1024,
        cpu_millis: 500,
        pids: 512,
    };
}

impl Default for SandboxLimits {
    fn default() -> SandboxLimits {
        SandboxLimits::DEFAULT
    }
}

/// How a sandbox reaches the outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase", deny_unknown_fields)]
pub enum NetworkSpec {
    /// Only its own loopback.
    Loopback,
    /// Outbound connections through this slirp4netns, to public addresses and the ranges
    /// in `allow` (CIDR).
    #[serde(rename_all = "camelCase")]
    Outbound {
        slirp4netns: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        allow: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_survives_the_trip_and_refuses_what_it_does_not_know() {
        let runner = RunnerSpec {
            workspace_id: "ws".into(),
            root: "/workspace".into(),
            listen_fd: 7,
            limits: RunnerLimits {
                disk_limit_bytes: Some(1 << 30),
                ..RunnerLimits::DEFAULT
            },
            program_cgroup: Some("/sys/fs/cgroup/cpu/cgroup.procs".into()),
        };
        let sandbox = SandboxSpec {
            name: "ws".into(),
            workspace_dir: "/data/workspaces/ws".into(),
            workspace_image: None,
            disk_limit_bytes: 0,
            log_file: "/data/logs/ws.log".into(),
            root_dir: "/data/run/ws.root".into(),
            uid: 200_001,
            gid: 200_001,
            limits: SandboxLimits::DEFAULT,
            tmp_bytes: 1 << 28,
            network: NetworkSpec::Outbound {
                slirp4netns: "/usr/bin/slirp4netns".into(),
                allow: vec!["10.1.0.0/16".into()],
            },
            runner,
        };
        let json = serde_json::to_string(&sandbox).unwrap();
        assert_eq!(serde_json::from_str::<SandboxSpec>(&json).unwrap(), sandbox);
        assert!(json.contains(r#""network":{"mode":"outbound""#), "{json}");
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["runner"]["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<SandboxSpec>(value).is_err());
    }
}
