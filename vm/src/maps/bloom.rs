//! `BPF_MAP_TYPE_BLOOM_FILTER` (kernel/bpf/bloom_filter.c): push adds a value, peek tests
//! membership (`-ENOENT` when definitely absent). The bit array, its size and the `jhash`
//! hashing are the kernel's, with the hash seed always 0: exact (false positives included)
//! for maps created with `BPF_F_ZERO_SEED`, while the kernel seeds the others randomly.
//! `MapSpec` has no `map_extra`, so the number of hash functions is the default, 5. Only the
//! set bits are stored.

use std::collections::BTreeSet;

use super::common::{BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, BPF_F_ZERO_SEED, check_flags};
use super::{BPF_ANY, Map, MapError, check_len};
use crate::memory::Memory;
use crate::spec::MapSpec;

/// Hash functions when `map_extra` does not say.
const DEFAULT_HASHES: u32 = 5;

/// A bloom filter.
#[derive(Debug)]
pub struct BloomFilter {
    spec: MapSpec,
    nr_hashes: u32,
    mask: u32,
    seed: u32,
    bits: BTreeSet<u32>,
}

fn rol(x: u32, k: u32) -> u32 {
    x.rotate_left(k)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c) ^ rol(*c, 4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ rol(*a, 6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ rol(*b, 8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ rol(*c, 16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ rol(*a, 19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ rol(*b, 4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(rol(*b, 14));
    *a ^= *c;
    *a = a.wrapping_sub(rol(*c, 11));
    *b ^= *a;
    *b = b.wrapping_sub(rol(*a, 25));
    *c ^= *b;
    *c = c.wrapping_sub(rol(*b, 16));
    *a ^= *c;
    *a = a.wrapping_sub(rol(*c, 4));
    *b ^= *a;
    *b = b.wrapping_sub(rol(*a, 14));
    *c ^= *b;
    *c = c.wrapping_sub(rol(*b, 24));
}

const JHASH_INITVAL: u32 = 0xdead_beef;

/// The kernel's `jhash` over bytes.
pub(crate) fn jhash(key: &[u8], initval: u32) -> u32 {
    let mut a = JHASH_INITVAL.wrapping_add(key.len() as u32).wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(u32::from_le_bytes([k[0], k[1], k[2], k[3]]));
        b = b.wrapping_add(u32::from_le_bytes([k[4], k[5], k[6], k[7]]));
        c = c.wrapping_add(u32::from_le_bytes([k[8], k[9], k[10], k[11]]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    let mut tail = [0u8; 12];
    tail[..k.len()].copy_from_slice(k);
    a = a.wrapping_add(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    b = b.wrapping_add(u32::from_le_bytes([tail[4], tail[5], tail[6], tail[7]]));
    c = c.wrapping_add(u32::from_le_bytes([tail[8], tail[9], tail[10], tail[11]]));
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `jhash2` over 32-bit words (native byte order).
pub(crate) fn jhash2(words: &[u32], initval: u32) -> u32 {
    let mut a = JHASH_INITVAL.wrapping_add((words.len() as u32) << 2).wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = words;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        k = &k[3..];
    }
    if k.is_empty() {
        return c;
    }
    c = c.wrapping_add(k.get(2).copied().unwrap_or(0));
    b = b.wrapping_add(k.get(1).copied().unwrap_or(0));
    a = a.wrapping_add(k[0]);
    final_mix(&mut a, &mut b, &mut c);
    c
}

impl BloomFilter {
    /// Creates an empty filter, with `bloom_map_alloc`'s rules and sizing.
    pub fn new(spec: &MapSpec) -> Result<BloomFilter, MapError> {
        if spec.key_size != 0 || spec.value_size == 0 || spec.max_entries == 0 {
            return Err(MapError::Invalid(
                "bloom_filter maps need key_size 0, value_size > 0, max_entries > 0",
            ));
        }
        check_flags(spec.flags, BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | BPF_F_ACCESS_MASK)?;
        let nr_hashes = DEFAULT_HASHES;
        // n * k / ln(2), with 7/5 for 1/ln(2), rounded up to a power of two.
        let nr_bits = spec
            .max_entries
            .checked_mul(nr_hashes)
            .and_then(|n| (n / 5).checked_mul(7))
            .filter(|&n| n <= 1 << 31);
        let mask = match nr_bits {
            None => u32::MAX,
            Some(n) if n <= 64 => 63,
            Some(n) => n.next_power_of_two() - 1,
        };
        Ok(BloomFilter { spec: spec.clone(), nr_hashes, mask, seed: 0, bits: BTreeSet::new() })
    }

    /// Number of bits in the filter's bit array.
    pub fn bit_count(&self) -> u64 {
        u64::from(self.mask) + 1
    }

    /// The set bits, ascending.
    pub fn set_bits(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().copied()
    }

    /// Clears every bit.
    pub fn clear(&mut self) {
        self.bits.clear();
    }

    /// Sets bit `bit` (for restoring a saved filter).
    pub fn set_bit(&mut self, bit: u32) {
        self.bits.insert(bit & self.mask);
    }

    fn hash(&self, value: &[u8], index: u32) -> u32 {
        let seed = self.seed.wrapping_add(index);
        let h = if value.len().is_multiple_of(4) {
            let words: Vec<u32> = value
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect();
            jhash2(&words, seed)
        } else {
            jhash(value, seed)
        };
        h & self.mask
    }

    /// True if `value` may have been pushed.
    pub fn contains(&self, value: &[u8]) -> bool {
        (0..self.nr_hashes).all(|i| self.bits.contains(&self.hash(value, i)))
    }
}

impl Map for BloomFilter {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn delete(&mut self, _: &mut Memory, _: &[u8]) -> Result<(), MapError> {
        Err(self.unsupported())
    }

    fn next_key(&self, _: &Memory, _: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(self.unsupported())
    }

    /// The syscall's lookup is a membership test of a value: use [`Map::peek`].
    fn read(&self, _: &Memory, _: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Err(self.unsupported())
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
            return Err(MapError::Invalid("bloom filters take no key"));
        }
        self.push(mem, value, flags)
    }

    fn push(&mut self, _: &mut Memory, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags != BPF_ANY {
            return Err(MapError::Invalid("bloom filter pushes take BPF_ANY only"));
        }
        check_len("value", self.spec.value_size as usize, value.len())?;
        for i in 0..self.nr_hashes {
            let h = self.hash(value, i);
            self.bits.insert(h);
        }
        Ok(())
    }

    fn pop(&mut self, _: &mut Memory) -> Result<Vec<u8>, MapError> {
        Err(MapError::NotSupp)
    }

    /// Membership: `value` back if it may be in the set, `-ENOENT` if not.
    fn peek(&self, _: &Memory, value: &[u8]) -> Result<Vec<u8>, MapError> {
        check_len("value", self.spec.value_size as usize, value.len())?;
        if self.contains(value) { Ok(value.to_vec()) } else { Err(MapError::NotFound) }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
