//! `__ksym` variables: the LD_IMM64 of `BPF_PSEUDO_BTF_ID` that libbpf emits for a typed
//! ksym (imm: the variable's or function's id in the kernel's BTF, the second imm: the BTF
//! object's fd, 0 for vmlinux), checked as the kernel's `check_pseudo_btf_id` does up to the
//! symbol's address. Typeless ksyms (`extern const void x __ksym`) and unresolved weak ones
//! are plain 64-bit constants (libbpf writes the kallsyms address, or 0), so they never get
//! here.
//!
//! A kernel function's address (`&func` of an `extern void func(void) __ksym`) is read-only
//! memory of size 0. What the kernel makes of a resolved variable (a per-CPU `PTR_TO_BTF_ID | MEM_PERCPU`, a
//! read-only `PTR_TO_MEM` of the type's size, or a `PTR_TO_BTF_ID` of a struct) is not
//! modelled: such loads stay unsupported rather than guessed.

use std::collections::HashSet;
use std::sync::OnceLock;

use bpflab_btf::BtfType;

use crate::error::{ErrorKind, Stop};
use crate::state::{PtrKind, Reg};

/// A rejection with the kernel's message, classed as the kernel's line would be.
fn reject(insn: usize, message: String) -> Stop {
    Stop::reject(ErrorKind::classify(&message), insn, message)
}

/// The names `/proc/kallsyms` lists (what `kallsyms_lookup_name` finds), read once; `None`
/// when the file cannot be read.
fn kallsyms() -> Option<&'static HashSet<String>> {
    static SYMS: OnceLock<Option<HashSet<String>>> = OnceLock::new();
    SYMS.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
        // "ffffffff81000000 T _stext" or "... t name\t[module]".
        let names = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(2))
            .map(str::to_string)
            .collect::<HashSet<_>>();
        (!names.is_empty()).then_some(names)
    })
    .as_ref()
}

/// The register an LD_IMM64 of `BPF_PSEUDO_BTF_ID` gives at `insn`: the kernel's refusals of
/// ids that are not variables or functions and of symbols kallsyms lacks; a function's
/// address; unsupported for variables.
pub(crate) fn ld_btf_id(insn: usize, imm: i32, next_imm: i32) -> Result<Reg, Stop> {
    if next_imm != 0 {
        return Err(Stop::unsupported(insn, "__ksym variables of kernel modules (module BTF fd)"));
    }
    let Some(btf) = crate::mem::vmlinux() else {
        return Err(Stop::unsupported(insn, "__ksym variables without the kernel's BTF"));
    };
    let id = imm as u32;
    let Ok(t) = btf.type_by_id(id) else {
        return Err(reject(insn, format!("ldimm64 insn specifies invalid btf_id {imm}.")));
    };
    if !matches!(t, BtfType::Var { .. } | BtfType::Func { .. }) {
        return Err(reject(
            insn,
            format!("pseudo btf_id {imm} in ldimm64 isn't KIND_VAR or KIND_FUNC"),
        ));
    }
    let Ok(name) = btf.type_name(id) else {
        return Err(Stop::unsupported(insn, "__ksym variables with unreadable BTF names"));
    };
    let Some(syms) = kallsyms() else {
        return Err(Stop::unsupported(insn, "__ksym variables without /proc/kallsyms"));
    };
    if !syms.contains(name) {
        return Err(reject(
            insn,
            format!("ldimm64 failed to find the address for kernel symbol '{name}'."),
        ));
    }
    if matches!(t, BtfType::Func { .. }) {
        // A kernel function's address: read-only memory of no size.
        return Ok(Reg { rdonly: true, mem_size: 0, ..Reg::ptr(PtrKind::Mem) });
    }
    Err(Stop::unsupported(
        insn,
        format!("the __ksym variable {name} (percpu/read-only memory/BTF pointers)"),
    ))
}
