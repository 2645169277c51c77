//! `struct bpf_sk_lookup`: the context of `SEC("sk_lookup")` programs, which pick the socket
//! an incoming connection or datagram goes to. Built from `BPF_PROG_TEST_RUN`'s `ctx_in` with
//! the kernel's checks (`bpf_prog_test_run_sk_lookup`); read-only to the program; `ctx_out`
//! reports the selected socket's cookie.

use std::any::Any;

use super::{CtxError, Installed, Target, allowed, denied, read_field};
use crate::engine::{ProgType, RunInput};
use crate::memory::{Access, ContextAccess, MemError, Memory};
use crate::sock::{SockId, SockView};

/// Size of `struct bpf_sk_lookup`.
pub const SK_LOOKUP_SIZE: usize = super::layout::SK_LOOKUP_SIZE as usize;
/// End of `local_port`: every byte after it must be zero in `ctx_in`.
const LOCAL_PORT_END: usize = 64;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;

/// The lookup a `sk_lookup` program runs for, and the socket it selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkLookupCtx {
    /// The context bytes as the program reads them (`sk`/`cookie` aside).
    pub fields: [u8; SK_LOOKUP_SIZE],
    /// The socket `bpf_sk_assign` selected.
    pub selected: Option<SockId>,
    /// `BPF_SK_LOOKUP_F_NO_REUSEPORT` was given with the selection.
    pub no_reuseport: bool,
}

impl SkLookupCtx {
    /// `family`.
    pub fn family(&self) -> u32 {
        read_field(&self.fields, 8, 4) as u32
    }

    /// `protocol`.
    pub fn protocol(&self) -> u32 {
        read_field(&self.fields, 12, 4) as u32
    }
}

/// Installs the context from `ctx_in` (no packet; `sk` must be 0 and everything after
/// `local_port` zero; `local_port` at most 65535; family IPv4 or IPv6).
pub(crate) fn install(input: &RunInput, mem: &mut Memory) -> Result<Installed, CtxError> {
    if !input.data.is_empty() {
        return Err(CtxError::BadCtx("sk_lookup programs take no packet data".into()));
    }
    let ctx = input.ctx.as_deref().unwrap_or_default();
    if ctx.len() > SK_LOOKUP_SIZE && ctx[SK_LOOKUP_SIZE..].iter().any(|&b| b != 0) {
        return Err(CtxError::BadCtx("bytes past struct bpf_sk_lookup must be zero".into()));
    }
    let mut fields = [0u8; SK_LOOKUP_SIZE];
    let n = ctx.len().min(SK_LOOKUP_SIZE);
    fields[..n].copy_from_slice(&ctx[..n]);
    if fields[..8].iter().any(|&b| b != 0) {
        return Err(CtxError::BadCtx("sk must be 0".into()));
    }
    if fields[LOCAL_PORT_END..].iter().any(|&b| b != 0) {
        return Err(CtxError::BadCtx("bytes after local_port must be zero".into()));
    }
    if read_field(&fields, 60, 4) > u64::from(u16::MAX) {
        return Err(CtxError::BadCtx("local_port above 65535 (ERANGE)".into()));
    }
    // The kernel keeps family and protocol as 16-bit values, and the ports as 16 bits.
    for off in [8, 12] {
        let v = read_field(&fields, off, 2);
        fields[off..off + 4].copy_from_slice(&(v as u32).to_le_bytes());
    }
    fields[38..40].fill(0);
    let c = SkLookupCtx { fields, selected: None, no_reuseport: false };
    let family = c.family();
    if family != AF_INET && family != AF_INET6 {
        return Err(CtxError::BadCtx(format!("address family {family} (EAFNOSUPPORT)")));
    }
    let id = mem.set_context(Box::new(c))?;
    Ok(Installed { r1: id.base(), ld_abs: None, owned: Vec::new() })
}

/// The sk_lookup target, whose [`super::layout`] decides field accesses.
const SK_LOOKUP: Target =
    Target { prog_type: ProgType::SkLookup, attach: Some(super::layout::attach::SK_LOOKUP) };

impl ContextAccess for SkLookupCtx {
    fn size(&self) -> usize {
        SK_LOOKUP_SIZE
    }

    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        allowed(SK_LOOKUP, Access::Read, off, len)?;
        if off == 0 {
            return Ok(self
                .selected
                .filter(|id| SockView::read(mem, *id).is_some())
                .map_or(0, SockId::addr));
        }
        // A 4-byte load of remote_port gives the 16-bit port, zero-extended.
        Ok(read_field(&self.fields, off, if off == 36 { 2 } else { len }))
    }

    fn store(
        &mut self,
        _mem: &Memory,
        off: usize,
        len: usize,
        _value: u64,
    ) -> Result<(), MemError> {
        allowed(SK_LOOKUP, Access::Write, off, len)?;
        Err(denied(Access::Write, off, len, "bpf_sk_lookup is read-only"))
    }

    fn packet_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
        None
    }

    /// `ctx_in` with `cookie` set to the selected socket's cookie (0 when none).
    fn ctx_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        let mut out = self.fields.to_vec();
        let cookie = self.selected.and_then(|id| SockView::read(mem, id)).map_or(0, |v| v.cookie);
        out[..8].copy_from_slice(&cookie.to_le_bytes());
        Some(out)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
