//! Time, random numbers and the CPU id, from the simulated environment.

use crate::helpers::{Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: KTIME_GET_NS, func: ktime_get_ns },
    Helper { proto: GET_PRANDOM_U32, func: get_prandom_u32 },
    Helper { proto: GET_SMP_PROCESSOR_ID, func: get_smp_processor_id },
    Helper { proto: KTIME_GET_BOOT_NS, func: ktime_get_boot_ns },
    Helper { proto: KTIME_GET_COARSE_NS, func: ktime_get_ns },
];

const fn proto(id: u32, name: &'static str, gpl_only: bool) -> HelperProto {
    HelperProto { id, name, ret: RetType::Integer, args: &[], gpl_only }
}

const KTIME_GET_NS: HelperProto = proto(5, "bpf_ktime_get_ns", true);
const GET_PRANDOM_U32: HelperProto = proto(7, "bpf_get_prandom_u32", false);
const GET_SMP_PROCESSOR_ID: HelperProto = proto(8, "bpf_get_smp_processor_id", false);
const KTIME_GET_BOOT_NS: HelperProto = proto(125, "bpf_ktime_get_boot_ns", true);
const KTIME_GET_COARSE_NS: HelperProto = proto(160, "bpf_ktime_get_coarse_ns", false);

fn ktime_get_ns(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.world.env.read_clock())
}

fn ktime_get_boot_ns(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(ctx.world.env.read_clock().wrapping_add(ctx.world.env.boot_offset_ns))
}

fn get_prandom_u32(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(ctx.world.env.next_u32()))
}

fn get_smp_processor_id(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(ctx.world.env.cpu))
}
