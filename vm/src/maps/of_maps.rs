//! `BPF_MAP_TYPE_ARRAY_OF_MAPS` and `BPF_MAP_TYPE_HASH_OF_MAPS` (kernel/bpf/arraymap.c,
//! hashtab.c, map_in_map.c): values are other maps of the same [`World`]. A value is the inner
//! map's index in the world (bpflab has no fds); a program's lookup returns the inner map's
//! handle, which it can pass to the map helpers. An inner map must match the spec's `inner`
//! template as `bpf_map_meta_equal` requires: type, key and value size, flags, and for
//! array-like maps max_entries unless the template has `BPF_F_INNER_MAP`.
//!
//! [`set_inner_map`] checks the template, which needs the other maps' specs; the plain
//! user-side update ([`Map::write`], what `World::update` calls) cannot see them and only
//! checks that the index names a map of the world. The hash flavour iterates in ascending key
//! order.

use std::collections::BTreeMap;

use super::common::{
    BPF_F_ACCESS_MASK, BPF_F_INNER_MAP, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, array_next_key,
    check_flags, index_key, u32_value,
};
use super::{BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, Map, MapError, check_len};
use crate::memory::{Memory, RegionId, RegionKind};
use crate::spec::{MapSpec, MapType};
use crate::world::World;

/// An array or hash of maps.
#[derive(Debug)]
pub struct OfMaps {
    spec: MapSpec,
    hash: bool,
    /// Key → (inner map index, its handle).
    entries: BTreeMap<Vec<u8>, (u32, u64)>,
    /// Region index of map 0's handle and the number of maps, found in the address space.
    handles: (u32, u32),
}

/// The world's map handles: the run of empty kernel-object regions right after the stacks
/// (`World::new` allocates one per map before creating any map).
fn find_handles(mem: &Memory) -> (u32, u32) {
    let mut i = 0;
    while let Some(RegionKind::Stack(_)) = mem.kind(RegionId::from_index(i)) {
        i += 1;
    }
    let first = i;
    while mem.kind(RegionId::from_index(i)) == Some(RegionKind::Kernel)
        && mem.bytes(RegionId::from_index(i)).is_empty()
    {
        i += 1;
    }
    (first, i - first)
}

impl OfMaps {
    /// Creates an empty map-in-map in the world whose address space is `mem`; the spec must
    /// carry the inner template.
    pub fn new(spec: &MapSpec, mem: &Memory) -> Result<OfMaps, MapError> {
        let hash = spec.map_type == MapType::HashOfMaps;
        if spec.value_size != 4
            || spec.max_entries == 0
            || spec.key_size == 0
            || (!hash && spec.key_size != 4)
        {
            return Err(MapError::Invalid(
                "map-in-map needs value_size 4, max_entries > 0 (and key_size 4 for arrays)",
            ));
        }
        let allowed = if hash {
            BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
        } else {
            BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK
        };
        check_flags(spec.flags, allowed)?;
        let Some(inner) = &spec.inner else {
            return Err(MapError::Invalid("map-in-map needs an inner map template"));
        };
        match inner.map_type {
            MapType::ProgArray => return Err(MapError::NotSupp),
            MapType::ArrayOfMaps | MapType::HashOfMaps => {
                return Err(MapError::Invalid("maps of maps cannot nest"));
            }
            _ => {}
        }
        Ok(OfMaps {
            spec: spec.clone(),
            hash,
            entries: BTreeMap::new(),
            handles: find_handles(mem),
        })
    }

    /// The inner map index stored under `key`.
    pub fn inner(&self, key: &[u8]) -> Option<usize> {
        self.entries.get(key).map(|&(i, _)| i as usize)
    }

    /// Every `(key, inner map index)`, in iteration order.
    pub fn inner_maps(&self) -> impl Iterator<Item = (&[u8], usize)> + '_ {
        self.entries.iter().map(|(k, &(i, _))| (k.as_slice(), i as usize))
    }

    /// `bpf_map_meta_equal` (and `array_map_meta_equal`) against the template.
    fn compatible(&self, inner: &MapSpec) -> bool {
        let Some(t) = &self.spec.inner else { return false };
        let array_like = matches!(
            t.map_type,
            MapType::Array | MapType::PercpuArray | MapType::PerfEventArray | MapType::CgroupArray
        );
        t.map_type == inner.map_type
            && t.key_size == inner.key_size
            && t.value_size == inner.value_size
            && t.flags == inner.flags
            && (!array_like || t.flags & BPF_F_INNER_MAP != 0 || t.max_entries == inner.max_entries)
    }

    /// Stores inner map `inner` (with `handle`, spec `inner_spec`) under `key`.
    fn set(
        &mut self,
        key: &[u8],
        inner: usize,
        handle: u64,
        inner_spec: Option<&MapSpec>,
        flags: u64,
    ) -> Result<(), MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        let mismatch = MapError::Invalid("inner map does not match the template");
        let compatible = inner_spec.is_none_or(|s| self.compatible(s));
        if !self.hash {
            let idx = index_key(key)?;
            if flags != BPF_ANY {
                return Err(MapError::Invalid("fd array updates take BPF_ANY only"));
            }
            if idx >= self.spec.max_entries {
                return Err(MapError::Full);
            }
            if !compatible {
                return Err(mismatch);
            }
            self.entries.insert(key.to_vec(), (inner as u32, handle));
            return Ok(());
        }
        if !compatible {
            return Err(mismatch);
        }
        if flags & !BPF_F_LOCK > BPF_EXIST || flags & BPF_F_LOCK != 0 {
            return Err(MapError::Invalid("unknown flags"));
        }
        let exists = self.entries.contains_key(key);
        match (exists, flags) {
            (true, BPF_NOEXIST) => return Err(MapError::Exists),
            (false, BPF_EXIST) => return Err(MapError::NotFound),
            (false, _) if self.entries.len() >= self.spec.max_entries as usize => {
                return Err(MapError::Full);
            }
            _ => {}
        }
        self.entries.insert(key.to_vec(), (inner as u32, handle));
        Ok(())
    }
}

/// User side: stores map `inner` of `world` under `key` of map-in-map `outer` (what
/// `bpf_map_update_elem(outer_fd, key, &inner_fd, flags)` does).
pub fn set_inner_map(
    world: &mut World,
    outer: usize,
    key: &[u8],
    inner: usize,
    flags: u64,
) -> Result<(), MapError> {
    let inner_spec = world.map(inner).ok_or(MapError::Invalid("no such inner map"))?.spec().clone();
    let handle = world.map_handle(inner).ok_or(MapError::Invalid("no such inner map"))?;
    let (map, _) = world.map_mut(outer).ok_or(MapError::Invalid("no such map"))?;
    let of = map
        .as_any_mut()
        .downcast_mut::<OfMaps>()
        .ok_or(MapError::Invalid("not an array_of_maps or hash_of_maps map"))?;
    of.set(key, inner, handle, Some(&inner_spec), flags)
}

impl Map for OfMaps {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    /// The inner map's handle (NULL for an empty slot).
    fn lookup(&mut self, _: &mut Memory, key: &[u8], _: u32) -> Result<Option<u64>, MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        Ok(self.entries.get(key).map(|&(_, h)| h))
    }

    fn delete(&mut self, _: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        if !self.hash && index_key(key)? >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        self.entries.remove(key).map(|_| ()).ok_or(MapError::NotFound)
    }

    fn next_key(&self, _: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if !self.hash {
            return array_next_key(self.spec.max_entries, key);
        }
        let next = match key {
            Some(k) if self.entries.contains_key(k) => self
                .entries
                .range::<[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, _)| k),
            Some(k) => {
                check_len("key", self.spec.key_size as usize, k.len())?;
                self.entries.keys().next()
            }
            None => self.entries.keys().next(),
        };
        Ok(next.cloned())
    }

    /// The inner map's index (the kernel returns its id).
    fn read(&self, _: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        Ok(self.entries.get(key).map(|&(i, _)| i.to_le_bytes().to_vec()))
    }

    /// Stores inner map `value` (a `u32` map index) under `key`, without the template check
    /// (see [`set_inner_map`]).
    fn write(
        &mut self,
        _: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let inner = u32_value(value)?;
        let (first, count) = self.handles;
        if inner >= count {
            return Err(MapError::Invalid("no such inner map"));
        }
        let handle = RegionId::from_index(first + inner).base();
        self.set(key, inner as usize, handle, None, flags)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
