//! Release-shaped archives for this host, built from a real binary or from chosen entries.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{binary_name, host_platform};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    TarGz,
    Zip,
}

/// The name of a release archive for this host.
pub fn asset_name(version: &str, format: Format) -> String {
    let (os, arch) = host_platform();
    let ext = match format {
        Format::TarGz => "tar.gz",
        Format::Zip => "zip",
    };
    format!("nats-server-v{version}-{os}-{arch}.{ext}")
}

/// One entry of an archive being built.
pub enum Entry {
    File {
        path: String,
        bytes: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    /// A file entry whose path is written raw, bypassing the builder's own safety checks.
    RawPath {
        path: String,
        bytes: Vec<u8>,
    },
}

/// The entries of an official archive: `<stem>/nats-server`, `LICENSE` and `README.md`.
pub fn release_entries(stem: &str, binary: &Path) -> Vec<Entry> {
    vec![
        Entry::File {
            path: format!("{stem}/{}", binary_name()),
            bytes: fs::read(binary).unwrap(),
            mode: 0o755,
        },
        Entry::File {
            path: format!("{stem}/LICENSE"),
            bytes: b"Apache License 2.0\n".to_vec(),
            mode: 0o644,
        },
        Entry::File {
            path: format!("{stem}/README.md"),
            bytes: b"# NATS Server\n".to_vec(),
            mode: 0o644,
        },
    ]
}

/// Whether this repository pins the official hash of `file` (read from the pins themselves).
pub fn pinned(file: &str) -> bool {
    let pins = Path::new(env!("CARGO_MANIFEST_DIR")).join("pins/nats-server-v2.10.29.sha256");
    let pins = fs::read_to_string(pins).unwrap();
    pins.lines()
        .any(|line| !line.starts_with('#') && line.split_whitespace().nth(1) == Some(file))
}

pub fn stem(version: &str) -> String {
    let (os, arch) = host_platform();
    format!("nats-server-v{version}-{os}-{arch}")
}

/// An official-looking archive of `binary` for this host, built once per test process.
pub fn release_archive(format: Format, version: &str, binary: &Path) -> Vec<u8> {
    type Key = (Format, String, PathBuf);
    static BUILT: Mutex<Option<HashMap<Key, Vec<u8>>>> = Mutex::new(None);
    let key = (format, version.to_string(), binary.to_path_buf());
    if let Some(archive) = BUILT.lock().unwrap().get_or_insert_default().get(&key) {
        return archive.clone();
    }
    let archive = build_archive(format, &release_entries(&stem(version), binary));
    BUILT
        .lock()
        .unwrap()
        .get_or_insert_default()
        .insert(key, archive.clone());
    archive
}

pub fn build_archive(format: Format, entries: &[Entry]) -> Vec<u8> {
    match format {
        Format::TarGz => build_tar_gz(entries),
        Format::Zip => build_zip(entries),
    }
}

fn build_tar_gz(entries: &[Entry]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        match entry {
            Entry::File { path, bytes, mode } => {
                header.set_size(bytes.len() as u64);
                header.set_mode(*mode);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, path, &bytes[..]).unwrap();
            }
            Entry::Symlink { path, target } => {
                header.set_size(0);
                header.set_mode(0o777);
                header.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut header, path, target).unwrap();
            }
            Entry::RawPath { path, bytes } => {
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                tar.append(&header, &bytes[..]).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn build_zip(entries: &[Entry]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for entry in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        match entry {
            Entry::File { path, bytes, mode } => {
                zip.start_file(path.as_str(), options.unix_permissions(*mode))
                    .unwrap();
                zip.write_all(bytes).unwrap();
            }
            Entry::Symlink { path, target } => zip
                .add_symlink(path.as_str(), target.as_str(), options)
                .unwrap(),
            Entry::RawPath { path, bytes } => {
                zip.start_file(path.as_str(), options).unwrap();
                zip.write_all(bytes).unwrap();
            }
        }
    }
    zip.finish().unwrap().into_inner()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
