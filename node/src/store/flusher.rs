//! Background write-back of redb's file.
//!
//! The node commits redb without durability and makes it durable every
//! `DURABLE_EVERY`; in between, the pages it writes sit dirty in the OS
//! page cache (the kernel holds dirty data for up to 30 s on a machine with
//! memory to spare). The durable commit's `fsync` then had to write all of
//! it at once: 200–650 ms per node under load, all nodes of a machine at
//! about the same moment, and own events wait behind it in the ledger
//! writer. Starting the write-back every [`EVERY`] spreads that work out,
//! so the durable commit finds little left to write. Starting write-back
//! early changes nothing redb relies on: the OS may write any page at any
//! time anyway.

use std::{fs::File, path::Path, sync::mpsc, thread::JoinHandle, time::Duration};

const EVERY: Duration = Duration::from_secs(1);

/// Stops and joins the thread when dropped.
pub(super) struct Flusher {
    /// Dropping it wakes the thread and tells it to end.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(path: &Path) -> std::io::Result<Flusher> {
        let file = File::open(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ledger-flusher".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(err) = start_write_back(&file) {
                        // Only a missed optimisation: durability comes from
                        // the durable commits and the event log.
                        tracing::debug!(error = %err, "ledger write-back failed");
                    }
                }
            })?;
        Ok(Flusher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts writing the file's dirty pages to disk without waiting for them
/// (and without the cache flush an `fsync` implies).
#[cfg(target_os = "linux")]
fn start_write_back(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; offset 0 and length 0 mean the whole
    // file; the call only schedules I/O on the page cache.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn start_write_back(file: &File) -> std::io::Result<()> {
    file.sync_data()
}
