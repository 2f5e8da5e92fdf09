//! A template's files as one archive: tar (regular files and their execute bit only)
//! compressed with zstd, packed and unpacked in memory within fixed bounds. The archive
//! comes from the object store, which another program may write to: unpacking trusts none
//! of it (sizes, counts and paths are checked before anything is used).

use cove_backend::SeedFile;
use std::io::Read as _;

/// The most bytes of files a template holds (unpacked).
pub(crate) const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The most files a template holds.
pub(crate) const MAX_FILES: usize = 20_000;
/// The longest path of a file in a template.
const MAX_PATH: usize = 1024;

/// Why an archive cannot be packed or used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchiveError {
    #[error(
        "a template holds at most {} MiB in {MAX_FILES} files; this one has more (leave out build output such as node_modules, and let the init command make it)",
        MAX_BYTES / 1024 / 1024
    )]
    TooBig,
    #[error("the template's archive is damaged: {0}")]
    Damaged(String),
    #[error("the template holds a path cove refuses: {0:?}")]
    BadPath(String),
}

/// A template past its bounds is `too_large`; anything else about its files a bad request.
impl From<ArchiveError> for crate::error::ApiError {
    fn from(e: ArchiveError) -> Self {
        let code = match e {
            ArchiveError::TooBig => cove_protocol::ErrorCode::TooLarge,
            _ => cove_protocol::ErrorCode::BadRequest,
        };
        crate::error::ApiError::new(code, e.to_string())
    }
}

/// Whether `path` is a relative, `/`-separated path that stays where it is put.
pub(crate) fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH
        && !path.starts_with('/')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Tar + zstd of `files`, with how many bytes of files it holds.
pub(crate) fn pack(files: &[SeedFile]) -> Result<(Vec<u8>, u64), ArchiveError> {
    let bytes: u64 = files.iter().map(|f| f.contents.len() as u64).sum();
    if bytes > MAX_BYTES || files.len() > MAX_FILES {
        return Err(ArchiveError::TooBig);
    }
    let mut tar = tar::Builder::new(Vec::new());
    for file in files {
        if !valid_path(&file.path) {
            return Err(ArchiveError::BadPath(file.path.clone()));
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.contents.len() as u64);
        header.set_mode(if file.executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        tar.append_data(&mut header, &file.path, file.contents.as_slice())
            .map_err(|e| ArchiveError::Damaged(e.to_string()))?;
    }
    let tar = tar
        .into_inner()
        .map_err(|e| ArchiveError::Damaged(e.to_string()))?;
    let packed =
        zstd::encode_all(tar.as_slice(), 3).map_err(|e| ArchiveError::Damaged(e.to_string()))?;
    Ok((packed, bytes))
}

/// The files of an archive [`pack`] made. Anything but regular files and directories, a
/// path that could leave the workspace, or more than the bounds allow is refused.
pub(crate) fn unpack(packed: &[u8]) -> Result<Vec<SeedFile>, ArchiveError> {
    let damaged = |e: std::io::Error| ArchiveError::Damaged(e.to_string());
    let decoder = zstd::Decoder::new(packed).map_err(damaged)?;
    // Headers and padding on top of the files' bytes: a bound, not an exact size.
    let bound = MAX_BYTES + (MAX_FILES as u64 + 2) * 1536;
    let mut tar = tar::Archive::new(decoder.take(bound));
    let mut files = Vec::new();
    let mut total = 0u64;
    for entry in tar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| ArchiveError::Damaged("a path is not UTF-8".into()))?;
        let path = path.trim_end_matches('/').to_string();
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular => {}
            other => {
                return Err(ArchiveError::Damaged(format!(
                    "{path:?} is a {other:?}, not a file"
                )));
            }
        }
        if !valid_path(&path) {
            return Err(ArchiveError::BadPath(path));
        }
        let size = entry.size();
        total += size;
        if total > MAX_BYTES || files.len() >= MAX_FILES {
            return Err(ArchiveError::TooBig);
        }
        let executable = entry.header().mode().map_err(damaged)? & 0o111 != 0;
        let mut contents = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut contents).map_err(damaged)?;
        files.push(SeedFile {
            path,
            contents,
            executable,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &[u8], executable: bool) -> SeedFile {
        SeedFile {
            path: path.into(),
            contents: contents.to_vec(),
            executable,
        }
    }

    #[test]
    fn files_come_back_as_they_went_in() {
        let files = vec![
            file("README.md", b"# hi\n", false),
            file("bin/run me.sh", b"#!/bin/sh\necho hi\n", true),
            file("naïve/日本.txt", "ünïcödé".as_bytes(), false),
            file("empty", b"", false),
        ];
        let (packed, bytes) = pack(&files).unwrap();
        assert_eq!(bytes, 5 + 18 + "ünïcödé".len() as u64);
        assert_eq!(unpack(&packed).unwrap(), files);
    }

    #[test]
    fn hostile_archives_are_refused() {
        for path in ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", ""] {
            assert!(
                matches!(
                    pack(&[file(path, b"x", false)]),
                    Err(ArchiveError::BadPath(_))
                ),
                "{path:?}"
            );
        }
        // Written by another program: a `..` path, a symlink, and a bomb that unpacks past
        // the bound are all refused.
        let raw = |build: &dyn Fn(&mut tar::Builder<Vec<u8>>)| {
            let mut tar = tar::Builder::new(Vec::new());
            build(&mut tar);
            zstd::encode_all(tar.into_inner().unwrap().as_slice(), 1).unwrap()
        };
        let dotdot = raw(&|tar| {
            let mut h = tar::Header::new_old();
            h.set_size(1);
            h.set_entry_type(tar::EntryType::Regular);
            h.as_old_mut().name[..7].copy_from_slice(b"../evil");
            h.set_cksum();
            tar.append(&h, &b"x"[..]).unwrap();
        });
        assert!(matches!(unpack(&dotdot), Err(ArchiveError::BadPath(_))));
        let link = raw(&|tar| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, "etc", "/etc").unwrap();
        });
        assert!(matches!(unpack(&link), Err(ArchiveError::Damaged(_))));
        let bomb = raw(&|tar| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(MAX_BYTES + 1);
            h.set_mode(0o644);
            tar.append_data(&mut h, "big", std::io::repeat(0).take(MAX_BYTES + 1))
                .unwrap();
        });
        assert!(matches!(unpack(&bomb), Err(ArchiveError::TooBig)));
        assert!(matches!(
            unpack(b"not zstd at all"),
            Err(ArchiveError::Damaged(_))
        ));
    }
}
