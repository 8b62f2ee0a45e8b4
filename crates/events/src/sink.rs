//! The local sinks: stdout and size-rotated JSON-lines files.
//!
//! Each runs on its own worker thread (see [`crate::worker`]) and receives
//! batches of complete, newline-terminated JSON lines. The file sink never
//! loses a line it has accepted: bytes are written from its own buffer and
//! only removed from it once the operating system took them, so a failed
//! write (disk full, a vanished directory) is retried from exactly where it
//! stopped, without duplicating or tearing a line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::ocsf::Event;
use crate::worker::{Deliver, SendOutcome};

/// Bytes gathered before the file sink writes them out.
const BUFFER_BYTES: usize = 64 * 1024;

/// Encodes an event as one OCSF JSON line.
fn encode_json_line(ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
    ev.write_json(&mut *out).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(())
}

/// One JSON line per event on standard output.
pub(crate) struct StdoutSink {
    out: BufWriter<io::Stdout>,
}

impl StdoutSink {
    pub(crate) fn new() -> StdoutSink {
        StdoutSink {
            out: BufWriter::with_capacity(BUFFER_BYTES, io::stdout()),
        }
    }
}

impl Deliver for StdoutSink {
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
        encode_json_line(ev, out)
    }

    fn send(&mut self, records: &[&[u8]]) -> SendOutcome {
        for (i, record) in records.iter().enumerate() {
            if let Err(err) = self.out.write_all(record) {
                return SendOutcome::retry_from(i, records.len(), format!("stdout: {err}"));
            }
        }
        SendOutcome::delivered()
    }

    fn settle(&mut self) -> Result<(), String> {
        self.out.flush().map_err(|e| format!("stdout: {e}"))
    }
}

/// The JSON-lines file sink.
pub(crate) struct FileSink {
    file: RotatingFile,
}

impl FileSink {
    pub(crate) fn open(path: PathBuf, max_bytes: u64, max_files: u32) -> io::Result<FileSink> {
        Ok(FileSink {
            file: RotatingFile::open(path, max_bytes, max_files)?,
        })
    }
}

impl Deliver for FileSink {
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
        encode_json_line(ev, out)
    }

    fn send(&mut self, records: &[&[u8]]) -> SendOutcome {
        for (i, record) in records.iter().enumerate() {
            if let Err(err) = self.file.write_line(record) {
                let msg = format!("file {}: {err}", self.file.path.display());
                return SendOutcome::retry_from(i, records.len(), msg);
            }
        }
        SendOutcome::delivered()
    }

    fn settle(&mut self) -> Result<(), String> {
        self.file
            .flush()
            .map_err(|e| format!("file {}: {e}", self.file.path.display()))
    }
}

/// A file that rotates by size: `path -> path.1 -> path.2 ...`.
pub(crate) struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
    /// `None` after a failed rotation or write left no file open; the next
    /// write reopens it, so a transient problem heals itself.
    out: Option<File>,
    /// Accepted bytes not yet taken by the operating system.
    pending: Vec<u8>,
    /// Bytes in the active file, counting `pending`.
    size: u64,
}

impl RotatingFile {
    pub(crate) fn open(path: PathBuf, max_bytes: u64, max_files: u32) -> io::Result<RotatingFile> {
        let (out, size) = open_append(&path)?;
        Ok(RotatingFile {
            path,
            max_bytes,
            max_files,
            out: Some(out),
            pending: Vec::with_capacity(BUFFER_BYTES),
            size,
        })
    }

    /// Accepts one complete line. On error the line was not accepted (and
    /// everything accepted before is still pending): call again later.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        // An empty file always takes the line, so one oversized line cannot
        // trigger a rotation per write.
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.flush()?;
            self.rotate()?;
        }
        if !self.pending.is_empty() && self.pending.len() + line.len() > BUFFER_BYTES {
            self.flush()?;
        }
        self.pending.extend_from_slice(line);
        self.size += len;
        Ok(())
    }

    /// Writes every pending byte. On error the unwritten rest stays pending.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                let (out, size) = open_append(&self.path)?;
                self.size = size + self.pending.len() as u64;
                self.out.insert(out)
            }
        };
        let mut written = 0;
        let result = loop {
            if written == self.pending.len() {
                break Ok(());
            }
            match out.write(&self.pending[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => break Err(err),
            }
        };
        self.pending.drain(..written);
        result
    }

    /// Requires an empty `pending` (the caller flushed).
    fn rotate(&mut self) -> io::Result<()> {
        self.out = None;
        if self.max_files == 0 {
            let file = OpenOptions::new()
                .write(true)
                .truncate(true)
                .create(true)
                .open(&self.path)?;
            self.out = Some(file);
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

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().append(true).create(true).open(path)?;
    // Appending to an existing file continues its size budget (a pipe or
    // device reports no meaningful size, which is fine: it never rotates).
    let size = file.metadata()?.len();
    Ok((file, size))
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
