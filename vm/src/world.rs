//! The state programs share: one address space (stacks, map values, per-run regions), the
//! maps, and the simulated environment. One `World` serves all programs of a collection, as
//! the kernel serves all programs that share maps.

use crate::env::Env;
use crate::maps::{self, Map, MapError};
use crate::memory::{MAX_FRAMES, Memory, Perm, RegionId, RegionKind, STACK_SIZE};
use crate::spec::MapSpec;

/// A map element as the user-side API returns it: key bytes and value bytes.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A map could not be created.
#[derive(Debug, thiserror::Error)]
#[error("map {name:?}: {error}")]
pub struct WorldError {
    /// The map's name.
    pub name: String,
    /// Why.
    pub error: MapError,
}

/// Maps, memory and environment of one simulated kernel.
#[derive(Debug)]
pub struct World {
    /// The address space.
    pub mem: Memory,
    maps: Vec<Box<dyn Map>>,
    /// Region of the first map's handle; map `i`'s handle is region `first_handle + i`.
    first_handle: u32,
    /// Clock, random numbers, trace output.
    pub env: Env,
    /// Number of simulated CPUs (per-CPU maps have one value per CPU).
    pub ncpus: u32,
    /// The simulated sockets (see [`crate::sock`]).
    pub socks: crate::sock::SockTable,
    /// The simulated kernel: current task, kernel objects, user memory, FIB (see [`crate::kobj`]).
    pub kernel: crate::kobj::Kernel,
}

impl World {
    /// A world with the stacks mapped and one map per spec.
    pub fn new(specs: &[MapSpec], ncpus: u32) -> Result<World, WorldError> {
        let mut mem = Memory::new();
        for frame in 0..MAX_FRAMES {
            mem.map(RegionKind::Stack(frame as u8), vec![0; STACK_SIZE], true)
                .expect("stack regions are small");
        }
        let first_handle = mem.next_id().index();
        for spec in specs {
            mem.alloc(RegionKind::Kernel, Vec::new(), Perm::None)
                .map_err(|e| WorldError { name: spec.name.clone(), error: e.into() })?;
        }
        let ncpus = ncpus.max(1);
        let mut maps = Vec::with_capacity(specs.len());
        for spec in specs {
            let map = maps::create(spec, &mut mem, ncpus)
                .map_err(|error| WorldError { name: spec.name.clone(), error })?;
            maps.push(map);
        }
        Ok(World {
            mem,
            maps,
            first_handle,
            env: Env::default(),
            ncpus,
            socks: crate::sock::SockTable::default(),
            kernel: crate::kobj::Kernel::default(),
        })
    }

    /// The address a program holds for map `idx` (what `LD_IMM64 map` loads).
    pub fn map_handle(&self, idx: usize) -> Option<u64> {
        (idx < self.maps.len()).then(|| RegionId::from_index(self.first_handle + idx as u32).base())
    }

    /// The map a handle address refers to.
    pub fn map_of_handle(&self, addr: u64) -> Option<usize> {
        let (id, _, off) = self.mem.resolve(addr)?;
        let idx = id.index().checked_sub(self.first_handle)? as usize;
        (off == 0 && idx < self.maps.len()).then_some(idx)
    }

    /// Number of maps.
    pub fn map_count(&self) -> usize {
        self.maps.len()
    }

    /// The index of the map named `name`.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.spec().name == name)
    }

    /// Map `idx`.
    pub fn map(&self, idx: usize) -> Option<&dyn Map> {
        self.maps.get(idx).map(|m| m.as_ref())
    }

    /// Map `idx` and the memory, mutably, for operations that touch both.
    pub fn map_mut(&mut self, idx: usize) -> Option<(&mut dyn Map, &mut Memory)> {
        let map = self.maps.get_mut(idx)?;
        Some((map.as_mut(), &mut self.mem))
    }

    /// User side: the value under `key` in map `idx` (all CPUs for per-CPU maps).
    pub fn lookup(&self, idx: usize, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.maps.get(idx).ok_or(MapError::Invalid("no such map"))?.read(&self.mem, key)
    }

    /// User side: writes `value` under `key` in map `idx`.
    pub fn update(
        &mut self,
        idx: usize,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let (map, mem) = self.map_mut(idx).ok_or(MapError::Invalid("no such map"))?;
        map.write(mem, key, value, flags)
    }

    /// User side: deletes `key` from map `idx`.
    pub fn delete(&mut self, idx: usize, key: &[u8]) -> Result<(), MapError> {
        let (map, mem) = self.map_mut(idx).ok_or(MapError::Invalid("no such map"))?;
        map.delete(mem, key)
    }

    /// User side: every key of map `idx`, in iteration order (each exactly once).
    pub fn keys(&self, idx: usize) -> Result<Vec<Vec<u8>>, MapError> {
        let map = self.maps.get(idx).ok_or(MapError::Invalid("no such map"))?;
        let mut keys = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        while let Some(next) = map.next_key(&self.mem, cur.as_deref())? {
            keys.push(next.clone());
            cur = Some(next);
            if keys.len() > map.spec().max_entries as usize {
                return Err(MapError::Invalid("iteration does not terminate"));
            }
        }
        Ok(keys)
    }

    /// User side: every `(key, value)` of map `idx`.
    pub fn entries(&self, idx: usize) -> Result<Vec<Entry>, MapError> {
        let mut out = Vec::new();
        for key in self.keys(idx)? {
            if let Some(value) = self.lookup(idx, &key)? {
                out.push((key, value));
            }
        }
        Ok(out)
    }
}
