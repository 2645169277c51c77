//! Simulated maps with the kernel's semantics. Values live in the program's address space
//! ([`Memory`] regions), so a pointer from `bpf_map_lookup_elem` reads and writes the map
//! itself, as in the kernel.

use std::fmt;

use crate::memory::{MemError, Memory};
use crate::spec::{MapSpec, MapType};

mod arena;
mod array;
mod bloom;
mod common;
mod cpumap;
mod devmap;
mod hash;
pub mod json;
mod lpm_trie;
mod of_maps;
mod perf_event;
mod prog_array;
mod queue_stack;
mod ringbuf;
mod sockmap;
pub(crate) mod storage;
pub(crate) mod user_ringbuf;
mod xskmap;

pub use arena::Arena;
pub use array::{ArrayMap, DENSE_ARRAY_SLOTS, PCPU_MIN_UNIT_SIZE};
pub use bloom::BloomFilter;
pub use cpumap::{CpuMap, NR_CPUS};
pub use devmap::DevMap;
pub use hash::HashMap;
pub use lpm_trie::LpmTrie;
pub use of_maps::{OfMaps, set_inner_map};
pub use perf_event::{BPF_F_CURRENT_CPU, PERF_BUFFER_BYTES, PerfEventArray};
pub use prog_array::ProgArray;
pub use queue_stack::QueueStack;
pub use ringbuf::{BPF_RINGBUF_HDR_SZ, RingBuf};
pub use sockmap::SockMap;
pub use storage::LocalStorage;
pub use user_ringbuf::UserRingBuf;
pub use xskmap::XskMap;

/// `BPF_ANY`: create or update.
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create only.
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST`: update only.
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_LOCK`: update under the value's spin lock.
pub const BPF_F_LOCK: u64 = 4;

/// A map operation's failure, carrying the errno the kernel returns for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// `-ENOENT`: no such key (or an empty queue/stack).
    #[error("no such element (ENOENT)")]
    NotFound,
    /// `-EEXIST`: the key exists and `BPF_NOEXIST` was given.
    #[error("element exists (EEXIST)")]
    Exists,
    /// `-E2BIG`: the map is full, or an index is past `max_entries`.
    #[error("map is full or index out of range (E2BIG)")]
    Full,
    /// `-E2BIG`: the map cannot be created this large (a per-CPU value past 32 KiB).
    #[error("map too large (E2BIG): {0}")]
    TooBig(&'static str),
    /// `-EINVAL`: bad flags, sizes or arguments.
    #[error("invalid argument (EINVAL): {0}")]
    Invalid(&'static str),
    /// `-ENOMEM`: no memory for the element.
    #[error("out of memory (ENOMEM)")]
    NoMem,
    /// `-EOPNOTSUPP`: this map type does not support the operation.
    #[error("operation not supported by {map_type} maps (EOPNOTSUPP)")]
    NotSupported {
        /// The map's type name.
        map_type: &'static str,
    },
    /// `-EBUSY`: the element is in use.
    #[error("busy (EBUSY)")]
    Busy,
    /// `-ENOSPC`: no room for another element (a full LPM trie).
    #[error("no space left in the map (ENOSPC)")]
    NoSpace,
    /// `-ENOTSUPP` (524, kernel-internal): the syscall does not support this map type.
    #[error("operation not supported (ENOTSUPP)")]
    NotSupp,
    /// `-EOVERFLOW`: a value field is above its limit (a cpumap's qsize).
    #[error("value too large (EOVERFLOW): {0}")]
    Overflow(&'static str),
    /// `-ENODEV`: no such device or CPU.
    #[error("no such device (ENODEV): {0}")]
    NoDevice(&'static str),
    /// `-EBADF`: the value is not a socket's file descriptor (sockmap updates from user space).
    #[error("bad file descriptor (EBADF)")]
    BadFd,
    /// A key or value of the wrong size was passed through the typed API.
    #[error("{what} is {got} bytes, the map's is {expected}")]
    Size {
        /// `"key"` or `"value"`.
        what: &'static str,
        /// The map's size.
        expected: usize,
        /// The size passed.
        got: usize,
    },
    /// The map's memory could not be allocated in the address space.
    #[error(transparent)]
    Memory(#[from] MemError),
}

impl MapError {
    /// The negative errno a helper returns for this error.
    pub fn errno(&self) -> i64 {
        -match self {
            MapError::NotFound => 2,
            MapError::Exists => 17,
            MapError::Full | MapError::TooBig(_) => 7,
            MapError::Invalid(_) | MapError::Size { .. } => 22,
            MapError::NoMem | MapError::Memory(_) => 12,
            MapError::NotSupported { .. } => 95,
            MapError::Busy => 16,
            MapError::NoSpace => 28,
            MapError::NotSupp => 524,
            MapError::Overflow(_) => 75,
            MapError::NoDevice(_) => 19,
            MapError::BadFd => 9,
        }
    }
}

/// What every simulated map implements. "Program side" operations take the current CPU and
/// hand out addresses; "user side" ones copy bytes, as the `bpf(2)` syscall does (per-CPU
/// values as `ncpus` slots of `round_up(value_size, 8)` bytes).
pub trait Map: fmt::Debug {
    /// The specification the map was created from.
    fn spec(&self) -> &MapSpec;

    /// Program side: the address of the value for `key` on `cpu`, if present (not supported
    /// unless the map type implements it).
    fn lookup(
        &mut self,
        _mem: &mut Memory,
        _key: &[u8],
        _cpu: u32,
    ) -> Result<Option<u64>, MapError> {
        Err(self.unsupported())
    }

    /// Program side: creates or updates `key` with `value` on `cpu` (per-CPU maps: every CPU's
    /// slot for a new element is zeroed first, as the kernel does; not supported unless the
    /// map type implements it).
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

    /// Deletes `key`.
    fn delete(&mut self, mem: &mut Memory, key: &[u8]) -> Result<(), MapError>;

    /// The key after `key` in iteration order (the first key for `None`); `Ok(None)` at the end.
    fn next_key(&self, mem: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError>;

    /// User side: the value bytes for `key` (all CPUs for per-CPU maps).
    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError>;

    /// User side: writes `value` (all CPUs for per-CPU maps) under `key`.
    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError>;

    /// Queue/stack/bloom filter: pushes `value`.
    fn push(&mut self, _mem: &mut Memory, _value: &[u8], _flags: u64) -> Result<(), MapError> {
        Err(self.unsupported())
    }

    /// Queue/stack: removes and returns the next value.
    fn pop(&mut self, _mem: &mut Memory) -> Result<Vec<u8>, MapError> {
        Err(self.unsupported())
    }

    /// Queue/stack/bloom filter: the next value without removing it (bloom: membership test).
    fn peek(&self, _mem: &Memory, _value: &[u8]) -> Result<Vec<u8>, MapError> {
        Err(self.unsupported())
    }

    /// Starts recording which elements change until [`Map::take_changes`] (program-side
    /// lookups count as changes, as a program may write through the pointer). Returns false
    /// when this map type does not record changes (the world then compares full snapshots).
    fn begin_changes(&mut self, _mem: &Memory) -> bool {
        false
    }

    /// Stops recording: the keys that may have changed since [`Map::begin_changes`], sorted,
    /// each with its user-side value before (`None`: absent). Unchanged keys may be included.
    fn take_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        Vec::new()
    }

    /// The error for an operation this map type does not support.
    fn unsupported(&self) -> MapError {
        MapError::NotSupported { map_type: self.spec().map_type.name() }
    }

    /// The map as `Any`, for helpers that need a concrete map type (ringbuf, sockmap, ...).
    fn as_any(&self) -> &dyn std::any::Any;

    /// The map as mutable `Any`.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// Creates the simulated map for `spec`, with values for `ncpus` CPUs where per-CPU.
pub fn create(spec: &MapSpec, mem: &mut Memory, ncpus: u32) -> Result<Box<dyn Map>, MapError> {
    check_spec(spec)?;
    Ok(match spec.map_type {
        MapType::Array | MapType::PercpuArray => Box::new(ArrayMap::new(spec, mem, ncpus)?),
        MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
            Box::new(HashMap::new(spec, ncpus))
        }
        MapType::LpmTrie => Box::new(LpmTrie::new(spec)?),
        MapType::Queue | MapType::Stack => Box::new(QueueStack::new(spec)?),
        MapType::Ringbuf => Box::new(RingBuf::new(spec)?),
        MapType::PerfEventArray => Box::new(PerfEventArray::new(spec, ncpus)?),
        MapType::ProgArray => Box::new(ProgArray::new(spec)?),
        MapType::Devmap | MapType::DevmapHash => Box::new(DevMap::new(spec)?),
        MapType::Cpumap => Box::new(CpuMap::new(spec, ncpus)?),
        MapType::Xskmap => Box::new(XskMap::new(spec)?),
        MapType::ArrayOfMaps | MapType::HashOfMaps => Box::new(OfMaps::new(spec, mem)?),
        MapType::BloomFilter => Box::new(BloomFilter::new(spec)?),
        MapType::Sockmap | MapType::Sockhash => Box::new(SockMap::new(spec)?),
        t if storage::is_local_storage(t) => Box::new(LocalStorage::new(spec)?),
        MapType::UserRingbuf => Box::new(UserRingBuf::new(spec)?),
        MapType::Arena => Box::new(Arena::new(spec)?),
        other => return Err(MapError::NotSupported { map_type: other.name() }),
    })
}

/// Largest value size the kernel accepts for most maps (KMALLOC_MAX_SIZE is larger; the
/// per-CPU limit PCPU_MIN_UNIT_SIZE is 32 KiB).
pub const MAX_VALUE_SIZE: u32 = 1 << 20;

/// The kernel's `map_alloc_check` rules common to all types.
fn check_spec(spec: &MapSpec) -> Result<(), MapError> {
    if spec.value_size > MAX_VALUE_SIZE {
        return Err(MapError::Invalid("value_size too large"));
    }
    if spec.key_size > 512 {
        return Err(MapError::Invalid("key_size too large"));
    }
    Ok(())
}

/// Size of one CPU's slot in a user-side per-CPU value.
pub(crate) fn percpu_stride(value_size: u32) -> usize {
    (value_size as usize).div_ceil(8) * 8
}

/// Checks a key or value length against the map's.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), MapError> {
    if expected == got { Ok(()) } else { Err(MapError::Size { what, expected, got }) }
}
