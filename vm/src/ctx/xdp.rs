//! `struct xdp_md`: the XDP context. Its `data`, `data_end` and `data_meta` fields read as
//! packet pointers; the buffer has the kernel's headroom and tailroom so `bpf_xdp_adjust_head`,
//! `_tail` and `_meta` behave as in `BPF_PROG_TEST_RUN`.

use std::any::Any;

use super::{CtxError, Installed, denied, read_field};
use crate::engine::RunInput;
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
pub const XDP_MD_SIZE: usize = 24;
/// `BPF_XDP_DEVMAP` attach type: programs attached to devmap entries may read `egress_ifindex`.
pub const BPF_XDP_DEVMAP: u32 = 38;

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
}

/// Builds and installs the context; `input.ctx` may hold an `xdp_md` (as BPF_PROG_TEST_RUN's
/// ctx_in) whose `data`/`data_meta` give the metadata length and whose ifindex fields are used.
pub(crate) fn install(
    attach: Option<u32>,
    input: &RunInput,
    mem: &mut Memory,
) -> Result<Installed, CtxError> {
    let len = input.data.len();
    let max = XDP_FRAME_SIZE - SKB_SHARED_INFO - XDP_PACKET_HEADROOM;
    if len < 14 {
        return Err(CtxError::PacketTooShort { len, min: 14 });
    }
    if len > max {
        return Err(CtxError::PacketTooLong { len, max });
    }
    let (mut ingress, mut rxq, mut meta_len) = (0, 0, 0);
    if let Some(ctx) = &input.ctx {
        if ctx.len() != XDP_MD_SIZE {
            return Err(CtxError::BadCtx(format!(
                "xdp_md must be {XDP_MD_SIZE} bytes, got {}",
                ctx.len()
            )));
        }
        let field = |off| read_field(ctx, off, 4) as u32;
        // As in the kernel's xdp_convert_md_to_buff: data_meta must be 0, data the meta length.
        if field(8) != 0 || field(4) as usize != len {
            return Err(CtxError::BadCtx(
                "data_meta must be 0 and data_end the packet length".into(),
            ));
        }
        meta_len = field(0) as usize;
        if meta_len > len {
            return Err(CtxError::BadCtx("metadata longer than the packet".into()));
        }
        ingress = field(12);
        rxq = field(16);
    }
    let mut frame = vec![0; XDP_PACKET_HEADROOM];
    frame.extend_from_slice(&input.data);
    let region = mem.alloc(RegionKind::Packet, frame, Perm::ReadWrite)?;
    let data = XDP_PACKET_HEADROOM + meta_len;
    let meta = XDP_PACKET_HEADROOM;
    mem.set_lo(region, meta);
    let ctx = XdpCtx {
        frame: region,
        meta,
        data,
        ingress_ifindex: ingress,
        rx_queue_index: rxq,
        egress_ifindex: 0,
        devmap: attach == Some(BPF_XDP_DEVMAP),
    };
    let id = mem.set_context(Box::new(ctx))?;
    Ok(Installed { r1: id.base(), ld_abs: None, owned: vec![region] })
}

impl ContextAccess for XdpCtx {
    fn size(&self) -> usize {
        XDP_MD_SIZE
    }

    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        if len != 4 || !off.is_multiple_of(4) {
            return Err(denied(Access::Read, off, len, "xdp_md fields are read as u32"));
        }
        let base = self.frame.base();
        Ok(match off {
            0 => base + self.data as u64,
            4 => base + self.data_end(mem) as u64,
            8 => base + self.meta as u64,
            12 => u64::from(self.ingress_ifindex),
            16 => u64::from(self.rx_queue_index),
            20 if self.devmap => u64::from(self.egress_ifindex),
            20 => {
                return Err(denied(
                    Access::Read,
                    off,
                    len,
                    "egress_ifindex needs a devmap program",
                ));
            }
            _ => return Err(denied(Access::Read, off, len, "past the end of xdp_md")),
        })
    }

    fn store(
        &mut self,
        _mem: &Memory,
        off: usize,
        len: usize,
        _value: u64,
    ) -> Result<(), MemError> {
        Err(denied(Access::Write, off, len, "xdp_md is read-only"))
    }

    /// The output starts at `data_meta`: `BPF_PROG_TEST_RUN` returns the metadata too.
    fn packet_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        Some(mem.bytes(self.frame)[self.meta..].to_vec())
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
