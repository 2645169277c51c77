//! Reading programs and memory from the forms users hand them in: raw bytecode files, hex
//! strings, assembly text.

use std::path::Path;

use bpflab_vm::isa::{DecodeError, Insn, decode_bytes};

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A hex string holds a character that is not a hex digit.
    #[error("hex input: invalid character {ch:?} at offset {offset}")]
    HexChar {
        /// The character.
        ch: char,
        /// Its byte offset in the string.
        offset: usize,
    },
    /// A hex string has an odd number of digits.
    #[error("hex input: odd number of digits ({digits})")]
    HexOdd {
        /// How many digits it has.
        digits: usize,
    },
    /// The bytes are not a valid program.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The assembly text does not assemble.
    #[error("{path}: {source}")]
    Asm {
        /// The file.
        path: String,
        /// Where and what.
        source: bpflab_vm::asm::AsmError,
    },
    /// The file is an ELF object; object files are read by the loader.
    #[error(
        "{path} is an ELF object: give raw bytecode (extract it with `llvm-objcopy -O binary --only-section=SEC`)"
    )]
    ElfObject {
        /// The file.
        path: String,
    },
}

/// Parses hex bytes: digits in pairs, optionally separated by whitespace, commas or `0x`
/// prefixes (`"b7 00 2a"`, `"b7002a"`, `"0xb7, 0x00"`).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, InputError> {
    let mut digits = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            continue;
        }
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
            _ => match (c as char).to_digit(16) {
                Some(d) => digits.push(d as u8),
                None => {
                    let ch = text[i..].chars().next().unwrap_or('?');
                    return Err(InputError::HexChar { ch, offset: i });
                }
            },
        }
        i += 1;
    }
    if !digits.len().is_multiple_of(2) {
        return Err(InputError::HexOdd { digits: digits.len() });
    }
    Ok(digits.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect())
}

/// Formats bytes as space-separated hex pairs.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Reads a file whole.
pub fn read_file(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path)
        .map_err(|source| InputError::Io { path: path.display().to_string(), source })
}

/// Reads a raw bytecode file (8 bytes per slot) and decodes it.
pub fn read_bytecode(path: &Path) -> Result<Vec<Insn>, InputError> {
    let bytes = read_file(path)?;
    if bytes.starts_with(b"\x7fELF") {
        return Err(InputError::ElfObject { path: path.display().to_string() });
    }
    Ok(decode_bytes(&bytes)?)
}

/// Reads and assembles an assembly text file.
pub fn read_asm(path: &Path) -> Result<Vec<Insn>, InputError> {
    let bytes = read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    bpflab_vm::asm::assemble(&text)
        .map_err(|source| InputError::Asm { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("b7 00 2a").unwrap(), vec![0xb7, 0, 0x2a]);
        assert_eq!(parse_hex("b7002A").unwrap(), vec![0xb7, 0, 0x2a]);
        assert_eq!(parse_hex("0xb7, 0x00\n").unwrap(), vec![0xb7, 0]);
        assert_eq!(parse_hex("  ").unwrap(), Vec::<u8>::new());
        assert!(matches!(parse_hex("b7 0"), Err(InputError::HexOdd { digits: 3 })));
        assert!(matches!(parse_hex("b7 zz"), Err(InputError::HexChar { ch: 'z', offset: 3 })));
        assert_eq!(to_hex(&[1, 0xab]), "01 ab");
    }
}
