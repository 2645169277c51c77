//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: `u32` index → perf event. bpflab has no perf events or fds:
//! an entry's value is the CPU its (simulated) `PERF_COUNT_SW_BPF_OUTPUT` event is bound to.
//! At creation, entry `i` is open on CPU `i` for every simulated CPU (what libbpf's
//! `perf_buffer__new` sets up); user-side updates rebind or add entries and deletes close
//! them. `bpf_perf_event_output` records land here, per entry, in order.

use std::collections::BTreeMap;

use super::common::{
    BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, BPF_F_PRESERVE_ELEMS, BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG,
    array_next_key, check_flags, index_key, u32_value,
};
use super::{BPF_ANY, Map, MapError};
use crate::memory::Memory;
use crate::spec::MapSpec;

/// `BPF_F_CURRENT_CPU`: the index flag value meaning "the current CPU's entry".
pub const BPF_F_CURRENT_CPU: u64 = 0xffff_ffff;
/// Bytes of records one entry may hold before outputs fail with `-ENOSPC` (a perf buffer of
/// 256 pages; the kernel's is whatever the reader mapped).
pub const PERF_BUFFER_BYTES: usize = 256 * 4096;

/// A perf event array and the records written to it.
#[derive(Debug)]
pub struct PerfEventArray {
    spec: MapSpec,
    /// Index → CPU of the open event.
    events: BTreeMap<u32, u32>,
    /// Index → records, oldest first.
    records: BTreeMap<u32, Vec<Vec<u8>>>,
    /// Index → bytes held (with the kernel's 8-byte header and padding per record).
    used: BTreeMap<u32, usize>,
}

impl PerfEventArray {
    /// Creates the array with entries `0..min(ncpus, max_entries)` open on their CPU. A
    /// `max_entries` of 0 means one entry per CPU, as libbpf sets it before creating the map.
    pub fn new(spec: &MapSpec, ncpus: u32) -> Result<PerfEventArray, MapError> {
        let mut spec = spec.clone();
        if spec.max_entries == 0 {
            spec.max_entries = ncpus.max(1);
        }
        if spec.key_size != 4 || spec.value_size != 4 {
            return Err(MapError::Invalid(
                "perf_event_array maps need key_size 4 and value_size 4",
            ));
        }
        if spec.flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG) != 0 {
            return Err(MapError::Invalid("program access flags are not supported here"));
        }
        check_flags(spec.flags, BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS)?;
        let events = (0..ncpus.max(1).min(spec.max_entries)).map(|i| (i, i)).collect();
        Ok(PerfEventArray { spec, events, records: BTreeMap::new(), used: BTreeMap::new() })
    }

    /// The CPU the event at `index` is bound to, if the entry is open.
    pub fn event_cpu(&self, index: u32) -> Option<u32> {
        self.events.get(&index).copied()
    }

    /// The open entries: index → CPU.
    pub fn events(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.events.iter().map(|(&i, &c)| (i, c))
    }

    /// The records output to entry `index`, oldest first.
    pub fn records(&self, index: u32) -> &[Vec<u8>] {
        self.records.get(&index).map_or(&[], Vec::as_slice)
    }

    /// Removes and returns the records of entry `index`.
    pub fn take_records(&mut self, index: u32) -> Vec<Vec<u8>> {
        self.used.remove(&index);
        self.records.remove(&index).unwrap_or_default()
    }

    /// Every entry that holds records, with them.
    pub fn all_records(&self) -> impl Iterator<Item = (u32, &[Vec<u8>])> + '_ {
        self.records.iter().map(|(&i, r)| (i, r.as_slice()))
    }

    /// Replaces the records of entry `index` (restoring saved state).
    pub fn set_records(&mut self, index: u32, records: Vec<Vec<u8>>) {
        let used = records.iter().map(|r| (8 + 4 + r.len()).div_ceil(8) * 8).sum();
        self.used.insert(index, used);
        self.records.insert(index, records);
    }

    /// Closes every entry and drops every record.
    pub fn clear(&mut self) {
        self.events.clear();
        self.records.clear();
        self.used.clear();
    }

    /// `bpf_perf_event_output` after the flags are decoded: appends `record` to entry `index`
    /// from `cpu`; returns the kernel's errno on failure.
    pub fn output(&mut self, index: u64, cpu: u32, record: Vec<u8>) -> Result<(), i64> {
        let index = if index == BPF_F_CURRENT_CPU { u64::from(cpu) } else { index };
        if index >= u64::from(self.spec.max_entries) {
            return Err(-7);
        }
        let index = index as u32;
        let Some(&on) = self.events.get(&index) else { return Err(-2) };
        if on != cpu {
            return Err(-95);
        }
        // struct perf_event_header + u32 size + data, padded to 8.
        let cost = (8 + 4 + record.len()).div_ceil(8) * 8;
        let used = self.used.entry(index).or_default();
        if *used + cost > PERF_BUFFER_BYTES {
            return Err(-28);
        }
        *used += cost;
        self.records.entry(index).or_default().push(record);
        Ok(())
    }
}

impl Map for PerfEventArray {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    /// `fd_array_map_delete_elem`: closes the entry.
    fn delete(&mut self, _: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        let idx = index_key(key)?;
        if idx >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        self.events.remove(&idx).map(|_| ()).ok_or(MapError::NotFound)
    }

    fn next_key(&self, _: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        array_next_key(self.spec.max_entries, key)
    }

    /// The syscall cannot read perf event arrays (`-ENOTSUPP`); see [`PerfEventArray::events`].
    fn read(&self, _: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        index_key(key)?;
        Err(MapError::NotSupp)
    }

    /// Opens entry `key` on the CPU `value` holds (the kernel takes a perf event fd).
    fn write(
        &mut self,
        _: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let idx = index_key(key)?;
        let cpu = u32_value(value)?;
        if flags != BPF_ANY {
            return Err(MapError::Invalid("fd array updates take BPF_ANY only"));
        }
        if idx >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        self.events.insert(idx, cpu);
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
