//! Dynamic pointers (`struct bpf_dynptr`): the helpers `bpf_dynptr_from_mem`,
//! `bpf_dynptr_read`, `bpf_dynptr_write`, `bpf_dynptr_data`, `bpf_ringbuf_reserve_dynptr`,
//! `bpf_ringbuf_submit_dynptr`, `bpf_ringbuf_discard_dynptr` and the kfuncs
//! `bpf_dynptr_from_skb`, `bpf_dynptr_from_xdp`, `bpf_dynptr_slice[_rdwr]`, ...
//!
//! A dynptr is a 16-byte stack object laid out like the kernel's `struct bpf_dynptr_kern`,
//! so helpers and kfuncs agree on it: bytes 0..8 hold the data address (the memory for local
//! dynptrs, the context for skb and XDP ones), bytes 8..12 the size (low 24 bits), the type
//! (bits 28..31) and the read-only flag (bit 31), bytes 12..16 the offset into the data. A
//! zero data address is a NULL dynptr: every operation on it fails as in the kernel.

use super::{E2BIG, EFAULT, EINVAL, ERANGE};
use crate::ctx::XdpCtx;
use crate::ctx::skb::SkbCtx;
use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// Size of `struct bpf_dynptr`.
pub const DYNPTR_SIZE: u64 = 16;
/// The largest size a dynptr may have (`DYNPTR_MAX_SIZE`).
pub const DYNPTR_MAX_SIZE: u32 = (1 << 24) - 1;
const SIZE_MASK: u32 = 0xff_ffff;
const TYPE_SHIFT: u32 = 28;
const RDONLY_BIT: u32 = 1 << 31;

/// `BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH`, the flags skb writes take.
const SKB_WRITE_FLAGS: u64 = 3;

/// Program types with the skb kfunc set (`bpf_kfunc_set_skb` in net/core/filter.c).
pub(crate) const SKB_SET: Allowed = Allowed::Only(&[
    ProgType::SchedCls,
    ProgType::SchedAct,
    ProgType::SkSkb,
    ProgType::SocketFilter,
    ProgType::CgroupSkb,
    ProgType::LwtOut,
    ProgType::LwtIn,
    ProgType::LwtXmit,
    ProgType::LwtSeg6local,
    ProgType::Netfilter,
    ProgType::Tracing,
]);

/// Program types with the XDP kfunc set (`bpf_kfunc_set_xdp`).
pub(crate) const XDP_SET: Allowed = Allowed::Only(&[ProgType::Xdp]);

/// What a dynptr points to (`enum bpf_dynptr_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynptrKind {
    /// Memory of the program (stack, map value): `BPF_DYNPTR_TYPE_LOCAL`.
    Local = 1,
    /// A ring buffer record: `BPF_DYNPTR_TYPE_RINGBUF`.
    Ringbuf = 2,
    /// The packet of an `__sk_buff`: `BPF_DYNPTR_TYPE_SKB`.
    Skb = 3,
    /// The packet of an `xdp_md`: `BPF_DYNPTR_TYPE_XDP`.
    Xdp = 4,
}

/// A decoded `struct bpf_dynptr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dynptr {
    /// The data address (0 for a NULL dynptr).
    pub data: u64,
    /// The type, if the bits name one.
    pub kind: Option<DynptrKind>,
    /// Writes are refused.
    pub rdonly: bool,
    /// Bytes visible through the dynptr.
    pub size: u32,
    /// Offset of the first visible byte in the data.
    pub offset: u32,
}

impl Dynptr {
    /// Decodes the 16 bytes of a `struct bpf_dynptr`.
    pub fn decode(b: &[u8; 16]) -> Dynptr {
        let data = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let word = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let offset = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        let kind = match (word & !RDONLY_BIT) >> TYPE_SHIFT {
            1 => Some(DynptrKind::Local),
            2 => Some(DynptrKind::Ringbuf),
            3 => Some(DynptrKind::Skb),
            4 => Some(DynptrKind::Xdp),
            _ => None,
        };
        // A dynptr whose type bits name no type was not made by an initializer: NULL.
        let data = if kind.is_some() { data } else { 0 };
        Dynptr { data, kind, rdonly: word & RDONLY_BIT != 0, size: word & SIZE_MASK, offset }
    }

    /// The 16 bytes of this dynptr.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.data.to_le_bytes());
        let kind = self.kind.map_or(0, |k| k as u32);
        let word = (self.size & SIZE_MASK)
            | (kind << TYPE_SHIFT)
            | if self.rdonly { RDONLY_BIT } else { 0 };
        b[8..12].copy_from_slice(&word.to_le_bytes());
        b[12..].copy_from_slice(&self.offset.to_le_bytes());
        b
    }

    fn new(data: u64, kind: DynptrKind, size: u32, rdonly: bool) -> Dynptr {
        Dynptr { data, kind: Some(kind), rdonly, size, offset: 0 }
    }

    fn is_null(&self) -> bool {
        self.data == 0
    }

    /// `bpf_dynptr_check_off_len`.
    fn check_off_len(&self, offset: u64, len: u64) -> Result<(), u64> {
        let size = u64::from(self.size);
        if len > size || offset > size - len { Err(E2BIG) } else { Ok(()) }
    }
}

/// Reads the dynptr argument `arg` at `addr`.
fn load(ctx: &HelperCtx<'_>, arg: u8, addr: u64) -> Result<Dynptr, HelperError> {
    let bytes = ctx.arg_bytes(arg, addr, DYNPTR_SIZE)?;
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes);
    Ok(Dynptr::decode(&b))
}

/// Writes dynptr `d` to argument `arg` at `addr`.
fn store(ctx: &mut HelperCtx<'_>, arg: u8, addr: u64, d: &Dynptr) -> Result<(), HelperError> {
    let out = ctx
        .world
        .mem
        .slice_mut(addr, DYNPTR_SIZE as usize)
        .map_err(|error| HelperError::BadMemoryArg { arg, error })?;
    out.copy_from_slice(&d.encode());
    Ok(())
}

/// `bpf_dynptr_set_null`.
fn set_null(ctx: &mut HelperCtx<'_>, arg: u8, addr: u64) -> Result<(), HelperError> {
    let null = Dynptr { data: 0, kind: None, rdonly: false, size: 0, offset: 0 };
    store(ctx, arg, addr, &null)
}

fn skb<'c>(ctx: &'c HelperCtx<'_>) -> Result<&'c SkbCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<SkbCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "skb dynptr outside an __sk_buff program" })
}

fn xdp<'c>(ctx: &'c HelperCtx<'_>) -> Result<&'c XdpCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<XdpCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "XDP dynptr outside an XDP program" })
}

/// The address of the dynptr's first visible byte and, for packets, how many bytes the
/// packet has from there now (the size recorded at creation may be stale after a resize).
fn locate(ctx: &HelperCtx<'_>, d: &Dynptr) -> Result<(u64, Option<u64>), HelperError> {
    let off = u64::from(d.offset);
    Ok(match d.kind {
        Some(DynptrKind::Skb) => {
            let s = skb(ctx)?;
            let len = ctx.world.mem.bytes(s.packet).len() as u64;
            (s.packet.base() + off, Some(len.saturating_sub(off)))
        }
        Some(DynptrKind::Xdp) => {
            let x = xdp(ctx)?;
            let len = (x.data_end(&ctx.world.mem) - x.data) as u64;
            (x.frame.base() + x.data as u64 + off, Some(len.saturating_sub(off)))
        }
        _ => (d.data.wrapping_add(off), None),
    })
}

/// `int bpf_dynptr_from_skb(struct __sk_buff *skb, u64 flags, struct bpf_dynptr *ptr)`.
/// Programs that may not write packets get a read-only dynptr (the verifier turns their calls
/// into `bpf_dynptr_from_skb_rdonly`).
pub(crate) fn from_skb(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if a[1] != 0 {
        set_null(ctx, 3, a[2])?;
        return Ok(EINVAL);
    }
    let len = ctx.world.mem.bytes(skb(ctx)?.packet).len() as u32;
    let rdonly = !matches!(
        ctx.prog_type,
        ProgType::SchedCls | ProgType::SchedAct | ProgType::LwtXmit | ProgType::SkSkb
    );
    store(ctx, 3, a[2], &Dynptr::new(a[0], DynptrKind::Skb, len, rdonly))?;
    Ok(0)
}

/// `int bpf_dynptr_from_xdp(struct xdp_md *x, u64 flags, struct bpf_dynptr *ptr)`.
pub(crate) fn from_xdp(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if a[1] != 0 {
        set_null(ctx, 3, a[2])?;
        return Ok(EINVAL);
    }
    let x = xdp(ctx)?;
    // The whole buffer, fragments included (`xdp_get_buff_len`).
    let len = x.buff_len(&ctx.world.mem) as u32;
    store(ctx, 3, a[2], &Dynptr::new(a[0], DynptrKind::Xdp, len, false))?;
    Ok(0)
}

/// `void *bpf_dynptr_slice(const struct bpf_dynptr *p, u32 offset, void *buffer, u32 len)`:
/// a pointer to `len` bytes at `offset`, or NULL. bpflab's skbs are linear, so skb slices
/// always point into the packet (as the kernel's do for linear data); an XDP slice points into
/// the linear part or the one fragment holding all `len` bytes, else the bytes are copied to
/// `buffer` (NULL without one), as `bpf_xdp_pointer`/`bpf_xdp_copy_buf` do.
pub(crate) fn slice(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let d = load(ctx, 1, a[0])?;
    slice_of(ctx, &d, a[1] as u32, a[2], a[3] as u32)
}

fn slice_of(
    ctx: &mut HelperCtx<'_>,
    d: &Dynptr,
    offset: u32,
    buffer: u64,
    len: u32,
) -> Result<u64, HelperError> {
    if d.is_null() || d.check_off_len(u64::from(offset), u64::from(len)).is_err() {
        return Ok(0);
    }
    if d.kind == Some(DynptrKind::Xdp) {
        let x = xdp(ctx)?.clone();
        let at = d.offset.wrapping_add(offset);
        if let Ok(Some(addr)) = x.pointer(&ctx.world.mem, at, len) {
            return Ok(addr);
        }
        if buffer == 0 {
            return Ok(0);
        }
        // As bpf_xdp_copy_buf: the bytes the buffer still has there (all of them unless the
        // packet shrank since the dynptr was made).
        let bytes = x.copy_out(&ctx.world.mem, at as usize, len as usize);
        ctx.world
            .mem
            .slice_mut(buffer, bytes.len())
            .map_err(|error| HelperError::BadMemoryArg { arg: 3, error })?
            .copy_from_slice(&bytes);
        return Ok(buffer);
    }
    let (base, avail) = locate(ctx, d)?;
    if avail.is_some_and(|n| u64::from(offset) + u64::from(len) > n) {
        return Ok(0);
    }
    Ok(base + u64::from(offset))
}

/// `void *bpf_dynptr_slice_rdwr(...)`: like [`slice`], NULL for a read-only dynptr.
pub(crate) fn slice_rdwr(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let d = load(ctx, 1, a[0])?;
    if d.rdonly {
        return Ok(0);
    }
    slice_of(ctx, &d, a[1] as u32, a[2], a[3] as u32)
}

/// `int bpf_dynptr_adjust(const struct bpf_dynptr *p, u32 start, u32 end)`.
pub(crate) fn adjust(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut d = load(ctx, 1, a[0])?;
    let (start, end) = (a[1] as u32, a[2] as u32);
    if d.is_null() || start > end {
        return Ok(EINVAL);
    }
    if start > d.size || end > d.size {
        return Ok(ERANGE);
    }
    d.offset = d.offset.wrapping_add(start);
    d.size = end - start;
    store(ctx, 1, a[0], &d)?;
    Ok(0)
}

/// `bool bpf_dynptr_is_null(const struct bpf_dynptr *p)`.
pub(crate) fn is_null(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(load(ctx, 1, a[0])?.is_null()))
}

/// `bool bpf_dynptr_is_rdonly(const struct bpf_dynptr *p)`.
pub(crate) fn is_rdonly(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let d = load(ctx, 1, a[0])?;
    Ok(u64::from(!d.is_null() && d.rdonly))
}

/// `__u32 bpf_dynptr_size(const struct bpf_dynptr *p)` (`-EINVAL` for a NULL dynptr).
pub(crate) fn size(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let d = load(ctx, 1, a[0])?;
    Ok(if d.is_null() { EINVAL } else { u64::from(d.size) })
}

/// `int bpf_dynptr_clone(const struct bpf_dynptr *p, struct bpf_dynptr *clone)`.
pub(crate) fn clone(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let d = load(ctx, 1, a[0])?;
    if d.is_null() {
        set_null(ctx, 2, a[1])?;
        return Ok(EINVAL);
    }
    store(ctx, 2, a[1], &d)?;
    Ok(0)
}

/// The dynptr helpers (they live in `bpf_base_func_proto`: every program type).
pub(crate) const HELPERS: &[Helper] = &[
    Helper { proto: FROM_MEM, func: from_mem },
    Helper { proto: READ, func: read },
    Helper { proto: WRITE, func: write },
    Helper { proto: DATA, func: data },
    Helper { proto: RINGBUF_RESERVE, func: ringbuf_reserve },
    Helper { proto: RINGBUF_SUBMIT, func: ringbuf_submit },
    Helper { proto: RINGBUF_DISCARD, func: ringbuf_discard },
];

const FROM_MEM: HelperProto = HelperProto {
    id: 197,
    name: "bpf_dynptr_from_mem",
    ret: RetType::Integer,
    args: &[
        ArgType::PtrToUninitMem,
        ArgType::ConstSizeOrZero,
        ArgType::Anything,
        ArgType::PtrToDynptr,
    ],
    gpl_only: false,
    prog_types: Allowed::All,
};
const READ: HelperProto = HelperProto {
    id: 201,
    name: "bpf_dynptr_read",
    ret: RetType::Integer,
    args: &[
        ArgType::PtrToUninitMem,
        ArgType::ConstSizeOrZero,
        ArgType::PtrToDynptr,
        ArgType::Anything,
        ArgType::Anything,
    ],
    gpl_only: false,
    prog_types: Allowed::All,
};
const WRITE: HelperProto = HelperProto {
    id: 202,
    name: "bpf_dynptr_write",
    ret: RetType::Integer,
    args: &[
        ArgType::PtrToDynptr,
        ArgType::Anything,
        ArgType::PtrToMemOrNull,
        ArgType::ConstSizeOrZero,
        ArgType::Anything,
    ],
    gpl_only: false,
    prog_types: Allowed::All,
};
const DATA: HelperProto = HelperProto {
    id: 203,
    name: "bpf_dynptr_data",
    ret: RetType::PtrToAllocMemOrNull,
    args: &[ArgType::PtrToDynptr, ArgType::Anything, ArgType::ConstSizeOrZero],
    gpl_only: false,
    prog_types: Allowed::All,
};

const RINGBUF_RESERVE: HelperProto = HelperProto {
    id: 198,
    name: "bpf_ringbuf_reserve_dynptr",
    ret: RetType::Integer,
    args: &[ArgType::ConstMapPtr, ArgType::Anything, ArgType::Anything, ArgType::PtrToDynptr],
    gpl_only: false,
    prog_types: Allowed::All,
};
const RINGBUF_SUBMIT: HelperProto = HelperProto {
    id: 199,
    name: "bpf_ringbuf_submit_dynptr",
    ret: RetType::Void,
    args: &[ArgType::PtrToDynptr, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::All,
};
const RINGBUF_DISCARD: HelperProto = HelperProto {
    id: 200,
    name: "bpf_ringbuf_discard_dynptr",
    ret: RetType::Void,
    args: &[ArgType::PtrToDynptr, ArgType::Anything],
    gpl_only: false,
    prog_types: Allowed::All,
};

/// `long bpf_ringbuf_reserve_dynptr(void *ringbuf, u32 size, u64 flags, struct bpf_dynptr
/// *ptr)`: a ring buffer dynptr over a new record (a NULL dynptr and an error otherwise).
fn ringbuf_reserve(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = crate::builtin::maps::map_arg(ctx, 1, a[0])?;
    let size = a[1] as u32;
    if a[2] != 0 {
        set_null(ctx, 4, a[3])?;
        return Ok(EINVAL);
    }
    if size > DYNPTR_MAX_SIZE {
        set_null(ctx, 4, a[3])?;
        return Ok(E2BIG);
    }
    let bad = HelperError::BadArg { arg: 1, reason: "not a ringbuf map" };
    let (map, mem) = ctx.world.map_mut(idx).ok_or(bad.clone())?;
    let rb = map.as_any_mut().downcast_mut::<crate::maps::RingBuf>().ok_or(bad)?;
    match rb.reserve(mem, u64::from(size)).ok().flatten() {
        Some(addr) => {
            store(ctx, 4, a[3], &Dynptr::new(addr, DynptrKind::Ringbuf, size, false))?;
            Ok(0)
        }
        None => {
            set_null(ctx, 4, a[3])?;
            Ok(EINVAL)
        }
    }
}

/// Submits or discards the record of the ring buffer dynptr at `addr`, then makes it NULL;
/// nothing for a NULL dynptr (a failed reservation).
fn ringbuf_commit(
    ctx: &mut HelperCtx<'_>,
    addr: u64,
    flags: u64,
    discard: bool,
) -> Result<u64, HelperError> {
    let d = load(ctx, 1, addr)?;
    if d.is_null() {
        return Ok(0);
    }
    let bad = HelperError::BadArg { arg: 1, reason: "not a ring buffer dynptr" };
    if d.kind != Some(DynptrKind::Ringbuf) {
        return Err(bad);
    }
    let Some((region, crate::memory::RegionKind::RingbufRecord, 0)) = ctx.world.mem.resolve(d.data)
    else {
        return Err(bad);
    };
    let mut done = false;
    for idx in 0..ctx.world.map_count() {
        let Some((map, mem)) = ctx.world.map_mut(idx) else { continue };
        if let Some(rb) = map.as_any_mut().downcast_mut::<crate::maps::RingBuf>()
            && rb.commit(mem, region, flags, discard)
        {
            done = true;
            break;
        }
    }
    if !done {
        return Err(bad);
    }
    set_null(ctx, 1, addr)?;
    Ok(0)
}

/// `void bpf_ringbuf_submit_dynptr(struct bpf_dynptr *ptr, u64 flags)`.
fn ringbuf_submit(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    ringbuf_commit(ctx, a[0], a[1], false)
}

/// `void bpf_ringbuf_discard_dynptr(struct bpf_dynptr *ptr, u64 flags)`.
fn ringbuf_discard(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    ringbuf_commit(ctx, a[0], a[1], true)
}

/// `long bpf_dynptr_from_mem(void *data, u32 size, u64 flags, struct bpf_dynptr *ptr)`.
fn from_mem(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let size = a[1] as u32;
    // The verifier checks the memory argument.
    ctx.arg_bytes(1, a[0], u64::from(size))?;
    if a[2] != 0 {
        set_null(ctx, 4, a[3])?;
        return Ok(EINVAL);
    }
    if size > DYNPTR_MAX_SIZE {
        set_null(ctx, 4, a[3])?;
        return Ok(E2BIG);
    }
    store(ctx, 4, a[3], &Dynptr::new(a[0], DynptrKind::Local, size, false))?;
    Ok(0)
}

/// `long bpf_dynptr_read(void *dst, u32 len, const struct bpf_dynptr *src, u32 offset,
/// u64 flags)`.
fn read(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = a[1] as u32;
    // ARG_PTR_TO_UNINIT_MEM: the verifier checks the destination.
    ctx.world
        .mem
        .slice_mut(a[0], len as usize)
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
    let d = load(ctx, 3, a[2])?;
    let offset = a[3] as u32;
    if d.is_null() || a[4] != 0 {
        return Ok(EINVAL);
    }
    if let Err(e) = d.check_off_len(u64::from(offset), u64::from(len)) {
        return Ok(e);
    }
    let bytes = if d.kind == Some(DynptrKind::Xdp) {
        // __bpf_xdp_load_bytes: across the linear part and the fragments.
        let x = xdp(ctx)?;
        let at = d.offset.wrapping_add(offset);
        if let Err(e) = x.pointer(&ctx.world.mem, at, len) {
            return Ok(i64::from(e) as u64);
        }
        x.copy_out(&ctx.world.mem, at as usize, len as usize)
    } else {
        let (base, avail) = locate(ctx, &d)?;
        if avail.is_some_and(|n| u64::from(offset) + u64::from(len) > n) {
            return Ok(EFAULT);
        }
        ctx.arg_bytes(3, base + u64::from(offset), u64::from(len))?
    };
    ctx.world
        .mem
        .slice_mut(a[0], len as usize)
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?
        .copy_from_slice(&bytes);
    Ok(0)
}

/// `long bpf_dynptr_write(const struct bpf_dynptr *dst, u32 offset, void *src, u32 len,
/// u64 flags)`.
fn write(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = a[3] as u32;
    let from = ctx.arg_bytes(3, a[2], u64::from(len))?;
    let d = load(ctx, 1, a[0])?;
    let (offset, flags) = (a[1] as u32, a[4]);
    if d.is_null() || d.rdonly {
        return Ok(EINVAL);
    }
    if let Err(e) = d.check_off_len(u64::from(offset), u64::from(len)) {
        return Ok(e);
    }
    let allowed_flags = if d.kind == Some(DynptrKind::Skb) { SKB_WRITE_FLAGS } else { 0 };
    if flags & !allowed_flags != 0 {
        return Ok(EINVAL);
    }
    if d.kind == Some(DynptrKind::Xdp) {
        // __bpf_xdp_store_bytes: across the linear part and the fragments.
        let x = xdp(ctx)?.clone();
        let at = d.offset.wrapping_add(offset);
        if let Err(e) = x.pointer(&ctx.world.mem, at, len) {
            return Ok(i64::from(e) as u64);
        }
        x.copy_in(&mut ctx.world.mem, at as usize, &from);
        return Ok(0);
    }
    let (base, avail) = locate(ctx, &d)?;
    if avail.is_some_and(|n| u64::from(offset) + u64::from(len) > n) {
        return Ok(EFAULT);
    }
    ctx.world
        .mem
        .slice_mut(base + u64::from(offset), len as usize)
        .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?
        .copy_from_slice(&from);
    // BPF_F_INVALIDATE_HASH clears the skb's hash.
    if d.kind == Some(DynptrKind::Skb)
        && flags & 2 != 0
        && let Some(s) =
            ctx.world.mem.context_mut().and_then(|c| c.as_any_mut().downcast_mut::<SkbCtx>())
    {
        s.clear_hash();
    }
    Ok(0)
}

/// `void *bpf_dynptr_data(const struct bpf_dynptr *ptr, u32 offset, u32 len)`: local and
/// ring buffer dynptrs only; NULL for read-only ones.
fn data(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let d = load(ctx, 1, a[0])?;
    let (offset, len) = (a[1] as u32, a[2] as u32);
    if d.is_null() || d.rdonly || d.check_off_len(u64::from(offset), u64::from(len)).is_err() {
        return Ok(0);
    }
    match d.kind {
        Some(DynptrKind::Local | DynptrKind::Ringbuf) => {
            Ok(d.data.wrapping_add(u64::from(d.offset) + u64::from(offset)))
        }
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_like_bpf_dynptr_kern() {
        let d = Dynptr {
            data: 0x1_8000_0010,
            kind: Some(DynptrKind::Skb),
            rdonly: true,
            size: 60,
            offset: 4,
        };
        let b = d.encode();
        assert_eq!(&b[8..12], &(60u32 | (3 << 28) | (1 << 31)).to_le_bytes());
        assert_eq!(Dynptr::decode(&b), d);
        // Zeroed stack bytes are a NULL dynptr; type bits 0 make any data NULL too.
        assert!(Dynptr::decode(&[0; 16]).is_null());
        let mut junk = [0xffu8; 16];
        junk[11] = 0x0f;
        assert!(Dynptr::decode(&junk).is_null());
    }

    #[test]
    fn off_len_checks_like_the_kernel() {
        let d = Dynptr::new(1, DynptrKind::Local, 10, false);
        assert_eq!(d.check_off_len(0, 10), Ok(()));
        assert_eq!(d.check_off_len(10, 0), Ok(()));
        assert_eq!(d.check_off_len(1, 10), Err(E2BIG));
        assert_eq!(d.check_off_len(11, 0), Err(E2BIG));
    }
}
