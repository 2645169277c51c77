//! `bpf_map_lookup_percpu_elem`: another CPU's value of a per-CPU map.

use super::maps::{key_arg, map_arg};
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::spec::MapType;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] =
    &[Helper { proto: MAP_LOOKUP_PERCPU_ELEM, func: map_lookup_percpu_elem }];

const MAP_LOOKUP_PERCPU_ELEM: HelperProto = HelperProto {
    id: 195,
    name: "bpf_map_lookup_percpu_elem",
    ret: RetType::PtrToMapValueOrNull,
    args: &[ArgType::ConstMapPtr, ArgType::PtrToMapKey, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::All,
};

/// `void *bpf_map_lookup_percpu_elem(struct bpf_map *map, const void *key, u32 cpu)`: the
/// value of `key` on `cpu` of a per-CPU array or hash, NULL if absent or `cpu` is not a CPU.
fn map_lookup_percpu_elem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 1, a[0])?;
    let percpu = ctx.world.map(idx).is_some_and(|m| {
        matches!(
            m.spec().map_type,
            MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash
        )
    });
    if !percpu {
        return Err(HelperError::BadArg { arg: 1, reason: "not a per-CPU array or hash map" });
    }
    let key = key_arg(ctx, idx, 2, a[1])?;
    let cpu = a[2] as u32;
    if cpu >= ctx.world.ncpus {
        return Ok(0);
    }
    let Some((map, mem)) = ctx.world.map_mut(idx) else { return Ok(0) };
    Ok(map.lookup(mem, &key, cpu).ok().flatten().unwrap_or(0))
}
