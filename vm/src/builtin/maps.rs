//! Map access helpers: lookup, update, delete, and the queue/stack operations.

use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::maps::Map;
use crate::memory::Memory;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: MAP_LOOKUP_ELEM, func: map_lookup_elem },
    Helper { proto: MAP_UPDATE_ELEM, func: map_update_elem },
    Helper { proto: MAP_DELETE_ELEM, func: map_delete_elem },
    Helper { proto: MAP_PUSH_ELEM, func: map_push_elem },
    Helper { proto: MAP_POP_ELEM, func: map_pop_elem },
    Helper { proto: MAP_PEEK_ELEM, func: map_peek_elem },
];

/// Every program type may call them (`bpf_base_func_proto`).
const fn proto(id: u32, name: &'static str, ret: RetType, args: &'static [ArgType]) -> HelperProto {
    HelperProto { id, name, ret, args, gpl_only: false, prog_types: Allowed::All }
}

const MAP_LOOKUP_ELEM: HelperProto = proto(
    1,
    "bpf_map_lookup_elem",
    RetType::PtrToMapValueOrNull,
    &[ArgType::ConstMapPtr, ArgType::PtrToMapKey],
);
const MAP_UPDATE_ELEM: HelperProto = proto(
    2,
    "bpf_map_update_elem",
    RetType::Integer,
    &[ArgType::ConstMapPtr, ArgType::PtrToMapKey, ArgType::PtrToMapValue, ArgType::Anything],
);
const MAP_DELETE_ELEM: HelperProto = proto(
    3,
    "bpf_map_delete_elem",
    RetType::Integer,
    &[ArgType::ConstMapPtr, ArgType::PtrToMapKey],
);
const MAP_PUSH_ELEM: HelperProto = proto(
    87,
    "bpf_map_push_elem",
    RetType::Integer,
    &[ArgType::ConstMapPtr, ArgType::PtrToMapValue, ArgType::Anything],
);
const MAP_POP_ELEM: HelperProto = proto(
    88,
    "bpf_map_pop_elem",
    RetType::Integer,
    &[ArgType::ConstMapPtr, ArgType::PtrToUninitMem],
);
const MAP_PEEK_ELEM: HelperProto = proto(
    89,
    "bpf_map_peek_elem",
    RetType::Integer,
    &[ArgType::ConstMapPtr, ArgType::PtrToUninitMem],
);

/// Resolves argument `arg` as a map handle; returns the map index.
pub(crate) fn map_arg(ctx: &HelperCtx<'_>, arg: u8, addr: u64) -> Result<usize, HelperError> {
    ctx.world.map_of_handle(addr).ok_or(HelperError::BadArg { arg, reason: "not a map pointer" })
}

/// The map at `idx` and the memory, for a helper that already resolved the handle.
pub(crate) fn map_and_mem<'w>(
    ctx: &'w mut HelperCtx<'_>,
    idx: usize,
) -> (&'w mut dyn Map, &'w mut Memory) {
    ctx.world.map_mut(idx).expect("index from map_arg")
}

/// Reads the key of map `idx` at `addr` (argument `arg`).
pub(crate) fn key_arg(
    ctx: &HelperCtx<'_>,
    idx: usize,
    arg: u8,
    addr: u64,
) -> Result<Vec<u8>, HelperError> {
    let size = ctx.world.map(idx).map_or(0, |m| m.spec().key_size);
    ctx.arg_bytes(arg, addr, u64::from(size))
}

/// Reads a value of map `idx` at `addr` (argument `arg`).
pub(crate) fn value_arg(
    ctx: &HelperCtx<'_>,
    idx: usize,
    arg: u8,
    addr: u64,
) -> Result<Vec<u8>, HelperError> {
    let size = ctx.world.map(idx).map_or(0, |m| m.spec().value_size);
    ctx.arg_bytes(arg, addr, u64::from(size))
}

/// An errno as a helper's 64-bit return value.
pub(crate) fn errno(e: i64) -> u64 {
    e as u64
}

fn map_lookup_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let key = key_arg(ctx, idx, 2, a[1])?;
    let cpu = ctx.world.env.cpu;
    let (map, mem) = map_and_mem(ctx, idx);
    Ok(map.lookup(mem, &key, cpu).ok().flatten().unwrap_or(0))
}

fn map_update_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let key = key_arg(ctx, idx, 2, a[1])?;
    let value = value_arg(ctx, idx, 3, a[2])?;
    let cpu = ctx.world.env.cpu;
    let (map, mem) = map_and_mem(ctx, idx);
    Ok(map.update(mem, &key, &value, a[3], cpu).map_or_else(|e| errno(e.errno()), |()| 0))
}

fn map_delete_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let key = key_arg(ctx, idx, 2, a[1])?;
    let (map, mem) = map_and_mem(ctx, idx);
    Ok(map.delete(mem, &key).map_or_else(|e| errno(e.errno()), |()| 0))
}

fn map_push_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let value = value_arg(ctx, idx, 2, a[1])?;
    let (map, mem) = map_and_mem(ctx, idx);
    Ok(map.push(mem, &value, a[2]).map_or_else(|e| errno(e.errno()), |()| 0))
}

/// Pop and peek: copy the value out, or return the errno (the output is left as it was).
fn take_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5], remove: bool) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let size = ctx.world.map(idx).map_or(0, |m| m.spec().value_size) as usize;
    // The destination must be writable before anything is removed. Its bytes are the value a
    // bloom filter's peek tests for membership.
    let probe = ctx
        .world
        .mem
        .slice_mut(a[1], size)
        .map_err(|error| HelperError::BadMemoryArg { arg: 2, error })?
        .to_vec();
    let (map, mem) = map_and_mem(ctx, idx);
    let got = if remove { map.pop(mem) } else { map.peek(mem, &probe) };
    match got {
        Ok(value) => {
            let out = ctx
                .world
                .mem
                .slice_mut(a[1], size)
                .map_err(|error| HelperError::BadMemoryArg { arg: 2, error })?;
            out.copy_from_slice(&value[..size.min(value.len())]);
            Ok(0)
        }
        Err(e) => Ok(errno(e.errno())),
    }
}

fn map_pop_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    take_elem(ctx, a, true)
}

fn map_peek_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    take_elem(ctx, a, false)
}
