//! The helpers bpflab implements, by family, with the kernel's ids, prototypes and semantics.

use crate::helpers::Helper;

pub(crate) mod maps;
mod misc;
mod trace;
mod xdp;

/// Every built-in helper family.
pub(crate) const FAMILIES: &[&[Helper]] =
    &[maps::HELPERS, misc::HELPERS, trace::HELPERS, xdp::HELPERS];
