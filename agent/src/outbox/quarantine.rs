//! Setting damaged files aside into `<dir>/corrupt/` instead of deleting them.
//!
//! Recovery keeps every byte it cannot use, so that an operator (or a later, smarter version)
//! can still look at it; the outbox itself never reads `corrupt/` again.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{sync_dir, OutboxError};

/// Name of the folder, inside the outbox directory, that damaged files are set aside into.
pub(super) const CORRUPT_DIR: &str = "corrupt";

/// Moves `path` into `<dir>/corrupt/` and returns its new path.
///
/// # Errors
///
/// When the folder cannot be created or the file cannot be moved.
pub(super) fn move_aside(dir: &Path, path: &Path) -> Result<PathBuf, OutboxError> {
    let target = target(dir, path)?;
    fs::rename(path, &target)
        .map_err(|source| OutboxError::io("setting aside damaged file", path, source))?;
    sync_dir(&dir.join(CORRUPT_DIR))?;
    sync_dir(dir)?;
    Ok(target)
}

/// Copies `path` into `<dir>/corrupt/`, durably, and returns the copy's path.
///
/// # Errors
///
/// When the folder cannot be created or the file cannot be copied.
pub(super) fn copy_aside(dir: &Path, path: &Path) -> Result<PathBuf, OutboxError> {
    let target = target(dir, path)?;
    let copy = || -> io::Result<()> {
        fs::copy(path, &target)?;
        // Windows flushes only handles opened for writing (FlushFileBuffers needs GENERIC_WRITE).
        OpenOptions::new().write(true).open(&target)?.sync_all()
    };
    copy().map_err(|source| OutboxError::io("copying aside damaged file", path, source))?;
    sync_dir(&dir.join(CORRUPT_DIR))?;
    sync_dir(dir)?;
    Ok(target)
}

/// A path in `<dir>/corrupt/` named after `path` that does not exist yet.
fn target(dir: &Path, path: &Path) -> Result<PathBuf, OutboxError> {
    let corrupt_dir = dir.join(CORRUPT_DIR);
    fs::create_dir_all(&corrupt_dir)
        .map_err(|source| OutboxError::io("creating folder", &corrupt_dir, source))?;
    let name = path.file_name().map_or_else(
        || "unnamed".to_owned(),
        |name| name.to_string_lossy().into_owned(),
    );
    let mut target = corrupt_dir.join(&name);
    let mut n_tries = 0;
    // The same segment can be set aside more than once, e.g. when a crash interrupted recovery
    // after its copy was made, so earlier copies are kept under numbered names.
    while target.try_exists().unwrap_or(true) {
        n_tries += 1;
        target = corrupt_dir.join(format!("{name}.{n_tries}"));
        if n_tries > 10_000 {
            let source = io::Error::new(io::ErrorKind::AlreadyExists, "too many copies");
            return Err(OutboxError::io("naming set-aside copy of", path, source));
        }
    }
    Ok(target)
}
