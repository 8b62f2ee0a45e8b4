//! Output sinks owned by the writer thread: stdout and size-rotated files.
//!
//! Sinks receive complete, newline-terminated JSON lines. They buffer writes
//! and are flushed by the writer thread whenever its queue runs dry, so a
//! burst is written in large chunks while a quiet gateway's file stays
//! current.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::EventsError;

/// Where events are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// One JSON line per event on standard output.
    Stdout,
    /// One JSON line per event appended to `path`. Before a line would push
    /// the file past `max_bytes`, the file is rotated: `path.1` becomes
    /// `path.2` and so on, `path` becomes `path.1`, and the oldest file
    /// beyond `path.{max_files}` is deleted. `max_files = 0` keeps no
    /// history (the file is truncated instead).
    File {
        /// The active file.
        path: PathBuf,
        /// Size limit of one file in bytes; must be positive. A single line
        /// longer than this still gets written, alone in its file.
        max_bytes: u64,
        /// How many rotated files to keep besides the active one.
        max_files: u32,
    },
}

/// Large enough that a burst of events becomes a few big writes.
const BUFFER_BYTES: usize = 64 * 1024;

/// An opened sink.
pub(crate) enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(RotatingFile),
}

impl Sink {
    /// Opens the sink now so that a bad path fails `Emitter::start`.
    pub(crate) fn open(cfg: &SinkConfig) -> Result<Sink, EventsError> {
        match cfg {
            SinkConfig::Stdout => Ok(Sink::Stdout(BufWriter::with_capacity(
                BUFFER_BYTES,
                io::stdout(),
            ))),
            SinkConfig::File {
                path,
                max_bytes,
                max_files,
            } => {
                if *max_bytes == 0 {
                    return Err(EventsError::InvalidConfig(format!(
                        "file sink {}: max_bytes must be positive",
                        path.display()
                    )));
                }
                let file =
                    RotatingFile::open(path.clone(), *max_bytes, *max_files).map_err(|source| {
                        EventsError::OpenSink {
                            path: path.clone(),
                            source,
                        }
                    })?;
                Ok(Sink::File(file))
            }
        }
    }

    /// Writes one complete line (including its `\n`).
    pub(crate) fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.write_all(line),
            Sink::File(file) => file.write_line(line),
        }
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::File(file) => file.flush(),
        }
    }
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Stdout(_) => f.write_str("stdout"),
            Sink::File(file) => write!(f, "file {}", file.path.display()),
        }
    }
}

/// A file that rotates by size: `path -> path.1 -> path.2 ...`.
pub(crate) struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
    /// `None` after a failed rotation left no file open; the next write
    /// tries to reopen, so a transient problem heals itself.
    out: Option<BufWriter<File>>,
    /// Bytes in the active file, counting what is still buffered.
    size: u64,
}

impl RotatingFile {
    fn open(path: PathBuf, max_bytes: u64, max_files: u32) -> io::Result<RotatingFile> {
        let (out, size) = open_append(&path)?;
        Ok(RotatingFile {
            path,
            max_bytes,
            max_files,
            out: Some(out),
            size,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        // An empty file always takes the line, so one oversized line cannot
        // trigger a rotation per write.
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                let (out, size) = open_append(&self.path)?;
                self.size = size;
                self.out.insert(out)
            }
        };
        out.write_all(line)?;
        self.size += len;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        if self.max_files == 0 {
            let file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .create(true)
                .open(&self.path)?;
            self.out = Some(BufWriter::with_capacity(BUFFER_BYTES, file));
            self.size = 0;
            return Ok(());
        }
        remove_if_exists(&rotated_path(&self.path, self.max_files))?;
        for n in (1..self.max_files).rev() {
            rename_if_exists(
                &rotated_path(&self.path, n),
                &rotated_path(&self.path, n + 1),
            )?;
        }
        rename_if_exists(&self.path, &rotated_path(&self.path, 1))?;
        let (out, size) = open_append(&self.path)?;
        self.out = Some(out);
        self.size = size;
        Ok(())
    }
}

/// `path.n`, e.g. `events.jsonl.3`.
pub(crate) fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().append(true).create(true).open(path)?;
    // Appending to an existing file continues its size budget.
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(BUFFER_BYTES, file), size))
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_in(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    #[test]
    fn rotates_before_exceeding_max_bytes() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ev.jsonl");
        let mut file = RotatingFile::open(path.clone(), 20, 2)?;
        for i in 0..7 {
            file.write_line(format!("line-{i:03}\n").as_bytes())?; // 9 bytes each
        }
        file.flush()?;
        assert_eq!(lines_in(&path), ["line-006"]);
        assert_eq!(lines_in(&rotated_path(&path, 1)), ["line-004", "line-005"]);
        assert_eq!(lines_in(&rotated_path(&path, 2)), ["line-002", "line-003"]);
        assert!(!rotated_path(&path, 3).exists());
        Ok(())
    }

    #[test]
    fn oversized_line_is_written_alone() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ev.jsonl");
        let mut file = RotatingFile::open(path.clone(), 4, 1)?;
        file.write_line(b"0123456789\n")?;
        file.write_line(b"abcdefghij\n")?;
        file.flush()?;
        assert_eq!(lines_in(&path), ["abcdefghij"]);
        assert_eq!(lines_in(&rotated_path(&path, 1)), ["0123456789"]);
        Ok(())
    }

    #[test]
    fn zero_max_files_truncates_in_place() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ev.jsonl");
        let mut file = RotatingFile::open(path.clone(), 10, 0)?;
        file.write_line(b"aaaaaaa\n")?;
        file.write_line(b"bbbbbbb\n")?;
        file.flush()?;
        assert_eq!(lines_in(&path), ["bbbbbbb"]);
        assert!(!rotated_path(&path, 1).exists());
        Ok(())
    }

    #[test]
    fn existing_file_size_counts_toward_the_limit() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ev.jsonl");
        fs::write(&path, "old-line\n")?;
        let mut file = RotatingFile::open(path.clone(), 12, 1)?;
        file.write_line(b"new-line\n")?;
        file.flush()?;
        assert_eq!(lines_in(&path), ["new-line"]);
        assert_eq!(lines_in(&rotated_path(&path, 1)), ["old-line"]);
        Ok(())
    }
}
