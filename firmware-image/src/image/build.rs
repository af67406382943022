//! Building an unsigned image from a directory (the terminal's root: the `tessera` binary,
//! assets, default configuration) and a manifest template.
//!
//! Template (TOML):
//!
//! ```toml
//! product = "tessera-terminal"
//! hardware_id = "tessera-t1"
//! version = "1.4.0"
//! rollback_index = 7
//! # build_time = 1767225600        # Unix seconds; else the caller's (SOURCE_DATE_EPOCH or now)
//! # [new_key_set]                   # a release key rotation, effective once confirmed
//! # threshold = 2
//! # keys = ["<64 hex digits>", ...]
//! ```
//!
//! Only regular files and directories are taken; a symbolic link or any other kind of file is
//! refused (an image never carries a link that could point out of its slot). Files are listed
//! sorted by path; the executable bit is kept. Each file is hashed when listed and again when
//! copied, so a file that changes during the build fails it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

use super::{write_head, write_signature_block};
use crate::error::FirmwareError;
use crate::fsutil::write_atomically;
use crate::keys::{ReleaseKeySet, read_bounded_text};
use crate::manifest::{
    FileEntry, MAX_FILES, MAX_PAYLOAD_LEN, Manifest, SemVer, check_path, payload_digest,
};
use crate::wire::parse_hex;

/// The largest template read.
pub const MAX_TEMPLATE_LEN: u64 = 64 * 1024;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    product: String,
    hardware_id: String,
    version: String,
    rollback_index: u64,
    build_time: Option<u64>,
    new_key_set: Option<TemplateKeySet>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateKeySet {
    threshold: usize,
    keys: Vec<String>,
}

/// Builds an unsigned image of the files under `dir` described by the template at `template`,
/// writes it atomically to `out`, and returns its manifest. `build_time` is used unless the
/// template sets one.
pub fn build_image(
    dir: &Path,
    template: &Path,
    build_time: u64,
    out: &Path,
) -> Result<Manifest, FirmwareError> {
    let bad = |path: &Path, reason: String| FirmwareError::Build {
        path: path.to_owned(),
        reason,
    };
    let text = read_bounded_text(template, MAX_TEMPLATE_LEN)?;
    let t: Template = toml::from_str(&text).map_err(|e| bad(template, e.to_string()))?;
    let version = SemVer::parse(&t.version).ok_or_else(|| {
        bad(
            template,
            format!("version {:?} is not MAJOR.MINOR.PATCH", t.version),
        )
    })?;
    let new_key_set = t
        .new_key_set
        .map(|k| {
            let keys = k
                .keys
                .iter()
                .map(|h| parse_hex::<32>(h).ok_or_else(|| format!("{h:?} is not 64 hex digits")))
                .collect::<Result<Vec<_>, _>>()?;
            ReleaseKeySet::new(k.threshold, keys)
        })
        .transpose()
        .map_err(|e| bad(template, format!("new_key_set: {e}")))?;

    let mut sources = Vec::new();
    collect(dir, dir, &mut sources)?;
    sources.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut files = Vec::with_capacity(sources.len());
    let mut total: u64 = 0;
    for (rel, path, executable) in &sources {
        let (size, sha512) = hash_file(path)?;
        total = total.saturating_add(size);
        if total > MAX_PAYLOAD_LEN {
            return Err(bad(
                dir,
                format!("the files exceed the {MAX_PAYLOAD_LEN}-byte payload bound"),
            ));
        }
        files.push(FileEntry {
            path: rel.clone(),
            executable: *executable,
            size,
            sha512,
        });
    }
    let manifest = Manifest {
        product: t.product,
        hardware_id: t.hardware_id,
        version,
        rollback_index: t.rollback_index,
        build_time: t.build_time.unwrap_or(build_time),
        payload_size: total,
        payload_sha512: payload_digest(&files),
        new_key_set,
        files,
    };
    manifest
        .check()
        .map_err(|refusal| bad(template, refusal.to_string()))?;
    let manifest_bytes = manifest.encode();
    write_atomically(out, |w| {
        let mut w = BufWriter::new(w);
        write_head(&mut w, &manifest_bytes, total)?;
        for ((_, path, _), entry) in sources.iter().zip(&manifest.files) {
            copy_checked(path, entry, &mut w)?;
        }
        write_signature_block(&mut w, &[])?;
        w.flush()
    })?;
    Ok(manifest)
}

/// Lists the regular files under `dir` as (relative path, path, executable).
fn collect(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf, bool)>,
) -> Result<(), FirmwareError> {
    let bad = |path: &Path, reason: String| FirmwareError::Build {
        path: path.to_owned(),
        reason,
    };
    for entry in fs::read_dir(dir).map_err(FirmwareError::io("listing", dir))? {
        let entry = entry.map_err(FirmwareError::io("listing", dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(FirmwareError::io("reading", &path))?;
        if meta.is_dir() {
            collect(root, &path, out)?;
            continue;
        }
        if !meta.is_file() {
            return Err(bad(
                &path,
                "it is a symbolic link or a special file; an image carries regular files only \
                 (copy a link's target in its place)"
                    .to_owned(),
            ));
        }
        if out.len() >= MAX_FILES {
            return Err(bad(root, format!("more than {MAX_FILES} files")));
        }
        let rel = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| {
                p.components()
                    .map(|c| c.as_os_str().to_str())
                    .collect::<Option<Vec<_>>>()
            })
            .map(|parts| parts.join("/"))
            .ok_or_else(|| bad(&path, "its path is not UTF-8".to_owned()))?;
        check_path(&rel).map_err(|refusal| bad(&path, refusal.to_string()))?;
        out.push((rel, path, meta.permissions().mode() & 0o111 != 0));
    }
    Ok(())
}

/// A file's size and SHA-512.
fn hash_file(path: &Path) -> Result<(u64, [u8; 64]), FirmwareError> {
    let mut file = File::open(path).map_err(FirmwareError::io("opening", path))?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(FirmwareError::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        if size > MAX_PAYLOAD_LEN {
            return Err(FirmwareError::Build {
                path: path.to_owned(),
                reason: format!("larger than the {MAX_PAYLOAD_LEN}-byte payload bound"),
            });
        }
    }
    Ok((size, hasher.finalize().into()))
}

/// Copies `path` into the image, refusing it if it no longer matches `entry`.
fn copy_checked<W: Write>(path: &Path, entry: &FileEntry, w: &mut W) -> io::Result<()> {
    let file = File::open(path)?;
    let mut hasher = Sha512::new();
    let mut reader = file.take(entry.size + 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > entry.size {
            break;
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
    }
    if size != entry.size || <[u8; 64]>::from(hasher.finalize()) != entry.sha512 {
        return Err(io::Error::other(format!(
            "{} changed while the image was built; build again",
            path.display()
        )));
    }
    Ok(())
}
