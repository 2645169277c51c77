//! CO-RE: each `.BTF.ext` CO-RE relocation is resolved against the target BTF and patched
//! into its instruction like libbpf's `bpf_core_patch_insn` (imm of ALU and LD_IMM64, off of
//! LDX/ST/STX, with load/store resizing), or the instruction is poisoned into
//! `call 0xbad2310` when the target lacks the field or type.

use std::cell::OnceCell;

use bpflab_btf::{Btf, BtfExt, BtfKind, CoreResult};
use bpflab_vm::isa::RawInsn;

use crate::TargetBtf;
use crate::code::Code;
use crate::error::LoadError;
use crate::reloc::{OP_CALL, OP_LD_IMM64};

/// The helper id libbpf writes into poisoned instructions (`0xbad2310`).
pub const POISON_HELPER: i32 = 0xbad2310;

/// One applied CO-RE relocation, for `bpflab inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreInfo {
    /// The code section.
    pub section: String,
    /// Byte offset of the instruction within the section.
    pub offset: u64,
    /// The function (program or subprogram) holding the instruction.
    pub function: String,
    /// The relocation kind (`field_byte_offset`, ...).
    pub kind: String,
    /// The access string (`0:1:2`).
    pub access: String,
    /// The value against the object's own BTF.
    pub local_value: u64,
    /// The value against the target BTF, as patched.
    pub target_value: u64,
    /// Whether the instruction was poisoned instead.
    pub poisoned: bool,
}

/// The target BTF, read on first use.
pub(crate) struct LazyTarget<'o> {
    spec: &'o TargetBtf,
    cell: OnceCell<Result<Btf, String>>,
}

impl<'o> LazyTarget<'o> {
    /// A target read from `spec` when first needed.
    pub(crate) fn new(spec: &'o TargetBtf) -> LazyTarget<'o> {
        LazyTarget { spec, cell: OnceCell::new() }
    }

    /// The target BTF; `Ok(None)` for [`TargetBtf::None`].
    fn get(&self) -> Result<Option<&Btf>, LoadError> {
        let path = match self.spec {
            TargetBtf::None => return Ok(None),
            TargetBtf::Running => std::path::Path::new(bpflab_btf::VMLINUX_BTF_PATH),
            TargetBtf::File(p) => p.as_path(),
        };
        match self.cell.get_or_init(|| Btf::from_file(path).map_err(|e| e.to_string())) {
            Ok(btf) => Ok(Some(btf)),
            Err(error) => {
                Err(LoadError::TargetBtf { path: path.display().to_string(), error: error.clone() })
            }
        }
    }

    /// The BTF id of the type named `name` of kind `kind` in the target BTF (a `__ksym`
    /// variable or function).
    pub(crate) fn find(&self, name: &str, kind: BtfKind) -> Result<u32, String> {
        let btf = self.get().map_err(|e| e.to_string())?.ok_or("no target BTF was given")?;
        btf.find_by_name(name, kind).ok_or_else(|| "not found in the target BTF".into())
    }

    /// Whether the target is the running kernel (whose `/proc/kallsyms` then names addresses).
    pub(crate) fn is_running(&self) -> bool {
        *self.spec == TargetBtf::Running
    }

    /// The BTF id of kernel function `name`, for a kfunc call.
    pub(crate) fn kfunc_id(&self, name: &str) -> Result<u32, String> {
        let btf = self.get().map_err(|e| e.to_string())?.ok_or("no target BTF was given")?;
        btf.find_by_name(name, BtfKind::Func).ok_or_else(|| "not found in the target BTF".into())
    }
}

/// Resolves and applies every CO-RE relocation of the object.
pub(crate) fn apply(
    code: &mut Code,
    local: &Btf,
    ext: &BtfExt,
    target: &LazyTarget<'_>,
) -> Result<Vec<CoreInfo>, LoadError> {
    let count: usize = ext.core_relos.iter().map(|s| s.records.len()).sum();
    if count == 0 {
        return Ok(Vec::new());
    }
    let target = target.get()?.ok_or(LoadError::CoreWithoutTarget { count })?;
    let mut infos = Vec::new();
    for sec in &ext.core_relos {
        let Some(cs) = code.sections.iter_mut().find(|c| c.name == sec.section) else {
            return Err(LoadError::Core {
                program: sec.section.clone(),
                insn: 0,
                error: format!(
                    "CO-RE relocations for section '{}', which holds no code",
                    sec.section
                ),
            });
        };
        for relo in &sec.records {
            let slot = (relo.insn_off / 8) as usize;
            let err = |program: &str, error: String| LoadError::Core {
                program: program.to_owned(),
                insn: slot,
                error,
            };
            if !relo.insn_off.is_multiple_of(8) || slot >= cs.slots.len() {
                return Err(err(
                    &cs.name,
                    format!("instruction offset {:#x} is not a slot of the section", relo.insn_off),
                ));
            }
            // Like libbpf: relocations of code outside any function (an eliminated weak
            // subprogram) are skipped.
            let Some(fi) = cs.func_containing(slot) else { continue };
            let function = cs.funcs[fi].name.clone();
            let res = bpflab_btf::core::resolve(local, target, relo)
                .map_err(|e| err(&function, e.to_string()))?;
            let poisoned = patch(&mut cs.slots, slot, &res).map_err(|e| err(&function, e))?;
            infos.push(CoreInfo {
                section: cs.name.clone(),
                offset: relo.insn_off.into(),
                function,
                kind: relo.kind.as_str().to_owned(),
                access: relo.access_str.clone(),
                local_value: res.local_value,
                target_value: res.target_value,
                poisoned,
            });
        }
    }
    Ok(infos)
}

/// Turns a slot into `call 0xbad2310`.
fn poison(insn: &mut RawInsn) {
    *insn = RawInsn { code: OP_CALL, dst: 0, src: 0, off: 0, imm: POISON_HELPER };
}

/// libbpf's `bpf_core_patch_insn`; returns whether the instruction was poisoned.
fn patch(slots: &mut [RawInsn], slot: usize, res: &CoreResult) -> Result<bool, String> {
    let insn = slots[slot];
    let class = insn.code & 0x07;
    let poison_all = |slots: &mut [RawInsn]| {
        if let Some(next) = slots.get_mut(slot + 1).filter(|_| insn.code == OP_LD_IMM64) {
            poison(next);
        }
        poison(&mut slots[slot]);
        Ok(true)
    };
    if res.poison {
        return poison_all(slots);
    }
    let (orig, new) = (res.local_value, res.target_value);
    match class {
        // ALU, ALU64: the immediate.
        4 | 7 => {
            if insn.code & 0x08 != 0 {
                return Err("ALU instruction with a register source".into());
            }
            if res.validate && u64::from(insn.imm as u32) != orig {
                return Err(format!(
                    "unexpected ALU value: got {}, expected {orig} -> {new}",
                    insn.imm
                ));
            }
            slots[slot].imm = new as u32 as i32;
        }
        // LDX, ST, STX: the offset, and the access size if the field's size changed.
        1..=3 => {
            if res.validate && i64::from(insn.off) != orig as i64 {
                return Err(format!(
                    "unexpected load/store offset: got {}, expected {orig} -> {new}",
                    insn.off
                ));
            }
            if new > i16::MAX as u64 {
                return Err(format!("load/store offset {new} too big"));
            }
            if res.fail_memsz_adjust {
                return poison_all(slots);
            }
            slots[slot].off = new as i16;
            if res.local_size != res.target_size && res.local_size != 0 {
                let size_bits = |bytes: u32| match bytes {
                    1 => Some(0x10u8),
                    2 => Some(0x08),
                    4 => Some(0x00),
                    8 => Some(0x18),
                    _ => None,
                };
                let current = match insn.code & 0x18 {
                    0x10 => 1,
                    0x08 => 2,
                    0x00 => 4,
                    _ => 8,
                };
                if current != res.local_size {
                    return Err(format!(
                        "unexpected memory size: got {current}, expected {}",
                        res.local_size
                    ));
                }
                let bits = size_bits(res.target_size)
                    .ok_or_else(|| format!("invalid new memory size {}", res.target_size))?;
                slots[slot].code = (insn.code & !0x18) | bits;
            }
        }
        // LD: only a plain 64-bit immediate load.
        0 => {
            let next = slots.get(slot + 1).copied();
            let plain = insn.code == OP_LD_IMM64
                && insn.src == 0
                && insn.off == 0
                && next.is_some_and(|n| n.code == 0 && n.dst == 0 && n.src == 0 && n.off == 0);
            let Some(next) = next.filter(|_| plain) else {
                return Err("LD_IMM64 has an unexpected form".into());
            };
            let imm = u64::from(insn.imm as u32) | (u64::from(next.imm as u32) << 32);
            if res.validate && imm != orig {
                return Err(format!(
                    "unexpected LD_IMM64 value: got {imm}, expected {orig} -> {new}"
                ));
            }
            slots[slot].imm = new as u32 as i32;
            slots[slot + 1].imm = (new >> 32) as u32 as i32;
        }
        _ => return Err(format!("cannot relocate instruction with opcode {:#04x}", insn.code)),
    }
    Ok(false)
}
