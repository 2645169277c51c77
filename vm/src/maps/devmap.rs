//! `BPF_MAP_TYPE_DEVMAP` and `BPF_MAP_TYPE_DEVMAP_HASH` (kernel/bpf/devmap.c): key → network
//! device, the targets of `bpf_redirect_map` in XDP. A value is a `u32` ifindex, or `struct
//! bpf_devmap_val { u32 ifindex; u32 prog_fd; }`. bpflab has no devices: every nonzero
//! ifindex exists, and a devmap program (`prog_fd` > 0) is stored but never run. Programs
//! see the values read-only (the kernel forces `BPF_F_RDONLY_PROG`).
//!
//! The hash flavour iterates in ascending key order (the kernel's is bucket order).

use std::collections::BTreeMap;

use super::common::{
    BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_WRONLY, ValueStore, array_next_key, check_flags, index_key,
};
use super::{BPF_EXIST, BPF_NOEXIST, Map, MapError, check_len};
use crate::memory::{Memory, Perm, RegionId};
use crate::spec::{MapSpec, MapType};

/// A device map of either flavour.
#[derive(Debug)]
pub struct DevMap {
    spec: MapSpec,
    hash: bool,
    entries: BTreeMap<u32, RegionId>,
    values: ValueStore,
}

impl DevMap {
    /// Creates an empty map, with `dev_map_init_map`'s rules.
    pub fn new(spec: &MapSpec) -> Result<DevMap, MapError> {
        if spec.max_entries == 0
            || spec.key_size != 4
            || (spec.value_size != 4 && spec.value_size != 8)
        {
            return Err(MapError::Invalid(
                "devmap maps need key_size 4, value_size 4 or 8, max_entries > 0",
            ));
        }
        check_flags(spec.flags, BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY)?;
        let hash = spec.map_type == MapType::DevmapHash;
        if hash && spec.max_entries > 1 << 31 {
            return Err(MapError::Invalid("too many buckets"));
        }
        Ok(DevMap {
            spec: spec.clone(),
            hash,
            entries: BTreeMap::new(),
            values: ValueStore::new(Perm::ReadOnly),
        })
    }

    /// The ifindex at `key`, as `bpf_redirect_map` finds it.
    pub fn ifindex(&self, mem: &Memory, key: u32) -> Option<u32> {
        let b = mem.bytes(*self.entries.get(&key)?);
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Every `(key, ifindex)`, in key order.
    pub fn devices<'m>(&'m self, mem: &'m Memory) -> impl Iterator<Item = (u32, u32)> + 'm {
        self.entries.keys().filter_map(|&k| Some((k, self.ifindex(mem, k)?)))
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map holds no device.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn store(&mut self, mem: &mut Memory, key: u32, value: &[u8]) -> Result<(), MapError> {
        match self.entries.get(&key) {
            Some(&id) => mem.contents_mut(id).copy_from_slice(value),
            None => {
                let id = self.values.alloc(mem, value)?;
                self.entries.insert(key, id);
            }
        }
        Ok(())
    }

    fn remove(&mut self, key: u32) -> bool {
        match self.entries.remove(&key) {
            Some(id) => {
                self.values.release(id);
                true
            }
            None => false,
        }
    }
}

impl Map for DevMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, _: &mut Memory, key: &[u8], _: u32) -> Result<Option<u64>, MapError> {
        let key = index_key(key)?;
        Ok(self.entries.get(&key).map(|id| id.base()))
    }

    fn delete(&mut self, _: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        let key = index_key(key)?;
        if self.hash {
            return if self.remove(key) { Ok(()) } else { Err(MapError::NotFound) };
        }
        if key >= self.spec.max_entries {
            return Err(MapError::Invalid("index out of range"));
        }
        self.remove(key);
        Ok(())
    }

    fn next_key(&self, _: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if !self.hash {
            return array_next_key(self.spec.max_entries, key);
        }
        let next = match key {
            Some(k) if self.entries.contains_key(&index_key(k)?) => {
                let k = index_key(k)?;
                self.entries.range(k + 1..).next().map(|(&k, _)| k)
            }
            _ => self.entries.keys().next().copied(),
        };
        Ok(next.map(|k| k.to_le_bytes().to_vec()))
    }

    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let key = index_key(key)?;
        Ok(self.entries.get(&key).map(|&id| mem.bytes(id).to_vec()))
    }

    /// `__dev_map_update_elem` / `__dev_map_hash_update_elem`.
    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let idx = index_key(key)?;
        check_len("value", self.spec.value_size as usize, value.len())?;
        let ifindex = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
        let prog_fd = value.get(4..8).map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if flags > BPF_EXIST {
            return Err(MapError::Invalid("unknown flags"));
        }
        if self.hash {
            if ifindex == 0 {
                return Err(MapError::Invalid("devmap_hash values need an ifindex"));
            }
            let exists = self.entries.contains_key(&idx);
            if exists && flags & BPF_NOEXIST != 0 {
                return Err(MapError::Exists);
            }
            if !exists && self.entries.len() >= self.spec.max_entries as usize {
                return Err(MapError::Full);
            }
            return self.store(mem, idx, value);
        }
        if idx >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        if flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        if ifindex == 0 {
            if prog_fd > 0 {
                return Err(MapError::Invalid("a devmap program needs an ifindex"));
            }
            self.remove(idx);
            return Ok(());
        }
        self.store(mem, idx, value)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
