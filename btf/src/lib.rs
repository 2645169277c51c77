//! BTF for bpflab: parsing `.BTF` and `.BTF.ext` sections the way libbpf and the kernel do,
//! type queries, and CO-RE relocation resolution following libbpf's `relo_core.c`.
//!
//! Only little-endian BTF is supported. Malformed input gives a [`BtfError`] naming the
//! section, byte offset or type id; nothing here panics on bad data, allocates by an
//! unchecked length, or recurses without bound.
#![forbid(unsafe_code)]

mod btf;
pub mod core;
mod error;
mod ext;
mod parse;
mod types;

pub use crate::btf::{Btf, MAX_RESOLVE_DEPTH, VMLINUX_BTF_PATH};
pub use crate::core::{CoreError, CoreResult, PatchSite};
pub use crate::error::BtfError;
pub use crate::ext::{BtfExt, CoreRelo, CoreReloKind, FuncInfo, LineInfo, SectionRecords};
pub use crate::parse::BTF_MAGIC;
pub use crate::types::{
    Array, BtfKind, BtfType, Composite, Datasec, Enum, EnumValue, Int, Member, Param, VarSecInfo,
    linkage,
};
