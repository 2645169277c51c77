//! `BPF_MAP_TYPE_PROG_ARRAY`: `u32` index → program, the jump table of `bpf_tail_call`.
//! bpflab has no fds: a value is the index of a program of the same instance, and reading
//! an entry gives that index back (the kernel gives the program's id).

use std::collections::BTreeMap;

use super::common::{
    BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG, array_next_key,
    check_flags, index_key, u32_value,
};
use super::{BPF_ANY, Map, MapError};
use crate::memory::Memory;
use crate::spec::MapSpec;

/// A program array.
#[derive(Debug)]
pub struct ProgArray {
    spec: MapSpec,
    progs: BTreeMap<u32, u32>,
}

impl ProgArray {
    /// Creates an empty program array, with `fd_array_map_alloc_check`'s rules.
    pub fn new(spec: &MapSpec) -> Result<ProgArray, MapError> {
        if spec.key_size != 4 || spec.value_size != 4 || spec.max_entries == 0 {
            return Err(MapError::Invalid(
                "prog_array maps need key_size 4, value_size 4, max_entries > 0",
            ));
        }
        if spec.flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG) != 0 {
            return Err(MapError::Invalid("program access flags are not supported here"));
        }
        check_flags(spec.flags, BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)?;
        Ok(ProgArray { spec: spec.clone(), progs: BTreeMap::new() })
    }

    /// The program at `index`, as `bpf_tail_call` finds it (`None` past the end or if empty).
    pub fn program(&self, index: u32) -> Option<usize> {
        self.progs.get(&index).map(|&p| p as usize)
    }

    /// The filled entries: index → program.
    pub fn programs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.progs.iter().map(|(&i, &p)| (i, p))
    }
}

impl Map for ProgArray {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn delete(&mut self, _: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        let idx = index_key(key)?;
        if idx >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        self.progs.remove(&idx).map(|_| ()).ok_or(MapError::NotFound)
    }

    fn next_key(&self, _: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        array_next_key(self.spec.max_entries, key)
    }

    fn read(&self, _: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let idx = index_key(key)?;
        Ok(self.progs.get(&idx).map(|p| p.to_le_bytes().to_vec()))
    }

    /// Stores program index `value` at `key` (the kernel takes a program fd).
    fn write(
        &mut self,
        _: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let idx = index_key(key)?;
        let prog = u32_value(value)?;
        if flags != BPF_ANY {
            return Err(MapError::Invalid("fd array updates take BPF_ANY only"));
        }
        if idx >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        self.progs.insert(idx, prog);
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
