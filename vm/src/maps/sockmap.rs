//! `BPF_MAP_TYPE_SOCKMAP` and `BPF_MAP_TYPE_SOCKHASH` (net/core/sock_map.c): slots holding
//! sockets of the world's [`SockTable`](crate::sock::SockTable).
//!
//! User space inserts a socket by its file descriptor ([`SockId::fd`], a `u32` or `u64` value
//! as the map's `value_size` says) and reads back its cookie (8-byte values only, else
//! `-ENOSPC`). Programs insert sockets with `bpf_sock_map_update`/`bpf_sock_hash_update`,
//! redirect to them with the `*_redirect_*` helpers, and `bpf_map_lookup_elem` returns the
//! socket's `struct bpf_sock` with a reference the program must drop with `bpf_sk_release`.
//!
//! A sockhash iterates in key byte order (the kernel's in hash-bucket order). Attaching
//! programs to the map (`BPF_SK_MSG_VERDICT`, stream parser/verdict) is not simulated: tests
//! run those programs for a socket directly. `bpf_map_update_elem` from a program (whose value
//! is a socket pointer in the kernel) is refused with `-EOPNOTSUPP`.

use std::collections::BTreeMap;

use super::{BPF_EXIST, BPF_NOEXIST, Map, MapError, check_len};
use crate::memory::Memory;
use crate::sock::{SockId, SockView, acquire};
use crate::spec::{MapSpec, MapType};

/// `SOCK_CREATE_FLAG_MASK`: `BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY`.
const SOCK_CREATE_FLAG_MASK: u32 = (1 << 2) | (1 << 3) | (1 << 4);
/// `MAX_BPF_STACK`: the largest sockhash key.
const MAX_BPF_STACK: u32 = 512;

/// A sockmap or a sockhash.
#[derive(Debug)]
pub struct SockMap {
    spec: MapSpec,
    hash: bool,
    entries: BTreeMap<Vec<u8>, SockId>,
}

impl SockMap {
    /// Creates an empty map with `sock_map_alloc`'s or `sock_hash_alloc`'s checks.
    pub fn new(spec: &MapSpec) -> Result<SockMap, MapError> {
        let hash = spec.map_type == MapType::Sockhash;
        if spec.max_entries == 0
            || (!hash && spec.key_size != 4)
            || (hash && spec.key_size == 0)
            || (spec.value_size != 4 && spec.value_size != 8)
            || spec.flags & !SOCK_CREATE_FLAG_MASK != 0
        {
            return Err(MapError::Invalid(
                "sockmap/sockhash need max_entries > 0, a 4-byte (sockmap) key and 4- or 8-byte values",
            ));
        }
        if hash && spec.key_size > MAX_BPF_STACK {
            return Err(MapError::Full);
        }
        Ok(SockMap { spec: spec.clone(), hash, entries: BTreeMap::new() })
    }

    /// True for a sockhash.
    pub fn is_hash(&self) -> bool {
        self.hash
    }

    /// Number of sockets in the map.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map holds no socket.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every `(key, socket)`, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], SockId)> {
        self.entries.iter().map(|(k, &s)| (k.as_slice(), s))
    }

    /// The socket under `key` (`__sock_map_lookup_elem` / `__sock_hash_lookup_elem`): none for
    /// an out-of-range sockmap index or a key of the wrong size.
    pub fn get(&self, key: &[u8]) -> Option<SockId> {
        if key.len() != self.spec.key_size as usize {
            return None;
        }
        self.entries.get(key).copied()
    }

    /// Links `sock` under `key` (`sock_map_update_common` / `sock_hash_update_common`).
    pub fn insert(&mut self, key: &[u8], sock: SockId, flags: u64) -> Result<(), MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        if flags > BPF_EXIST {
            return Err(MapError::Invalid("unknown flags"));
        }
        if !self.hash && index(key) >= self.spec.max_entries {
            return Err(MapError::Full);
        }
        let exists = self.entries.contains_key(key);
        if exists && flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        if !exists && flags == BPF_EXIST {
            return Err(MapError::NotFound);
        }
        if self.hash && !exists && self.entries.len() >= self.spec.max_entries as usize {
            return Err(MapError::Full);
        }
        self.entries.insert(key.to_vec(), sock);
        Ok(())
    }

    /// Unlinks `sock` from every slot (the socket closed: `sock_map_remove_links`).
    pub fn remove_sock(&mut self, sock: SockId) {
        self.entries.retain(|_, s| *s != sock);
    }
}

fn index(key: &[u8]) -> u32 {
    u32::from_le_bytes([key[0], key[1], key[2], key[3]])
}

impl Map for SockMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, mem: &mut Memory, key: &[u8], _cpu: u32) -> Result<Option<u64>, MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        let Some(id) = self.get(key) else { return Ok(None) };
        if SockView::read(mem, id).is_none() {
            return Ok(None);
        }
        acquire(mem, id);
        Ok(Some(id.addr()))
    }

    fn update(
        &mut self,
        _mem: &mut Memory,
        _key: &[u8],
        _value: &[u8],
        _flags: u64,
        _cpu: u32,
    ) -> Result<(), MapError> {
        Err(self.unsupported())
    }

    fn delete(&mut self, _mem: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        if self.hash {
            return self.entries.remove(key).map(|_| ()).ok_or(MapError::NotFound);
        }
        if index(key) >= self.spec.max_entries {
            return Err(MapError::Invalid("index past max_entries"));
        }
        self.entries.remove(key).map(|_| ()).ok_or(MapError::Invalid("no socket in this slot"))
    }

    fn next_key(&self, _mem: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            check_len("key", self.spec.key_size as usize, k.len())?;
        }
        if self.hash {
            let next = match key {
                Some(k) if self.entries.contains_key(k) => self
                    .entries
                    .range::<[u8], _>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                    .next()
                    .map(|(k, _)| k),
                _ => self.entries.keys().next(),
            };
            return Ok(next.cloned());
        }
        // sock_map_get_next_key: every index, empty or not.
        let max = self.spec.max_entries;
        let i = key.map_or(u32::MAX, index);
        Ok(match i {
            _ if i == max - 1 => None,
            _ if i >= max => Some(0u32.to_le_bytes().to_vec()),
            _ => Some((i + 1).to_le_bytes().to_vec()),
        })
    }

    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        if self.spec.value_size != 8 {
            return Err(MapError::NoSpace);
        }
        Ok(self
            .get(key)
            .and_then(|id| SockView::read(mem, id))
            .map(|v| v.cookie.to_le_bytes().to_vec()))
    }

    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        check_len("value", self.spec.value_size as usize, value.len())?;
        let mut b = [0u8; 8];
        b[..value.len()].copy_from_slice(value);
        let ufd = u64::from_le_bytes(b);
        if ufd > i32::MAX as u64 {
            return Err(MapError::Invalid("file descriptor above S32_MAX"));
        }
        let Some(view) = SockView::read(mem, SockId::from_fd(ufd as u32)) else {
            return Err(MapError::BadFd);
        };
        if !view.map_state_allowed() {
            return Err(self.unsupported());
        }
        self.insert(key, view.id, flags)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
