//! `BPF_MAP_TYPE_ARENA` (kernel/bpf/arena.c): a sparse region of up to 4 GiB shared by
//! programs and user space, whose pages programs allocate with `bpf_arena_alloc_pages` and
//! reach through `__arena` pointers (address space 1, converted with `addr_space_cast`).
//!
//! bpflab creates arena maps with the kernel's rules, so objects that declare one load,
//! instantiate and show in `inspect`, and it decodes `addr_space_cast`
//! ([`Insn::AddrSpaceCast`](crate::isa::Insn::AddrSpaceCast)), which both engines run as a
//! plain register move. It does not map arena pages: the arena kfuncs fault with
//! "unsupported: arena address space", and the syscall operations are refused as in the
//! kernel (an arena has no elements).

use super::{Map, MapError};
use crate::memory::Memory;
use crate::spec::MapSpec;

/// `BPF_F_MMAPABLE`.
const BPF_F_MMAPABLE: u32 = 1 << 10;
/// `BPF_F_SEGV_ON_FAULT`.
const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;
/// `BPF_F_NO_USER_CONV`.
const BPF_F_NO_USER_CONV: u32 = 1 << 18;
/// The page size.
const PAGE_SIZE: u64 = 4096;

/// An arena map (created, with no pages).
#[derive(Debug)]
pub struct Arena {
    spec: MapSpec,
}

impl Arena {
    /// Creates an arena, with `arena_map_alloc`'s rules.
    pub fn new(spec: &MapSpec) -> Result<Arena, MapError> {
        let allowed = BPF_F_SEGV_ON_FAULT | BPF_F_MMAPABLE | BPF_F_NO_USER_CONV;
        if spec.key_size != 0
            || spec.value_size != 0
            || spec.max_entries == 0
            || spec.flags & BPF_F_MMAPABLE == 0
            || spec.flags & !allowed != 0
        {
            return Err(MapError::Invalid(
                "arena maps need key_size 0, value_size 0, pages as max_entries and \
                 BPF_F_MMAPABLE (only BPF_F_SEGV_ON_FAULT and BPF_F_NO_USER_CONV besides)",
            ));
        }
        if u64::from(spec.max_entries) * PAGE_SIZE > 1 << 32 {
            return Err(MapError::TooBig("an arena spans at most 4 GiB"));
        }
        Ok(Arena { spec: spec.clone() })
    }

    /// The arena's size in bytes (`max_entries` pages).
    pub fn size(&self) -> u64 {
        u64::from(self.spec.max_entries) * PAGE_SIZE
    }
}

impl Map for Arena {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn delete(&mut self, _mem: &mut Memory, _key: &[u8]) -> Result<(), MapError> {
        Err(self.unsupported())
    }

    fn next_key(&self, _mem: &Memory, _key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(self.unsupported())
    }

    fn read(&self, _mem: &Memory, _key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Err(self.unsupported())
    }

    fn write(
        &mut self,
        _mem: &mut Memory,
        _key: &[u8],
        _value: &[u8],
        _flags: u64,
    ) -> Result<(), MapError> {
        Err(self.unsupported())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MapType;

    #[test]
    fn creation_rules() {
        let mut s = MapSpec::new("arena", MapType::Arena, 0, 0, 100);
        assert!(matches!(Arena::new(&s), Err(MapError::Invalid(_))), "needs BPF_F_MMAPABLE");
        s.flags = BPF_F_MMAPABLE;
        assert_eq!(Arena::new(&s).unwrap().size(), 100 * 4096);
        s.max_entries = (1 << 20) + 1;
        assert!(matches!(Arena::new(&s), Err(MapError::TooBig(_))));
        s.max_entries = 1;
        s.flags |= 1;
        assert!(matches!(Arena::new(&s), Err(MapError::Invalid(_))));
    }
}
