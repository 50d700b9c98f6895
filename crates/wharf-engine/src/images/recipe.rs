//! Pure image recipes: rootfs entries and a Dockerfile become a deterministic tar context, whose
//! sha256 names the image.

use std::collections::BTreeMap;
use std::io;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::ImageError;

/// One thing in an image's root filesystem. Paths are absolute inside the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file.
    File {
        /// Absolute path, e.g. `/bin/busybox`.
        path: String,
        /// Permission bits, e.g. `0o755`.
        mode: u32,
        /// Contents.
        bytes: Bytes,
    },
    /// A symbolic link.
    Symlink {
        /// Absolute path of the link.
        path: String,
        /// What it points to, as stored.
        target: String,
    },
    /// A directory (parents of other entries are added as `0o755` when not listed).
    Dir {
        /// Absolute path.
        path: String,
        /// Permission bits, e.g. `0o1777`.
        mode: u32,
    },
}

/// An image to build: its reference, the hash of its context, and the context itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecipe {
    /// The tag to build, e.g. `wharf/sidecar:0.1.0-0123456789ab`.
    pub reference: String,
    /// sha256 hex of `context`.
    pub content_hash: String,
    /// A tar archive: `Dockerfile` plus `rootfs/…`.
    pub context: Bytes,
}

/// Permission bits of executables and plain directories.
const EXEC: u32 = 0o755;
/// Permission bits of readable files.
const READ: u32 = 0o644;
/// `/tmp`: world-writable with the sticky bit.
const TMP: u32 = 0o1777;

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Busybox applets linked into the test app image.
const TESTAPP_APPLETS: &[&str] = &[
    "ping",
    "ping6",
    "nslookup",
    "traceroute",
    "sh",
    "cat",
    "echo",
    "ls",
    "pwd",
    "env",
    "sleep",
    "tee",
    "stty",
    "kill",
    "mkdir",
    "rm",
    "id",
    "hostname",
    "head",
    "tail",
    "wc",
    "dd",
    "true",
    "false",
    "ps",
    "yes",
    "printf",
    "test",
    "[",
    "grep",
    "sed",
    "tr",
    "cut",
    "sort",
    "uniq",
    "touch",
    "cp",
    "mv",
    "ln",
    "chmod",
    "date",
    "uname",
    "whoami",
    "nc",
    "wget",
    "tty",
    "stat",
    "find",
    "xargs",
    "seq",
    "md5sum",
    "sha256sum",
];

// === impl ImageRecipe ===

impl ImageRecipe {
    /// A recipe tagged `reference`, whatever its content (e.g. `wharf/testapp:latest`).
    pub fn new(reference: &str, context: Bytes) -> ImageRecipe {
        ImageRecipe { reference: reference.to_owned(), content_hash: sha256_hex(&context), context }
    }

    /// A recipe tagged `<repository>:<wharf version>-<first 12 hex of its hash>`, so each
    /// content gets its own tag.
    pub fn versioned(repository: &str, context: Bytes) -> ImageRecipe {
        let hash = sha256_hex(&context);
        let short = hash.get(..12).unwrap_or(&hash);
        let reference = format!("{repository}:{}-{short}", env!("CARGO_PKG_VERSION"));
        ImageRecipe { reference, content_hash: hash, context }
    }
}

/// The sidecar image: `wharf/sidecar:<version>-<hash12>`, entrypoint `/wharf-sidecar`, with
/// busybox `sh` and `cp` for snapshot helpers.
pub fn sidecar_recipe(sidecar_bin: &[u8], busybox: &[u8]) -> ImageRecipe {
    let mut rootfs =
        vec![file("/wharf-sidecar", EXEC, sidecar_bin), dir("/tmp", TMP), dir("/ca", EXEC)];
    rootfs.extend(busybox_entries(busybox, &["sh", "cp"]));
    rootfs.extend(etc_entries());
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/wharf-sidecar\"]\n";
    ImageRecipe::versioned("wharf/sidecar", fixed_context(&rootfs, dockerfile))
}

/// Where the test app lives in its image: workerd's path, which spec test #28 looks for in
/// `/proc/1/cmdline`.
pub const TESTAPP_PATH: &str = "/images/container-client-test/app";

/// The test app image: `wharf/testapp:latest`, running [`TESTAPP_PATH`] (also reachable as
/// `/testapp`), with the busybox applets a test needs (see `TESTAPP_APPLETS`).
pub fn testapp_recipe(testapp_bin: &[u8], busybox: &[u8]) -> ImageRecipe {
    let mut rootfs = vec![
        file(TESTAPP_PATH, EXEC, testapp_bin),
        Entry::Symlink { path: "/testapp".to_owned(), target: TESTAPP_PATH.to_owned() },
        dir("/tmp", TMP),
    ];
    rootfs.extend(busybox_entries(busybox, TESTAPP_APPLETS));
    rootfs.extend(etc_entries());
    let dockerfile = format!("FROM scratch\nCOPY rootfs/ /\nWORKDIR /\nCMD [\"{TESTAPP_PATH}\"]\n");
    ImageRecipe::new("wharf/testapp:latest", fixed_context(&rootfs, &dockerfile))
}

/// A tar build context: `Dockerfile`, then `rootfs/` holding `rootfs` sorted by path, with
/// missing parent directories added. Every header has mtime 0 and uid/gid 0, so the same
/// inputs always give the same bytes.
pub fn build_context(rootfs: &[Entry], dockerfile: &str) -> Result<Bytes, ImageError> {
    let entries = normalize(rootfs)?;
    let mut tar = tar::Builder::new(Vec::new());
    append_file(&mut tar, "Dockerfile", READ, dockerfile.as_bytes())?;
    append_dir(&mut tar, "rootfs/", EXEC)?;
    for (path, entry) in &entries {
        let in_tar = format!("rootfs/{path}");
        match entry {
            Entry::File { mode, bytes, .. } => append_file(&mut tar, &in_tar, *mode, bytes)?,
            Entry::Dir { mode, .. } => append_dir(&mut tar, &format!("{in_tar}/"), *mode)?,
            Entry::Symlink { target, .. } => append_symlink(&mut tar, &in_tar, target)?,
        }
    }
    let bytes = tar.into_inner().map_err(context_error("<end of archive>"))?;
    Ok(Bytes::from(bytes))
}

/// The context of a built-in recipe, whose entries are fixed and valid.
fn fixed_context(rootfs: &[Entry], dockerfile: &str) -> Bytes {
    match build_context(rootfs, dockerfile) {
        Ok(context) => context,
        // The built-in rootfs lists are constants with absolute, unique paths; the tests
        // build both recipes.
        Err(e) => unreachable!("a built-in image recipe is invalid: {e}"),
    }
}

/// Entries keyed by their path relative to `/`, validated, with implicit parent dirs.
fn normalize(rootfs: &[Entry]) -> Result<BTreeMap<String, Entry>, ImageError> {
    let mut entries = BTreeMap::new();
    for entry in rootfs {
        let relative = relative_path(entry.path())?;
        if entries.insert(relative.to_owned(), entry.clone()).is_some() {
            return Err(invalid(entry.path(), "listed twice"));
        }
    }
    let parents: Vec<String> = entries
        .keys()
        .flat_map(|p| p.match_indices('/').map(|(i, _)| p[..i].to_owned()).collect::<Vec<_>>())
        .collect();
    for parent in parents {
        match entries.get(&parent) {
            None => {
                entries.insert(parent.clone(), dir(&format!("/{parent}"), EXEC));
            }
            Some(Entry::Dir { .. }) => {}
            Some(other) => {
                return Err(invalid(other.path(), "is not a directory but has entries below it"));
            }
        }
    }
    Ok(entries)
}

fn relative_path(path: &str) -> Result<&str, ImageError> {
    let Some(relative) = path.strip_prefix('/') else {
        return Err(invalid(path, "the path must be absolute"));
    };
    let bad = relative.is_empty()
        || relative.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || path.contains('\0');
    if bad {
        return Err(invalid(path, "the path must name a file below / without `.`, `..` or `//`"));
    }
    Ok(relative)
}

fn invalid(path: &str, reason: &'static str) -> ImageError {
    ImageError::InvalidEntry { path: path.to_owned(), reason }
}

fn context_error(path: &str) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Context { path: path.to_owned(), source }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}

fn append_file(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    bytes: &[u8],
) -> Result<(), ImageError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let mut header = header(tar::EntryType::Regular, mode, size);
    tar.append_data(&mut header, path, bytes).map_err(context_error(path))
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> Result<(), ImageError> {
    let mut header = header(tar::EntryType::Directory, mode, 0);
    tar.append_data(&mut header, path, io::empty()).map_err(context_error(path))
}

fn append_symlink(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    target: &str,
) -> Result<(), ImageError> {
    let mut header = header(tar::EntryType::Symlink, 0o777, 0);
    tar.append_link(&mut header, path, target).map_err(context_error(path))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file(path: &str, mode: u32, bytes: &[u8]) -> Entry {
    Entry::File { path: path.to_owned(), mode, bytes: Bytes::copy_from_slice(bytes) }
}

fn dir(path: &str, mode: u32) -> Entry {
    Entry::Dir { path: path.to_owned(), mode }
}

/// `/bin/busybox` and a `/bin/<applet> → busybox` symlink per applet.
fn busybox_entries(busybox: &[u8], applets: &[&str]) -> Vec<Entry> {
    let links = applets.iter().map(|applet| Entry::Symlink {
        path: format!("/bin/{applet}"),
        target: "busybox".to_owned(),
    });
    std::iter::once(file("/bin/busybox", EXEC, busybox)).chain(links).collect()
}

/// `/etc/passwd` and `/etc/group` with root and nobody (65534).
fn etc_entries() -> [Entry; 2] {
    [file("/etc/passwd", READ, PASSWD.as_bytes()), file("/etc/group", READ, GROUP.as_bytes())]
}

// === impl Entry ===

impl Entry {
    /// Its absolute path.
    pub fn path(&self) -> &str {
        match self {
            Entry::File { path, .. } | Entry::Symlink { path, .. } | Entry::Dir { path, .. } => {
                path
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use expect_test::{Expect, expect};

    use super::*;

    /// One line per tar entry: type, mode, path, and size or link target.
    fn listing(context: &[u8]) -> String {
        let mut archive = tar::Archive::new(context);
        let mut out = String::new();
        for entry in archive.entries().expect("a tar") {
            let mut entry = entry.expect("an entry");
            let header = entry.header().clone();
            let path = entry.path().expect("a path").display().to_string();
            let mode = header.mode().expect("a mode");
            let (uid, gid, mtime) = (header.uid().ok(), header.gid().ok(), header.mtime().ok());
            assert_eq!((uid, gid, mtime), (Some(0), Some(0), Some(0)), "{path}");
            let detail = match header.entry_type() {
                tar::EntryType::Symlink => {
                    format!("-> {}", entry.link_name().ok().flatten().expect("a target").display())
                }
                _ => {
                    let mut body = Vec::new();
                    entry.read_to_end(&mut body).expect("a body");
                    format!("{} bytes", body.len())
                }
            };
            let kind = format!("{:?}", header.entry_type());
            out.push_str(&format!("{kind:<9} {mode:04o} {path} {detail}\n"));
        }
        out
    }

    fn check_listing(recipe: &ImageRecipe, expected: Expect) {
        expected.assert_eq(&listing(&recipe.context));
    }

    #[test]
    fn sidecar_context_lists_its_rootfs() {
        let recipe = sidecar_recipe(b"SIDECAR", b"BUSYBOX!");
        check_listing(
            &recipe,
            expect![[r#"
                Regular   0644 Dockerfile 58 bytes
                Directory 0755 rootfs/ 0 bytes
                Directory 0755 rootfs/bin/ 0 bytes
                Regular   0755 rootfs/bin/busybox 8 bytes
                Symlink   0777 rootfs/bin/cp -> busybox
                Symlink   0777 rootfs/bin/sh -> busybox
                Directory 0755 rootfs/ca/ 0 bytes
                Directory 0755 rootfs/etc/ 0 bytes
                Regular   0644 rootfs/etc/group 27 bytes
                Regular   0644 rootfs/etc/passwd 82 bytes
                Directory 1777 rootfs/tmp/ 0 bytes
                Regular   0755 rootfs/wharf-sidecar 7 bytes
            "#]],
        );
        let short = &recipe.content_hash[..12];
        assert_eq!(
            recipe.reference,
            format!("wharf/sidecar:{}-{short}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn testapp_context_links_every_applet() {
        let recipe = testapp_recipe(b"APP", b"BUSYBOX!");
        assert_eq!(recipe.reference, "wharf/testapp:latest");
        let listing = listing(&recipe.context);
        for applet in TESTAPP_APPLETS {
            assert!(listing.contains(&format!("rootfs/bin/{applet} -> busybox\n")), "{applet}");
        }
        assert!(listing.contains("Directory 1777 rootfs/tmp/"));
        assert!(listing.contains("Regular   0755 rootfs/images/container-client-test/app 3 bytes"));
        assert!(listing.contains("rootfs/testapp -> /images/container-client-test/app\n"));
        assert!(!listing.contains("rootfs/ca/"));
        let mut archive = tar::Archive::new(&recipe.context[..]);
        let mut dockerfile = String::new();
        let mut first = archive.entries().expect("tar").next().expect("an entry").expect("ok");
        first.read_to_string(&mut dockerfile).expect("utf-8");
        expect![[r#"
            FROM scratch
            COPY rootfs/ /
            WORKDIR /
            CMD ["/images/container-client-test/app"]
        "#]]
        .assert_eq(&dockerfile);
    }

    #[test]
    fn contexts_are_deterministic() {
        let a = sidecar_recipe(b"SIDECAR", b"BUSYBOX");
        assert_eq!(a, sidecar_recipe(b"SIDECAR", b"BUSYBOX"));
        let b = sidecar_recipe(b"SIDECAR v2", b"BUSYBOX");
        assert_ne!(a.content_hash, b.content_hash);
        assert_ne!(a.reference, b.reference);
        assert_eq!(a.content_hash, sha256_hex(&a.context));
        assert_eq!(a.content_hash.len(), 64);

        let app = testapp_recipe(b"APP", b"BUSYBOX");
        let app2 = testapp_recipe(b"APP2", b"BUSYBOX");
        assert_ne!(app.content_hash, app2.content_hash);
        assert_eq!(app.reference, app2.reference, "the test app keeps its tag");
    }

    #[test]
    fn entry_order_does_not_matter() {
        let entries = [dir("/tmp", TMP), file("/a/b", READ, b"x")];
        let reversed = [file("/a/b", READ, b"x"), dir("/tmp", TMP)];
        assert_eq!(
            build_context(&entries, "FROM scratch\n").ok(),
            build_context(&reversed, "FROM scratch\n").ok()
        );
    }

    #[test]
    fn long_paths_fit() {
        let long = format!("/{}/file", "d".repeat(150));
        let context = build_context(&[file(&long, READ, b"x")], "FROM scratch\n").expect("builds");
        assert!(listing(&context).contains(&format!("rootfs{long} 1 bytes")));
    }

    fn check_invalid(entries: &[Entry], expected: Expect) {
        let err = build_context(entries, "FROM scratch\n").map(|_| ());
        expected.assert_eq(&format!("{}", err.expect_err("rejected")));
    }

    #[test]
    fn invalid_entries() {
        check_invalid(
            &[file("bin/x", READ, b"")],
            expect![[r#"invalid rootfs entry "bin/x": the path must be absolute"#]],
        );
        check_invalid(
            &[file("/", READ, b"")],
            expect![[
                r#"invalid rootfs entry "/": the path must name a file below / without `.`, `..` or `//`"#
            ]],
        );
        check_invalid(
            &[file("/a/../b", READ, b"")],
            expect![[
                r#"invalid rootfs entry "/a/../b": the path must name a file below / without `.`, `..` or `//`"#
            ]],
        );
        check_invalid(
            &[file("/a//b", READ, b"")],
            expect![[
                r#"invalid rootfs entry "/a//b": the path must name a file below / without `.`, `..` or `//`"#
            ]],
        );
        check_invalid(
            &[dir("/a", EXEC), dir("/a", TMP)],
            expect![[r#"invalid rootfs entry "/a": listed twice"#]],
        );
        check_invalid(
            &[file("/a", READ, b""), file("/a/b", READ, b"")],
            expect![[r#"invalid rootfs entry "/a": is not a directory but has entries below it"#]],
        );
    }
}
