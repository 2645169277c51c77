//! The state programs share: one address space (stacks, map values, per-run regions), the
//! maps, and the simulated environment. One `World` serves all programs of a collection, as
//! the kernel serves all programs that share maps.

use crate::env::Env;
use crate::maps::{self, Map, MapError};
use crate::memory::{MAX_FRAMES, Memory, Perm, RegionId, RegionKind, STACK_SIZE};
use crate::spec::MapSpec;

/// A map element as the user-side API returns it: key bytes and value bytes.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One map element that changed between [`World::begin_changes`] and
/// [`World::take_changes`]: user-side values (all CPUs for per-CPU maps) before and after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapChange {
    /// The map's index.
    pub map: usize,
    /// The element's key.
    pub key: Vec<u8>,
    /// The value before (`None`: the element did not exist).
    pub old: Option<Vec<u8>>,
    /// The value after (`None`: the element was deleted).
    pub new: Option<Vec<u8>>,
}

/// How the changes of one map are found while a change window is open.
#[derive(Debug)]
enum ChangeLog {
    /// The map records the elements it hands out or changes itself.
    Journal,
    /// The map records nothing and has not been touched yet in this window.
    Untouched,
    /// The map records nothing: its contents when it was first touched in this window
    /// (`None`: user space cannot list it).
    Snapshot(Option<Vec<Entry>>),
}

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
    /// Per map, how its changes are found while a change window is open.
    changes: Option<Vec<ChangeLog>>,
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
            changes: None,
        })
    }

    /// Opens a change window: from now until [`World::take_changes`], the world records
    /// which map elements programs (or user space) touch. Maps that record their own changes
    /// (arrays, hashes) cost one entry per element touched; other maps are copied in full
    /// the first time they are touched. Reopening drops what the open window recorded.
    pub fn begin_changes(&mut self) {
        let mem = &self.mem;
        let logs = self
            .maps
            .iter_mut()
            .map(|m| if m.begin_changes(mem) { ChangeLog::Journal } else { ChangeLog::Untouched })
            .collect();
        self.changes = Some(logs);
    }

    /// Closes the change window: every element whose value differs from when the window
    /// opened (created, changed or deleted), by map then key. Linear in the elements touched
    /// (plus the size of the maps that record nothing themselves and were touched). Empty
    /// when no window is open.
    pub fn take_changes(&mut self) -> Vec<MapChange> {
        let Some(logs) = self.changes.take() else { return Vec::new() };
        let mut out = Vec::new();
        for (idx, log) in logs.into_iter().enumerate() {
            let map = &mut self.maps[idx];
            match log {
                ChangeLog::Untouched | ChangeLog::Snapshot(None) => {}
                ChangeLog::Journal => {
                    for (key, old) in map.take_changes() {
                        let new = map.read(&self.mem, &key).ok().flatten();
                        if new != old {
                            out.push(MapChange { map: idx, key, old, new });
                        }
                    }
                }
                ChangeLog::Snapshot(Some(before)) => {
                    let Ok(after) = self.entries(idx) else { continue };
                    let before: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
                        before.into_iter().collect();
                    let mut after: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
                        after.into_iter().collect();
                    for (key, old) in before {
                        let new = after.remove(&key);
                        if new.as_ref() != Some(&old) {
                            out.push(MapChange { map: idx, key, old: Some(old), new });
                        }
                    }
                    for (key, new) in after {
                        out.push(MapChange { map: idx, key, old: None, new: Some(new) });
                    }
                }
            }
        }
        out.sort_by(|a, b| (a.map, &a.key).cmp(&(b.map, &b.key)));
        out
    }

    /// Before map `idx` is handed out mutably in a change window: copies a map that records
    /// nothing itself the first time.
    #[inline]
    fn note_touch(&mut self, idx: usize) {
        let untouched =
            matches!(self.changes.as_ref().and_then(|l| l.get(idx)), Some(ChangeLog::Untouched));
        if untouched {
            let snapshot = self.entries(idx).ok();
            if let Some(log) = self.changes.as_mut().and_then(|l| l.get_mut(idx)) {
                *log = ChangeLog::Snapshot(snapshot);
            }
        }
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
        if self.changes.is_some() {
            self.note_touch(idx);
        }
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
