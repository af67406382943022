//! The manifest: what an image is, for which device, and the files it carries.
//!
//! Format, version 2 (integers big-endian; the release keys sign its SHA-512, see
//! [`crate::keys`]):
//!
//! ```text
//! length  content
//!      4  magic "TSFM"
//!      1  manifest version, 2
//!      1  product length P (1..=64), then P bytes of printable ASCII
//!      1  hardware id length H (1..=64), then H bytes of printable ASCII
//!     12  semantic version: major, minor, patch (u32 each)
//!      8  rollback index
//!      8  build time (Unix seconds)
//!      8  payload size (at most MAX_PAYLOAD_LEN; the sum of the file sizes)
//!     64  payload digest (see below)
//!      1  key set follows: 0 or 1 (a rotation: the release keys that sign later images)
//!         [threshold (1), count (1, at most 16), count × 32-byte Ed25519 keys]
//!      4  file count F (at most MAX_FILES)
//!         F × [path length (u16, 1..=MAX_PATH_LEN), path (UTF-8), flags (bit 0: executable;
//!              other bits 0), size (u64), SHA-512 (64)]
//! ```
//!
//! Nothing may follow the last file. Paths are relative, `/`-separated and normal: no empty,
//! `.` or `..` component, no leading or trailing `/`, no backslash or control character, each
//! component at most 255 bytes; the list is sorted by path bytes, without duplicates, and no
//! file is also a directory of another. The payload is the files' bytes in list order. Every
//! length and count is checked against its bound before it is used.
//!
//! The payload digest ([`payload_digest`]) is the SHA-512 of [`PAYLOAD_DIGEST_TAG`], the file
//! count (u32) and each file's record exactly as in the list above (path length, path, flags,
//! size, the SHA-512 of the file's bytes). It commits to every payload byte through the file
//! digests, and lets a verifier hash each byte once, files in parallel (version 1 hashed the
//! payload's bytes a second time, in one sequential stream).

use std::collections::HashSet;
use std::fmt;

use sha2::{Digest, Sha512};

use crate::error::Refusal;
use crate::keys::ReleaseKeySet;
use crate::wire::Reader;

/// The manifest's first four bytes.
pub const MANIFEST_MAGIC: [u8; 4] = *b"TSFM";

/// The manifest version this build writes and reads.
pub const MANIFEST_VERSION: u8 = 2;

/// What the payload digest hashes first, so that it can never be mistaken for the SHA-512 of
/// other bytes.
pub const PAYLOAD_DIGEST_TAG: &[u8] = b"tessera firmware payload v2\n";

/// The longest product name or hardware id.
pub const MAX_NAME_LEN: usize = 64;

/// The most files in an image.
pub const MAX_FILES: usize = 2048;

/// The longest path in the file list, in bytes.
pub const MAX_PATH_LEN: usize = 255;

/// The largest payload (1 GiB).
pub const MAX_PAYLOAD_LEN: u64 = 1 << 30;

/// The largest manifest: the fixed part, a key set and the longest file list fit.
pub const MAX_MANIFEST_LEN: usize = 1 << 20;

/// Flag bit: the file is executable.
pub const FLAG_EXECUTABLE: u8 = 0x01;

/// A semantic version (major.minor.patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SemVer {
    /// Incompatible changes.
    pub major: u32,
    /// Compatible features.
    pub minor: u32,
    /// Fixes.
    pub patch: u32,
}

impl SemVer {
    /// Parses `MAJOR.MINOR.PATCH` (decimal, no leading `+`, no pre-release part).
    pub fn parse(text: &str) -> Option<SemVer> {
        let mut parts = text.split('.');
        let mut next = || -> Option<u32> {
            let p = parts.next()?;
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                return None;
            }
            p.parse().ok()
        };
        let v = SemVer {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// One file of the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative, normal path inside the slot.
    pub path: String,
    /// Whether the file is executable.
    pub executable: bool,
    /// Size in bytes.
    pub size: u64,
    /// SHA-512 of the file's bytes.
    pub sha512: [u8; 64],
}

/// A parsed, well-formed manifest (its signatures are checked elsewhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The product, e.g. `tessera-terminal`.
    pub product: String,
    /// The device model this image is for.
    pub hardware_id: String,
    /// The release's version.
    pub version: SemVer,
    /// Anti-rollback: a device refuses images below its floor, which rises to this index once
    /// the image has confirmed its first start.
    pub rollback_index: u64,
    /// Build time, Unix seconds.
    pub build_time: u64,
    /// The payload's length.
    pub payload_size: u64,
    /// The payload digest: SHA-512 over the file records ([`payload_digest`]).
    pub payload_sha512: [u8; 64],
    /// A new release key set, effective once this image is confirmed on a device.
    pub new_key_set: Option<ReleaseKeySet>,
    /// The files, sorted by path.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// The canonical bytes. The manifest must be well-formed ([`Manifest::check`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.files.len() * (MAX_PATH_LEN + 75));
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.push(MANIFEST_VERSION);
        for name in [&self.product, &self.hardware_id] {
            // At most MAX_NAME_LEN (64), checked.
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
        for n in [self.version.major, self.version.minor, self.version.patch] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.rollback_index.to_be_bytes());
        out.extend_from_slice(&self.build_time.to_be_bytes());
        out.extend_from_slice(&self.payload_size.to_be_bytes());
        out.extend_from_slice(&self.payload_sha512);
        match &self.new_key_set {
            None => out.push(0),
            Some(set) => {
                out.push(1);
                set.encode_into(&mut out);
            }
        }
        // At most MAX_FILES, checked.
        out.extend_from_slice(&(self.files.len() as u32).to_be_bytes());
        for f in &self.files {
            out.extend_from_slice(&record(f, &f.sha512));
        }
        out
    }

    /// Parses and checks a manifest. Refuses anything malformed, and names the path of any file
    /// that could leave its slot ([`Refusal::PathEscape`]).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, Refusal> {
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(Refusal::Oversize {
                what: "manifest length",
                len: bytes.len() as u64,
                max: MAX_MANIFEST_LEN as u64,
            });
        }
        let manifest = parse_fields(bytes).map_err(|reason| Refusal::Manifest { reason })?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Checks what [`Manifest::parse`] checks beyond the encoding: names, paths, order, sizes.
    pub fn check(&self) -> Result<(), Refusal> {
        let bad = |reason: String| Err(Refusal::Manifest { reason });
        for (what, name) in [
            ("product", &self.product),
            ("hardware id", &self.hardware_id),
        ] {
            if name.is_empty()
                || name.len() > MAX_NAME_LEN
                || !name.bytes().all(|b| (0x21..0x7f).contains(&b))
            {
                return bad(format!(
                    "the {what} must be 1 to {MAX_NAME_LEN} printable ASCII characters without spaces"
                ));
            }
        }
        if self.files.len() > MAX_FILES {
            return Err(Refusal::Oversize {
                what: "file count",
                len: self.files.len() as u64,
                max: MAX_FILES as u64,
            });
        }
        if self.payload_size > MAX_PAYLOAD_LEN {
            return Err(Refusal::Oversize {
                what: "payload size",
                len: self.payload_size,
                max: MAX_PAYLOAD_LEN,
            });
        }
        let mut total: u64 = 0;
        let mut files = HashSet::with_capacity(self.files.len());
        let mut dirs = HashSet::new();
        for (i, f) in self.files.iter().enumerate() {
            check_path(&f.path)?;
            if i > 0 && self.files[i - 1].path.as_bytes() >= f.path.as_bytes() {
                return bad(format!(
                    "the file list is not sorted or lists {:?} twice",
                    f.path
                ));
            }
            total = total.saturating_add(f.size);
            files.insert(f.path.as_str());
            let mut at = 0;
            while let Some(slash) = f.path[at..].find('/') {
                dirs.insert(&f.path[..at + slash]);
                at += slash + 1;
            }
        }
        if let Some(both) = files.iter().find(|p| dirs.contains(*p)) {
            return bad(format!("{both:?} is both a file and a directory"));
        }
        if total != self.payload_size {
            return bad(format!(
                "the files add up to {total} bytes but the payload size is {}",
                self.payload_size
            ));
        }
        Ok(())
    }

    /// The file list's entry for `path`.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// A file's record in the list, with `sha512` as its digest. The path is at most
/// MAX_PATH_LEN bytes (checked by [`Manifest::check`]).
fn record(f: &FileEntry, sha512: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(f.path.len() + 75);
    out.extend_from_slice(&(f.path.len() as u16).to_be_bytes());
    out.extend_from_slice(f.path.as_bytes());
    out.push(if f.executable { FLAG_EXECUTABLE } else { 0 });
    out.extend_from_slice(&f.size.to_be_bytes());
    out.extend_from_slice(sha512);
    out
}

/// The payload digest a manifest carries for `files` (see the module's documentation).
pub fn payload_digest(files: &[FileEntry]) -> [u8; 64] {
    records_digest(files, files.iter().map(|f| &f.sha512))
}

/// The payload digest of `files` with `hashed` as their digests (what the bytes hashed to),
/// in the same order.
pub(crate) fn records_digest<'a>(
    files: &[FileEntry],
    hashed: impl IntoIterator<Item = &'a [u8; 64]>,
) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(PAYLOAD_DIGEST_TAG);
    // At most MAX_FILES, checked.
    h.update((files.len() as u32).to_be_bytes());
    for (f, sha512) in files.iter().zip(hashed) {
        h.update(record(f, sha512));
    }
    h.finalize().into()
}

fn parse_fields(bytes: &[u8]) -> Result<Manifest, String> {
    let mut r = Reader::new(bytes);
    if r.array::<4>("magic")? != MANIFEST_MAGIC {
        return Err("it does not start with the magic TSFM".to_owned());
    }
    check_version(r.u8("version")?)?;
    let product = name(&mut r, "product")?;
    let hardware_id = name(&mut r, "hardware id")?;
    let version = SemVer {
        major: r.u32("version")?,
        minor: r.u32("version")?,
        patch: r.u32("version")?,
    };
    let rollback_index = r.u64("rollback index")?;
    let build_time = r.u64("build time")?;
    let payload_size = r.u64("payload size")?;
    let payload_sha512 = r.array("payload digest")?;
    let new_key_set = match r.u8("key set flag")? {
        0 => None,
        1 => Some(ReleaseKeySet::parse_from(&mut r)?),
        n => return Err(format!("the key set flag is {n}, not 0 or 1")),
    };
    let files = files(&mut r)?;
    if !r.is_empty() {
        return Err("bytes follow the last file".to_owned());
    }
    Ok(Manifest {
        product,
        hardware_id,
        version,
        rollback_index,
        build_time,
        payload_size,
        payload_sha512,
        new_key_set,
        files,
    })
}

/// This build reads one manifest version; an older or newer one says which tool to use.
fn check_version(version: u8) -> Result<(), String> {
    if version < MANIFEST_VERSION {
        return Err(format!(
            "manifest version {version} is an older format than this build reads \
             ({MANIFEST_VERSION}); build the image again with this tool"
        ));
    }
    if version != MANIFEST_VERSION {
        return Err(format!(
            "manifest version {version} is not one this build reads ({MANIFEST_VERSION}); use a \
             newer tool"
        ));
    }
    Ok(())
}

/// The file list: its count bounded before anything is allocated, each path and size bounded.
fn files(r: &mut Reader<'_>) -> Result<Vec<FileEntry>, String> {
    let count = r.u32("file count")?;
    if count as usize > MAX_FILES {
        return Err(format!(
            "it lists {count} files, above the bound of {MAX_FILES}"
        ));
    }
    let mut files = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = usize::from(r.u16("path length")?);
        if len == 0 || len > MAX_PATH_LEN {
            return Err(format!(
                "a path is {len} bytes; paths are 1 to {MAX_PATH_LEN} bytes"
            ));
        }
        let path = std::str::from_utf8(r.take(len, "path")?)
            .map_err(|_| "a path is not UTF-8".to_owned())?
            .to_owned();
        let flags = r.u8("file flags")?;
        if flags & !FLAG_EXECUTABLE != 0 {
            return Err(format!("the file {path:?} has unknown flags {flags:#04x}"));
        }
        let size = r.u64("file size")?;
        if size > MAX_PAYLOAD_LEN {
            return Err(format!(
                "the file {path:?} is larger than the payload may be"
            ));
        }
        files.push(FileEntry {
            path,
            executable: flags & FLAG_EXECUTABLE != 0,
            size,
            sha512: r.array("file digest")?,
        });
    }
    Ok(files)
}

fn name(r: &mut Reader<'_>, what: &'static str) -> Result<String, String> {
    let len = usize::from(r.u8(what)?);
    if len == 0 || len > MAX_NAME_LEN {
        return Err(format!(
            "the {what} is {len} bytes; it must be 1 to {MAX_NAME_LEN}"
        ));
    }
    String::from_utf8(r.take(len, what)?.to_vec()).map_err(|_| format!("the {what} is not UTF-8"))
}

/// Refuses a path that is not relative and normal, or that could leave the slot.
pub fn check_path(path: &str) -> Result<(), Refusal> {
    let refuse = |reason| {
        Err(Refusal::PathEscape {
            path: path.escape_debug().to_string(),
            reason,
        })
    };
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return refuse("is empty or longer than 255 bytes");
    }
    if path.starts_with('/') {
        return refuse("is absolute");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return refuse("holds a control character or a backslash");
    }
    for component in path.split('/') {
        match component {
            "" => return refuse("has an empty component (a doubled or trailing slash)"),
            "." => return refuse("has a '.' component"),
            ".." => return refuse("climbs out with '..'"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_leave_the_slot_are_refused() {
        for good in [
            "tessera",
            "bin/tessera",
            "assets/help/en.txt",
            "a..b",
            ".hidden",
        ] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "./a",
            "a/.",
            "a\\..\\b",
            "a\nb",
        ] {
            let e = check_path(bad).unwrap_err();
            assert_eq!(e.name(), "path-escape", "{bad}");
        }
        assert!(check_path(&"x".repeat(256)).is_err());
    }

    fn entry(path: &str, size: u64, fill: u8) -> FileEntry {
        FileEntry {
            path: path.to_owned(),
            executable: false,
            size,
            sha512: [fill; 64],
        }
    }

    #[test]
    fn the_payload_digest_commits_to_every_field_of_every_record_and_their_order() {
        let files = vec![entry("a", 3, 1), entry("b/c", 0, 2)];
        let base = payload_digest(&files);
        let mut changes: Vec<Vec<FileEntry>> = Vec::new();
        let mut c = files.clone();
        c[1].path = "b/d".to_owned();
        changes.push(c);
        let mut c = files.clone();
        c[0].executable = true;
        changes.push(c);
        let mut c = files.clone();
        c[0].size = 4;
        changes.push(c);
        let mut c = files.clone();
        c[1].sha512[63] ^= 1;
        changes.push(c);
        changes.push(vec![files[1].clone(), files[0].clone()]);
        changes.push(vec![files[0].clone()]);
        for (i, changed) in changes.iter().enumerate() {
            assert_ne!(payload_digest(changed), base, "change {i}");
        }
        // Neither the plain SHA-512 of the records nor of nothing.
        let mut plain = Sha512::new();
        plain.update(2u32.to_be_bytes());
        for f in &files {
            plain.update(record(f, &f.sha512));
        }
        assert_ne!(<[u8; 64]>::from(plain.finalize()), base);
        assert_ne!(payload_digest(&[]), <[u8; 64]>::from(Sha512::digest(b"")));
    }

    #[test]
    fn a_version_1_manifest_is_refused_as_an_older_format() {
        let manifest = Manifest {
            product: "tessera-terminal".to_owned(),
            hardware_id: "tessera-t1".to_owned(),
            version: SemVer {
                major: 1,
                minor: 0,
                patch: 0,
            },
            rollback_index: 1,
            build_time: 0,
            payload_size: 3,
            payload_sha512: [0; 64],
            new_key_set: None,
            files: vec![entry("a", 3, 1)],
        };
        let mut bytes = manifest.encode();
        assert_eq!(Manifest::parse(&bytes), Ok(manifest));
        bytes[4] = 1;
        let e = Manifest::parse(&bytes).unwrap_err();
        assert!(e.to_string().contains("older format"), "{e}");
        bytes[4] = 3;
        let e = Manifest::parse(&bytes).unwrap_err();
        assert!(e.to_string().contains("newer tool"), "{e}");
    }

    #[test]
    fn semver_parses_only_three_plain_numbers() {
        assert_eq!(
            SemVer::parse("1.20.3"),
            Some(SemVer {
                major: 1,
                minor: 20,
                patch: 3
            })
        );
        for bad in [
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.-3",
            "1.2.3-rc1",
            "",
            "a.b.c",
        ] {
            assert_eq!(SemVer::parse(bad), None, "{bad}");
        }
        assert!(SemVer::parse("1.2.3") < SemVer::parse("1.10.0"));
    }
}
