//! `struct sk_msg_md`: the context of sk_msg programs (`BPF_SK_MSG_VERDICT`), run on each
//! message a socket in a sockmap sends. The run's input gives the socket
//! ([`RunInput::sock`], what `sk` points to and where `family`, the addresses and ports come
//! from) and the message (`data`); without a socket an `sk_msg_md` given as `ctx_in` supplies
//! those fields and `sk` is NULL.
//!
//! The message is a scatterlist, as the kernel's `struct sk_msg`: a list of element lengths
//! over the message bytes. `data`..`data_end` covers the first element
//! (`sk_msg_compute_data_pointers`), or after `bpf_msg_pull_data(start, end)` exactly
//! `[start, end)`; `bpf_msg_push_data` and `bpf_msg_pop_data` restructure the list as the
//! kernel does (split, insert, trim, remove elements, up to `MAX_MSG_FRAGS`), so the window
//! after them is the one the kernel computes. The message starts as elements of up to 32 KiB
//! (one page fragment of `sk_msg_alloc`). Access rules follow `sk_msg_is_valid_access`:
//! read-only; `data`, `data_end` and `sk` as u64, the other fields as u32.

use std::any::Any;

use super::{CtxError, Installed, Target, allowed, denied, write_field};
use crate::engine::{ProgType, RunInput};
use crate::memory::{Access, ContextAccess, MemError, Memory, Perm, RegionId, RegionKind};
use crate::sock::{SockFields, SockId, SockView};

/// `sizeof(struct sk_msg_md)`.
pub const SK_MSG_MD_SIZE: usize = super::layout::SK_MSG_MD_SIZE as usize;
/// `MAX_MSG_FRAGS` (`MAX_SKB_FRAGS`): scatterlist elements of a message.
pub const MAX_MSG_FRAGS: usize = 17;
/// Largest element the simulated `sendmsg` builds (a 32 KiB page fragment).
pub const MSG_FRAG_SIZE: usize = 32768;
/// Largest allocation a msg helper makes (`PAGE_SIZE << MAX_PAGE_ORDER`, 4 MiB): larger ones
/// fail with `-ENOMEM`.
pub const MAX_MSG_ALLOC: usize = 4 << 20;

const EINVAL: i64 = -22;
const ENOMEM: i64 = -12;

/// The sk_msg context of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkMsgCtx {
    /// Packet region holding the message up to `data_end`, accessible from `data`.
    pub region: RegionId,
    /// Offset of `data` in the message.
    pub data: usize,
    /// The message bytes after `data_end`.
    pub rest: Vec<u8>,
    /// Scatterlist element lengths, in order (their sum is the message size).
    pub segs: Vec<usize>,
    /// The socket sending the message.
    pub sock: Option<SockId>,
    /// What `sk` reads as.
    pub sk: u64,
    /// `family`, addresses and ports.
    pub fields: SockFields,
    /// `msg->apply_bytes`.
    pub apply_bytes: u32,
    /// `msg->cork_bytes`.
    pub cork_bytes: u32,
    /// `msg->sk_redir` and `msg->flags`, set by the redirect helpers.
    pub redirect: Option<(SockId, u64)>,
}

/// Builds and installs the context.
pub(crate) fn install(input: &RunInput, mem: &mut Memory) -> Result<Installed, CtxError> {
    let len = input.data.len();
    let max = MAX_MSG_FRAGS * MSG_FRAG_SIZE;
    if len > max {
        return Err(CtxError::PacketTooLong { len, max });
    }
    let mut fields = SockFields::default();
    if let Some(c) = &input.ctx {
        if c.len() != SK_MSG_MD_SIZE {
            return Err(CtxError::BadCtx(format!(
                "sk_msg_md must be {SK_MSG_MD_SIZE} bytes, got {}",
                c.len()
            )));
        }
        fields = SockFields::read(c, 16);
    }
    let mut sk = 0;
    if let Some(id) = input.sock {
        let view = SockView::read(mem, id)
            .ok_or_else(|| CtxError::BadCtx(format!("fd {} is not a socket", id.fd())))?;
        fields = view.fields();
        sk = id.addr();
    }
    let segs: Vec<usize> = input.data.chunks(MSG_FRAG_SIZE).map(<[u8]>::len).collect();
    let end = segs.first().copied().unwrap_or(0);
    let region = mem.alloc(RegionKind::Packet, input.data[..end].to_vec(), Perm::ReadWrite)?;
    let ctx = SkMsgCtx {
        region,
        data: 0,
        rest: input.data[end..].to_vec(),
        segs,
        sock: input.sock,
        sk,
        fields,
        apply_bytes: 0,
        cork_bytes: 0,
        redirect: None,
    };
    let id = mem.set_context(Box::new(ctx))?;
    Ok(Installed { r1: id.base(), ld_abs: None, owned: vec![region] })
}

/// The kernel's walk to the element holding byte `start`: `(index, offset of that element,
/// its length)`, or past the last element `(count, offset of the last, its length)`.
fn find(segs: &[usize], start: usize) -> (usize, usize, usize) {
    let (mut offset, mut l) = (0, 0);
    for (i, &len) in segs.iter().enumerate() {
        offset += l;
        l = len;
        if start < offset + l {
            return (i, offset, l);
        }
    }
    (segs.len(), offset, l)
}

impl SkMsgCtx {
    /// Offset of `data_end` in the message.
    pub fn data_end(&self, mem: &Memory) -> usize {
        mem.bytes(self.region).len()
    }

    /// The message size (`msg->sg.size`).
    pub fn size(&self, mem: &Memory) -> usize {
        self.data_end(mem) + self.rest.len()
    }

    /// The whole message as the program left it.
    pub fn message(&self, mem: &Memory) -> Vec<u8> {
        let mut m = mem.bytes(self.region).to_vec();
        m.extend_from_slice(&self.rest);
        m
    }

    /// Lays the message out again with the window `[data, data_end)`.
    fn relayout(&mut self, mem: &mut Memory, mut msg: Vec<u8>, data: usize, data_end: usize) {
        self.rest = msg.split_off(data_end.min(msg.len()));
        *mem.bytes_mut(self.region) = msg;
        mem.set_lo(self.region, data);
        self.data = data;
    }

    /// The window over the first element (`sk_msg_compute_data_pointers`).
    fn first_window(&self) -> (usize, usize) {
        (0, self.segs.first().copied().unwrap_or(0))
    }

    /// `bpf_msg_pull_data(start, end, flags)`: returns 0 or a negative errno.
    pub fn pull(&mut self, mem: &mut Memory, start: u32, end: u32, flags: u64) -> i64 {
        let (start, end) = (start as usize, end as usize);
        if flags != 0 || end <= start {
            return EINVAL;
        }
        let (first, offset, len) = find(&self.segs, start);
        if start >= offset + len {
            return EINVAL;
        }
        let total = start - offset + (end - start);
        if total > len {
            let mut copy = 0;
            let mut last = first;
            while last < self.segs.len() {
                copy += self.segs[last];
                last += 1;
                if total <= copy {
                    break;
                }
            }
            if total > copy {
                return EINVAL;
            }
            if copy > MAX_MSG_ALLOC {
                return ENOMEM;
            }
            self.segs.splice(first..last, [copy]);
        }
        let msg = self.message(mem);
        self.relayout(mem, msg, start, end);
        0
    }

    /// `bpf_msg_push_data(start, len, flags)`: inserts `len` zero bytes at `start` (the
    /// kernel leaves them uninitialised); returns 0 or a negative errno.
    pub fn push(&mut self, mem: &mut Memory, start: u32, len: u32, flags: u64) -> i64 {
        let (start, len) = (start as usize, len as usize);
        if flags != 0 {
            return EINVAL;
        }
        if len == 0 {
            return 0;
        }
        let (i, offset, l) = find(&self.segs, start);
        if start > offset + l {
            return EINVAL;
        }
        let space = MAX_MSG_FRAGS.saturating_sub(self.segs.len());
        let inside = i < self.segs.len();
        // No free element (or one, when the start splits an element): copy the element and
        // the new bytes into one buffer.
        let copy = if (space == 0 || (space == 1 && start != offset)) && inside { l } else { 0 };
        let merged = if space == 0 && !inside { l } else { copy };
        if merged + len > MAX_MSG_ALLOC {
            return ENOMEM;
        }
        let mut msg = self.message(mem);
        let at = start.min(msg.len());
        msg.splice(at..at, std::iter::repeat_n(0u8, len));
        if copy > 0 {
            self.segs[i] += len;
        } else if !inside {
            if space == 0 {
                // Appending to a full list: the kernel's ring would overflow; merge instead.
                if let Some(last) = self.segs.last_mut() {
                    *last += len;
                }
            } else {
                self.segs.push(len);
            }
        } else if start != offset {
            let a = start - offset;
            self.segs.splice(i..=i, [a, len, l - a]);
        } else {
            self.segs.insert(i, len);
        }
        let (data, end) = self.first_window();
        self.relayout(mem, msg, data, end);
        0
    }

    /// `bpf_msg_pop_data(start, len, flags)`: removes `len` bytes at `start`; returns 0 or a
    /// negative errno.
    pub fn pop(&mut self, mem: &mut Memory, start: u32, len: u32, flags: u64) -> i64 {
        let (start, len) = (start as usize, len as usize);
        if flags != 0 {
            return EINVAL;
        }
        if len == 0 {
            return 0;
        }
        let size = self.size(mem);
        let (mut i, offset, l) = find(&self.segs, start);
        if start >= offset + l || (start as u64 + len as u64) > size as u64 {
            return EINVAL;
        }
        let space = MAX_MSG_FRAGS.saturating_sub(self.segs.len());
        let mut pop = len;
        if start != offset {
            let a = start - offset;
            i += 1;
            if l > pop + a {
                let b = l - pop - a;
                if space > 0 {
                    self.segs.splice(i - 1..i, [a, b]);
                } else if a + b > MAX_MSG_ALLOC {
                    return ENOMEM;
                } else {
                    self.segs[i - 1] = a + b;
                }
                pop = 0;
            } else {
                pop -= l - a;
                self.segs[i - 1] = a;
            }
        }
        while pop > 0 && i < self.segs.len() {
            if pop < self.segs[i] {
                self.segs[i] -= pop;
                pop = 0;
            } else {
                pop -= self.segs[i];
                self.segs.remove(i);
            }
        }
        let mut msg = self.message(mem);
        msg.drain(start..start + len);
        let (data, end) = self.first_window();
        self.relayout(mem, msg, data, end);
        0
    }
}

/// The sk_msg target, whose [`super::layout`] decides field accesses.
const SK_MSG: Target = Target { prog_type: ProgType::SkMsg, attach: None };

impl ContextAccess for SkMsgCtx {
    fn size(&self) -> usize {
        SK_MSG_MD_SIZE
    }

    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        allowed(SK_MSG, Access::Read, off, len)?;
        Ok(match off {
            0 => self.region.base() + self.data as u64,
            8 => self.region.base() + self.data_end(mem) as u64,
            72 => self.sk,
            68 => self.size(mem) as u64,
            _ => u64::from(self.fields.get(off - 16)),
        })
    }

    fn store(
        &mut self,
        _mem: &Memory,
        off: usize,
        len: usize,
        _value: u64,
    ) -> Result<(), MemError> {
        allowed(SK_MSG, Access::Write, off, len)?;
        Err(denied(Access::Write, off, len, "sk_msg_md is read-only"))
    }

    fn packet_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        Some(self.message(mem))
    }

    fn ctx_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        let mut out = vec![0u8; SK_MSG_MD_SIZE];
        write_field(&mut out, 0, 8, self.data as u64);
        write_field(&mut out, 8, 8, self.data_end(mem) as u64);
        self.fields.write(&mut out, 16);
        write_field(&mut out, 68, 4, self.size(mem) as u64);
        Some(out)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
