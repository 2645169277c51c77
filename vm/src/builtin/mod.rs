//! The helpers bpflab implements, by family, with the kernel's ids, prototypes and semantics.

use crate::helpers::Helper;

mod bprintf;
mod callbacks;
mod csum;
mod fib;
pub(crate) mod maps;
mod misc;
pub(crate) mod missing;
mod net;
mod percpu;
mod perf;
mod redirect_map;
mod ringbuf;
mod sk_lookup;
mod skb;
mod snprintf;
mod sock;
mod spinlock;
mod syncookie;
mod tailcall;
mod timer;
mod trace;
mod tracing;
pub(crate) mod unimplemented;
mod xdp;

/// Every built-in helper family.
pub(crate) const FAMILIES: &[&[Helper]] = &[
    maps::HELPERS,
    misc::HELPERS,
    trace::HELPERS,
    tracing::HELPERS,
    fib::HELPERS,
    xdp::HELPERS,
    net::HELPERS,
    skb::HELPERS,
    sk_lookup::HELPERS,
    sock::HELPERS,
    callbacks::HELPERS,
    perf::HELPERS,
    percpu::HELPERS,
    redirect_map::HELPERS,
    ringbuf::HELPERS,
    snprintf::HELPERS,
    spinlock::HELPERS,
    syncookie::HELPERS,
    tailcall::HELPERS,
    timer::HELPERS,
    crate::kfunc::dynptr::HELPERS,
    crate::maps::storage::HELPERS,
    crate::maps::user_ringbuf::HELPERS,
];
