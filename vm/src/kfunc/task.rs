//! Task kfuncs over the simulated kernel's current task, kfuncs with nothing to do in a
//! single-threaded simulation (`bpf_rcu_read_lock`, `bpf_preempt_disable`, ...), and the
//! arena kfuncs bpflab refuses.

use crate::helpers::{HelperCtx, HelperError};
use crate::kobj::View;

/// A kfunc whose effect a single-threaded run does not see (RCU and preemption sections,
/// releasing a reference): returns 0.
pub(crate) fn nothing(_: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(0)
}

/// `struct task_struct *bpf_task_from_pid(s32 pid)`: the task with this pid, or NULL. The
/// simulated kernel knows one task, the current one (see [`crate::kobj::Kernel`]).
pub(crate) fn from_pid(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let pid = a[0] as i32;
    if pid <= 0 || pid as u32 != ctx.world.kernel.current().pid {
        return Ok(0);
    }
    let world = &mut *ctx.world;
    world
        .kernel
        .current_task(&mut world.mem, View::Btf)
        .map_err(|_| HelperError::BadArg { arg: 1, reason: "the current task cannot be built" })
}

/// The arena kfuncs (`bpf_arena_alloc_pages`, `bpf_arena_free_pages`): bpflab creates arena
/// maps but does not map their pages.
pub(crate) fn arena_unsupported(_: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Err(HelperError::Unsupported { what: "arena address space" })
}

/// `struct task_struct *bpf_task_acquire(struct task_struct *p)`: a new reference to `p`.
pub(crate) fn acquire(_: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok(a[0])
}
