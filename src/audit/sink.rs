//! Where audit lines are written: standard output, or a file rotated by size (`PATH` is current,
//! `PATH.1` the newest rotated, `PATH.keep` the oldest kept). Lines are written whole: a rotation
//! happens between two lines, never inside one.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A destination for complete audit lines (each ends in `\n`), used by the writer thread only.
pub trait LineSink: Send {
    /// Writes one complete line (buffered).
    fn write_line(&mut self, line: &[u8]) -> io::Result<()>;
    /// Pushes buffered lines to the destination.
    fn flush(&mut self) -> io::Result<()>;
}

/// Standard output, buffered.
#[derive(Debug)]
pub struct StdoutSink(BufWriter<io::Stdout>);

impl StdoutSink {
    /// A buffered standard output.
    pub fn new() -> Self {
        Self(BufWriter::with_capacity(64 * 1024, io::stdout()))
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl LineSink for StdoutSink {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.0.write_all(line)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A file appended to and rotated when the next line would take it past `max_bytes`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: BufWriter<File>,
    size: u64,
}

fn open_append(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((BufWriter::with_capacity(64 * 1024, file), size))
}

impl RotatingFile {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<Self> {
        let (file, size) = open_append(path)?;
        Ok(Self {
            path: path.to_owned(),
            max_bytes: max_bytes.max(1),
            keep: keep.max(1),
            file,
            size,
        })
    }

    /// `PATH.n`.
    pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
        let mut name = OsString::from(path.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        for n in (1..self.keep).rev() {
            let from = Self::rotated_path(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, Self::rotated_path(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, Self::rotated_path(&self.path, 1))?;
        let (file, size) = open_append(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(())
    }
}

impl LineSink for RotatingFile {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size = self.size.saturating_add(len);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_whole_lines_and_at_most_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut sink = RotatingFile::open(&path, 100, 3).unwrap();
        let lines: Vec<String> = (0..50)
            .map(|i| format!("{{\"n\":{i:03},\"pad\":\"xxxxxxxxxxxxxxxx\"}}\n"))
            .collect();
        for line in &lines {
            sink.write_line(line.as_bytes()).unwrap();
        }
        sink.flush().unwrap();
        let mut kept = Vec::new();
        for n in (1..=3).rev() {
            let text = std::fs::read_to_string(RotatingFile::rotated_path(&path, n)).unwrap();
            assert!(text.len() as u64 <= 100);
            kept.push(text);
        }
        assert!(!RotatingFile::rotated_path(&path, 4).exists());
        kept.push(std::fs::read_to_string(&path).unwrap());
        let all: String = kept.concat();
        let expected: String = lines[lines.len() - all.lines().count()..].concat();
        assert_eq!(all, expected, "the newest lines, in order, none split");
    }
}
