//! How this host confines runners: the sandbox's limits, disk images and network, decided
//! once at start from the host's abilities and the server's flags.

use std::path::PathBuf;

use cove_backend::{BackendError, MIN_CPU_MILLIS, MIN_MEMORY_BYTES, MIN_PIDS};
use cove_protocol::launch::{NetworkSpec, SandboxLimits};

/// How sandboxed runners are confined.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// The server's cgroup limits: every workspace's defaults and ceilings.
    pub limits: SandboxLimits,
    /// Size of each workspace's private /tmp.
    pub tmp_bytes: u64,
    /// New workspaces get a disk image of their storage limit (a hard limit on every write).
    pub disk_images: bool,
    pub network: NetworkSpec,
}

impl SandboxSettings {
    /// Checks that this host can run sandboxes and that the server's limits are ones a
    /// shell can live within, finds out whether workspaces can have disk images, and says
    /// what it decided in the log.
    pub fn for_this_host(
        limits: SandboxLimits,
        tmp_bytes: u64,
        disk_limit_bytes: u64,
        network: NetworkSpec,
    ) -> Result<SandboxSettings, BackendError> {
        let cgroups =
            cove_sandbox::check_host().map_err(|e| BackendError::Storage(e.to_string()))?;
        if limits.memory_bytes < MIN_MEMORY_BYTES
            || limits.cpu_millis < MIN_CPU_MILLIS
            || limits.pids < MIN_PIDS
        {
            return Err(BackendError::BadLimits(format!(
                "the server's limits must be at least {} MiB of memory, {} processes and {} of a core",
                MIN_MEMORY_BYTES >> 20,
                MIN_PIDS,
                MIN_CPU_MILLIS as f64 / 1000.0
            )));
        }
        tracing::info!(
            ?cgroups,
            memory_mib = limits.memory_bytes >> 20,
            cpu = limits.cpu_millis as f64 / 1000.0,
            pids = limits.pids,
            "workspaces are sandboxed"
        );
        let disk_images = match cove_sandbox::disk::probe() {
            Ok(mke2fs) => {
                tracing::info!(
                    disk_mib = disk_limit_bytes >> 20,
                    mke2fs = %mke2fs.display(),
                    "each new workspace gets a disk image of its storage limit"
                );
                true
            }
            Err(why) => {
                tracing::warn!("storage limits hold only for API writes, not for programs: {why}");
                false
            }
        };
        Ok(SandboxSettings {
            limits,
            tmp_bytes,
            disk_images,
            network,
        })
    }
}

/// What the server lets workspaces reach, as a person chose it (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkChoice {
    /// Outbound when slirp4netns is installed and cove listens on loopback only.
    Auto,
    /// Only each workspace's own loopback.
    None,
    /// Outbound to public addresses (and `--allow-egress` ranges) through slirp4netns.
    Outbound,
}

/// Decides the workspaces' network from the choice, where cove listens and whether
/// slirp4netns is installed; says why in the log. Allowed ranges must parse as CIDR.
pub fn choose_network(
    choice: NetworkChoice,
    bind: std::net::SocketAddr,
    slirp4netns: Option<PathBuf>,
    allow: &[String],
) -> Result<NetworkSpec, BackendError> {
    for range in allow {
        range
            .parse::<cove_sandbox::egress::Ipv4Net>()
            .map_err(|e| BackendError::BadLimits(format!("--allow-egress {range}: {e}")))?;
    }
    let outbound = |slirp4netns: PathBuf| NetworkSpec::Outbound {
        slirp4netns: slirp4netns.to_string_lossy().into_owned(),
        allow: allow.to_vec(),
    };
    let network = match (choice, slirp4netns) {
        (NetworkChoice::None, _) => NetworkSpec::Loopback,
        (NetworkChoice::Outbound, None) => {
            return Err(BackendError::BadLimits(
                "--network outbound needs slirp4netns, which is not installed (apt-get install slirp4netns)".into(),
            ));
        }
        (NetworkChoice::Outbound, Some(slirp4netns)) => {
            if !bind.ip().is_loopback() {
                tracing::warn!(
                    %bind,
                    "--network outbound with a non-loopback listen address: workspaces cannot reach the host's addresses (prohibited routes), but mind what else listens on this network"
                );
            }
            outbound(slirp4netns)
        }
        (NetworkChoice::Auto, None) => {
            tracing::info!(
                "workspaces have no outbound network: slirp4netns is not installed (apt-get install slirp4netns, or --network none to silence this)"
            );
            NetworkSpec::Loopback
        }
        (NetworkChoice::Auto, Some(_)) if !bind.ip().is_loopback() => {
            tracing::info!(
                %bind,
                "workspaces have no outbound network: cove listens beyond loopback (--network outbound to choose otherwise)"
            );
            NetworkSpec::Loopback
        }
        (NetworkChoice::Auto, Some(slirp4netns)) => outbound(slirp4netns),
    };
    if let NetworkSpec::Outbound { slirp4netns, allow } = &network {
        tracing::info!(%slirp4netns, ?allow, "workspaces have outbound network to public addresses; the host's addresses and private ranges are closed to them");
    }
    Ok(network)
}

#[cfg(test)]
mod network_tests {
    use super::*;

    #[test]
    fn auto_gives_outbound_network_only_on_loopback_with_slirp4netns() {
        let slirp = Some(PathBuf::from("/usr/bin/slirp4netns"));
        let (lo, any): (std::net::SocketAddr, std::net::SocketAddr) = (
            "127.0.0.1:8080".parse().unwrap(),
            "0.0.0.0:8080".parse().unwrap(),
        );
        let outbound = NetworkSpec::Outbound {
            slirp4netns: "/usr/bin/slirp4netns".into(),
            allow: vec![],
        };
        let pick = |choice, bind, slirp: &Option<PathBuf>| {
            choose_network(choice, bind, slirp.clone(), &[])
        };
        assert_eq!(pick(NetworkChoice::Auto, lo, &slirp).unwrap(), outbound);
        assert_eq!(
            pick(NetworkChoice::Auto, any, &slirp).unwrap(),
            NetworkSpec::Loopback
        );
        assert_eq!(
            pick(NetworkChoice::Auto, lo, &None).unwrap(),
            NetworkSpec::Loopback
        );
        assert_eq!(
            pick(NetworkChoice::None, lo, &slirp).unwrap(),
            NetworkSpec::Loopback
        );
        assert_eq!(
            pick(NetworkChoice::Outbound, any, &slirp).unwrap(),
            outbound
        );
        let missing = pick(NetworkChoice::Outbound, lo, &None).unwrap_err();
        assert!(missing.to_string().contains("apt-get install slirp4netns"));
        let bad = choose_network(NetworkChoice::Auto, lo, slirp, &["10.0.0.0/33".into()]);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("--allow-egress 10.0.0.0/33")
        );
    }
}
