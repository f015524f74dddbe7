//! The log file of the Windows service, which has no terminal or journal to write to:
//! `<state folder>\logs\agent.log`, rotated to `agent.log.1` when it passes a size, so two files
//! at most are kept. On Unix systemd's journal takes standard error instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Size past which the log file is rotated.
pub const ROTATE_BYTES: u64 = 10 << 20;

/// An append-only log file that rotates itself; wrap it in a `Mutex` for `tracing_subscriber`.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    written: u64,
    limit: u64,
}

impl LogFile {
    /// Opens (or creates) `path` for appending, creating its folder; rotates past `limit` bytes.
    ///
    /// # Errors
    ///
    /// When the folder or the file cannot be created.
    pub fn open(path: &Path, limit: u64) -> io::Result<LogFile> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_owned(),
            file,
            written,
            limit,
        })
    }

    /// Moves the current file to `<name>.1` (replacing the older one) and starts a new one; on
    /// failure keeps writing where it was, since losing log lines is worse than a large file.
    fn rotate(&mut self) {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        let rotated = fs::rename(&self.path, &old).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)
        });
        if let Ok(file) = rotated {
            self.file = file;
            self.written = 0;
        }
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.limit {
            self.rotate();
        }
        let n_bytes = self.file.write(buf)?;
        self.written += n_bytes as u64;
        Ok(n_bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_limit_and_keeps_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("agent.log");
        let mut log = LogFile::open(&path, 10).unwrap();
        log.write_all(b"first-").unwrap();
        log.write_all(b"second\n").unwrap();
        log.write_all(b"third\n").unwrap();
        drop(log);
        // Reopening counts what is there already.
        let mut log = LogFile::open(&path, 10).unwrap();
        log.write_all(b"fourth\n").unwrap();
        let read = |name: &str| fs::read_to_string(dir.path().join("logs").join(name)).unwrap();
        assert_eq!(read("agent.log"), "fourth\n");
        assert_eq!(read("agent.log.1"), "third\n");
    }
}
