//! `BPF_MAP_TYPE_USER_RINGBUF` (kernel/bpf/ringbuf.c): a ring user space produces records
//! into and programs consume with `bpf_user_ringbuf_drain`, which calls a callback with a
//! local dynptr over each record. Records take an 8-byte header plus their data rounded up to
//! 8 bytes, and a record is refused (`ENOSPC`) when the ring lacks room, as libbpf's
//! `user_ring_buffer__reserve` refuses it.
//!
//! The user side is [`Map::push`] (reserve and submit one record, as
//! `user_ring_buffer__submit` does) and [`UserRingBuf::push_discarded`]
//! (`user_ring_buffer__discard`); the syscall's lookup/update/delete are not supported, as in
//! the kernel.

use std::collections::VecDeque;

use super::common::BPF_F_NUMA_NODE;
use super::{Map, MapError};
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::kfunc::dynptr::{DYNPTR_MAX_SIZE, Dynptr, DynptrKind};
use crate::memory::{Memory, Perm, RegionKind};
use crate::spec::{MapSpec, MapType};

/// Size of a record's header (`BPF_RINGBUF_HDR_SZ`).
const HDR_SZ: u64 = 8;
/// The page size max_entries must be a multiple of.
const PAGE_SIZE: u32 = 4096;
/// `BPF_MAX_USER_RINGBUF_SAMPLES`: the most records one drain consumes.
pub(crate) const BPF_MAX_USER_RINGBUF_SAMPLES: u64 = 128 * 1024;
/// `BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP`.
const WAKEUP_FLAGS: u64 = 3;

#[derive(Debug)]
struct Record {
    data: Vec<u8>,
    discarded: bool,
}

impl Record {
    fn total(&self) -> u64 {
        (self.data.len() as u64 + HDR_SZ).div_ceil(8) * 8
    }
}

/// A user ring buffer.
#[derive(Debug)]
pub struct UserRingBuf {
    spec: MapSpec,
    /// Submitted records not consumed yet, in order.
    records: VecDeque<Record>,
    /// Bytes the records take.
    used: u64,
}

impl UserRingBuf {
    /// Creates an empty ring, with the ringbuf map's creation rules.
    pub fn new(spec: &MapSpec) -> Result<UserRingBuf, MapError> {
        if spec.flags & !BPF_F_NUMA_NODE != 0 {
            return Err(MapError::Invalid("user ringbuf maps take no flags but BPF_F_NUMA_NODE"));
        }
        if spec.key_size != 0
            || spec.value_size != 0
            || !spec.max_entries.is_power_of_two()
            || !spec.max_entries.is_multiple_of(PAGE_SIZE)
        {
            return Err(MapError::Invalid(
                "user ringbuf maps need key_size 0, value_size 0 and a power-of-2 multiple of \
                 the page size as max_entries",
            ));
        }
        Ok(UserRingBuf { spec: spec.clone(), records: VecDeque::new(), used: 0 })
    }

    fn reserve(&mut self, data: Vec<u8>, discarded: bool) -> Result<(), MapError> {
        let r = Record { data, discarded };
        let total = r.total();
        if r.data.len() as u64 > u64::from(DYNPTR_MAX_SIZE)
            || total > u64::from(self.spec.max_entries)
        {
            return Err(MapError::TooBig("record larger than the ring"));
        }
        if self.used + total > u64::from(self.spec.max_entries) {
            return Err(MapError::NoSpace);
        }
        self.used += total;
        self.records.push_back(r);
        Ok(())
    }

    /// User side: reserves a record of `len` bytes and discards it (the consumer skips it).
    pub fn push_discarded(&mut self, len: usize) -> Result<(), MapError> {
        self.reserve(vec![0; len], true)
    }

    /// Records not consumed yet (discarded ones included).
    pub fn pending(&self) -> usize {
        self.records.len()
    }

    /// Removes the next record: `Some((data, discarded))`.
    fn take(&mut self) -> Option<(Vec<u8>, bool)> {
        let r = self.records.pop_front()?;
        self.used -= r.total();
        Some((r.data, r.discarded))
    }
}

impl Map for UserRingBuf {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn delete(&mut self, _mem: &mut Memory, _key: &[u8]) -> Result<(), MapError> {
        Err(self.unsupported())
    }

    fn next_key(&self, _mem: &Memory, _key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(self.unsupported())
    }

    fn read(&self, _mem: &Memory, _key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Err(self.unsupported())
    }

    fn write(
        &mut self,
        _mem: &mut Memory,
        _key: &[u8],
        _value: &[u8],
        _flags: u64,
    ) -> Result<(), MapError> {
        Err(self.unsupported())
    }

    /// User side: one record with these bytes (`user_ring_buffer__reserve` + `__submit`).
    fn push(&mut self, _mem: &mut Memory, value: &[u8], _flags: u64) -> Result<(), MapError> {
        self.reserve(value.to_vec(), false)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// `bpf_user_ringbuf_drain`.
pub(crate) const HELPERS: &[Helper] = &[Helper { proto: DRAIN, func: drain }];

const DRAIN: HelperProto = HelperProto {
    id: 209,
    name: "bpf_user_ringbuf_drain",
    ret: RetType::Integer,
    args: &[ArgType::ConstMapPtr, ArgType::PtrToFunc, ArgType::PtrToStackOrNull, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::All,
};

const EINVAL: u64 = -22i64 as u64;

/// `long bpf_user_ringbuf_drain(map, callback, ctx, flags)`: calls `callback(dynptr, ctx)`
/// for each submitted record (discarded ones are skipped) until the ring is empty, the
/// callback returns non-zero or `BPF_MAX_USER_RINGBUF_SAMPLES` were taken; returns the number
/// of records handed to the callback.
fn drain(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = crate::builtin::maps::map_arg(ctx, 1, a[0])?;
    if a[3] & !WAKEUP_FLAGS != 0 {
        return Ok(EINVAL);
    }
    let is_user_rb = ctx.world.map(idx).is_some_and(|m| m.spec().map_type == MapType::UserRingbuf);
    if !is_user_rb {
        return Err(HelperError::BadArg { arg: 1, reason: "not a user ringbuf map" });
    }
    let (mut samples, mut discarded) = (0u64, 0u64);
    while samples < BPF_MAX_USER_RINGBUF_SAMPLES {
        let (map, _) = crate::builtin::maps::map_and_mem(ctx, idx);
        let rb = map
            .as_any_mut()
            .downcast_mut::<UserRingBuf>()
            .ok_or(HelperError::BadArg { arg: 1, reason: "not a user ringbuf map" })?;
        let Some((data, was_discarded)) = rb.take() else { break };
        samples += 1;
        if was_discarded {
            discarded += 1;
            continue;
        }
        let size = data.len() as u32;
        let mem = &mut ctx.world.mem;
        let sample = mem
            .alloc(RegionKind::ReadOnly, data, Perm::ReadOnly)
            .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
        let d = Dynptr {
            data: sample.base(),
            kind: Some(DynptrKind::Local),
            rdonly: false,
            size,
            offset: 0,
        };
        let dynptr = match mem.alloc(RegionKind::ReadOnly, d.encode().to_vec(), Perm::ReadOnly) {
            Ok(r) => r,
            Err(error) => {
                mem.free(sample);
                return Err(HelperError::BadMemoryArg { arg: 1, error });
            }
        };
        let ret = ctx.calls.call(ctx.world, a[1], [dynptr.base(), a[2], 0, 0, 0]);
        ctx.world.mem.free(dynptr);
        ctx.world.mem.free(sample);
        if ret.map_err(|e| HelperError::Callback(Box::new(e)))? != 0 {
            break;
        }
    }
    Ok(samples - discarded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_and_room() {
        let spec = MapSpec::new("u", MapType::UserRingbuf, 0, 0, 4096);
        let mut rb = UserRingBuf::new(&spec).unwrap();
        assert!(UserRingBuf::new(&MapSpec::new("u", MapType::UserRingbuf, 0, 0, 4000)).is_err());
        let mut mem = Memory::new();
        // 4096 bytes: 4080 data + 8 header = 4088 fits; then nothing more does.
        rb.push(&mut mem, &[1; 4080], 0).unwrap();
        assert_eq!(rb.push(&mut mem, &[1; 1], 0), Err(MapError::NoSpace));
        assert_eq!(rb.take().map(|(d, x)| (d.len(), x)), Some((4080, false)));
        assert!(matches!(rb.push(&mut mem, &[0; 4096], 0), Err(MapError::TooBig(_))));
        rb.push_discarded(3).unwrap();
        assert_eq!(rb.pending(), 1);
        assert_eq!(rb.read(&mem, &[]), Err(MapError::NotSupported { map_type: "user_ringbuf" }));
    }
}
