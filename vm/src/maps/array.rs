//! `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY`: fixed `u32`-indexed slots, all present
//! and zero-initialised; elements cannot be deleted.
//!
//! Storage is sparse: an element (per CPU) gets its region the first time it is written or a
//! program is handed its address; one never touched reads as zeros. A map costs memory for
//! the elements touched, not for `max_entries`, so katran-sized arrays (33,554,944 entries)
//! load at once.

use std::collections::HashMap as StdHashMap;

use super::common::Journal;
use super::{BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, Map, MapError, check_len, percpu_stride};
use crate::memory::{Memory, Perm, RegionId, RegionKind};
use crate::spec::{MapSpec, MapType};

/// Largest element slot count (`max_entries * ncpus`) kept in a flat table; larger maps keep
/// their touched slots in a hash table.
pub const DENSE_ARRAY_SLOTS: u64 = 1 << 16;

/// `PCPU_MIN_UNIT_SIZE`: the largest per-CPU array value (rounded up to 8 bytes).
pub const PCPU_MIN_UNIT_SIZE: u32 = 32 << 10;

/// `BPF_F_RDONLY_PROG`: programs may only read the map.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// The regions of the elements touched so far, by slot (`index * ncpus + cpu`).
#[derive(Debug)]
enum Slots {
    /// Every slot, for small maps (one table entry per slot).
    Dense(Vec<Option<RegionId>>),
    /// Only the slots touched, for large maps.
    Sparse(StdHashMap<u64, RegionId>),
}

impl Slots {
    fn get(&self, at: u64) -> Option<RegionId> {
        match self {
            Slots::Dense(v) => v.get(at as usize).copied().flatten(),
            Slots::Sparse(m) => m.get(&at).copied(),
        }
    }

    fn insert(&mut self, at: u64, id: RegionId) {
        match self {
            Slots::Dense(v) => {
                if let Some(slot) = v.get_mut(at as usize) {
                    *slot = Some(id);
                }
            }
            Slots::Sparse(m) => {
                m.insert(at, id);
            }
        }
    }

    /// The slots that hold a region.
    fn touched(&self) -> Vec<u64> {
        match self {
            Slots::Dense(v) => {
                v.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| i as u64).collect()
            }
            Slots::Sparse(m) => m.keys().copied().collect(),
        }
    }
}

/// An array or per-CPU array; each element (per CPU) is its own region, created on first use.
#[derive(Debug)]
pub struct ArrayMap {
    spec: MapSpec,
    ncpus: u32,
    /// Region of element `i` on CPU `c` at slot `i * ncpus + c`.
    slots: Slots,
    perm: Perm,
    /// The elements changed since [`Map::begin_changes`], with their values before.
    journal: Journal,
}

impl ArrayMap {
    /// Creates the map (`array_map_alloc_check`'s rules; no memory is set aside for
    /// `max_entries`); global-data maps get their initial bytes.
    pub fn new(spec: &MapSpec, mem: &mut Memory, ncpus: u32) -> Result<ArrayMap, MapError> {
        if spec.key_size != 4 || spec.value_size == 0 || spec.max_entries == 0 {
            return Err(MapError::Invalid(
                "array maps need key_size 4, value_size > 0, max_entries > 0",
            ));
        }
        let percpu = spec.map_type == MapType::PercpuArray;
        if percpu && percpu_stride(spec.value_size) > PCPU_MIN_UNIT_SIZE as usize {
            return Err(MapError::TooBig("per-CPU array values are at most 32 KiB"));
        }
        let ncpus = if percpu { ncpus.max(1) } else { 1 };
        let count = u64::from(spec.max_entries) * u64::from(ncpus);
        let slots = if count <= DENSE_ARRAY_SLOTS {
            Slots::Dense(vec![None; count as usize])
        } else {
            Slots::Sparse(StdHashMap::new())
        };
        let perm = if spec.flags & BPF_F_RDONLY_PROG != 0
            || matches!(spec.data, Some((crate::spec::DataSection::Rodata, _)))
        {
            Perm::ReadOnly
        } else {
            Perm::ReadWrite
        };
        let mut map =
            ArrayMap { spec: spec.clone(), ncpus, slots, perm, journal: Journal::default() };
        if let Some((_, bytes)) = &spec.data {
            let mut value = bytes.clone();
            value.resize(spec.value_size as usize, 0);
            let id = mem.alloc(RegionKind::MapValue, value, map.perm)?;
            map.slots.insert(0, id);
        }
        Ok(map)
    }

    /// The indices of the elements that hold a region (written, or handed to a program), in
    /// order. Every other element reads as zeros.
    pub fn touched_indices(&self) -> Vec<u32> {
        let ncpus = u64::from(self.ncpus);
        let mut out: Vec<u32> =
            self.slots.touched().into_iter().map(|at| (at / ncpus) as u32).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn index(&self, key: &[u8]) -> Result<Option<u32>, MapError> {
        check_len("key", 4, key.len())?;
        let idx = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
        Ok((idx < self.spec.max_entries).then_some(idx))
    }

    /// The region of element `idx` on `cpu`, created zeroed if new.
    fn slot(&mut self, mem: &mut Memory, idx: u32, cpu: u32) -> Result<RegionId, MapError> {
        let at = u64::from(idx) * u64::from(self.ncpus) + u64::from(cpu % self.ncpus);
        if let Some(id) = self.slots.get(at) {
            return Ok(id);
        }
        let id =
            mem.alloc(RegionKind::MapValue, vec![0; self.spec.value_size as usize], self.perm)?;
        self.slots.insert(at, id);
        Ok(id)
    }

    /// Records element `idx`'s value before its first change in the journal's window.
    fn note(&mut self, mem: &Memory, idx: u32) {
        let key = idx.to_le_bytes();
        if self.journal.wants(&key) {
            let old = self.value(mem, idx);
            self.journal.record(&key, Some(old));
        }
    }

    /// The user-side value of element `idx` (all CPUs for per-CPU arrays).
    fn value(&self, mem: &Memory, idx: u32) -> Vec<u8> {
        let size = self.spec.value_size as usize;
        let percpu = self.spec.map_type == MapType::PercpuArray;
        let stride = if percpu { percpu_stride(self.spec.value_size) } else { size };
        let mut out = vec![0; stride * self.ncpus as usize];
        for cpu in 0..self.ncpus {
            let at = u64::from(idx) * u64::from(self.ncpus) + u64::from(cpu);
            if let Some(id) = self.slots.get(at) {
                let c = cpu as usize;
                out[c * stride..c * stride + size].copy_from_slice(mem.bytes(id));
            }
        }
        out
    }

    fn check_flags(flags: u64) -> Result<(), MapError> {
        match flags & !BPF_F_LOCK {
            _ if flags > (BPF_EXIST | BPF_F_LOCK) => Err(MapError::Invalid("unknown flags")),
            BPF_NOEXIST => Err(MapError::Exists),
            _ => Ok(()),
        }
    }

    fn write_slot(
        &mut self,
        mem: &mut Memory,
        idx: u32,
        cpu: u32,
        value: &[u8],
    ) -> Result<(), MapError> {
        let id = self.slot(mem, idx, cpu)?;
        let bytes = mem.bytes_mut(id);
        bytes.clear();
        bytes.extend_from_slice(value);
        Ok(())
    }
}

impl Map for ArrayMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, mem: &mut Memory, key: &[u8], cpu: u32) -> Result<Option<u64>, MapError> {
        match self.index(key)? {
            Some(idx) => {
                // The program may write through the pointer: the element may change.
                self.note(mem, idx);
                Ok(Some(self.slot(mem, idx, cpu)?.base()))
            }
            None => Ok(None),
        }
    }

    fn update(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        Self::check_flags(flags)?;
        check_len("value", self.spec.value_size as usize, value.len())?;
        let idx = self.index(key)?.ok_or(MapError::Full)?;
        self.note(mem, idx);
        self.write_slot(mem, idx, cpu, value)
    }

    fn delete(&mut self, _mem: &mut Memory, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Invalid("array elements cannot be deleted"))
    }

    fn next_key(&self, _mem: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let next = match key {
            None => 0,
            Some(k) => match self.index(k)? {
                Some(idx) => idx + 1,
                None => 0,
            },
        };
        Ok((next < self.spec.max_entries).then(|| next.to_le_bytes().to_vec()))
    }

    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self.index(key)?.map(|idx| self.value(mem, idx)))
    }

    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        Self::check_flags(flags)?;
        let idx = self.index(key)?.ok_or(MapError::Full)?;
        let size = self.spec.value_size as usize;
        if self.spec.map_type != MapType::PercpuArray {
            check_len("value", size, value.len())?;
            self.note(mem, idx);
            return self.write_slot(mem, idx, 0, value);
        }
        let stride = percpu_stride(self.spec.value_size);
        check_len("value", stride * self.ncpus as usize, value.len())?;
        self.note(mem, idx);
        for cpu in 0..self.ncpus {
            let at = cpu as usize * stride;
            self.write_slot(mem, idx, cpu, &value[at..at + size])?;
        }
        Ok(())
    }

    fn begin_changes(&mut self, mem: &Memory) -> bool {
        self.journal.begin();
        // Element 0 may be reached without a lookup in this window: direct value access
        // (global data) resolves its address when the program is loaded.
        if self.slots.get(0).is_some() {
            self.note(mem, 0);
        }
        true
    }

    fn take_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.journal.take()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
