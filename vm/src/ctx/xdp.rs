//! `struct xdp_md`: the XDP context. Its `data`, `data_end` and `data_meta` fields read as
//! packet pointers; the buffer has the kernel's headroom and tailroom so `bpf_xdp_adjust_head`,
//! `_tail` and `_meta` behave as in `BPF_PROG_TEST_RUN`.

use std::any::Any;

use super::{CtxError, Installed, Target, allowed, denied, read_field};
use crate::engine::{ProgType, RunInput};
use crate::memory::{Access, ContextAccess, MemError, Memory, Perm, RegionId, RegionKind};

/// Headroom in front of the packet (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: usize = 256;
/// Size of the frame the packet lives in (one page in `BPF_PROG_TEST_RUN`).
pub const XDP_FRAME_SIZE: usize = 4096;
/// Bytes at the end of the frame reserved for `struct skb_shared_info`.
pub const SKB_SHARED_INFO: usize = 320;
/// Bytes at the start of the headroom taken by `struct xdp_frame`.
pub const XDP_FRAME_STRUCT: usize = 40;
/// Size of `struct xdp_md`.
pub const XDP_MD_SIZE: usize = super::layout::XDP_MD_SIZE as usize;
/// `BPF_XDP_DEVMAP` attach type: programs attached to devmap entries may read `egress_ifindex`.
pub const BPF_XDP_DEVMAP: u32 = super::layout::attach::XDP_DEVMAP;

/// Size of a fragment page (`PAGE_SIZE`: `BPF_PROG_TEST_RUN` sets the queue's `frag_size` to it).
pub const XDP_FRAG_SIZE: usize = 4096;
/// Most fragments a buffer may have (`MAX_SKB_FRAGS`).
pub const MAX_XDP_FRAGS: usize = 17;
/// Longest metadata `BPF_PROG_TEST_RUN` accepts (`xdp_metalen_invalid`).
pub const XDP_META_MAX: usize = 32;
/// Largest linear part without metadata: the page less the headroom and the tailroom.
pub const XDP_MAX_LINEAR: usize = XDP_FRAME_SIZE - XDP_PACKET_HEADROOM - SKB_SHARED_INFO;
/// Longest packet `BPF_PROG_TEST_RUN` takes without metadata: a full linear part and
/// [`MAX_XDP_FRAGS`] full fragment pages.
pub const XDP_MAX_PACKET: usize = XDP_MAX_LINEAR + MAX_XDP_FRAGS * XDP_FRAG_SIZE;

/// `-EFAULT`.
const EFAULT: i32 = -14;
/// `-EINVAL`.
const EINVAL: i32 = -22;

/// The XDP context of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpCtx {
    /// The frame's region: `[0, data_end)` of the frame, accessible from `meta`.
    pub frame: RegionId,
    /// Offset of `data_meta` in the frame.
    pub meta: usize,
    /// Offset of `data` in the frame.
    pub data: usize,
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `rx_queue_index`.
    pub rx_queue_index: u32,
    /// `egress_ifindex` (devmap programs only).
    pub egress_ifindex: u32,
    /// Attached to a devmap entry (`BPF_XDP_DEVMAP`).
    pub devmap: bool,
    /// The fragments after the linear part (`skb_shared_info.frags`), in order: one region
    /// each, as long as the fragment. Programs reach them only through helpers and kfuncs
    /// (`data_end` is the end of the linear part), as in the kernel.
    pub frags: Vec<RegionId>,
}

impl XdpCtx {
    /// Offset of `data_end` in the frame.
    pub fn data_end(&self, mem: &Memory) -> usize {
        mem.bytes(self.frame).len()
    }

    /// Largest `data_end` the tailroom allows.
    pub fn max_data_end(&self) -> usize {
        XDP_FRAME_SIZE - SKB_SHARED_INFO
    }

    /// Bytes of the linear part from `data` (`data_end - data`).
    pub fn linear_len(&self, mem: &Memory) -> usize {
        self.data_end(mem) - self.data
    }

    /// Bytes in the fragments (`skb_shared_info.xdp_frags_size`).
    pub fn frags_size(&self, mem: &Memory) -> usize {
        self.frags.iter().map(|&f| mem.bytes(f).len()).sum()
    }

    /// Whether the buffer has fragments (`xdp_buff_has_frags`).
    pub fn has_frags(&self) -> bool {
        !self.frags.is_empty()
    }

    /// The packet's length from `data`, fragments included (`xdp_get_buff_len`).
    pub fn buff_len(&self, mem: &Memory) -> usize {
        self.linear_len(mem) + self.frags_size(mem)
    }

    /// The pieces of the packet from `data`: the linear part, then each fragment, as
    /// (region, first offset, length).
    fn pieces(&self, mem: &Memory) -> Vec<(RegionId, usize, usize)> {
        let mut v = vec![(self.frame, self.data, self.linear_len(mem))];
        v.extend(self.frags.iter().map(|&f| (f, 0, mem.bytes(f).len())));
        v
    }

    /// `bpf_xdp_pointer()`: `Err(-EFAULT)` for an offset or length above 0xffff, `Err(-EINVAL)`
    /// past the end of the buffer, `Ok(Some(address))` when the `len` bytes at `offset` (of
    /// `data`) lie in one piece (the linear part or one fragment), `Ok(None)` when they span
    /// pieces.
    pub fn pointer(&self, mem: &Memory, offset: u32, len: u32) -> Result<Option<u64>, i32> {
        if offset > 0xffff || len > 0xffff {
            return Err(EFAULT);
        }
        let (mut off, len) = (offset as usize, len as usize);
        if off + len > self.buff_len(mem) {
            return Err(EINVAL);
        }
        let pieces = self.pieces(mem);
        // As in the kernel, an offset at the very end of the buffer falls back to the linear
        // part (and a zero length there is a pointer to its end).
        let mut found = pieces[0];
        if off >= found.2 {
            off -= found.2;
            for &p in &pieces[1..] {
                if off < p.2 {
                    found = p;
                    break;
                }
                off -= p.2;
            }
        }
        let (region, start, size) = found;
        Ok((off + len <= size).then(|| region.base() + (start + off) as u64))
    }

    /// `bpf_xdp_copy_buf(.., flush = false)`: the `len` bytes at `offset` of `data`, across the
    /// linear part and the fragments (the caller checked the range).
    pub fn copy_out(&self, mem: &Memory, offset: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut base = 0;
        for (region, start, size) in self.pieces(mem) {
            let want_end = offset + len;
            if out.len() < len && offset + out.len() < base + size {
                let from = offset + out.len() - base;
                let to = (want_end - base).min(size);
                out.extend_from_slice(&mem.bytes(region)[start + from..start + to]);
            }
            base += size;
        }
        out
    }

    /// `bpf_xdp_copy_buf(.., flush = true)`: writes `bytes` at `offset` of `data`, across the
    /// linear part and the fragments (the caller checked the range).
    pub fn copy_in(&self, mem: &mut Memory, offset: usize, bytes: &[u8]) {
        let mut done = 0;
        let mut base = 0;
        for (region, start, size) in self.pieces(mem) {
            if done < bytes.len() && offset + done < base + size {
                let from = offset + done - base;
                let n = (bytes.len() - done).min(size - from);
                mem.contents_mut(region)[start + from..start + from + n]
                    .copy_from_slice(&bytes[done..done + n]);
                done += n;
            }
            base += size;
        }
    }

    /// The packet from `data` to the end of the last fragment.
    pub fn buff_bytes(&self, mem: &Memory) -> Vec<u8> {
        self.copy_out(mem, 0, self.buff_len(mem))
    }
}

/// Builds and installs the context; `input.ctx` may hold an `xdp_md` (as BPF_PROG_TEST_RUN's
/// ctx_in) whose `data` gives the metadata length, `data_end` the length of the linear part
/// and whose ifindex fields are used. As in `bpf_prog_test_run_xdp`, the first bytes (at most
/// a page less the headroom and tailroom: [`XDP_MAX_LINEAR`] plus the metadata) form the
/// linear part and the rest goes to fragments of up to a page each, for every XDP program.
pub(crate) fn install(
    attach: Option<u32>,
    input: &RunInput,
    mem: &mut Memory,
) -> Result<Installed, CtxError> {
    let len = input.data.len();
    let (mut ingress, mut rxq, mut meta_len, mut linear) = (0, 0, 0, len);
    if let Some(ctx) = &input.ctx {
        if ctx.len() != XDP_MD_SIZE {
            return Err(CtxError::BadCtx(format!(
                "xdp_md must be {XDP_MD_SIZE} bytes, got {}",
                ctx.len()
            )));
        }
        let field = |off| read_field(ctx, off, 4) as u32 as usize;
        // As in the kernel: no data before the metadata, data_end within the input.
        if field(8) != 0 || field(4) > len || field(0) > field(4) {
            return Err(CtxError::BadCtx(
                "data_meta must be 0, data at most data_end, data_end at most the packet length"
                    .into(),
            ));
        }
        meta_len = field(0);
        if meta_len % 4 != 0 || meta_len > XDP_META_MAX {
            return Err(CtxError::BadCtx(format!(
                "metadata of {meta_len} bytes: it must be a multiple of 4 of at most \
                 {XDP_META_MAX}"
            )));
        }
        // xdp_convert_md_to_buff: no egress device, no queue without a device.
        if field(20) != 0 || (field(12) == 0 && field(16) != 0) {
            return Err(CtxError::BadCtx(
                "egress_ifindex must be 0, rx_queue_index 0 without ingress_ifindex".into(),
            ));
        }
        linear = field(4);
        ingress = field(12) as u32;
        rxq = field(16) as u32;
    }
    if len - meta_len < 14 {
        return Err(CtxError::PacketTooShort { len: len - meta_len, min: 14 });
    }
    // The metadata comes out of the headroom, so the linear part may be that much longer.
    let headroom = XDP_PACKET_HEADROOM - meta_len;
    let max_linear = XDP_FRAME_SIZE - headroom - SKB_SHARED_INFO;
    linear = linear.min(max_linear);
    let max = linear + MAX_XDP_FRAGS * XDP_FRAG_SIZE;
    if len > max {
        return Err(CtxError::PacketTooLong { len, max });
    }
    let mut frame = vec![0; headroom];
    frame.extend_from_slice(&input.data[..linear]);
    let region = mem.alloc(RegionKind::Packet, frame, Perm::ReadWrite)?;
    let mut owned = vec![region];
    let mut frags = Vec::new();
    for chunk in input.data[linear..].chunks(XDP_FRAG_SIZE) {
        let f = mem.alloc(RegionKind::Packet, chunk.to_vec(), Perm::ReadWrite)?;
        owned.push(f);
        frags.push(f);
    }
    let meta = headroom;
    mem.set_lo(region, meta);
    let ctx = XdpCtx {
        frame: region,
        meta,
        data: meta + meta_len,
        ingress_ifindex: ingress,
        rx_queue_index: rxq,
        egress_ifindex: 0,
        devmap: attach == Some(BPF_XDP_DEVMAP),
        frags,
    };
    let id = mem.set_context(Box::new(ctx))?;
    Ok(Installed { r1: id.base(), ld_abs: None, owned })
}

impl XdpCtx {
    /// The program's target, whose [`super::layout`] decides field accesses.
    fn target(&self) -> Target {
        Target { prog_type: ProgType::Xdp, attach: self.devmap.then_some(BPF_XDP_DEVMAP) }
    }
}

impl ContextAccess for XdpCtx {
    fn size(&self) -> usize {
        XDP_MD_SIZE
    }

    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        allowed(self.target(), Access::Read, off, len)?;
        let base = self.frame.base();
        Ok(match off {
            0 => base + self.data as u64,
            4 => base + self.data_end(mem) as u64,
            8 => base + self.meta as u64,
            // Without an ingress_ifindex in ctx_in the test run's receive queue is the
            // loopback device's (bpf_prog_test_run_xdp), whose ifindex programs read.
            12 => u64::from(if self.ingress_ifindex == 0 { 1 } else { self.ingress_ifindex }),
            16 => u64::from(self.rx_queue_index),
            _ => u64::from(self.egress_ifindex),
        })
    }

    fn store(
        &mut self,
        _mem: &Memory,
        off: usize,
        len: usize,
        _value: u64,
    ) -> Result<(), MemError> {
        allowed(self.target(), Access::Write, off, len)?;
        Err(denied(Access::Write, off, len, "xdp_md is read-only"))
    }

    /// The output starts at `data_meta` (`BPF_PROG_TEST_RUN` returns the metadata too) and
    /// goes on with the fragments.
    fn packet_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        let mut out = mem.bytes(self.frame)[self.meta..].to_vec();
        for &f in &self.frags {
            out.extend_from_slice(mem.bytes(f));
        }
        Some(out)
    }

    fn ctx_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        let mut out = vec![0u8; XDP_MD_SIZE];
        let fields = [
            (self.data - self.meta) as u32,
            (self.data_end(mem) - self.meta) as u32,
            0,
            self.ingress_ifindex,
            self.rx_queue_index,
            self.egress_ifindex,
        ];
        for (i, f) in fields.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&f.to_le_bytes());
        }
        Some(out)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(data: Vec<u8>, ctx: Option<Vec<u8>>) -> (Memory, XdpCtx) {
        let mut mem = Memory::new();
        let mut input = RunInput::data(data);
        input.ctx = ctx;
        install(None, &input, &mut mem).expect("install");
        let x = mem.context().and_then(|c| c.as_any().downcast_ref::<XdpCtx>()).cloned();
        (mem, x.expect("xdp ctx"))
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 + (i >> 8)) as u8).collect()
    }

    #[test]
    fn a_jumbo_frame_is_split_like_bpf_prog_test_run() {
        let data = pattern(9000);
        let (mem, x) = installed(data.clone(), None);
        assert_eq!((x.meta, x.data, x.linear_len(&mem)), (256, 256, 3520));
        let sizes: Vec<usize> = x.frags.iter().map(|&f| mem.bytes(f).len()).collect();
        assert_eq!(sizes, [4096, 1384]);
        assert_eq!((x.frags_size(&mem), x.buff_len(&mem)), (5480, 9000));
        assert_eq!(x.packet_out(&mem).expect("packet"), data);
        assert_eq!(x.buff_bytes(&mem), data);
        // data_end is the end of the linear part.
        let end = x.load(&mem, 4, 4).expect("data_end");
        assert_eq!(end, x.frame.base() + 3776);
        // A frame that fits stays linear.
        let (mem, x) = installed(pattern(3520), None);
        assert_eq!((x.linear_len(&mem), x.frags.len()), (3520, 0));
    }

    #[test]
    fn metadata_comes_out_of_the_headroom_and_data_end_sets_the_linear_part() {
        let mut md = vec![0u8; XDP_MD_SIZE];
        md[0..4].copy_from_slice(&8u32.to_le_bytes());
        md[4..8].copy_from_slice(&9000u32.to_le_bytes());
        let (mem, x) = installed(pattern(9000), Some(md.clone()));
        assert_eq!((x.meta, x.data, x.data_end(&mem)), (248, 256, 3776));
        assert_eq!(x.buff_len(&mem), 8992);
        assert_eq!(x.ctx_out(&mem).expect("ctx")[4..8], 3528u32.to_le_bytes());
        md[0..4].copy_from_slice(&0u32.to_le_bytes());
        md[4..8].copy_from_slice(&100u32.to_le_bytes());
        let (mem, x) = installed(pattern(9000), Some(md.clone()));
        let sizes: Vec<usize> = x.frags.iter().map(|&f| mem.bytes(f).len()).collect();
        assert_eq!((x.linear_len(&mem), sizes), (100, vec![4096, 4096, 708]));
        // Metadata must be a multiple of 4 of at most 32 bytes.
        md[0..4].copy_from_slice(&6u32.to_le_bytes());
        let mut input = RunInput::data(pattern(9000));
        input.ctx = Some(md);
        let err = install(None, &input, &mut Memory::new()).expect_err("bad metadata");
        assert!(matches!(err, CtxError::BadCtx(_)), "{err:?}");
    }

    #[test]
    fn at_most_seventeen_fragments() {
        let (mem, x) = installed(pattern(XDP_MAX_PACKET), None);
        assert_eq!((x.frags.len(), x.buff_len(&mem)), (17, 73152));
        let input = RunInput::data(pattern(XDP_MAX_PACKET + 1));
        let err = install(None, &input, &mut Memory::new()).expect_err("too long");
        assert_eq!(err, CtxError::PacketTooLong { len: 73153, max: 73152 });
        let err = install(None, &RunInput::data(vec![0; 13]), &mut Memory::new());
        assert_eq!(err.expect_err("runt"), CtxError::PacketTooShort { len: 13, min: 14 });
    }

    #[test]
    fn pointers_and_copies_span_the_linear_part_and_the_fragments() {
        let data = pattern(9000);
        let (mut mem, x) = installed(data.clone(), None);
        // In the linear part, inside one fragment, across a boundary, past the end.
        assert_eq!(x.pointer(&mem, 10, 4), Ok(Some(x.frame.base() + 266)));
        assert_eq!(x.pointer(&mem, 3520 + 4096 + 5, 8), Ok(Some(x.frags[1].base() + 5)));
        assert_eq!(x.pointer(&mem, 3516, 8), Ok(None));
        assert_eq!(x.pointer(&mem, 8996, 8), Err(-22));
        assert_eq!(x.pointer(&mem, 0x10000, 1), Err(-14));
        assert_eq!(x.copy_out(&mem, 3516, 8), data[3516..3524]);
        assert_eq!(x.copy_out(&mem, 7610, 12), data[7610..7622]);
        // Clipped at the end of the buffer, as bpf_xdp_copy_buf stops at the last fragment.
        assert_eq!(x.copy_out(&mem, 8996, 8), data[8996..]);
        x.copy_in(&mut mem, 7612, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut want = data.clone();
        want[7612..7620].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(x.packet_out(&mem).expect("packet"), want);
        assert_eq!(mem.bytes(x.frags[0])[4092..], [1, 2, 3, 4]);
        assert_eq!(mem.bytes(x.frags[1])[..4], [5, 6, 7, 8]);
    }
}
