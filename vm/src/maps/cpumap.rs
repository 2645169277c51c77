//! `BPF_MAP_TYPE_CPUMAP` (kernel/bpf/cpumap.c): CPU → queue, the targets of `bpf_redirect_map`
//! that hand XDP frames to another CPU. A value is `struct bpf_cpumap_val { u32 qsize; u32
//! prog_fd; }` (or just `qsize`); a qsize of 0 removes the entry. The possible CPUs are the
//! world's simulated ones. A cpumap program is stored but never run.

use std::collections::BTreeMap;

use super::common::{BPF_F_NUMA_NODE, array_next_key, check_flags, index_key};
use super::{BPF_EXIST, BPF_NOEXIST, Map, MapError, check_len};
use crate::memory::Memory;
use crate::spec::MapSpec;

/// `NR_CPUS` of the kernel bpflab follows (the oracle machine's configuration); a cpumap may
/// not have more entries.
pub const NR_CPUS: u32 = 256;
/// Largest queue size (`cpu_map_update_elem`'s sanity limit).
const MAX_QSIZE: u32 = 16384;

/// A CPU map.
#[derive(Debug)]
pub struct CpuMap {
    spec: MapSpec,
    ncpus: u32,
    /// CPU → value bytes.
    entries: BTreeMap<u32, Vec<u8>>,
}

impl CpuMap {
    /// Creates an empty map for a machine of `ncpus` CPUs, with `cpu_map_alloc`'s rules.
    pub fn new(spec: &MapSpec, ncpus: u32) -> Result<CpuMap, MapError> {
        if spec.max_entries == 0
            || spec.key_size != 4
            || (spec.value_size != 4 && spec.value_size != 8)
        {
            return Err(MapError::Invalid(
                "cpumap maps need key_size 4, value_size 4 or 8, max_entries > 0",
            ));
        }
        check_flags(spec.flags, BPF_F_NUMA_NODE)?;
        if spec.max_entries > NR_CPUS {
            return Err(MapError::Full);
        }
        Ok(CpuMap { spec: spec.clone(), ncpus: ncpus.max(1), entries: BTreeMap::new() })
    }

    /// True if CPU `cpu` has a queue (what `bpf_redirect_map` looks up).
    pub fn has_cpu(&self, cpu: u32) -> bool {
        self.entries.contains_key(&cpu)
    }

    /// Every `(cpu, qsize)`.
    pub fn queues(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.entries.iter().map(|(&c, v)| (c, u32::from_le_bytes([v[0], v[1], v[2], v[3]])))
    }
}

impl Map for CpuMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn delete(&mut self, _: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        let cpu = index_key(key)?;
        if cpu >= self.spec.max_entries {
            return Err(MapError::Invalid("index out of range"));
        }
        self.entries.remove(&cpu);
        Ok(())
    }

    fn next_key(&self, _: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        array_next_key(self.spec.max_entries, key)
    }

    fn read(&self, _: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let cpu = index_key(key)?;
        Ok(self.entries.get(&cpu).cloned())
    }

    /// `cpu_map_update_elem`.
    fn write(
        &mut self,
        _: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let cpu = index_key(key)?;
        check_len("value", self.spec.value_size as usize, value.len())?;
        let qsize = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
        if flags > BPF_EXIST {
            return Err(MapError::Invalid("unknown flags"));
        }
        if cpu >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        if flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        if qsize > MAX_QSIZE {
            return Err(MapError::Overflow("qsize above 16384"));
        }
        if cpu >= self.ncpus {
            return Err(MapError::NoDevice("not a possible CPU"));
        }
        if qsize == 0 {
            self.entries.remove(&cpu);
        } else {
            self.entries.insert(cpu, value.to_vec());
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
