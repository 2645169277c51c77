//! `BPF_MAP_TYPE_QUEUE` and `BPF_MAP_TYPE_STACK` (kernel/bpf/queue_stack_maps.c): keyless maps
//! of up to `max_entries` values. Programs use push/pop/peek; the `bpf(2)` syscall's lookup is
//! a peek, its update a push and its lookup-and-delete a pop. Pushing with `BPF_EXIST` into a
//! full map drops the oldest value, for both kinds.

use std::collections::VecDeque;

use super::common::{BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, MAX_MAP_BYTES, check_flags};
use super::{BPF_EXIST, BPF_NOEXIST, Map, MapError, check_len};
use crate::memory::Memory;
use crate::spec::{MapSpec, MapType};

/// A queue (FIFO) or stack (LIFO).
#[derive(Debug)]
pub struct QueueStack {
    spec: MapSpec,
    stack: bool,
    /// Oldest value first.
    items: VecDeque<Vec<u8>>,
}

impl QueueStack {
    /// Creates an empty queue or stack, with `queue_stack_map_alloc_check`'s rules.
    pub fn new(spec: &MapSpec) -> Result<QueueStack, MapError> {
        if spec.max_entries == 0 || spec.key_size != 0 || spec.value_size == 0 {
            return Err(MapError::Invalid(
                "queue/stack maps need key_size 0, value_size > 0, max_entries > 0",
            ));
        }
        check_flags(spec.flags, BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)?;
        // The kernel allocates (max_entries + 1) values up front; bpflab only as pushed, but
        // refuses a queue it could not hold.
        if (u64::from(spec.max_entries) + 1) * u64::from(spec.value_size) > MAX_MAP_BYTES {
            return Err(MapError::NoMem);
        }
        Ok(QueueStack {
            spec: spec.clone(),
            stack: spec.map_type == MapType::Stack,
            items: VecDeque::new(),
        })
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The values, oldest first (for a stack the last one is the top).
    pub fn values(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(Vec::as_slice)
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    fn next(&self) -> Option<&Vec<u8>> {
        if self.stack { self.items.back() } else { self.items.front() }
    }
}

impl Map for QueueStack {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    /// `queue_stack_map_lookup_elem` returns NULL (the verifier only allows push/pop/peek).
    fn lookup(&mut self, _: &mut Memory, _: &[u8], _: u32) -> Result<Option<u64>, MapError> {
        Ok(None)
    }

    fn update(
        &mut self,
        _: &mut Memory,
        _: &[u8],
        _: &[u8],
        _: u64,
        _: u32,
    ) -> Result<(), MapError> {
        Err(MapError::Invalid("queue/stack maps have no keys"))
    }

    fn delete(&mut self, _: &mut Memory, _: &[u8]) -> Result<(), MapError> {
        Err(MapError::Invalid("queue/stack maps have no keys"))
    }

    fn next_key(&self, _: &Memory, _: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::Invalid("queue/stack maps have no keys"))
    }

    /// The syscall's lookup: a peek (`None` when empty).
    fn read(&self, _: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        if !key.is_empty() {
            return Err(MapError::Invalid("queue/stack maps take no key"));
        }
        Ok(self.next().cloned())
    }

    /// The syscall's update: a push.
    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if !key.is_empty() {
            return Err(MapError::Invalid("queue/stack maps take no key"));
        }
        self.push(mem, value, flags)
    }

    fn push(&mut self, _: &mut Memory, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & BPF_NOEXIST != 0 || flags > BPF_EXIST {
            return Err(MapError::Invalid("push flags must be BPF_ANY or BPF_EXIST"));
        }
        check_len("value", self.spec.value_size as usize, value.len())?;
        if self.items.len() >= self.spec.max_entries as usize {
            if flags & BPF_EXIST == 0 {
                return Err(MapError::Full);
            }
            // The kernel advances the tail: the oldest value goes, for queues and stacks.
            self.items.pop_front();
        }
        self.items.push_back(value.to_vec());
        Ok(())
    }

    fn pop(&mut self, _: &mut Memory) -> Result<Vec<u8>, MapError> {
        let v = if self.stack { self.items.pop_back() } else { self.items.pop_front() };
        v.ok_or(MapError::NotFound)
    }

    fn peek(&self, _: &Memory, _: &[u8]) -> Result<Vec<u8>, MapError> {
        self.next().cloned().ok_or(MapError::NotFound)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
