//! The byte-level storage of one segment file, behind a small trait so tests can simulate a
//! crash that loses every write not yet synced.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An append-only file: what a segment's `.log` needs from the operating system.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Fills `buf` from byte `pos`; fails with `UnexpectedEof` past the end.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// Appends `data` at the end.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes every append so far durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Truncates (or extends with zeros) to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Storage`] on a real file, using positioned reads and writes.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    len: u64,
}

impl FileStorage {
    /// Opens (creating if asked) a file for reading and appending.
    pub fn open(path: &Path, create: bool) -> io::Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(FileStorage { file, len })
    }

    /// Opens an existing file read-only (appends then fail).
    pub fn open_read_only(path: &Path) -> io::Result<FileStorage> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileStorage { file, len })
    }
}

impl Storage for FileStorage {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, self.len)?;
        self.len += data.len() as u64;
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug, Default)]
struct MemState {
    data: Vec<u8>,
    durable: Vec<u8>,
}

/// An in-memory [`Storage`] for tests: [`MemStorage::crash`] throws away every write that
/// was not followed by a `sync`, like a power cut would.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    state: Arc<Mutex<MemState>>,
}

impl MemStorage {
    /// An empty file.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Simulates a power cut: the contents revert to what was last synced, plus an optional
    /// torn prefix of the unsynced writes (`keep_unsynced` bytes of them).
    pub fn crash(&self, keep_unsynced: usize) {
        let mut s = self.state.lock().expect("mem storage lock");
        let mut data = s.durable.clone();
        if s.data.len() > data.len() && s.data.starts_with(&data) {
            let extra = &s.data[data.len()..];
            data.extend_from_slice(&extra[..keep_unsynced.min(extra.len())]);
        }
        s.data = data;
    }

    /// A copy of the current contents.
    pub fn contents(&self) -> Vec<u8> {
        self.state.lock().expect("mem storage lock").data.clone()
    }
}

impl Storage for MemStorage {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let s = self.state.lock().expect("mem storage lock");
        let pos = pos as usize;
        if pos + buf.len() > s.data.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        buf.copy_from_slice(&s.data[pos..pos + buf.len()]);
        Ok(())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.state
            .lock()
            .expect("mem storage lock")
            .data
            .extend_from_slice(data);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut s = self.state.lock().expect("mem storage lock");
        s.durable = s.data.clone();
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.state
            .lock()
            .expect("mem storage lock")
            .data
            .resize(len as usize, 0);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.state.lock().expect("mem storage lock").data.len() as u64
    }
}
