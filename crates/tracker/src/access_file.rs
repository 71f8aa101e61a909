//! An access list's file (`--allow FILE` or `--deny FILE`): read at start, on SIGHUP, and whenever it changes.
//!
//! A change is seen by polling the file's identity and times (device, inode, size, modification and status-change
//! times), which catches an edit in place as well as the usual write-a-copy-and-rename, without a notify crate. The
//! stamp is taken before the file is read, so an edit that lands during a read shows as another change at the next
//! poll rather than being lost.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::access::{Access, AccessList, AccessListError};

/// Whether the file lists the only hashes served or the hashes refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    Allow,
    Deny,
}

impl AccessMode {
    /// The flag's name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            AccessMode::Allow => "allow",
            AccessMode::Deny => "deny",
        }
    }
}

/// An access list file and what was seen of it at the last read.
#[derive(Debug)]
pub struct AccessFile {
    path: PathBuf,
    mode: AccessMode,
    /// The stamp taken before the last read; `None` if the file could not be looked at then.
    seen: Option<Stamp>,
}

/// Reading or parsing the file failed; the message names the file (and the line, for a bad line). The cause is
/// part of the message rather than a `source`, so that `{:#}` does not print it twice.
#[derive(Debug, thiserror::Error)]
pub enum AccessFileError {
    #[error("reading the access list {}: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("access list {}, {error}", path.display())]
    Parse { path: PathBuf, error: AccessListError },
}

impl AccessFile {
    pub fn new(path: PathBuf, mode: AccessMode) -> AccessFile {
        AccessFile { path, mode, seen: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> AccessMode {
        self.mode
    }

    /// Reads and parses the file now. On an error the caller keeps the list it has; the file is not read again
    /// until it changes (or [`AccessFile::load`] is called again), so a bad file is reported once, not every poll.
    pub fn load(&mut self) -> Result<Access, AccessFileError> {
        self.seen = stamp(&self.path);
        let text =
            std::fs::read(&self.path).map_err(|error| AccessFileError::Read { path: self.path.clone(), error })?;
        let list =
            AccessList::parse(&text).map_err(|error| AccessFileError::Parse { path: self.path.clone(), error })?;
        Ok(match self.mode {
            AccessMode::Allow => Access::Allow(list),
            AccessMode::Deny => Access::Deny(list),
        })
    }

    /// Whether the file looks different from the last [`AccessFile::load`]: replaced, edited, or gone or back.
    pub fn changed(&self) -> bool {
        stamp(&self.path) != self.seen
    }
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode: a rename over the file gives another inode, whatever the times say.
    #[cfg(unix)]
    identity: (u64, u64),
    /// The status-change time moves on every write and rename and cannot be set back (as `touch -d` sets mtime).
    #[cfg(unix)]
    status_changed: (i64, i64),
}

/// The file's stamp (following symlinks), or `None` if it cannot be looked at.
fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|metadata| from_metadata(&metadata))
}

#[cfg(unix)]
fn from_metadata(metadata: &Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        identity: (metadata.dev(), metadata.ino()),
        status_changed: (metadata.ctime(), metadata.ctime_nsec()),
    }
}

#[cfg(not(unix))]
fn from_metadata(metadata: &Metadata) -> Stamp {
    Stamp { len: metadata.len(), modified: metadata.modified().ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of its own under the system's temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path = std::env::temp_dir().join(format!("tracker-access-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("create the scratch folder");
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const HASH: &str = "00112233445566778899aabbccddeeff00112233";

    #[test]
    fn sees_a_rename_over_the_file_and_an_edit_in_place_and_names_the_file_and_line_of_a_bad_line() {
        let scratch = Scratch::new("watch");
        let path = scratch.0.join("allow.txt");
        let mut file = AccessFile::new(path.clone(), AccessMode::Allow);
        assert!(matches!(file.load(), Err(AccessFileError::Read { .. })), "no file yet");
        assert!(!file.changed(), "still no file: nothing to report again");

        std::fs::write(&path, format!("{HASH}\n")).expect("write");
        assert!(file.changed(), "the file appeared");
        let access = file.load().expect("a good list");
        assert!(matches!(&access, Access::Allow(list) if list.len() == 1));
        assert!(!file.changed());

        let temporary = scratch.0.join("allow.txt.new");
        std::fs::write(&temporary, format!("{HASH}\n")).expect("write");
        std::fs::rename(&temporary, &path).expect("rename");
        assert!(file.changed(), "replaced by a rename, same size and content");
        file.load().expect("a good list");

        std::fs::write(&path, "# nothing\nnot a hash\n").expect("write in place");
        assert!(file.changed(), "edited in place");
        let error = file.load().map(|access| access.listed()).expect_err("a bad line");
        assert_eq!(
            error.to_string(),
            format!("access list {}, line 2: 'n' at column 1 is not a hex digit", path.display())
        );
        assert!(!file.changed(), "a bad file is reported once");

        std::fs::remove_file(&path).expect("remove");
        assert!(file.changed(), "the file went away");
    }

    #[test]
    fn a_deny_file_gives_a_deny_list() {
        let scratch = Scratch::new("deny");
        let path = scratch.0.join("deny.txt");
        std::fs::write(&path, HASH).expect("write");
        let mut file = AccessFile::new(path, AccessMode::Deny);
        let access = file.load().expect("a good list");
        assert!(matches!(&access, Access::Deny(list) if list.len() == 1));
        assert!(!access.permits(&[
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11,
            0x22, 0x33
        ]));
        assert!(access.permits(&[0; 20]));
    }
}
