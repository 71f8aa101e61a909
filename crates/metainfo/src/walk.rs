//! Listing a folder in piece order, handing each file on as soon as it is found.
//!
//! The order is that of the bytes of each file's whole `/`-joined relative path, which is what
//! mktorrent, imdl and torf use. A depth-first walk yields it directly when each folder's entries
//! are sorted by name with `/` appended to sub-folders: `foo.txt` then comes before `foo/bar`, as
//! `.` < `/`. So no file has to wait for the whole walk, and the hashers start at once.
//!
//! Entries are read with `getdents` and opened relative to their folder (`openat`): one path
//! component to look up per file, and the length comes from `fstat` on the handle the hashers
//! then read, instead of a `stat` now and an `open` by full path later.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};

use crate::error::CreateError;
use crate::hashing::{DataFile, Feed};
use crate::path::check_component;

/// Walks the folder `root`, pushing its files to `feed` in piece order and calling `found` with the
/// bytes found in each folder. Returns each file's path components below `root`, in the same order.
/// Stops early, with what it has, when the feed is abandoned.
pub(crate) fn walk_folder(root: &Path, feed: &Feed, found: &dyn Fn(u64)) -> Result<Vec<Vec<String>>, CreateError> {
    let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|err| CreateError::Io { path: root.to_owned(), source: err.into() })?;
    let stat = rustix::fs::fstat(&fd).map_err(|err| CreateError::Io { path: root.to_owned(), source: err.into() })?;
    let mut walk = Walk { feed, found, components: Vec::new(), prefix: Vec::new(), ancestors: vec![dev_ino(&stat)] };
    walk.folder(fd, root)?;
    Ok(walk.components)
}

struct Walk<'a> {
    feed: &'a Feed,
    found: &'a dyn Fn(u64),
    components: Vec<Vec<String>>,
    /// Names of the folders from the root down to the one being read.
    prefix: Vec<String>,
    /// (device, inode) of every folder above, to catch a link back up the tree.
    ancestors: Vec<(u64, u64)>,
}

/// A folder entry: its name, with `/` appended for a sub-folder so that sorting gives piece order.
struct Entry {
    key: String,
    is_folder: bool,
}

impl Entry {
    fn name(&self) -> &str {
        if self.is_folder { &self.key[..self.key.len() - 1] } else { &self.key }
    }
}

/// Keeps walking.
struct Continue(bool);

impl Walk<'_> {
    fn folder(&mut self, fd: OwnedFd, path: &Path) -> Result<Continue, CreateError> {
        let mut dir = Dir::new(fd).map_err(|err| io_error(path, err))?;
        let mut entries = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|err| io_error(path, err))?;
            let raw = entry.file_name();
            if matches!(raw.to_bytes(), b"." | b"..") {
                continue;
            }
            let child = || path.join(OsStr::from_bytes(raw.to_bytes()));
            let name = raw.to_str().map_err(|_| bad_input(child(), "file name is not valid UTF-8"))?;
            check_component(name).map_err(|reason| bad_input(child(), reason))?;
            let is_folder = match entry.file_type() {
                FileType::Directory => true,
                FileType::RegularFile => false,
                // Links are followed; some filesystems do not fill in the type at all.
                FileType::Symlink | FileType::Unknown => {
                    let target =
                        rustix::fs::statat(dir.fd().map_err(|err| io_error(path, err))?, raw, AtFlags::empty())
                            .map_err(|err| {
                                bad_input(child(), &format!("broken symbolic link ({})", std::io::Error::from(err)))
                            })?;
                    match FileType::from_raw_mode(target.st_mode) {
                        FileType::Directory => true,
                        FileType::RegularFile => false,
                        _ => return Err(not_regular(child())),
                    }
                }
                _ => return Err(not_regular(child())),
            };
            let mut key = name.to_owned();
            if is_folder {
                key.push('/');
            }
            entries.push(Entry { key, is_folder });
        }
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));

        let dir_fd = dir.fd().map_err(|err| io_error(path, err))?;
        let mut bytes_here = 0;
        for entry in &entries {
            let name = entry.name();
            let child = path.join(name);
            let keep_going = if entry.is_folder {
                (self.found)(std::mem::take(&mut bytes_here));
                self.sub_folder(dir_fd, name, &child)?
            } else {
                let length = self.file(dir_fd, name, child)?;
                bytes_here += length.unwrap_or(0);
                Continue(length.is_some())
            };
            if !keep_going.0 {
                return Ok(Continue(false));
            }
        }
        (self.found)(bytes_here);
        Ok(Continue(true))
    }

    fn sub_folder(&mut self, dir_fd: impl AsFd, name: &str, path: &Path) -> Result<Continue, CreateError> {
        let fd = rustix::fs::openat(dir_fd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|err| io_error(path, err))?;
        let id = dev_ino(&rustix::fs::fstat(&fd).map_err(|err| io_error(path, err))?);
        if self.ancestors.contains(&id) {
            return Err(bad_input(path.to_owned(), "symbolic link loop"));
        }
        self.ancestors.push(id);
        self.prefix.push(name.to_owned());
        let result = self.folder(fd, path);
        self.prefix.pop();
        self.ancestors.pop();
        result
    }

    /// Lists one file and passes it to the feed, opened if the handle budget allows. Returns its
    /// length, or `None` when the feed has been abandoned.
    fn file(&mut self, dir_fd: impl AsFd, name: &str, path: PathBuf) -> Result<Option<u64>, CreateError> {
        let (length, handle) = if self.feed.reserve_handle() {
            // Non-blocking, so that a file swapped for a fifo since the listing cannot hang the open.
            let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
            let opened =
                rustix::fs::openat(dir_fd, name, flags, Mode::empty()).and_then(|fd| Ok((rustix::fs::fstat(&fd)?, fd)));
            match opened {
                Ok((stat, fd)) if is_regular(&stat) => {
                    let length = file_length(&stat);
                    if length == 0 {
                        self.feed.unreserve_handle();
                        (length, None)
                    } else {
                        (length, Some(File::from(fd)))
                    }
                }
                Ok(_) => {
                    self.feed.unreserve_handle();
                    return Err(not_regular(path));
                }
                Err(err) => {
                    self.feed.unreserve_handle();
                    return Err(CreateError::Io { path, source: err.into() });
                }
            }
        } else {
            let stat = rustix::fs::statat(dir_fd, name, AtFlags::empty()).map_err(|err| io_error(&path, err))?;
            if !is_regular(&stat) {
                return Err(not_regular(path));
            }
            (file_length(&stat), None)
        };
        let mut components = self.prefix.clone();
        components.push(name.to_owned());
        self.components.push(components);
        Ok(self.feed.push(DataFile { path, length }, handle).then_some(length))
    }
}

fn is_regular(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
}

fn file_length(stat: &Stat) -> u64 {
    u64::try_from(stat.st_size).unwrap_or(0)
}

fn dev_ino(stat: &Stat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

fn io_error(path: &Path, err: rustix::io::Errno) -> CreateError {
    CreateError::BadInput { path: path.to_owned(), reason: std::io::Error::from(err).to_string() }
}

fn bad_input(path: PathBuf, reason: &str) -> CreateError {
    CreateError::BadInput { path, reason: reason.to_owned() }
}

fn not_regular(path: PathBuf) -> CreateError {
    bad_input(path, "not a regular file (socket, device or fifo)")
}
