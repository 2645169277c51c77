//! Pieces the map types share: `BPF_F_*` creation flags, array-style keys and iteration, and
//! a pool of value regions that keeps deleted elements' memory valid (a pointer a program
//! still holds stays readable, as under the kernel's RCU).

use std::collections::BTreeMap;

use super::{MapError, check_len};
use crate::memory::{Memory, Perm, RegionId, RegionKind};

/// `BPF_F_NO_PREALLOC`.
pub(crate) const BPF_F_NO_PREALLOC: u32 = 1 << 0;
/// `BPF_F_NUMA_NODE`.
pub(crate) const BPF_F_NUMA_NODE: u32 = 1 << 2;
/// `BPF_F_RDONLY`.
pub(crate) const BPF_F_RDONLY: u32 = 1 << 3;
/// `BPF_F_WRONLY`.
pub(crate) const BPF_F_WRONLY: u32 = 1 << 4;
/// `BPF_F_ZERO_SEED`.
pub(crate) const BPF_F_ZERO_SEED: u32 = 1 << 6;
/// `BPF_F_RDONLY_PROG`.
pub(crate) const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_WRONLY_PROG`.
pub(crate) const BPF_F_WRONLY_PROG: u32 = 1 << 8;
/// `BPF_F_PRESERVE_ELEMS`.
pub(crate) const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
/// `BPF_F_INNER_MAP`.
pub(crate) const BPF_F_INNER_MAP: u32 = 1 << 12;
/// `BPF_F_ACCESS_MASK`: the access flags every map type accepts.
pub(crate) const BPF_F_ACCESS_MASK: u32 =
    BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;

/// Most bytes of values a queue, stack or LPM trie may hold (4 GiB): past it they fail with
/// `-ENOMEM`, as the kernel's allocations would under memory limits.
pub(crate) const MAX_MAP_BYTES: u64 = 1 << 32;

/// The kernel's `bpf_map_flags_access_ok` plus a mask of the flags a type accepts.
pub(crate) fn check_flags(flags: u32, allowed: u32) -> Result<(), MapError> {
    let both_prog = BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
    if flags & !allowed != 0 {
        return Err(MapError::Invalid("map flags not supported by this map type"));
    }
    if flags & both_prog == both_prog || flags & (BPF_F_RDONLY | BPF_F_WRONLY) == 0x18 {
        return Err(MapError::Invalid("contradictory access flags"));
    }
    Ok(())
}

/// A 4-byte index key.
pub(crate) fn index_key(key: &[u8]) -> Result<u32, MapError> {
    check_len("key", 4, key.len())?;
    Ok(u32::from_le_bytes([key[0], key[1], key[2], key[3]]))
}

/// A 4-byte value read as `u32`.
pub(crate) fn u32_value(value: &[u8]) -> Result<u32, MapError> {
    check_len("value", 4, value.len())?;
    Ok(u32::from_le_bytes([value[0], value[1], value[2], value[3]]))
}

/// `array_map_get_next_key`: every index below `max_entries` in order, whether or not it holds
/// anything; a missing or out-of-range key restarts at 0.
pub(crate) fn array_next_key(
    max_entries: u32,
    key: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, MapError> {
    let next = match key {
        None => 0,
        Some(k) => {
            let idx = index_key(k)?;
            if idx >= max_entries {
                0
            } else if idx == max_entries - 1 {
                return Ok(None);
            } else {
                idx + 1
            }
        }
    };
    Ok((next < max_entries).then(|| next.to_le_bytes().to_vec()))
}

/// Regions holding map values, with deleted ones kept for reuse.
#[derive(Debug)]
pub(crate) struct ValueStore {
    perm: Perm,
    spare: Vec<RegionId>,
}

impl ValueStore {
    /// A store whose regions programs access with `perm`.
    pub(crate) fn new(perm: Perm) -> ValueStore {
        ValueStore { perm, spare: Vec::new() }
    }

    /// A region holding `bytes`, reusing a released one when there is one.
    pub(crate) fn alloc(&mut self, mem: &mut Memory, bytes: &[u8]) -> Result<RegionId, MapError> {
        if let Some(id) = self.spare.pop() {
            let data = mem.bytes_mut(id);
            data.clear();
            data.extend_from_slice(bytes);
            return Ok(id);
        }
        Ok(mem.alloc(RegionKind::MapValue, bytes.to_vec(), self.perm)?)
    }

    /// Gives a region back; its bytes stay readable until it is reused.
    pub(crate) fn release(&mut self, id: RegionId) {
        self.spare.push(id);
    }
}

/// The elements of a map changed in a window (from [`super::Map::begin_changes`] to
/// [`super::Map::take_changes`]): each key with its user-side value before its first change in
/// the window (`None`: the key was absent). Costs one entry per element touched.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    on: bool,
    old: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Journal {
    /// Opens a window (dropping anything recorded before).
    pub(crate) fn begin(&mut self) {
        self.on = true;
        self.old.clear();
    }

    /// Whether `key`'s old value must be recorded now (a window is open and `key` has not
    /// been recorded in it).
    #[inline]
    pub(crate) fn wants(&self, key: &[u8]) -> bool {
        self.on && !self.old.contains_key(key)
    }

    /// Records `key`'s value before its first change in the window.
    pub(crate) fn record(&mut self, key: &[u8], old: Option<Vec<u8>>) {
        if self.on {
            self.old.entry(key.to_vec()).or_insert(old);
        }
    }

    /// Closes the window: the keys recorded, sorted, with their values before.
    pub(crate) fn take(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.on = false;
        std::mem::take(&mut self.old).into_iter().collect()
    }
}
