//! What a workspace may be called, and what it may ask for.

use cove_backend::WorkspaceLimits;
use cove_protocol::rest::Limits;

use crate::error::ApiError;

/// Longest workspace name.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// Checks a workspace name. Names are what people read in lists and type in URLs, so they
/// are plain: ASCII letters, digits, spaces and `-_.`, starting and ending with a letter or a
/// digit, at most [`MAX_NAME_CHARS`]. That leaves out look-alikes (`a` and `a` + a zero-width
/// space, right-to-left overrides), `.` and `..`, and anything that needs escaping in a path.
/// Names are unique per owner whatever their case: `Demo` and `demo` are one name.
pub(crate) fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let rule = "names are 1 to 64 characters: letters, digits, spaces and - _ . (ASCII), starting and ending with a letter or a digit";
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty()
        || name.len() > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
        || !edge_ok(name.chars().next())
        || !edge_ok(name.chars().last())
    {
        return Err(ApiError::bad_request(format!(
            "invalid name {name:?}: {rule}"
        )));
    }
    if name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "name must not look like a workspace id",
        ));
    }
    Ok(name.to_string())
}

/// The limits a workspace asks for, in the backend's units (bytes, thousandths of a core).
pub(super) fn backend_limits(limits: &Limits) -> Result<WorkspaceLimits, ApiError> {
    const MIB: u64 = 1024 * 1024;
    let mib = |v: u64| {
        v.checked_mul(MIB)
            .ok_or_else(|| ApiError::bad_request("limit too large"))
    };
    let cpu_millis = match limits.cpu {
        Some(cpu) if !cpu.is_finite() || cpu <= 0.0 || cpu > 1e6 => {
            return Err(ApiError::bad_request(
                "cpu must be a positive number of cores",
            ));
        }
        cpu => cpu.map(|c| (c * 1000.0).round() as u64),
    };
    Ok(WorkspaceLimits {
        memory_bytes: limits.memory_mib.map(mib).transpose()?,
        cpu_millis,
        pids: limits.pids,
        disk_bytes: limits.disk_mib.map(mib).transpose()?,
    })
}
