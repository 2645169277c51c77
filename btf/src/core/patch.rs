//! Applying a [`CoreResult`] to an instruction, as libbpf's `bpf_core_patch_insn` does.

use super::{CoreError, CoreResult};
use crate::ext::CoreRelo;

/// Immediate of the `call` that replaces a poisoned instruction (0xbad2310, "bad relo").
pub const POISON_IMM: i32 = 195_896_080;

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_ALU64: u8 = 0x07;
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;

fn size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

fn size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        4 => 0x00,
        2 => 0x08,
        1 => 0x10,
        8 => 0x18,
        _ => return None,
    })
}

fn poison_one(insn: &mut [u8]) {
    insn[0] = CALL;
    insn[1] = 0;
    insn[2..4].copy_from_slice(&0i16.to_le_bytes());
    insn[4..8].copy_from_slice(&POISON_IMM.to_le_bytes());
}

fn imm(insn: &[u8]) -> i32 {
    i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]])
}

fn off(insn: &[u8]) -> i16 {
    i16::from_le_bytes([insn[2], insn[3]])
}

/// Patches the instruction at `relo.insn_off` in `insns` (the raw bytes of the program's ELF
/// section, 8 bytes per instruction) with `res`, exactly like libbpf: ALU immediates,
/// load/store offsets (resizing the access when allowed), `ld_imm64` values, or poisoning.
///
/// When `res.validate` is set, the instruction's current value must equal
/// `res.local_value`.
pub fn patch_insn(insns: &mut [u8], relo: &CoreRelo, res: &CoreResult) -> Result<(), CoreError> {
    let insn_off = relo.insn_off;
    let err = |reason: String| CoreError::Patch { insn_off, reason };
    let at = insn_off as usize;
    if !at.is_multiple_of(8) || at.checked_add(8).is_none_or(|end| end > insns.len()) {
        return Err(err(format!("no instruction at byte offset {at} of {}", insns.len())));
    }
    let code = insns[at];
    let is_ldimm64 = code == LD_IMM64;
    if is_ldimm64 && at + 16 > insns.len() {
        return Err(err("ld_imm64 without its second half".into()));
    }
    let poison = |insns: &mut [u8]| {
        if is_ldimm64 {
            poison_one(&mut insns[at + 8..at + 16]);
        }
        poison_one(&mut insns[at..at + 8]);
    };
    if res.poison {
        poison(insns);
        return Ok(());
    }
    let (orig, new) = (res.local_value, res.target_value);
    let insn = &mut insns[at..at + 8];
    match code & 0x07 {
        CLASS_ALU | CLASS_ALU64 => {
            if code & 0x08 != 0 {
                return Err(err("ALU instruction with a register source".into()));
            }
            let cur = imm(insn);
            if res.validate && cur as i64 as u64 != orig {
                return Err(err(format!("ALU imm is {cur}, expected {orig}")));
            }
            insn[4..8].copy_from_slice(&(new as u32).to_le_bytes());
        }
        CLASS_LDX | CLASS_ST | CLASS_STX => {
            let cur = off(insn);
            if res.validate && cur as i64 as u64 != orig {
                return Err(err(format!("load/store off is {cur}, expected {orig}")));
            }
            if new > i16::MAX as u64 {
                return Err(err(format!("offset {new} does not fit in a load/store")));
            }
            if res.fail_memsz_adjust {
                poison(insns);
                return Ok(());
            }
            insn[2..4].copy_from_slice(&(new as i16).to_le_bytes());
            if res.target_size != res.local_size {
                let cur_sz = size_bytes(code);
                if cur_sz != res.local_size {
                    return Err(err(format!(
                        "access size is {cur_sz}, expected {}",
                        res.local_size
                    )));
                }
                let sz = size_code(res.target_size)
                    .ok_or_else(|| err(format!("invalid new access size {}", res.target_size)))?;
                insn[0] = (code & 0xe0) | sz | (code & 0x07);
            }
        }
        CLASS_LD => {
            if !is_ldimm64 {
                return Err(err(format!("LD instruction {code:#04x} is not ld_imm64")));
            }
            let (first, second) = insns[at..at + 16].split_at_mut(8);
            if first[1] >> 4 != 0
                || off(first) != 0
                || second[0] != 0
                || second[1] != 0
                || off(second) != 0
            {
                return Err(err("ld_imm64 has an unexpected form".into()));
            }
            let cur = u64::from(imm(first) as u32) | (u64::from(imm(second) as u32) << 32);
            if res.validate && cur != orig {
                return Err(err(format!("ld_imm64 value is {cur}, expected {orig}")));
            }
            first[4..8].copy_from_slice(&(new as u32).to_le_bytes());
            second[4..8].copy_from_slice(&((new >> 32) as u32).to_le_bytes());
        }
        _ => return Err(err(format!("cannot relocate instruction with opcode {code:#04x}"))),
    }
    Ok(())
}
