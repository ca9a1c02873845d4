//! A `newc` cpio archive writer: the format Linux unpacks as an initramfs.
//! Entries get fixed owners, times and inode numbers, so the same files
//! always give the same bytes (an image's id is a hash of them).

/// One archive being written, entries in the order added.
#[derive(Default)]
pub struct Archive {
    out: Vec<u8>,
    ino: u32,
}

const DIR: u32 = 0o040000;
const FILE: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;

impl Archive {
    pub fn dir(&mut self, path: &str) {
        self.entry(path, DIR | 0o755, &[]);
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.entry(path, FILE | (mode & 0o7777), data);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entry(path, SYMLINK | 0o777, target.as_bytes());
    }

    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let name_len = path.len() + 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            data.len() as u32,
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            name_len as u32,
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.out.extend_from_slice(path.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cpio -t` (where installed) lists what we wrote; either way the
    /// layout is checked by hand.
    #[test]
    fn entries_are_aligned_and_the_trailer_ends_the_archive() {
        let mut a = Archive::default();
        a.dir("bin");
        a.file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n");
        a.symlink("bin/sh", "busybox");
        let bytes = a.finish();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
        // Deterministic.
        let mut b = Archive::default();
        b.dir("bin");
        b.file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n");
        b.symlink("bin/sh", "busybox");
        assert_eq!(b.finish(), bytes);
        if let Ok(mut child) = std::process::Command::new("cpio")
            .arg("-t")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
            let out = child.wait_with_output().unwrap();
            let listed = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                listed.lines().collect::<Vec<_>>(),
                ["bin", "bin/hello", "bin/sh"]
            );
        }
    }
}
