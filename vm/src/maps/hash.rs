//! `BPF_MAP_TYPE_HASH`, `PERCPU_HASH`, `LRU_HASH` and `LRU_PERCPU_HASH`.
//!
//! Iteration visits keys in byte order (deterministic, unlike the kernel's bucket order).
//! LRU maps evict the least recently used element when full; the kernel's LRU is approximate
//! (per-CPU lists), so which element goes can differ from it when several are equally old.
//! Deleted elements' memory is kept for reuse, like the kernel's preallocated elements, so a
//! pointer a program still holds stays valid memory. Nothing is set aside for `max_entries`:
//! the map grows as elements are inserted.

use std::collections::BTreeMap;

use super::common::Journal;
use super::{BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, Map, MapError, check_len, percpu_stride};
use crate::memory::{Memory, Perm, RegionId, RegionKind};
use crate::spec::{MapSpec, MapType};

#[derive(Debug, Clone)]
struct Entry {
    /// One region per CPU (one for non-per-CPU maps).
    regions: Vec<RegionId>,
    /// Recency stamp (LRU maps).
    used: u64,
}

/// A hash map of any of the four hash flavours.
#[derive(Debug)]
pub struct HashMap {
    spec: MapSpec,
    ncpus: u32,
    lru: bool,
    entries: BTreeMap<Vec<u8>, Entry>,
    /// LRU order: recency stamp → key.
    recency: BTreeMap<u64, Vec<u8>>,
    clock: u64,
    /// Regions of deleted elements, reused by later inserts.
    spare: Vec<Vec<RegionId>>,
    /// The elements changed since [`Map::begin_changes`], with their values before.
    journal: Journal,
}

impl HashMap {
    /// Creates an empty map.
    pub fn new(spec: &MapSpec, ncpus: u32) -> HashMap {
        let percpu = matches!(spec.map_type, MapType::PercpuHash | MapType::LruPercpuHash);
        HashMap {
            spec: spec.clone(),
            ncpus: if percpu { ncpus.max(1) } else { 1 },
            lru: matches!(spec.map_type, MapType::LruHash | MapType::LruPercpuHash),
            entries: BTreeMap::new(),
            recency: BTreeMap::new(),
            clock: 0,
            spare: Vec::new(),
            journal: Journal::default(),
        }
    }

    /// Records `key`'s value before its first change in the journal's window.
    fn note(&mut self, mem: &Memory, key: &[u8]) {
        if self.journal.wants(key) {
            let old = self.read(mem, key).ok().flatten();
            self.journal.record(key, old);
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map holds no element.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn touch(&mut self, key: &[u8]) {
        if !self.lru {
            return;
        }
        self.clock += 1;
        if let Some(e) = self.entries.get_mut(key) {
            self.recency.remove(&e.used);
            e.used = self.clock;
            self.recency.insert(self.clock, key.to_vec());
        }
    }

    fn check_flags(flags: u64) -> Result<(), MapError> {
        if flags > (BPF_EXIST | BPF_F_LOCK) || flags & 3 == 3 {
            return Err(MapError::Invalid("unknown flags"));
        }
        Ok(())
    }

    /// Finds or creates the element for `key` following `flags`; returns its regions.
    fn upsert(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        flags: u64,
    ) -> Result<(Vec<RegionId>, bool), MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        Self::check_flags(flags)?;
        let exists = self.entries.contains_key(key);
        match (exists, flags & 3) {
            (true, BPF_NOEXIST) => return Err(MapError::Exists),
            (false, BPF_EXIST) => return Err(MapError::NotFound),
            _ => {}
        }
        self.note(mem, key);
        if exists {
            self.touch(key);
            return Ok((self.entries[key].regions.clone(), false));
        }
        if self.entries.len() >= self.spec.max_entries as usize {
            if !self.lru {
                return Err(MapError::Full);
            }
            let Some((_, victim)) = self.recency.pop_first() else { return Err(MapError::Full) };
            self.note(mem, &victim);
            if let Some(e) = self.entries.remove(&victim) {
                self.spare.push(e.regions);
            }
        }
        let regions = match self.spare.pop() {
            Some(r) => r,
            None => {
                let mut r = Vec::with_capacity(self.ncpus as usize);
                for _ in 0..self.ncpus {
                    let value = vec![0; self.spec.value_size as usize];
                    r.push(mem.alloc(RegionKind::MapValue, value, Perm::ReadWrite)?);
                }
                r
            }
        };
        for &id in &regions {
            mem.contents_mut(id).fill(0);
        }
        self.entries.insert(key.to_vec(), Entry { regions: regions.clone(), used: 0 });
        self.touch(key);
        Ok((regions, true))
    }
}

impl Map for HashMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, mem: &mut Memory, key: &[u8], cpu: u32) -> Result<Option<u64>, MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        let Some(e) = self.entries.get(key) else { return Ok(None) };
        let id = e.regions[(cpu % self.ncpus) as usize];
        // The program may write through the pointer: the element may change.
        self.note(mem, key);
        self.touch(key);
        Ok(Some(id.base()))
    }

    fn update(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        check_len("value", self.spec.value_size as usize, value.len())?;
        let (regions, _) = self.upsert(mem, key, flags)?;
        mem.contents_mut(regions[(cpu % self.ncpus) as usize]).copy_from_slice(value);
        Ok(())
    }

    fn delete(&mut self, mem: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        self.note(mem, key);
        let e = self.entries.remove(key).ok_or(MapError::NotFound)?;
        if self.lru {
            self.recency.remove(&e.used);
        }
        self.spare.push(e.regions);
        Ok(())
    }

    fn next_key(&self, _mem: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let next = match key {
            None => self.entries.keys().next(),
            Some(k) => {
                check_len("key", self.spec.key_size as usize, k.len())?;
                // A key that is not in the map restarts the iteration, as in the kernel.
                if self.entries.contains_key(k) {
                    self.entries
                        .range::<[u8], _>((
                            std::ops::Bound::Excluded(k),
                            std::ops::Bound::Unbounded,
                        ))
                        .next()
                        .map(|(k, _)| k)
                } else {
                    self.entries.keys().next()
                }
            }
        };
        Ok(next.cloned())
    }

    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        let Some(e) = self.entries.get(key) else { return Ok(None) };
        if self.ncpus == 1
            && !matches!(self.spec.map_type, MapType::PercpuHash | MapType::LruPercpuHash)
        {
            return Ok(Some(mem.bytes(e.regions[0]).to_vec()));
        }
        let size = self.spec.value_size as usize;
        let stride = percpu_stride(self.spec.value_size);
        let mut out = vec![0; stride * self.ncpus as usize];
        for (cpu, &id) in e.regions.iter().enumerate() {
            out[cpu * stride..cpu * stride + size].copy_from_slice(mem.bytes(id));
        }
        Ok(Some(out))
    }

    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let percpu = matches!(self.spec.map_type, MapType::PercpuHash | MapType::LruPercpuHash);
        let size = self.spec.value_size as usize;
        if !percpu {
            check_len("value", size, value.len())?;
            let (regions, _) = self.upsert(mem, key, flags)?;
            mem.contents_mut(regions[0]).copy_from_slice(value);
            return Ok(());
        }
        let stride = percpu_stride(self.spec.value_size);
        check_len("value", stride * self.ncpus as usize, value.len())?;
        let (regions, _) = self.upsert(mem, key, flags)?;
        for (cpu, &id) in regions.iter().enumerate() {
            mem.contents_mut(id).copy_from_slice(&value[cpu * stride..cpu * stride + size]);
        }
        Ok(())
    }

    fn begin_changes(&mut self, _mem: &Memory) -> bool {
        self.journal.begin();
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
