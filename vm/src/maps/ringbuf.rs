//! `BPF_MAP_TYPE_RINGBUF` (kernel/bpf/ringbuf.c): a multi-producer, single-consumer byte ring
//! of `max_entries` bytes (a power-of-2 multiple of the page size). Every record takes an
//! 8-byte header plus its data, rounded up to 8 bytes, and the producer, consumer and pending
//! positions advance exactly as in the kernel, so `bpf_ringbuf_query` gives the kernel's
//! numbers and a reservation fails exactly when the kernel's would.
//!
//! Only records still held take memory (the ring is never allocated up front). Reserved
//! records are [`RegionKind::RingbufRecord`] regions; submitting or discarding one frees the
//! region, so the program cannot touch it afterwards (the verifier's rule).

use std::collections::VecDeque;

use super::common::BPF_F_NUMA_NODE;
use super::{Map, MapError};
use crate::memory::{Memory, Perm, RegionId, RegionKind};
use crate::spec::MapSpec;

/// Size of a record's header (`BPF_RINGBUF_HDR_SZ`).
pub const BPF_RINGBUF_HDR_SZ: u64 = 8;
/// Largest record (`RINGBUF_MAX_RECORD_SZ`).
const MAX_RECORD_SZ: u64 = u32::MAX as u64 / 4;
/// The page size max_entries must be a multiple of.
const PAGE_SIZE: u32 = 4096;
/// `BPF_RB_NO_WAKEUP`.
pub(crate) const BPF_RB_NO_WAKEUP: u64 = 1;
/// `BPF_RB_FORCE_WAKEUP`.
pub(crate) const BPF_RB_FORCE_WAKEUP: u64 = 2;

#[derive(Debug)]
enum State {
    /// Reserved, being written through this region.
    Busy(RegionId),
    /// Submitted.
    Committed(Vec<u8>),
    /// Discarded: the consumer skips it.
    Discarded,
}

#[derive(Debug)]
struct Record {
    /// Producer position of the header.
    pos: u64,
    /// Data length (without header and padding).
    size: u64,
    state: State,
}

impl Record {
    fn total(&self) -> u64 {
        (self.size + BPF_RINGBUF_HDR_SZ).div_ceil(8) * 8
    }
}

/// A ring buffer.
#[derive(Debug)]
pub struct RingBuf {
    spec: MapSpec,
    mask: u64,
    consumer_pos: u64,
    producer_pos: u64,
    pending_pos: u64,
    /// Every record between the consumer and producer positions, in order.
    records: VecDeque<Record>,
    wakeups: u64,
}

impl RingBuf {
    /// Creates an empty ring, with `ringbuf_map_alloc`'s rules.
    pub fn new(spec: &MapSpec) -> Result<RingBuf, MapError> {
        if spec.flags & !BPF_F_NUMA_NODE != 0 {
            return Err(MapError::Invalid("ringbuf maps take no flags but BPF_F_NUMA_NODE"));
        }
        if spec.key_size != 0
            || spec.value_size != 0
            || !spec.max_entries.is_power_of_two()
            || !spec.max_entries.is_multiple_of(PAGE_SIZE)
        {
            return Err(MapError::Invalid(
                "ringbuf maps need key_size 0, value_size 0 and a power-of-2 multiple of the \
                 page size as max_entries",
            ));
        }
        Ok(RingBuf {
            spec: spec.clone(),
            mask: u64::from(spec.max_entries) - 1,
            consumer_pos: 0,
            producer_pos: 0,
            pending_pos: 0,
            records: VecDeque::new(),
            wakeups: 0,
        })
    }

    /// `BPF_RB_RING_SIZE`: the data area's size.
    pub fn ring_size(&self) -> u64 {
        self.mask + 1
    }

    /// `BPF_RB_CONS_POS`.
    pub fn consumer_pos(&self) -> u64 {
        self.consumer_pos
    }

    /// `BPF_RB_PROD_POS`.
    pub fn producer_pos(&self) -> u64 {
        self.producer_pos
    }

    /// `BPF_RB_AVAIL_DATA`: bytes between consumer and producer (headers included).
    pub fn avail_data(&self) -> u64 {
        self.producer_pos - self.consumer_pos
    }

    /// How many times a producer woke the consumer up (submits, discards and outputs whose
    /// record the consumer was waiting for, plus forced wakeups).
    pub fn wakeups(&self) -> u64 {
        self.wakeups
    }

    /// `__bpf_ringbuf_reserve`: room for `size` bytes at the producer position, or `None`.
    fn reserve_pos(&mut self, size: u64) -> Option<u64> {
        if size > MAX_RECORD_SZ {
            return None;
        }
        let len = (size + BPF_RINGBUF_HDR_SZ).div_ceil(8) * 8;
        if len > self.ring_size() {
            return None;
        }
        // Skip over records already committed or discarded.
        // Records before the consumer position were all committed or discarded.
        let mut pend = self.pending_pos.max(self.consumer_pos);
        for r in &self.records {
            if r.pos < pend {
                continue;
            }
            if matches!(r.state, State::Busy(_)) {
                break;
            }
            pend = r.pos + r.total();
        }
        self.pending_pos = pend;
        let prod = self.producer_pos;
        let new_prod = prod + len;
        if new_prod - self.consumer_pos > self.mask || new_prod - pend > self.mask {
            return None;
        }
        self.producer_pos = new_prod;
        Some(prod)
    }

    /// Program side: reserves `size` bytes; returns the record's address (`NULL` when full).
    pub fn reserve(&mut self, mem: &mut Memory, size: u64) -> Result<Option<u64>, MapError> {
        let Some(pos) = self.reserve_pos(size) else { return Ok(None) };
        match mem.alloc(RegionKind::RingbufRecord, vec![0; size as usize], Perm::ReadWrite) {
            Ok(region) => {
                self.records.push_back(Record { pos, size, state: State::Busy(region) });
                Ok(Some(region.base()))
            }
            Err(e) => {
                self.producer_pos = pos;
                Err(e.into())
            }
        }
    }

    /// True if `region` is a record reserved from this ring and not yet submitted.
    pub fn owns(&self, region: RegionId) -> bool {
        self.records.iter().any(|r| matches!(r.state, State::Busy(id) if id == region))
    }

    /// `bpf_ringbuf_commit`: submits (or discards) the record in `region`; frees the region.
    /// Returns false if the region is not a reserved record of this ring.
    pub fn commit(
        &mut self,
        mem: &mut Memory,
        region: RegionId,
        flags: u64,
        discard: bool,
    ) -> bool {
        let Some(r) =
            self.records.iter_mut().find(|r| matches!(r.state, State::Busy(id) if id == region))
        else {
            return false;
        };
        r.state = if discard {
            State::Discarded
        } else {
            State::Committed(std::mem::take(mem.bytes_mut(region)))
        };
        let pos = r.pos;
        mem.free(region);
        self.wake(pos, flags);
        true
    }

    fn wake(&mut self, rec_pos: u64, flags: u64) {
        let cons = self.consumer_pos & self.mask;
        if flags & BPF_RB_FORCE_WAKEUP != 0
            || (cons == rec_pos & self.mask && flags & BPF_RB_NO_WAKEUP == 0)
        {
            self.wakeups += 1;
        }
    }

    /// `bpf_ringbuf_output`: copies `data` into a new committed record. `Ok(false)` when the
    /// ring has no room (the helper's `-EAGAIN`).
    pub fn output(&mut self, data: &[u8], flags: u64) -> bool {
        let size = data.len() as u64;
        let Some(pos) = self.reserve_pos(size) else { return false };
        self.records.push_back(Record { pos, size, state: State::Committed(data.to_vec()) });
        self.wake(pos, flags);
        true
    }

    /// User side: the submitted records a consumer would read now, in order, without
    /// consuming them (reading stops at the first record still reserved).
    pub fn pending(&self) -> Vec<&[u8]> {
        let mut out = Vec::new();
        for r in &self.records {
            match &r.state {
                State::Busy(_) => break,
                State::Committed(data) => out.push(data.as_slice()),
                State::Discarded => {}
            }
        }
        out
    }

    /// User side: consumes and returns the submitted records in order, as libbpf's
    /// `ring_buffer__consume` does: discarded records are skipped, and consuming stops at the
    /// first record still reserved. The consumer position advances past what was read.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = self.records.front() {
            if matches!(r.state, State::Busy(_)) {
                break;
            }
            let r = self.records.pop_front().expect("front exists");
            self.consumer_pos = r.pos + r.total();
            if let State::Committed(data) = r.state {
                out.push(data);
            }
        }
        out
    }

    /// User side: empties the ring and sets both positions to `pos` (rounded down to 8), as if
    /// a consumer had read everything up to there. Records still reserved are dropped.
    pub fn reset(&mut self, mem: &mut Memory, pos: u64) {
        for r in self.records.drain(..) {
            if let State::Busy(id) = r.state {
                mem.free(id);
            }
        }
        let pos = pos & !7;
        self.consumer_pos = pos;
        self.producer_pos = pos;
        self.pending_pos = pos;
    }
}

impl Map for RingBuf {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, _: &mut Memory, _: &[u8], _: u32) -> Result<Option<u64>, MapError> {
        Err(MapError::NotSupp)
    }

    fn update(
        &mut self,
        _: &mut Memory,
        _: &[u8],
        _: &[u8],
        _: u64,
        _: u32,
    ) -> Result<(), MapError> {
        Err(MapError::NotSupp)
    }

    fn delete(&mut self, _: &mut Memory, _: &[u8]) -> Result<(), MapError> {
        Err(MapError::NotSupp)
    }

    fn next_key(&self, _: &Memory, _: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::NotSupp)
    }

    fn read(&self, _: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        if !key.is_empty() {
            return Err(MapError::Invalid("ringbuf maps take no key"));
        }
        Err(MapError::NotSupp)
    }

    fn write(&mut self, _: &mut Memory, key: &[u8], _: &[u8], _: u64) -> Result<(), MapError> {
        if !key.is_empty() {
            return Err(MapError::Invalid("ringbuf maps take no key"));
        }
        Err(MapError::NotSupp)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
