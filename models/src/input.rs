//! Reading the user's files: the one place every input file is read, each at most a
//! documented number of bytes ([`crate::limits::FileCap`]), so that no file, pipe or device
//! can make migopt allocate without bound.

use crate::limits::FileCap;
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The files one command has read as input, each by every name it has ([`keys`]): read
/// through [`Inputs::read_text`], they can be refused as outputs ([`Inputs::contains`]).
/// A plain value, owned by whoever reads: two commands (or tests) never see each other's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    keys: BTreeSet<PathBuf>,
}

impl Inputs {
    /// [`read_text`], recording `path` as read once the file is open (whether or not its
    /// text is then refused).
    pub fn read_text(&mut self, path: &Path, cap: FileCap) -> Result<String> {
        let file = self.open(path)?;
        read_open(file, path, cap)
    }

    /// The text of the gzip file at `path` (every member, as `gzip -dc` reads them), at most
    /// `cap.bytes` bytes once decompressed, however small the file (a gzip bomb is refused
    /// with [`Error::TooLarge`] once one byte past the cap has been decoded); recorded as
    /// read once the file is open, like [`Inputs::read_text`].
    pub fn read_gzip_text(&mut self, path: &Path, cap: FileCap) -> Result<String> {
        let file = self.open(path)?;
        let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
        read_capped(gz, path, cap, 0, |e| {
            Error::Invalid(format!("{}: not a readable gzip file: {e}", path.display()))
        })
    }

    /// The file at `path`, open for reading, and recorded as read.
    fn open(&mut self, path: &Path) -> Result<std::fs::File> {
        let file = open(path)?;
        self.keys.extend(keys(path));
        Ok(file)
    }

    /// Whether writing `path` would replace (or write through a link into) a file read
    /// through [`Inputs::read_text`].
    pub fn contains(&self, path: &Path) -> bool {
        keys(path).iter().any(|k| self.keys.contains(k))
    }

    /// Adds what `other` has read.
    pub fn extend(&mut self, other: Inputs) {
        self.keys.extend(other.keys);
    }
}

/// The folder entry `path` names, equal for every spelling of it: its folder resolved (or,
/// where the folder does not exist, with its `.` parts dropped) joined with its file name.
/// Renaming a file onto a path replaces this entry.
pub fn entry_key(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| {
        dir.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    });
    dir.join(path.file_name().unwrap_or_default())
}

/// The names of the file at `path`: its folder entry ([`entry_key`]) and, when it exists,
/// the file it resolves to (through links). Renaming onto a path replaces its entry;
/// reading it reads the file it resolves to.
fn keys(path: &Path) -> Vec<PathBuf> {
    std::iter::once(entry_key(path))
        .chain(path.canonicalize().ok())
        .collect()
}

/// The first header name that repeats an earlier one, as a message naming both columns
/// (1-based): `column `model` is named twice (columns 1 and 6)`. Every CSV header migopt
/// reads refuses such a header, since which of the two columns is read would be arbitrary.
pub fn repeated_column(names: &[&str]) -> Option<String> {
    names.iter().enumerate().find_map(|(i, h)| {
        let first = names[..i].iter().position(|x| x == h)?;
        Some(format!(
            "column `{h}` is named twice (columns {} and {})",
            first + 1,
            i + 1
        ))
    })
}

/// The text of the file at `path`, at most `cap.bytes` bytes of UTF-8. A larger file is
/// refused with [`Error::TooLarge`] naming the path and the cap: a regular file by its
/// length before anything is read, anything else (a pipe, `/dev/zero`) once one byte past
/// the cap has been read, so at most the cap is ever held in memory. Nothing is recorded
/// ([`Inputs::read_text`] records the path).
pub fn read_text(path: &Path, cap: FileCap) -> Result<String> {
    read_open(open(path)?, path, cap)
}

/// The file at `path`, open for reading.
fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

/// [`read_text`] of a file already open.
fn read_open(file: std::fs::File, path: &Path, cap: FileCap) -> Result<String> {
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_file() && meta.len() > cap.bytes {
        return Err(too_large(path, cap));
    }
    // A regular file's length is a good first guess; a device or a pipe says 0.
    let guess = if meta.is_file() { meta.len() } else { 0 };
    read_capped(file, path, cap, guess, |e| Error::io(path, e))
}

/// The text `r` gives, refused with [`Error::TooLarge`] once one byte past `cap` has been
/// read (so at most the cap is ever held), or where it is not UTF-8; `guess`: the expected
/// length, `failed`: the error of a failed read.
fn read_capped(
    r: impl Read,
    path: &Path,
    cap: FileCap,
    guess: u64,
    failed: impl FnOnce(std::io::Error) -> Error,
) -> Result<String> {
    let mut bytes = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
    r.take(cap.bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > cap.bytes {
        return Err(too_large(path, cap));
    }
    String::from_utf8(bytes).map_err(|e| not_utf8(path, &e))
}

/// The refusal of a file larger than `cap`.
fn too_large(path: &Path, cap: FileCap) -> Error {
    Error::TooLarge {
        path: path.to_path_buf(),
        bytes: cap.bytes,
        what: cap.what,
    }
}

/// Where a file stops being UTF-8 text: its line, and the byte of that line.
fn not_utf8(path: &Path, e: &std::string::FromUtf8Error) -> Error {
    let bytes = e.as_bytes();
    let at = e.utf8_error().valid_up_to();
    let before = &bytes[..at];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    Error::Syntax {
        origin: crate::Origin::at(path, 1 + before.iter().filter(|&&b| b == b'\n').count()),
        message: format!(
            "not UTF-8 text: byte {} of the line is 0x{:02x}",
            at - line_start + 1,
            bytes.get(at).copied().unwrap_or(0)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: FileCap = FileCap {
        bytes: 1 << 20,
        what: "a test file",
    };

    #[test]
    fn read_text_reads_up_to_the_cap_and_refuses_more() {
        let d = tempfile::tempdir().unwrap();
        let at = d.path().join("at-cap");
        std::fs::write(&at, "x".repeat(1 << 20)).unwrap();
        assert_eq!(read_text(&at, SMALL).unwrap().len(), 1 << 20);
        let over = d.path().join("over-cap");
        std::fs::write(&over, "x".repeat((1 << 20) + 1)).unwrap();
        let e = read_text(&over, SMALL).unwrap_err();
        assert!(
            matches!(
                e,
                Error::TooLarge {
                    bytes: 1_048_576,
                    ..
                }
            ),
            "{e}"
        );
        let want = format!(
            "{}: larger than 1 MiB, the most migopt reads from a test file (see README, Limits)",
            over.display()
        );
        assert_eq!(e.to_string(), want);
    }

    #[test]
    fn read_text_refuses_an_endless_device_without_reading_it_all() {
        // /dev/zero has length 0 and never ends: the cap is enforced on the bytes read.
        let e = read_text(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: larger than 1 MiB, the most migopt reads from a test file (see README, Limits)"
        );
    }

    /// `text` gzipped, in `members` gzip members (as `cat a.gz b.gz` makes).
    fn gzip(text: &[u8], members: usize) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::new();
        for part in text.chunks(text.len().div_ceil(members).max(1)) {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(part).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    #[test]
    fn a_gzip_file_is_read_whole_recorded_and_capped_after_decoding() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("runs.csv.gz");
        std::fs::write(&f, gzip(b"query,ms\n1,2.5\n2,3.0\n", 2)).unwrap();
        let mut read = Inputs::default();
        assert_eq!(
            read.read_gzip_text(&f, SMALL).unwrap(),
            "query,ms\n1,2.5\n2,3.0\n"
        );
        assert!(read.contains(&f));
        // A bomb: 1 MiB + 1 of zeros is about a kilobyte compressed.
        let bomb = d.path().join("bomb.csv.gz");
        std::fs::write(&bomb, gzip(&vec![b'0'; (1 << 20) + 1], 1)).unwrap();
        let e = read.read_gzip_text(&bomb, SMALL).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        // Not gzip at all, and gzip of non-UTF-8 bytes.
        let plain = d.path().join("plain.csv.gz");
        std::fs::write(&plain, "query,ms\n").unwrap();
        let e = read.read_gzip_text(&plain, SMALL).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not a readable gzip file", plain.display())),
            "{e}"
        );
        let latin = d.path().join("latin.csv.gz");
        std::fs::write(&latin, gzip(b"ok\ncaf\xe9\n", 1)).unwrap();
        let e = read.read_gzip_text(&latin, SMALL).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("not UTF-8 text"), "{e}");
    }

    #[test]
    fn a_repeated_column_is_named_with_both_places() {
        assert_eq!(repeated_column(&["a", "b", "c"]), None);
        assert_eq!(
            repeated_column(&["a", "b", "c", "b"]).unwrap(),
            "column `b` is named twice (columns 2 and 4)"
        );
    }

    #[test]
    fn files_read_are_remembered_by_every_name() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("in.toml");
        std::fs::write(&f, "x").unwrap();
        let link = d.path().join("link.toml");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let dotted = d.path().join(".").join("in.toml");
        let mut read = Inputs::default();
        assert!(!read.contains(&f) && !read.contains(&dotted) && !read.contains(&link));
        read.read_text(&f, SMALL).unwrap();
        assert!(read.contains(&f) && read.contains(&dotted) && read.contains(&link));
        assert!(!read.contains(&d.path().join("other.toml")));
    }

    #[test]
    fn each_inputs_value_holds_only_what_it_read() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.csv"), d.path().join("b.csv"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let (mut one, mut two) = (Inputs::default(), Inputs::default());
        assert_eq!(one.read_text(&a, SMALL).unwrap(), "a");
        assert_eq!(two.read_text(&b, SMALL).unwrap(), "b");
        assert!(one.contains(&a) && !one.contains(&b));
        assert!(two.contains(&b) && !two.contains(&a));
        // The free reader records nothing anywhere.
        assert_eq!(read_text(&b, SMALL).unwrap(), "b");
        assert!(!one.contains(&b));
        // A file refused after it was opened was still read as input; one that cannot be
        // opened was not.
        let mut three = Inputs::default();
        let tiny = FileCap {
            bytes: 0,
            what: "a test file",
        };
        assert!(three.read_text(&a, tiny).is_err());
        assert!(three.read_text(&d.path().join("gone.csv"), SMALL).is_err());
        assert!(three.contains(&a) && !three.contains(&d.path().join("gone.csv")));
        one.extend(two);
        assert!(one.contains(&a) && one.contains(&b));
    }

    #[test]
    fn text_that_is_not_utf8_is_named_at_its_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("latin1.csv");
        std::fs::write(&f, b"a,b\r\nok,1\ncaf\xe9,2\n").unwrap();
        let e = read_text(&f, SMALL).unwrap_err().to_string();
        let want = format!(
            "{}:3: not UTF-8 text: byte 4 of the line is 0xe9",
            f.display()
        );
        assert_eq!(e, want);
    }

    #[test]
    fn read_text_names_the_path_of_a_missing_file_or_a_folder() {
        let d = tempfile::tempdir().unwrap();
        let gone = d.path().join("gone.csv");
        let e = read_text(&gone, SMALL).unwrap_err().to_string();
        assert!(e.starts_with(&gone.display().to_string()), "{e}");
        let e = read_text(d.path(), SMALL).unwrap_err().to_string();
        assert!(e.contains("Is a directory"), "{e}");
    }
}
