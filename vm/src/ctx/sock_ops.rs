//! `struct bpf_sock_ops`: the context of sockops programs (`BPF_PROG_TYPE_SOCK_OPS`), run by
//! TCP at the callbacks of `enum { BPF_SOCK_OPS_* }` for one socket. The run's input gives the
//! socket ([`RunInput::sock`]) and, as `ctx_in`, the structure with the callback (`op`,
//! `args`) and the TCP counters; the socket fields (family, addresses, ports, state) come from
//! the socket, as the kernel reads them from `sk`. Optional `data` is the packet of the header
//! option callbacks (`skb_data`..`skb_data_end`, read-only).
//!
//! Access rules follow `sock_ops_is_valid_access`, values `sock_ops_convert_ctx_access`: the
//! TCP fields, `bpf_sock_ops_cb_flags` and `sk_txhash` read as 0 unless the socket is a full,
//! locked TCP socket (`is_locked_tcp_sock`: a full socket and an op up to
//! `BPF_SOCK_OPS_WRITE_HDR_OPT_CB`); `sk` reads as NULL unless `is_fullsock`; only `reply` and
//! `sk_txhash` are writable.
//!
//! The layout is Linux 6.18's, 224 bytes with `skb_hwtstamp`; a 216-byte `ctx_in` (headers
//! before that field) is accepted too.

use std::any::Any;

use super::{CtxError, Installed, Target, allowed, denied, read_field, write_field};
use crate::engine::{ProgType, RunInput};
use crate::memory::{Access, ContextAccess, MemError, Memory, Perm, RegionId, RegionKind};
use crate::sock::{SockFields, SockId, SockView};

/// `sizeof(struct bpf_sock_ops)` in Linux 6.18.
pub const BPF_SOCK_OPS_SIZE: usize = super::layout::SOCK_OPS_SIZE as usize;
/// `sizeof(struct bpf_sock_ops)` before `skb_hwtstamp` was added.
pub const BPF_SOCK_OPS_SIZE_OLD: usize = 216;

/// `BPF_SOCK_OPS_VOID`.
pub const BPF_SOCK_OPS_VOID: u32 = 0;
/// `BPF_SOCK_OPS_TIMEOUT_INIT`: return the SYN RTO in `reply`.
pub const BPF_SOCK_OPS_TIMEOUT_INIT: u32 = 1;
/// `BPF_SOCK_OPS_RWND_INIT`: return the initial advertised window in `reply`.
pub const BPF_SOCK_OPS_RWND_INIT: u32 = 2;
/// `BPF_SOCK_OPS_TCP_CONNECT_CB`: right before an active connection starts.
pub const BPF_SOCK_OPS_TCP_CONNECT_CB: u32 = 3;
/// `BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB`: an active connection is established.
pub const BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: u32 = 4;
/// `BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB`: a passive connection is established.
pub const BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: u32 = 5;
/// `BPF_SOCK_OPS_NEEDS_ECN`.
pub const BPF_SOCK_OPS_NEEDS_ECN: u32 = 6;
/// `BPF_SOCK_OPS_BASE_RTT`.
pub const BPF_SOCK_OPS_BASE_RTT: u32 = 7;
/// `BPF_SOCK_OPS_RTO_CB`: `args[0]` retransmits, `args[1]` rto, `args[2]` timed out.
pub const BPF_SOCK_OPS_RTO_CB: u32 = 8;
/// `BPF_SOCK_OPS_RETRANS_CB`.
pub const BPF_SOCK_OPS_RETRANS_CB: u32 = 9;
/// `BPF_SOCK_OPS_STATE_CB`: `args[0]` old state, `args[1]` new state.
pub const BPF_SOCK_OPS_STATE_CB: u32 = 10;
/// `BPF_SOCK_OPS_TCP_LISTEN_CB`: on `listen(2)`.
pub const BPF_SOCK_OPS_TCP_LISTEN_CB: u32 = 11;
/// `BPF_SOCK_OPS_RTT_CB`.
pub const BPF_SOCK_OPS_RTT_CB: u32 = 12;
/// `BPF_SOCK_OPS_PARSE_HDR_OPT_CB`.
pub const BPF_SOCK_OPS_PARSE_HDR_OPT_CB: u32 = 13;
/// `BPF_SOCK_OPS_HDR_OPT_LEN_CB`.
pub const BPF_SOCK_OPS_HDR_OPT_LEN_CB: u32 = 14;
/// `BPF_SOCK_OPS_WRITE_HDR_OPT_CB`: the last op run with the socket locked.
pub const BPF_SOCK_OPS_WRITE_HDR_OPT_CB: u32 = 15;
/// `BPF_SOCK_OPS_TSTAMP_SCHED_CB`.
pub const BPF_SOCK_OPS_TSTAMP_SCHED_CB: u32 = 16;
/// `BPF_SOCK_OPS_TSTAMP_SND_SW_CB`.
pub const BPF_SOCK_OPS_TSTAMP_SND_SW_CB: u32 = 17;
/// `BPF_SOCK_OPS_TSTAMP_SND_HW_CB`.
pub const BPF_SOCK_OPS_TSTAMP_SND_HW_CB: u32 = 18;
/// `BPF_SOCK_OPS_TSTAMP_ACK_CB`.
pub const BPF_SOCK_OPS_TSTAMP_ACK_CB: u32 = 19;
/// `BPF_SOCK_OPS_TSTAMP_SENDMSG_CB`.
pub const BPF_SOCK_OPS_TSTAMP_SENDMSG_CB: u32 = 20;

/// `BPF_SOCK_OPS_RTO_CB_FLAG`.
pub const BPF_SOCK_OPS_RTO_CB_FLAG: u32 = 1 << 0;
/// `BPF_SOCK_OPS_RETRANS_CB_FLAG`.
pub const BPF_SOCK_OPS_RETRANS_CB_FLAG: u32 = 1 << 1;
/// `BPF_SOCK_OPS_STATE_CB_FLAG`.
pub const BPF_SOCK_OPS_STATE_CB_FLAG: u32 = 1 << 2;
/// `BPF_SOCK_OPS_RTT_CB_FLAG`.
pub const BPF_SOCK_OPS_RTT_CB_FLAG: u32 = 1 << 3;

/// Offset of `reply` (`args[0]`).
pub const OFF_REPLY: usize = 4;
/// Offset of `bpf_sock_ops_cb_flags`.
pub const OFF_CB_FLAGS: usize = 84;
/// Offset of `snd_cwnd`.
pub const OFF_SND_CWND: usize = 76;
/// Offset of `snd_ssthresh`.
pub const OFF_SND_SSTHRESH: usize = 96;
/// Offset of `sk_txhash`.
pub const OFF_SK_TXHASH: usize = 164;

/// The sockops context of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockOpsCtx {
    /// The structure's fields (pointer fields unused: see `sk` and `skb`).
    pub raw: Vec<u8>,
    /// The socket the callback runs for.
    pub sock: Option<SockId>,
    /// What `sk` reads as when `is_fullsock` (the socket's `struct bpf_sock`).
    pub sk: u64,
    /// The packet of the callback, if any (read-only).
    pub skb: Option<RegionId>,
}

impl SockOpsCtx {
    /// The callback (`op`).
    pub fn op(&self) -> u32 {
        self.field(0)
    }

    /// `is_fullsock`.
    pub fn is_fullsock(&self) -> bool {
        self.field(72) != 0
    }

    /// `is_locked_tcp_sock`: the TCP fields are readable and the socket helpers usable.
    pub fn is_locked_tcp_sock(&self) -> bool {
        self.is_fullsock() && self.op() <= BPF_SOCK_OPS_WRITE_HDR_OPT_CB
    }

    /// The `u32` field at `off`.
    pub fn field(&self, off: usize) -> u32 {
        read_field(&self.raw, off, 4) as u32
    }

    /// Sets the `u32` field at `off` (helpers: callback flags, window after `bpf_setsockopt`).
    pub fn set_field(&mut self, off: usize, value: u32) {
        write_field(&mut self.raw, off, 4, u64::from(value));
    }
}

/// Builds and installs the context.
pub(crate) fn install(input: &RunInput, mem: &mut Memory) -> Result<Installed, CtxError> {
    let mut raw = vec![0u8; BPF_SOCK_OPS_SIZE];
    match &input.ctx {
        Some(c) if c.len() == BPF_SOCK_OPS_SIZE || c.len() == BPF_SOCK_OPS_SIZE_OLD => {
            raw[..c.len()].copy_from_slice(c);
        }
        Some(c) => {
            return Err(CtxError::BadCtx(format!(
                "bpf_sock_ops must be {BPF_SOCK_OPS_SIZE} (or {BPF_SOCK_OPS_SIZE_OLD}) bytes, got {}",
                c.len()
            )));
        }
        None => write_field(&mut raw, 72, 4, u64::from(input.sock.is_some())),
    }
    raw[184..208].fill(0);
    let mut sk = 0;
    if let Some(id) = input.sock {
        let view = SockView::read(mem, id)
            .ok_or_else(|| CtxError::BadCtx(format!("fd {} is not a socket", id.fd())))?;
        view.fields().write(&mut raw, 20);
        write_field(&mut raw, 88, 4, u64::from(view.state()));
        sk = id.addr();
    }
    let mut owned = Vec::new();
    let mut skb = None;
    if !input.data.is_empty() {
        let region = mem.alloc(RegionKind::Packet, input.data.clone(), Perm::ReadOnly)?;
        if read_field(&raw, 208, 4) == 0 {
            write_field(&mut raw, 208, 4, input.data.len() as u64);
        }
        owned.push(region);
        skb = Some(region);
    }
    let ctx = SockOpsCtx { raw, sock: input.sock, sk, skb };
    let id = mem.set_context(Box::new(ctx))?;
    Ok(Installed { r1: id.base(), ld_abs: None, owned })
}

/// The sockops target, whose [`super::layout`] decides field accesses.
const SOCK_OPS: Target = Target { prog_type: ProgType::SockOps, attach: None };

/// True for the fields `SOCK_OPS_GET_FIELD` guards with `is_locked_tcp_sock`.
fn locked_field(off: usize) -> bool {
    matches!(off, 76..=87 | 96..=183)
}

impl ContextAccess for SockOpsCtx {
    fn size(&self) -> usize {
        BPF_SOCK_OPS_SIZE
    }

    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        allowed(SOCK_OPS, Access::Read, off, len)?;
        let skb_len = |r: RegionId| mem.bytes(r).len() as u64;
        Ok(match off {
            184 if self.is_fullsock() => self.sk,
            184 => 0,
            192 => self.skb.map_or(0, RegionId::base),
            200 => self.skb.map_or(0, |r| r.base() + skb_len(r)),
            208 | 212 | 216 if self.skb.is_none() => 0,
            _ if locked_field(off) && !self.is_locked_tcp_sock() => 0,
            _ => read_field(&self.raw, off, len),
        })
    }

    fn store(&mut self, _mem: &Memory, off: usize, len: usize, value: u64) -> Result<(), MemError> {
        allowed(SOCK_OPS, Access::Write, off, len)?;
        match (off, len) {
            (OFF_REPLY, 4) => write_field(&mut self.raw, off, 4, value),
            (OFF_SK_TXHASH, 4) => {
                // SOCK_OPS_SET_FIELD skips the store unless the socket is locked.
                if self.is_locked_tcp_sock() {
                    write_field(&mut self.raw, off, 4, value);
                }
            }
            _ => {
                return Err(denied(
                    Access::Write,
                    off,
                    len,
                    "only reply and sk_txhash are writable",
                ));
            }
        }
        Ok(())
    }

    fn packet_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        self.skb.map(|r| mem.bytes(r).to_vec())
    }

    fn ctx_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
        Some(self.raw.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The socket fields of a `struct bpf_sock_ops`'s bytes.
pub fn sock_fields(raw: &[u8]) -> SockFields {
    SockFields::read(raw, 20)
}
