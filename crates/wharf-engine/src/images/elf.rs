//! A pure check that a binary can run in a `FROM scratch` image: a 64-bit ELF without a
//! `PT_INTERP` program header (no dynamic loader needed).

use std::io;
use std::path::Path;

use super::ImageError;

/// How an ELF executable is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// No interpreter: runs on its own (static, or static-pie).
    Static,
    /// Names an interpreter (`ld-linux…`), which a scratch image does not have.
    Dynamic,
}

/// Why bytes are not an ELF64 executable we can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// No ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// A 32-bit (or unknown class) ELF file.
    #[error("not a 64-bit ELF file")]
    Not64Bit,
    /// Neither little- nor big-endian.
    #[error("unknown ELF byte order")]
    ByteOrder,
    /// The header or program headers run past the end of the file.
    #[error("truncated ELF file")]
    Truncated,
}

/// `PT_INTERP`: the program header naming the dynamic loader.
const PT_INTERP: u32 = 3;
/// Size of the ELF64 file header.
const EHDR_LEN: usize = 64;

/// Reads `path` and checks that it is a static ELF64 executable (see [`linkage`]).
pub fn load_busybox(path: &Path) -> Result<Vec<u8>, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ImageError::BusyboxMissing { path: path.to_owned() },
        _ => ImageError::BusyboxRead { path: path.to_owned(), source },
    })?;
    match linkage(&bytes) {
        Ok(Linkage::Static) => Ok(bytes),
        Ok(Linkage::Dynamic) => Err(ImageError::BusyboxDynamic { path: path.to_owned() }),
        Err(source) => Err(ImageError::BusyboxNotElf { path: path.to_owned(), source }),
    }
}

/// Whether the ELF64 image in `bytes` needs a dynamic loader, from its program headers.
pub fn linkage(bytes: &[u8]) -> Result<Linkage, ElfError> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::NotElf);
    }
    match bytes.get(4) {
        Some(2) => {}
        Some(_) => return Err(ElfError::Not64Bit),
        None => return Err(ElfError::Truncated),
    }
    let order = match bytes.get(5) {
        Some(1) => Order::Little,
        Some(2) => Order::Big,
        Some(_) => return Err(ElfError::ByteOrder),
        None => return Err(ElfError::Truncated),
    };
    if bytes.len() < EHDR_LEN {
        return Err(ElfError::Truncated);
    }
    let phoff = order.u64(bytes, 0x20)?;
    let phentsize = u64::from(order.u16(bytes, 0x36)?);
    let phnum = u64::from(order.u16(bytes, 0x38)?);
    if phnum > 0 && phentsize < 4 {
        return Err(ElfError::Truncated);
    }
    for index in 0..phnum {
        let offset = index
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or(ElfError::Truncated)?;
        if order.u32(bytes, offset)? == PT_INTERP {
            return Ok(Linkage::Dynamic);
        }
    }
    Ok(Linkage::Static)
}

#[derive(Debug, Clone, Copy)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], ElfError> {
        let end = at.checked_add(N).ok_or(ElfError::Truncated)?;
        let slice = bytes.get(at..end).ok_or(ElfError::Truncated)?;
        <[u8; N]>::try_from(slice).map_err(|_| ElfError::Truncated)
    }

    fn u16(self, bytes: &[u8], at: usize) -> Result<u16, ElfError> {
        let raw = Self::array(bytes, at)?;
        Ok(match self {
            Order::Little => u16::from_le_bytes(raw),
            Order::Big => u16::from_be_bytes(raw),
        })
    }

    fn u32(self, bytes: &[u8], at: usize) -> Result<u32, ElfError> {
        let raw = Self::array(bytes, at)?;
        Ok(match self {
            Order::Little => u32::from_le_bytes(raw),
            Order::Big => u32::from_be_bytes(raw),
        })
    }

    fn u64(self, bytes: &[u8], at: usize) -> Result<u64, ElfError> {
        let raw = Self::array(bytes, at)?;
        Ok(match self {
            Order::Little => u64::from_le_bytes(raw),
            Order::Big => u64::from_be_bytes(raw),
        })
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// A little-endian ELF64 header followed by program headers of `types`.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; EHDR_LEN];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[0x20..0x28].copy_from_slice(&(EHDR_LEN as u64).to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for ty in types {
            let mut phdr = vec![0u8; 56];
            phdr[..4].copy_from_slice(&ty.to_le_bytes());
            bytes.extend(phdr);
        }
        bytes
    }

    fn check(bytes: &[u8], expected: Expect) {
        expected.assert_eq(&format!("{:?}", linkage(bytes)));
    }

    #[test]
    fn linkages() {
        // PT_LOAD, PT_NOTE, PT_GNU_STACK: a static binary.
        check(&elf(&[1, 4, 0x6474_e551]), expect!["Ok(Static)"]);
        // PT_PHDR, PT_INTERP, PT_LOAD: a dynamic one.
        check(&elf(&[6, 3, 1]), expect!["Ok(Dynamic)"]);
        check(&elf(&[]), expect!["Ok(Static)"]);

        let mut big = elf(&[]);
        big[5] = 2;
        big[0x20..0x28].copy_from_slice(&64u64.to_be_bytes());
        big[0x36..0x38].copy_from_slice(&56u16.to_be_bytes());
        big[0x38..0x3a].copy_from_slice(&1u16.to_be_bytes());
        big.extend(3u32.to_be_bytes());
        big.extend([0u8; 52]);
        check(&big, expect!["Ok(Dynamic)"]);
    }

    #[test]
    fn rejects() {
        check(b"#!/bin/sh\necho hi\n", expect!["Err(NotElf)"]);
        check(b"", expect!["Err(NotElf)"]);
        let mut elf32 = elf(&[]);
        elf32[4] = 1;
        check(&elf32, expect!["Err(Not64Bit)"]);
        let mut odd = elf(&[]);
        odd[5] = 7;
        check(&odd, expect!["Err(ByteOrder)"]);
        check(&elf(&[1])[..40], expect!["Err(Truncated)"]);
        check(&elf(&[1, 3])[..EHDR_LEN + 56 + 3], expect!["Err(Truncated)"]);
        let mut far = elf(&[1]);
        far[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        check(&far, expect!["Err(Truncated)"]);
    }

    #[test]
    fn every_prefix_of_a_dynamic_header_is_handled() {
        let full = elf(&[1, 3]);
        // The answer is known once the second program header's type is readable.
        let known = EHDR_LEN + 56 + 4;
        for end in 0..=full.len() {
            let expected = if end < known { None } else { Some(Linkage::Dynamic) };
            assert_eq!(linkage(&full[..end]).ok(), expected, "prefix {end}");
        }
    }

    #[test]
    fn busybox_errors_say_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("busybox");
        let err = load_busybox(&missing).map(drop).expect_err("missing");
        assert!(err.to_string().ends_with(
            "install Debian's busybox-static (apt-get install busybox-static) or pass --busybox PATH"
        ));
        std::fs::write(&missing, elf(&[3])).expect("write");
        let err = load_busybox(&missing).map(drop).expect_err("dynamic");
        assert_eq!(
            err.to_string(),
            format!(
                "busybox at {} is dynamically linked and cannot run in a FROM scratch image: install busybox-static",
                missing.display()
            )
        );
        std::fs::write(&missing, b"#!/bin/sh\n").expect("write");
        assert!(matches!(load_busybox(&missing), Err(ImageError::BusyboxNotElf { .. })));
        std::fs::write(&missing, elf(&[1])).expect("write");
        assert_eq!(load_busybox(&missing).map(|b| b.len()).ok(), Some(EHDR_LEN + 56));
    }
}
