//! Helpers that run BPF callbacks: `bpf_loop` and `bpf_for_each_map_elem`. Callbacks run in
//! the next call frame (the 8-frame limit counts them) and share the run's instruction budget.

use super::maps::map_arg;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::memory::{Perm, RegionKind};
use crate::spec::MapType;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: FOR_EACH_MAP_ELEM, func: for_each_map_elem },
    Helper { proto: LOOP, func: bpf_loop },
];

const FOR_EACH_MAP_ELEM: HelperProto = HelperProto {
    id: 164,
    name: "bpf_for_each_map_elem",
    ret: RetType::Integer,
    args: &[ArgType::ConstMapPtr, ArgType::PtrToFunc, ArgType::PtrToStackOrNull, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::All,
};

const LOOP: HelperProto = HelperProto {
    id: 181,
    name: "bpf_loop",
    ret: RetType::Integer,
    args: &[ArgType::Anything, ArgType::PtrToFunc, ArgType::PtrToStackOrNull, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::All,
};

/// `BPF_MAX_LOOPS`.
const MAX_LOOPS: u32 = 1 << 23;
const EINVAL: u64 = -22i64 as u64;
const E2BIG: u64 = -7i64 as u64;

/// `long bpf_loop(u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags)`: calls
/// `callback_fn(i, callback_ctx)` for `i` in `0..nr_loops` until it returns nonzero; returns
/// the number of calls made. `-EINVAL` for flags, `-E2BIG` above `1 << 23` loops.
fn bpf_loop(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let nr = a[0] as u32;
    if a[3] != 0 {
        return Ok(EINVAL);
    }
    if nr > MAX_LOOPS {
        return Ok(E2BIG);
    }
    for i in 0..nr {
        let ret = ctx
            .calls
            .call(ctx.world, a[1], [u64::from(i), a[2], 0, 0, 0])
            .map_err(|e| HelperError::Callback(Box::new(e)))?;
        if ret != 0 {
            return Ok(u64::from(i) + 1);
        }
    }
    Ok(u64::from(nr))
}

/// `long bpf_for_each_map_elem(struct bpf_map *map, void *callback_fn, void *callback_ctx,
/// u64 flags)`: calls `callback_fn(map, &key, &value, callback_ctx)` for every element of an
/// array or hash map (per-CPU maps: the current CPU's value) until it returns nonzero; returns
/// the number of elements visited (the one that stopped included). The key is a read-only
/// copy; the value pointer points into the map. Elements a callback adds are not visited;
/// ones it deletes before their turn are skipped. `-EINVAL` for flags.
fn for_each_map_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let spec = ctx
        .world
        .map(idx)
        .map(|m| m.spec().clone())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not a map pointer" })?;
    let array = match spec.map_type {
        MapType::Array | MapType::PercpuArray => true,
        MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => false,
        _ => {
            return Err(HelperError::BadArg {
                arg: 1,
                reason: "this map type has no for_each_map_elem callback",
            });
        }
    };
    if a[3] != 0 {
        return Ok(EINVAL);
    }
    // Hash maps: the keys present now (elements added by callbacks are not visited).
    let keys: Box<dyn Iterator<Item = Vec<u8>>> = if array {
        Box::new((0..spec.max_entries).map(|i| i.to_le_bytes().to_vec()))
    } else {
        let keys = ctx
            .world
            .keys(idx)
            .map_err(|_| HelperError::BadArg { arg: 1, reason: "map iteration failed" })?;
        Box::new(keys.into_iter())
    };
    let handle = a[0];
    let cpu = ctx.world.env.cpu;
    let mut visited = 0u64;
    for key in keys {
        let Some((map, mem)) = ctx.world.map_mut(idx) else { break };
        let Some(value) = map.lookup(mem, &key, cpu).ok().flatten() else { continue };
        let key_region = mem
            .alloc(RegionKind::ReadOnly, key, Perm::ReadOnly)
            .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
        visited += 1;
        let ret = ctx.calls.call(ctx.world, a[1], [handle, key_region.base(), value, a[2], 0]);
        ctx.world.mem.free(key_region);
        if ret.map_err(|e| HelperError::Callback(Box::new(e)))? != 0 {
            break;
        }
    }
    Ok(visited)
}
