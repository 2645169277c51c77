//! `bpf_timer_*`: timers in map values whose callbacks run later (kernel/bpf/helpers.c).
//!
//! The state of each timer lives in the world's environment ([`crate::env::Env::timers`]), by
//! the address of its `struct bpf_timer`, as the kernel keeps it out of the map value user
//! space sees. bpflab runs a program to its end and never advances time past a started timer
//! between runs, so callbacks never run: what is simulated is the state machine (init once,
//! a callback before starting, cancel reporting whether the timer was armed and dropping the
//! callback) with the kernel's errors. A timer is not freed when its map element is deleted.

use crate::env::TimerState;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::memory::RegionKind;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: TIMER_INIT, func: timer_init },
    Helper { proto: TIMER_SET_CALLBACK, func: timer_set_callback },
    Helper { proto: TIMER_START, func: timer_start },
    Helper { proto: TIMER_CANCEL, func: timer_cancel },
];

/// In `bpf_base_func_proto` (for programs loaded with CAP_BPF): every program type. The
/// verifier refuses maps holding timers to kprobe, tracepoint, perf_event and raw tracepoint
/// programs (`is_tracing_prog_type`: "tracing progs cannot use bpf_timer yet"), a rule about
/// the map, which bpflab's verifier checks where the program loads the map.
const TIMER_TYPES: Allowed = Allowed::All;

const fn proto(id: u32, name: &'static str, args: &'static [ArgType]) -> HelperProto {
    HelperProto { id, name, ret: RetType::Integer, args, gpl_only: true, prog_types: TIMER_TYPES }
}

use ArgType::{Anything, ConstMapPtr, PtrToFunc, PtrToTimer};

const TIMER_INIT: HelperProto = proto(169, "bpf_timer_init", &[PtrToTimer, ConstMapPtr, Anything]);
const TIMER_SET_CALLBACK: HelperProto =
    proto(170, "bpf_timer_set_callback", &[PtrToTimer, PtrToFunc]);
const TIMER_START: HelperProto = proto(171, "bpf_timer_start", &[PtrToTimer, Anything, Anything]);
const TIMER_CANCEL: HelperProto = proto(172, "bpf_timer_cancel", &[PtrToTimer]);

const EINVAL: u64 = -22i64 as u64;
const EBUSY: u64 = -16i64 as u64;
/// `sizeof(struct bpf_timer)`.
const TIMER_SIZE: usize = 16;
/// `MAX_CLOCKS`.
const MAX_CLOCKS: u64 = 16;
/// `CLOCK_REALTIME`, `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME`: the clocks a timer may use.
const CLOCKS: [u64; 3] = [0, 1, 7];
/// `BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN`.
const START_FLAGS: u64 = 3;

/// Checks that argument 1 points to a `struct bpf_timer` inside a map value.
fn timer_arg(ctx: &HelperCtx<'_>, addr: u64) -> Result<u64, HelperError> {
    let in_map = matches!(ctx.world.mem.resolve(addr), Some((_, RegionKind::MapValue, _)));
    if !in_map || !addr.is_multiple_of(8) {
        return Err(HelperError::BadArg { arg: 1, reason: "not a bpf_timer in a map value" });
    }
    ctx.world
        .mem
        .slice(addr, TIMER_SIZE)
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
    Ok(addr)
}

/// `long bpf_timer_init(struct bpf_timer *timer, struct bpf_map *map, u64 flags)`: `flags`
/// is the clock; `-EINVAL` for another one, `-EBUSY` when the timer was initialized before.
fn timer_init(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let addr = timer_arg(ctx, a[0])?;
    let flags = a[2];
    if flags >= MAX_CLOCKS || !CLOCKS.contains(&(flags & (MAX_CLOCKS - 1))) {
        return Ok(EINVAL);
    }
    if ctx.world.env.timers.contains_key(&addr) {
        return Ok(EBUSY);
    }
    let state = TimerState { clock: flags as u32, ..TimerState::default() };
    ctx.world.env.timers.insert(addr, state);
    Ok(0)
}

/// `long bpf_timer_set_callback(struct bpf_timer *timer, void *callback_fn)`: `-EINVAL` for
/// a timer not initialized.
fn timer_set_callback(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let addr = timer_arg(ctx, a[0])?;
    match ctx.world.env.timers.get_mut(&addr) {
        Some(t) => {
            t.callback = Some(a[1]);
            Ok(0)
        }
        None => Ok(EINVAL),
    }
}

/// `long bpf_timer_start(struct bpf_timer *timer, u64 nsecs, u64 flags)`: arms the timer;
/// `-EINVAL` for unknown flags, a timer not initialized or without a callback.
fn timer_start(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let addr = timer_arg(ctx, a[0])?;
    if a[2] & !START_FLAGS != 0 {
        return Ok(EINVAL);
    }
    match ctx.world.env.timers.get_mut(&addr) {
        Some(t) if t.callback.is_some() => {
            t.armed = true;
            Ok(0)
        }
        _ => Ok(EINVAL),
    }
}

/// `long bpf_timer_cancel(struct bpf_timer *timer)`: 1 when the timer was armed, else 0;
/// either way the callback is dropped (a new `bpf_timer_set_callback` is needed before the
/// next start). `-EINVAL` for a timer not initialized.
fn timer_cancel(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let addr = timer_arg(ctx, a[0])?;
    match ctx.world.env.timers.get_mut(&addr) {
        Some(t) => {
            let was_armed = t.armed;
            t.armed = false;
            t.callback = None;
            Ok(u64::from(was_armed))
        }
        None => Ok(EINVAL),
    }
}
