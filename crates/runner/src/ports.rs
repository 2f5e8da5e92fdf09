//! Listening TCP ports of the workspace's processes, from `/proc`.
//!
//! A port counts when a process descending from this runner holds a listening socket. That
//! filter matters without a sandbox, where `/proc/net/tcp` shows the whole host; in a sandbox
//! the network namespace already limits it. Ports are polled once a second, and only while at
//! least one client is connected.

use cove_protocol::{PortEvent, PortInfo};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Notice;

const POLL: Duration = Duration::from_secs(1);

/// Every process this one can see: pid -> (parent pid, command name).
fn process_table() -> HashMap<u32, (u32, String)> {
    let mut table = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may itself contain spaces or parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            table.insert(pid, (ppid, stat[open + 1..close].to_string()));
        }
    }
    table
}

/// The pids of this process's descendants, with their command names.
pub(crate) fn descendants() -> Vec<(u32, String)> {
    descendants_in(&process_table())
}

fn descendants_in(table: &HashMap<u32, (u32, String)>) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, (ppid, _)) in table {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![me];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            let name = table
                .get(&child)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            out.push((child, name));
            stack.push(child);
        }
    }
    out
}

/// What a listening port belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    Terminal(String),
    Process(String),
}

/// The workspace's running terminals and processes by the pid each leads.
pub(crate) type Owners = Arc<dyn Fn() -> HashMap<u32, Owner> + Send + Sync>;

/// The terminal or process whose tree holds `pid`, walking up its parents.
fn owner_of(
    pid: u32,
    table: &HashMap<u32, (u32, String)>,
    owners: &HashMap<u32, Owner>,
) -> Option<Owner> {
    let mut at = pid;
    for _ in 0..64 {
        if let Some(owner) = owners.get(&at) {
            return Some(owner.clone());
        }
        at = table.get(&at)?.0;
    }
    None
}

fn parse_address(hex: &str) -> Option<(String, u16)> {
    let (addr, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let address = match addr.len() {
        8 => std::net::Ipv4Addr::from(u32::from_str_radix(addr, 16).ok()?.swap_bytes()).to_string(),
        32 => {
            // Four 32-bit words, each in host (little-endian) order.
            let mut bytes = [0u8; 16];
            for word in 0..4 {
                let w = u32::from_str_radix(&addr[word * 8..word * 8 + 8], 16).ok()?;
                bytes[word * 4..word * 4 + 4].copy_from_slice(&w.swap_bytes().to_be_bytes());
            }
            let ip = std::net::Ipv6Addr::from(bytes);
            match ip.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => ip.to_string(),
            }
        }
        _ => return None,
    };
    Some((address, port))
}

/// Listening sockets from a `/proc/net/tcp{,6}` table: inode -> (address, port).
fn listening(table: &str) -> HashMap<u64, (String, u16)> {
    let mut out = HashMap::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 10 || fields[3] != "0A" {
            continue;
        }
        if let (Some(addr), Ok(inode)) = (parse_address(fields[1]), fields[9].parse::<u64>()) {
            out.insert(inode, addr);
        }
    }
    out
}

/// The workspace's listening ports right now, lowest first, each with the program that
/// listens and the terminal or process it belongs to.
pub(crate) fn scan(owners: &HashMap<u32, Owner>) -> Vec<PortInfo> {
    let mut sockets = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            sockets.extend(listening(&text));
        }
    }
    if sockets.is_empty() {
        return vec![];
    }
    let table = process_table();
    let mut found: BTreeMap<(u16, String), (String, u32)> = BTreeMap::new();
    for (pid, name) in descendants_in(&table) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            else {
                continue;
            };
            if let Some((address, port)) = inode.parse::<u64>().ok().and_then(|i| sockets.get(&i)) {
                found
                    .entry((*port, address.clone()))
                    .or_insert_with(|| (name.clone(), pid));
            }
        }
    }
    found
        .into_iter()
        .map(|((port, address), (process, pid))| {
            let owner = owner_of(pid, &table, owners);
            PortInfo {
                port,
                address,
                process: Some(process),
                process_id: match &owner {
                    Some(Owner::Process(id)) => Some(id.clone()),
                    _ => None,
                },
                terminal_id: match owner {
                    Some(Owner::Terminal(id)) => Some(id),
                    _ => None,
                },
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct State {
    interested: usize,
    stop: Option<CancellationToken>,
}

/// Polls ports while someone listens and broadcasts `port_opened` / `port_closed`.
pub(crate) struct PortScanner {
    state: Arc<Mutex<State>>,
    notices: broadcast::Sender<Notice>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    owners: Owners,
}

impl std::fmt::Debug for PortScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortScanner")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Keeps the poller running while held.
#[derive(Debug)]
pub(crate) struct Interest {
    state: Arc<Mutex<State>>,
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap();
        state.interested -= 1;
        if state.interested == 0
            && let Some(stop) = state.stop.take()
        {
            stop.cancel();
        }
    }
}

impl PortScanner {
    pub(crate) fn new(
        notices: broadcast::Sender<Notice>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
        owners: Owners,
    ) -> PortScanner {
        PortScanner {
            state: Arc::default(),
            notices,
            tasks,
            shutdown,
            owners,
        }
    }

    /// The listening ports now (for `list_ports`).
    pub(crate) async fn scan_now(&self) -> Vec<PortInfo> {
        let owners = (self.owners)();
        tokio::task::spawn_blocking(move || scan(&owners))
            .await
            .unwrap_or_default()
    }

    /// Registers a connected client; the first one starts the poller.
    pub(crate) fn interest(&self) -> Interest {
        let mut state = self.state.lock().unwrap();
        state.interested += 1;
        if state.stop.is_none() {
            let stop = self.shutdown.child_token();
            state.stop = Some(stop.clone());
            self.tasks
                .spawn(poll(self.notices.clone(), self.owners.clone(), stop));
        }
        Interest {
            state: self.state.clone(),
        }
    }
}

fn event(port: &PortInfo) -> PortEvent {
    PortEvent {
        port: port.port,
        address: port.address.clone(),
        process: port.process.clone(),
        process_id: port.process_id.clone(),
        terminal_id: port.terminal_id.clone(),
    }
}

async fn poll(notices: broadcast::Sender<Notice>, owners: Owners, stop: CancellationToken) {
    let mut known: Vec<PortInfo> = Vec::new();
    let mut first = true;
    let key = |p: &PortInfo| (p.port, p.address.clone());
    loop {
        let owned = owners();
        let now: Vec<PortInfo> = match tokio::task::spawn_blocking(move || scan(&owned)).await {
            Ok(ports) => ports,
            Err(_) => return,
        };
        // The first scan sets the baseline: clients learn existing ports from list_ports.
        if !first {
            for port in now
                .iter()
                .filter(|p| !known.iter().any(|k| key(k) == key(p)))
            {
                let _ = notices.send(Notice::PortOpened(event(port)));
            }
            for port in known
                .iter()
                .filter(|k| !now.iter().any(|p| key(p) == key(k)))
            {
                let _ = notices.send(Notice::PortClosed(event(port)));
            }
        }
        first = false;
        known = now;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tables() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 999 1";
        let map = listening(v4);
        assert_eq!(map.get(&12345), Some(&("127.0.0.1".to_string(), 8080)));
        assert!(
            !map.contains_key(&999),
            "established sockets are not listening"
        );
        assert_eq!(
            parse_address("00000000000000000000000001000000:0BB8"),
            Some(("::1".into(), 3000))
        );
        assert_eq!(
            parse_address("00000000000000000000000000000000:0050"),
            Some(("::".into(), 80))
        );
    }

    #[test]
    fn finds_a_listener_started_by_this_process() {
        // A child that listens: the scan must attribute the port to it.
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import socket,time;s=socket.socket();s.bind(('127.0.0.1',0));s.listen();print(s.getsockname()[1],flush=True);time.sleep(30)"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let found = scan(&HashMap::from([(child.id(), Owner::Process("py".into()))]));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            found.iter().any(|p| p.port == port
                && p.address == "127.0.0.1"
                && p.process.as_deref() == Some("python3")
                && p.process_id.as_deref() == Some("py")),
            "{found:?}"
        );
    }
}
