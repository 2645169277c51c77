//! `BPF_MAP_TYPE_XSKMAP` (net/xdp/xskmap.c): queue index → AF_XDP socket, targets of
//! `bpf_redirect_map`. bpflab has no sockets: a value is an opaque `u32` socket id, and every
//! id is an AF_XDP socket bound to a device. A program's lookup returns a read-only region
//! holding the id (the kernel returns the `struct xdp_sock`).

use std::collections::BTreeMap;

use super::common::{
    BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_WRONLY, ValueStore, array_next_key, check_flags,
    index_key, u32_value,
};
use super::{BPF_EXIST, BPF_NOEXIST, Map, MapError};
use crate::memory::{Memory, Perm, RegionId};
use crate::spec::MapSpec;

/// An XSK map.
#[derive(Debug)]
pub struct XskMap {
    spec: MapSpec,
    /// Index → (socket id, region the program sees).
    socks: BTreeMap<u32, (u32, RegionId)>,
    values: ValueStore,
}

impl XskMap {
    /// Creates an empty map, with `xsk_map_alloc`'s rules.
    pub fn new(spec: &MapSpec) -> Result<XskMap, MapError> {
        if spec.max_entries == 0 || spec.key_size != 4 || spec.value_size != 4 {
            return Err(MapError::Invalid(
                "xskmap maps need key_size 4, value_size 4, max_entries > 0",
            ));
        }
        check_flags(spec.flags, BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY)?;
        Ok(XskMap {
            spec: spec.clone(),
            socks: BTreeMap::new(),
            values: ValueStore::new(Perm::ReadOnly),
        })
    }

    /// The socket id at `index`, as `bpf_redirect_map` finds it.
    pub fn socket(&self, index: u32) -> Option<u32> {
        self.socks.get(&index).map(|&(s, _)| s)
    }

    /// Every `(index, socket id)`.
    pub fn sockets(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.socks.iter().map(|(&i, &(s, _))| (i, s))
    }
}

impl Map for XskMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, _: &mut Memory, key: &[u8], _: u32) -> Result<Option<u64>, MapError> {
        let idx = index_key(key)?;
        Ok(self.socks.get(&idx).map(|(_, r)| r.base()))
    }

    fn delete(&mut self, _: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        let idx = index_key(key)?;
        if idx >= self.spec.max_entries {
            return Err(MapError::Invalid("index out of range"));
        }
        if let Some((_, r)) = self.socks.remove(&idx) {
            self.values.release(r);
        }
        Ok(())
    }

    fn next_key(&self, _: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        array_next_key(self.spec.max_entries, key)
    }

    /// The syscall cannot read XSK maps (`-EOPNOTSUPP`); see [`XskMap::sockets`].
    fn read(&self, _: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        index_key(key)?;
        Err(MapError::NotSupported { map_type: "xskmap" })
    }

    /// `xsk_map_update_elem`, with `value` as the socket id.
    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        let idx = index_key(key)?;
        let sock = u32_value(value)?;
        if flags > BPF_EXIST {
            return Err(MapError::Invalid("unknown flags"));
        }
        if idx >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        match self.socks.get(&idx) {
            Some(&(old, _)) if old == sock => return Ok(()),
            Some(_) if flags == BPF_NOEXIST => return Err(MapError::Exists),
            None if flags == BPF_EXIST => return Err(MapError::NotFound),
            _ => {}
        }
        if let Some((_, r)) = self.socks.remove(&idx) {
            self.values.release(r);
        }
        let r = self.values.alloc(mem, value)?;
        self.socks.insert(idx, (sock, r));
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
