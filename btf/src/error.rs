//! Errors of BTF and BTF.ext parsing and of type queries.

use crate::types::BtfKind;

/// What went wrong while parsing `.BTF` / `.BTF.ext` data or querying a [`crate::Btf`].
///
/// Byte offsets are relative to the start of the blob handed to the parser.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The data ends before a structure that must be there.
    #[error("{section}: truncated at byte offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        /// Which part of the data was being read.
        section: &'static str,
        /// Byte offset of the structure that does not fit.
        offset: usize,
        /// Bytes the structure needs.
        need: usize,
        /// Bytes that are left.
        have: usize,
    },
    /// The magic number is not 0xeB9F in either byte order.
    #[error("{section}: bad magic {magic:#06x} at byte offset 0 (expected 0xeb9f)")]
    BadMagic {
        /// `BTF` or `BTF.ext`.
        section: &'static str,
        /// The magic as read little-endian.
        magic: u16,
    },
    /// The header is big-endian; only little-endian BTF is supported.
    #[error("{section}: big-endian data is not supported")]
    BigEndian {
        /// `BTF` or `BTF.ext`.
        section: &'static str,
    },
    /// The header's version is not 1.
    #[error("{section}: unsupported version {version} at byte offset 2")]
    UnsupportedVersion {
        /// `BTF` or `BTF.ext`.
        section: &'static str,
        /// The version found.
        version: u8,
    },
    /// `hdr_len` is smaller than the fields this crate needs or larger than the data.
    #[error(
        "{section}: bad hdr_len {hdr_len} at byte offset 4 (min {min}, data is {data_len} bytes)"
    )]
    BadHeaderLen {
        /// `BTF` or `BTF.ext`.
        section: &'static str,
        /// The `hdr_len` field.
        hdr_len: u32,
        /// The smallest accepted `hdr_len`.
        min: u32,
        /// Length of the whole blob.
        data_len: usize,
    },
    /// A sub-section described by the header lies (partly) outside the data.
    #[error(
        "{section}: section at header offset {off} + {len} bytes exceeds the {avail} bytes after the header"
    )]
    SectionOutOfRange {
        /// Which sub-section (`type`, `string`, `func_info`, ...).
        section: &'static str,
        /// Its offset, relative to the end of the header.
        off: u32,
        /// Its length.
        len: u32,
        /// Bytes available after the header.
        avail: usize,
    },
    /// A sub-section's offset is not 4-byte aligned.
    #[error("{section}: section offset {off} is not 4-byte aligned")]
    Misaligned {
        /// Which sub-section.
        section: &'static str,
        /// Its offset, relative to the end of the header.
        off: u32,
    },
    /// The type section overlaps or follows the string section.
    #[error("BTF: type section {type_off}+{type_len} overlaps string section at {str_off}")]
    SectionLayout {
        /// `type_off` from the header.
        type_off: u32,
        /// `type_len` from the header.
        type_len: u32,
        /// `str_off` from the header.
        str_off: u32,
    },
    /// The string section is malformed (empty, no leading or trailing NUL, too long).
    #[error("BTF: bad string section at byte offset {offset}: {reason}")]
    BadStringSection {
        /// Byte offset of the string section.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string offset points outside the string section.
    #[error("BTF: string offset {offset} out of range (string section holds {len} bytes)")]
    StringOffset {
        /// The offending offset.
        offset: u32,
        /// Total bytes of the string section(s).
        len: u32,
    },
    /// A string is not valid UTF-8.
    #[error("BTF: string at offset {offset} is not valid UTF-8")]
    NotUtf8 {
        /// Offset of the string in the string section.
        offset: u32,
    },
    /// A type has a kind this crate does not know.
    #[error("BTF: type [{type_id}] at byte offset {offset} has unknown kind {kind}")]
    UnknownKind {
        /// Id the type would get.
        type_id: u32,
        /// Byte offset of its `btf_type`.
        offset: usize,
        /// The raw kind.
        kind: u32,
    },
    /// A type's kind-specific data (members, values, params, ...) runs past the type section.
    #[error(
        "BTF: type [{type_id}] ({kind}) at byte offset {offset} needs {need} bytes, only {have} left in the type section"
    )]
    TypeTruncated {
        /// Id of the type.
        type_id: u32,
        /// Its kind.
        kind: BtfKind,
        /// Byte offset of its `btf_type`.
        offset: usize,
        /// Bytes the type needs (header plus trailing data).
        need: u64,
        /// Bytes left in the type section.
        have: usize,
    },
    /// A type's fields are invalid (e.g. a sized type with an impossible encoding).
    #[error("BTF: type [{type_id}] at byte offset {offset}: {reason}")]
    BadType {
        /// Id of the type.
        type_id: u32,
        /// Byte offset of its `btf_type`.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A type refers to a type id that does not exist.
    #[error("BTF: type [{type_id}] refers to type id {target}, but only {count} ids exist")]
    DanglingTypeId {
        /// The referring type.
        type_id: u32,
        /// The missing id.
        target: u32,
        /// Number of type ids (including void).
        count: u32,
    },
    /// A looked-up type id does not exist.
    #[error("BTF: type id {type_id} not found ({count} ids exist)")]
    TypeNotFound {
        /// The id asked for.
        type_id: u32,
        /// Number of type ids (including void).
        count: u32,
    },
    /// A struct/union member index that does not exist (or the type is not a struct/union).
    #[error("BTF: type [{type_id}] has no member #{index}")]
    MemberNotFound {
        /// The type.
        type_id: u32,
        /// The member index asked for.
        index: usize,
    },
    /// Following references from a type comes back to a type already seen.
    #[error("BTF: reference cycle through type [{type_id}]")]
    Cycle {
        /// The type at which the walk started.
        type_id: u32,
    },
    /// Following references from a type takes more than 32 steps.
    #[error("BTF: type [{type_id}] resolves through more than {depth} references")]
    TooDeep {
        /// The type at which the walk started.
        type_id: u32,
        /// The limit that was hit.
        depth: u32,
    },
    /// A type has no size (void, func, func_proto, fwd, ...).
    #[error("BTF: type [{type_id}] of kind {kind} has no size")]
    NoSize {
        /// The sizeless type reached.
        type_id: u32,
        /// Its kind.
        kind: BtfKind,
    },
    /// A resolved size does not fit in 32 bits.
    #[error("BTF: size of type [{type_id}] overflows u32")]
    SizeOverflow {
        /// The type whose size was asked for.
        type_id: u32,
    },
    /// A `.BTF.ext` record size is below the minimum or not a multiple of 4.
    #[error("BTF.ext {section}: bad record size {rec_size} at byte offset {offset} (min {min})")]
    BadRecordSize {
        /// `func_info`, `line_info` or `core_relo`.
        section: &'static str,
        /// Byte offset of the `rec_size` field.
        offset: usize,
        /// The record size found.
        rec_size: u32,
        /// The smallest accepted record size.
        min: u32,
    },
    /// A `.BTF.ext` per-ELF-section block has zero records.
    #[error("BTF.ext {section}: block at byte offset {offset} has no records")]
    EmptyBlock {
        /// `func_info`, `line_info` or `core_relo`.
        section: &'static str,
        /// Byte offset of the block header.
        offset: usize,
    },
    /// A CO-RE relocation record has an unknown kind.
    #[error("BTF.ext core_relo: record at byte offset {offset} has unknown kind {kind}")]
    UnknownCoreReloKind {
        /// Byte offset of the record.
        offset: usize,
        /// The raw kind.
        kind: u32,
    },
    /// Split BTF whose string or type numbering does not fit on the given base.
    #[error("BTF: split BTF does not fit its base: {reason}")]
    BadSplit {
        /// What does not fit.
        reason: &'static str,
    },
    /// Reading a BTF file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
