//! Extern variables, the way libbpf's `bpf_object__collect_externs` and
//! `bpf_object__resolve_externs` treat them:
//!
//! - `extern T NAME __kconfig;` lives in the `.kconfig` DATASEC. libbpf lays every kconfig
//!   extern out in one internal array map (`<obj>.kconfig`, one read-only entry), sorted by
//!   alignment (largest first), then size, then name, and fills it from the kernel
//!   configuration (`CONFIG_*`: `y`/`n`/`m`, numbers, `"strings"`) or from what it knows itself
//!   (`LINUX_KERNEL_VERSION`, `LINUX_HAS_BPF_COOKIE`, `LINUX_HAS_SYSCALL_WRAPPER`). Weak
//!   externs nobody sets read as zero; strong ones are an error. Programs read them through
//!   `map_idx_value` LD_IMM64s into that map.
//! - `extern T NAME __ksym;` lives in `.ksyms`: a typed variable resolves to its BTF id in the
//!   target BTF (`BPF_PSEUDO_BTF_ID`), a typeless one (`extern const void x __ksym;`) to its
//!   address in `/proc/kallsyms`; an unresolved weak one loads 0.

use std::collections::BTreeMap;

use bpflab_btf::{Btf, BtfKind, BtfType, linkage};
use goblin::elf::sym::STT_NOTYPE;

use crate::elf::ElfObject;
use crate::error::LoadError;
use crate::maps::MAX_DATA_SIZE;

/// libbpf's `KCONFIG_SEC`.
pub(crate) const KCONFIG_SEC: &str = ".kconfig";
/// libbpf's `KSYMS_SEC`.
pub(crate) const KSYMS_SEC: &str = ".ksyms";

/// What C type a kconfig extern has (libbpf's `enum kcfg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KconfigType {
    /// `bool` (1 byte): `y` is 1, `n` is 0.
    Bool,
    /// `char` (1 byte): takes `y`/`n`/`m` as characters, or a number.
    Char,
    /// An integer of 1, 2, 4 or 8 bytes.
    Int {
        /// Whether it is signed (decides the range check).
        signed: bool,
    },
    /// `enum libbpf_tristate`: `y` is 1 (`TRI_YES`), `m` is 2 (`TRI_MODULE`), `n` is 0.
    Tristate,
    /// `char[N]`: a quoted string, NUL-terminated, truncated to N - 1 bytes.
    CharArray,
}

/// One kconfig extern and where it lies in the `.kconfig` map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KconfigExtern {
    /// The extern's name (`CONFIG_HZ`, `LINUX_KERNEL_VERSION`, ...).
    pub name: String,
    /// Declared `__weak`: zero when nothing sets it.
    pub weak: bool,
    /// Its C type.
    pub kind: KconfigType,
    /// Size in bytes.
    pub size: u32,
    /// Alignment in bytes.
    pub align: u32,
    /// Byte offset in the `.kconfig` map's value.
    pub offset: u32,
    /// The object's BTF id of its VAR.
    pub(crate) var_id: u32,
    /// The value it got, as the configuration spelled it (`None`: unset, reads as zero).
    pub value: Option<String>,
}

/// One `__ksym` extern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KsymExtern {
    /// The extern's name.
    pub(crate) name: String,
    /// Declared `__weak`.
    pub(crate) weak: bool,
    /// A function (kfunc) rather than a variable.
    pub(crate) is_func: bool,
    /// The variable's type in the object's BTF after modifiers and typedefs (0: typeless,
    /// `extern const void x __ksym`).
    pub(crate) type_id: u32,
}

/// Every extern of an object.
#[derive(Clone, Debug, Default)]
pub(crate) struct Externs {
    /// Kconfig externs, in map layout order.
    pub(crate) kconfig: Vec<KconfigExtern>,
    /// Size of the `.kconfig` map's value (0: no kconfig externs).
    pub(crate) kconfig_size: u32,
    /// BTF id of the `.kconfig` DATASEC.
    pub(crate) kconfig_datasec: Option<u32>,
    /// Ksym externs by name.
    pub(crate) ksyms: BTreeMap<String, KsymExtern>,
}

impl Externs {
    /// The kconfig extern named `name`.
    pub(crate) fn kconfig(&self, name: &str) -> Option<&KconfigExtern> {
        self.kconfig.iter().find(|k| k.name == name)
    }
}

fn btf_err(error: bpflab_btf::BtfError) -> LoadError {
    LoadError::Btf { section: ".BTF".into(), error }
}

fn bad_extern(name: &str, reason: impl Into<String>) -> LoadError {
    LoadError::BadExtern { name: name.to_owned(), reason: reason.into() }
}

/// libbpf's `find_kcfg_type`.
fn kconfig_type(btf: &Btf, type_id: u32) -> Result<Option<KconfigType>, LoadError> {
    let (_, ty) = btf.resolve_mods(type_id).map_err(btf_err)?;
    Ok(match ty {
        BtfType::Int(i) if i.is_bool() => (i.size == 1).then_some(KconfigType::Bool),
        BtfType::Int(i) if i.size == 1 => Some(KconfigType::Char),
        BtfType::Int(i) if matches!(i.size, 2 | 4 | 8) => {
            Some(KconfigType::Int { signed: i.is_signed() })
        }
        BtfType::Enum(e) => (e.size == 4
            && btf.string_at(e.name_off).ok() == Some("libbpf_tristate"))
        .then_some(KconfigType::Tristate),
        t @ BtfType::Enum64(_) => (btf.string_at(t.name_off()).ok() == Some("libbpf_tristate"))
            .then_some(KconfigType::Tristate),
        BtfType::Array(a) if a.nelems > 0 => {
            let (_, elem) = btf.resolve_mods(a.elem_type).map_err(btf_err)?;
            matches!(elem, BtfType::Int(i) if i.size == 1 && !i.is_bool())
                .then_some(KconfigType::CharArray)
        }
        _ => None,
    })
}

/// Alignment of a kconfig extern's type (libbpf's `btf__align_of` for the types kconfig
/// externs may have: integers and enums align to their size, up to 8; arrays to their element).
fn align_of(btf: &Btf, type_id: u32) -> Result<u32, LoadError> {
    let (_, ty) = btf.resolve_mods(type_id).map_err(btf_err)?;
    let ty = match ty {
        BtfType::Array(a) => btf.resolve_mods(a.elem_type).map_err(btf_err)?.1,
        other => other,
    };
    Ok(ty.own_size().unwrap_or(1).clamp(1, 8))
}

/// The extern symbols of the object, with their BTF (libbpf's `bpf_object__collect_externs`).
/// Externs without BTF are left to the relocations (kfunc calls resolve by name).
pub(crate) fn collect(elf: &ElfObject<'_>, btf: Option<&Btf>) -> Result<Externs, LoadError> {
    let mut out = Externs::default();
    let Some(btf) = btf else { return Ok(out) };
    let mut kconfig = Vec::new();
    for sym in &elf.symbols {
        if !sym.is_undefined() || !sym.is_global_or_weak() || sym.kind != STT_NOTYPE {
            continue;
        }
        if sym.name.is_empty() {
            continue;
        }
        // libbpf's find_extern_btf_id: an extern VAR or FUNC of that name.
        let found = btf.types().find(|(_, t)| match t {
            BtfType::Var { name_off, linkage: l, .. }
            | BtfType::Func { name_off, linkage: l, .. } => {
                *l == linkage::EXTERN && btf.string_at(*name_off).ok() == Some(sym.name.as_str())
            }
            _ => false,
        });
        let Some((var_id, var)) = found else { continue };
        let section = btf.types().find_map(|(_, t)| match t {
            BtfType::Datasec(d) if d.vars.iter().any(|v| v.type_id == var_id) => {
                btf.string_at(d.name_off).ok()
            }
            _ => None,
        });
        let weak = sym.bind == goblin::elf::sym::STB_WEAK;
        let (is_func, type_id) = match var {
            BtfType::Var { type_id, .. } => (false, *type_id),
            BtfType::Func { type_id, .. } => (true, *type_id),
            _ => continue,
        };
        match section {
            Some(KCONFIG_SEC) => {
                if is_func {
                    return Err(bad_extern(&sym.name, "extern functions cannot be __kconfig"));
                }
                let size = btf.size_of(type_id).map_err(btf_err)?;
                if size == 0 {
                    return Err(bad_extern(&sym.name, "kconfig extern has size 0"));
                }
                let kind = kconfig_type(btf, type_id)?.ok_or_else(|| {
                    bad_extern(
                        &sym.name,
                        "kconfig extern type is unsupported (bool, char, 1/2/4/8-byte integers, enum libbpf_tristate or char arrays)",
                    )
                })?;
                kconfig.push(KconfigExtern {
                    name: sym.name.clone(),
                    weak,
                    kind,
                    size,
                    align: align_of(btf, type_id)?,
                    offset: 0,
                    var_id,
                    value: None,
                });
            }
            Some(KSYMS_SEC) => {
                let resolved = btf.skip_mods_and_typedefs(type_id).map_err(btf_err)?;
                out.ksyms.insert(
                    sym.name.clone(),
                    KsymExtern { name: sym.name.clone(), weak, is_func, type_id: resolved },
                );
            }
            Some(other) => {
                return Err(bad_extern(
                    &sym.name,
                    format!("unrecognized extern section '{other}'"),
                ));
            }
            None => {}
        }
    }
    // libbpf's cmp_externs: alignment descending, size ascending, then name.
    kconfig.sort_by(|a, b| {
        b.align.cmp(&a.align).then(a.size.cmp(&b.size)).then_with(|| a.name.cmp(&b.name))
    });
    let mut off = 0u64;
    for k in &mut kconfig {
        let start = off.next_multiple_of(u64::from(k.align));
        off = start + u64::from(k.size);
        if off > MAX_DATA_SIZE {
            return Err(LoadError::TooLarge {
                what: format!("the .kconfig map (extern '{}' ends at byte {off})", k.name),
                limit: MAX_DATA_SIZE,
            });
        }
        k.offset = start as u32;
    }
    out.kconfig_size = off as u32;
    out.kconfig_datasec = btf.datasec(KCONFIG_SEC).map(|(id, _)| id);
    out.kconfig = kconfig;
    Ok(out)
}

pub use bpflab_vm::profile::{
    KconfigError, kernel_version_of_release, parse_kconfig, system_kconfig,
};

/// Reads a kernel configuration file, plain (`.config`, `/boot/config-*`) or gzip-compressed
/// (`/proc/config.gz`) ([`bpflab_vm::profile::read_kconfig_file`]), as a load error naming it.
pub fn read_kconfig_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, LoadError> {
    bpflab_vm::profile::read_kconfig_file(path)
        .map_err(|reason| LoadError::Kconfig { path: path.display().to_string(), reason })
}

/// The running kernel's `KERNEL_VERSION`, from `/proc/sys/kernel/osrelease`.
fn running_kernel_version() -> Option<u32> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    kernel_version_of_release(release.trim())
}

/// Writes `value` into an extern of `size` bytes, checking it fits (libbpf's
/// `set_kcfg_value_num` with `is_kcfg_value_in_range`).
fn put_num(k: &KconfigExtern, out: &mut [u8], value: u64) -> Result<(), String> {
    if k.kind == KconfigType::Bool && value > 1 {
        return Err(format!("value {value} isn't boolean compatible"));
    }
    let bits = k.size * 8;
    let fits = match k.kind {
        _ if k.size >= 8 => true,
        KconfigType::Int { signed: true } => {
            value.wrapping_add(1u64 << (bits - 1)) < (1u64 << bits)
        }
        _ => value >> bits == 0,
    };
    if !fits {
        return Err(format!("value {value} doesn't fit in {} bytes", k.size));
    }
    let bytes = value.to_le_bytes();
    let n = k.size.min(8) as usize;
    out.get_mut(..n).ok_or("value out of range")?.copy_from_slice(&bytes[..n]);
    Ok(())
}

/// Writes one configuration value (as spelled in a `.config`) into an extern's bytes
/// (libbpf's `bpf_object__process_kconfig_line`).
fn put_value(k: &KconfigExtern, out: &mut [u8], value: &str) -> Result<(), String> {
    match value.as_bytes().first() {
        Some(&c @ (b'y' | b'n' | b'm')) if value.len() == 1 => match k.kind {
            KconfigType::Bool if c == b'm' => {
                Err("value 'm' implies tristate or char type".to_owned())
            }
            KconfigType::Bool => put_num(k, out, u64::from(c == b'y')),
            KconfigType::Tristate => put_num(
                &KconfigExtern { kind: KconfigType::Int { signed: false }, ..k.clone() },
                out,
                match c {
                    b'y' => 1,
                    b'm' => 2,
                    _ => 0,
                },
            ),
            KconfigType::Char => put_num(k, out, u64::from(c)),
            _ => Err(format!("value '{}' implies bool, tristate, or char type", c as char)),
        },
        Some(b'"') => {
            if k.kind != KconfigType::CharArray {
                return Err(format!("value {value} implies char array type"));
            }
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| format!("invalid string config {value}"))?;
            let n = inner.len().min(k.size as usize - 1);
            out[..n].copy_from_slice(&inner.as_bytes()[..n]);
            out[n] = 0;
            Ok(())
        }
        _ => {
            let num =
                parse_u64(value).ok_or_else(|| format!("value {value} isn't a valid integer"))?;
            if !matches!(k.kind, KconfigType::Int { .. } | KconfigType::Char) {
                return Err(format!("value {value} implies integer type"));
            }
            put_num(k, out, num)
        }
    }
}

/// `strtoull(value, &end, 0)` accepting the whole string: decimal, `0x` hex or `0` octal
/// (a leading `-` wraps, as strtoull does).
fn parse_u64(value: &str) -> Option<u64> {
    let (neg, v) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let n = if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()?
    } else if v.len() > 1 && v.starts_with('0') {
        u64::from_str_radix(&v[1..], 8).ok()?
    } else {
        v.parse().ok()?
    };
    Some(if neg { n.wrapping_neg() } else { n })
}

/// The `.kconfig` map's initial bytes (libbpf's `bpf_object__resolve_externs` for kconfig
/// externs): `CONFIG_*` from `config`, libbpf's virtual `LINUX_*` externs from what it knows
/// (a `LINUX_*` entry in `config` overrides it), weak externs nobody sets zero. Records each
/// extern's value in `externs`. With `open_only`, strong externs nobody sets read zero too.
pub(crate) fn kconfig_data(
    externs: &mut Externs,
    config: &BTreeMap<String, String>,
    kernel_version: Option<u32>,
    open_only: bool,
) -> Result<Vec<u8>, LoadError> {
    let mut data = vec![0u8; externs.kconfig_size as usize];
    // Like libbpf, without a configuration given, CONFIG_* externs read the running system's.
    let system;
    let config =
        if config.is_empty() && externs.kconfig.iter().any(|k| k.name.starts_with("CONFIG_")) {
            system = system_kconfig().unwrap_or_default();
            &system
        } else {
            config
        };
    for k in &mut externs.kconfig {
        // CONFIG_* values as a .config spells them; libbpf's virtual LINUX_* ones are numbers
        // (set_kcfg_value_num, which a bool takes when the number is 0 or 1).
        let value: Option<(String, bool)> = if k.name.starts_with("CONFIG_") {
            config.get(&k.name).map(|v| (v.clone(), false))
        } else if let Some(v) = config.get(&k.name) {
            Some((v.clone(), true))
        } else {
            match k.name.as_str() {
                "LINUX_KERNEL_VERSION" => {
                    let v = kernel_version
                        .or_else(running_kernel_version)
                        .ok_or_else(|| bad_extern(&k.name, "failed to get the kernel version"))?;
                    Some((v.to_string(), true))
                }
                // Every kernel bpflab models has BPF cookies (5.15+) and, on x86_64, syscall
                // wrappers (`__x64_sys_*`, 4.17+).
                "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER" => {
                    Some(("1".to_owned(), true))
                }
                _ if k.weak && k.name.starts_with("LINUX_") => None,
                _ => return Err(bad_extern(&k.name, "unrecognized virtual extern")),
            }
        };
        match &value {
            Some((v, numeric)) => {
                let start = k.offset as usize;
                let slot = data
                    .get_mut(start..start + k.size as usize)
                    .ok_or_else(|| bad_extern(&k.name, "offset outside the .kconfig map"))?;
                let done = if *numeric {
                    let n = parse_u64(v).ok_or_else(|| format!("value {v} isn't a valid integer"));
                    n.and_then(|n| match k.kind {
                        KconfigType::Int { .. } | KconfigType::Char | KconfigType::Bool => {
                            put_num(k, slot, n)
                        }
                        _ => Err(format!("value {n} implies integer, char, or boolean type")),
                    })
                } else {
                    put_value(k, slot, v)
                };
                done.map_err(|reason| bad_extern(&k.name, reason))?;
            }
            None if k.weak || open_only => {}
            None => {
                return Err(bad_extern(
                    &k.name,
                    "strong kconfig extern is not set: give the kernel configuration (bpflab --kconfig FILE, LoadOptions::kconfig) or declare it __weak",
                ));
            }
        }
        k.value = value.map(|(v, _)| v);
    }
    Ok(data)
}

/// The address of `name` in `/proc/kallsyms` (a typeless ksym), when it is listed.
pub(crate) fn kallsyms_address(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let addr = f.next()?;
        let _kind = f.next()?;
        (f.next()? == name).then(|| u64::from_str_radix(addr, 16).ok()).flatten()
    })
}

/// Resolves a typed ksym variable (or a kfunc's address) in the target BTF: its BTF id.
pub(crate) fn target_kind(ext: &KsymExtern) -> BtfKind {
    if ext.is_func { BtfKind::Func } else { BtfKind::Var }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(kind: KconfigType, size: u32) -> KconfigExtern {
        KconfigExtern {
            name: "CONFIG_X".into(),
            weak: false,
            kind,
            size,
            align: size.min(8),
            offset: 0,
            var_id: 0,
            value: None,
        }
    }

    fn put(k: &KconfigExtern, v: &str) -> Result<Vec<u8>, String> {
        let mut out = vec![0xaa; k.size as usize];
        put_value(k, &mut out, v).map(|()| out)
    }

    #[test]
    fn values_like_libbpf() {
        let tri = ext(KconfigType::Tristate, 4);
        assert_eq!(put(&tri, "y").unwrap(), [1, 0, 0, 0]);
        assert_eq!(put(&tri, "m").unwrap(), [2, 0, 0, 0]);
        assert_eq!(put(&tri, "n").unwrap(), [0, 0, 0, 0]);
        let b = ext(KconfigType::Bool, 1);
        assert_eq!(put(&b, "y").unwrap(), [1]);
        assert_eq!(put(&b, "n").unwrap(), [0]);
        assert!(put(&b, "m").unwrap_err().contains("tristate"));
        assert!(put(&b, "2").unwrap_err().contains("integer type"));
        let c = ext(KconfigType::Char, 1);
        assert_eq!(put(&c, "m").unwrap(), [b'm']);
        let int = ext(KconfigType::Int { signed: false }, 4);
        assert_eq!(put(&int, "250").unwrap(), 250u32.to_le_bytes());
        assert_eq!(put(&int, "0x10").unwrap(), 16u32.to_le_bytes());
        assert!(put(&int, "0x100000000").unwrap_err().contains("doesn't fit"));
        assert!(put(&int, "y").unwrap_err().contains("bool, tristate, or char"));
        assert!(put(&int, "12ab").unwrap_err().contains("valid integer"));
        let s = ext(KconfigType::CharArray, 6);
        assert_eq!(put(&s, "\"abc\"").unwrap(), b"abc\0\xaa\xaa");
        assert_eq!(put(&s, "\"abcdefgh\"").unwrap(), b"abcde\0");
        assert!(put(&s, "7").unwrap_err().contains("integer type"));
        let signed = ext(KconfigType::Int { signed: true }, 1);
        assert!(put(&signed, "200").is_err());
    }

    #[test]
    fn strong_externs_need_values_and_weak_ones_read_zero() {
        let mut k = ext(KconfigType::Int { signed: true }, 4);
        k.name = "LINUX_BPFLAB_UNKNOWN".into();
        let mut weak = k.clone();
        weak.weak = true;
        weak.offset = 4;
        let mut externs = Externs { kconfig: vec![weak], kconfig_size: 8, ..Externs::default() };
        let cfg = BTreeMap::new();
        assert_eq!(kconfig_data(&mut externs, &cfg, Some(1), false).unwrap(), vec![0; 8]);
        externs.kconfig.push(k);
        let e = kconfig_data(&mut externs, &cfg, Some(1), false).unwrap_err();
        assert_eq!(e.to_string(), "extern 'LINUX_BPFLAB_UNKNOWN': unrecognized virtual extern");
        let mut version = ext(KconfigType::Int { signed: false }, 4);
        version.name = "LINUX_KERNEL_VERSION".into();
        let mut hz = ext(KconfigType::Int { signed: false }, 4);
        hz.name = "CONFIG_HZ".into();
        hz.offset = 4;
        let mut externs =
            Externs { kconfig: vec![version, hz], kconfig_size: 8, ..Externs::default() };
        let cfg = parse_kconfig("CONFIG_HZ=1000\n").unwrap();
        let data = kconfig_data(&mut externs, &cfg, Some(0x060c00), false).unwrap();
        assert_eq!(data, [0x00, 0x0c, 0x06, 0, 0xe8, 0x03, 0, 0]);
        assert_eq!(externs.kconfig[1].value.as_deref(), Some("1000"));
        let cfg = parse_kconfig("CONFIG_OTHER=y\n").unwrap();
        let e = kconfig_data(&mut externs, &cfg, Some(1), false).unwrap_err();
        assert!(e.to_string().starts_with("extern 'CONFIG_HZ': strong kconfig extern is not set"));
        // Opening only (inspect): it reads 0 and shows as unset.
        let data = kconfig_data(&mut externs, &cfg, Some(1), true).unwrap();
        assert_eq!(data, [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(externs.kconfig[1].value, None);
    }
}
