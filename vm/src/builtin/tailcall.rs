//! `bpf_tail_call`: continue in another program of a `BPF_MAP_TYPE_PROG_ARRAY`.

use super::maps::map_arg;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::maps::ProgArray;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[Helper { proto: TAIL_CALL, func: tail_call }];

const TAIL_CALL: HelperProto = HelperProto {
    id: 12,
    name: "bpf_tail_call",
    ret: RetType::Void,
    args: &[ArgType::PtrToCtx, ArgType::ConstMapPtr, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::All,
};

/// `long bpf_tail_call(void *ctx, struct bpf_map *prog_array_map, u32 index)`: when the entry
/// holds a program, the interpreter continues there (in the same frame, with the same
/// context) unless 33 tail calls were already taken; otherwise execution falls through.
fn tail_call(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 2, a[1])?;
    let progs = ctx
        .world
        .map(idx)
        .and_then(|m| m.as_any().downcast_ref::<ProgArray>())
        .ok_or(HelperError::BadArg { arg: 2, reason: "not a prog_array map" })?;
    ctx.tail_call = progs.program(a[2] as u32);
    Ok(0)
}
