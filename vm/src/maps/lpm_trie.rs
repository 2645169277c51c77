//! `BPF_MAP_TYPE_LPM_TRIE` (kernel/bpf/lpm_trie.c): keys are `struct { u32 prefixlen; u8
//! data[] }`, lookups find the longest stored prefix of the key, updates and deletes match
//! exactly. The trie is the kernel's: the same nodes, intermediate nodes and child order, so
//! `get_next_key` walks it in the kernel's post-order (more specific prefixes first).

use super::common::{
    BPF_F_ACCESS_MASK, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, MAX_MAP_BYTES, ValueStore, check_flags,
};
use super::{BPF_EXIST, BPF_NOEXIST, Map, MapError, check_len};
use crate::memory::{Memory, Perm, RegionId};
use crate::spec::MapSpec;

/// Smallest key: the prefix length and one byte of data.
const KEY_SIZE_MIN: u32 = 4 + 1;
/// Largest key: the prefix length and 256 bytes of data.
const KEY_SIZE_MAX: u32 = 4 + 256;

#[derive(Debug)]
struct Node {
    child: [Option<usize>; 2],
    prefixlen: u32,
    /// An intermediate node: no value, exactly two children.
    im: bool,
    data: Vec<u8>,
    value: Option<RegionId>,
}

/// Where a node hangs: the root pointer or a child pointer of a node.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Root,
    Child(usize, usize),
}

/// A longest-prefix-match trie.
#[derive(Debug)]
pub struct LpmTrie {
    spec: MapSpec,
    max_prefixlen: u32,
    nodes: Vec<Option<Node>>,
    free_nodes: Vec<usize>,
    root: Option<usize>,
    n_entries: u32,
    values: ValueStore,
}

/// Bit `index` of `data`, most significant bit of each byte first (`extract_bit`).
fn extract_bit(data: &[u8], index: u32) -> usize {
    usize::from(data[(index / 8) as usize] >> (7 - index % 8) & 1)
}

impl LpmTrie {
    /// Creates an empty trie, with `trie_alloc`'s rules (`BPF_F_NO_PREALLOC` is required).
    pub fn new(spec: &MapSpec) -> Result<LpmTrie, MapError> {
        if spec.max_entries == 0
            || spec.flags & BPF_F_NO_PREALLOC == 0
            || !(KEY_SIZE_MIN..=KEY_SIZE_MAX).contains(&spec.key_size)
            || spec.value_size == 0
        {
            return Err(MapError::Invalid(
                "lpm_trie maps need BPF_F_NO_PREALLOC, key_size 5..=260, value_size > 0, \
                 max_entries > 0",
            ));
        }
        check_flags(spec.flags, BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)?;
        let data_size = spec.key_size as usize - 4;
        Ok(LpmTrie {
            spec: spec.clone(),
            max_prefixlen: data_size as u32 * 8,
            nodes: Vec::new(),
            free_nodes: Vec::new(),
            root: None,
            n_entries: 0,
            values: ValueStore::new(Perm::ReadWrite),
        })
    }

    /// Number of prefixes stored.
    pub fn len(&self) -> usize {
        self.n_entries as usize
    }

    /// True when no prefix is stored.
    pub fn is_empty(&self) -> bool {
        self.n_entries == 0
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("live trie node")
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("live trie node")
    }

    fn get(&self, slot: Slot) -> Option<usize> {
        match slot {
            Slot::Root => self.root,
            Slot::Child(n, b) => self.node(n).child[b],
        }
    }

    fn set(&mut self, slot: Slot, to: Option<usize>) {
        match slot {
            Slot::Root => self.root = to,
            Slot::Child(n, b) => self.node_mut(n).child[b] = to,
        }
    }

    fn new_node(&mut self, node: Node) -> usize {
        match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    fn free_node(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take()
            && let Some(v) = node.value
        {
            self.values.release(v);
        }
        self.free_nodes.push(i);
    }

    /// Splits a key into prefix length and data.
    fn parse<'k>(&self, key: &'k [u8]) -> Result<(u32, &'k [u8]), MapError> {
        check_len("key", self.spec.key_size as usize, key.len())?;
        Ok((u32::from_le_bytes([key[0], key[1], key[2], key[3]]), &key[4..]))
    }

    /// `longest_prefix_match`: leading bits `node` and the key share, at most both lengths.
    fn match_len(&self, node: &Node, plen: u32, data: &[u8]) -> u32 {
        let limit = node.prefixlen.min(plen);
        let mut len = 0;
        for (a, b) in node.data.iter().zip(data) {
            let same = (a ^ b).leading_zeros();
            len += same;
            if len >= limit {
                return limit;
            }
            if same < 8 {
                break;
            }
        }
        len
    }

    /// The node of the longest prefix of the key (`trie_lookup_elem`).
    fn longest(&self, plen: u32, data: &[u8]) -> Option<usize> {
        if plen > self.max_prefixlen {
            return None;
        }
        let mut found = None;
        let mut cur = self.root;
        while let Some(i) = cur {
            let node = self.node(i);
            let matchlen = self.match_len(node, plen, data);
            if matchlen == self.max_prefixlen {
                found = Some(i);
                break;
            }
            if matchlen < node.prefixlen {
                break;
            }
            if !node.im {
                found = Some(i);
            }
            cur = node.child[extract_bit(data, node.prefixlen)];
        }
        found
    }

    /// Walks towards the key's exact node; returns the path of (slot, node) and the last
    /// match length. The walk stops at the first node that does not lead further.
    fn walk(&self, plen: u32, data: &[u8]) -> (Vec<(Slot, usize)>, u32) {
        let mut path = Vec::new();
        let mut slot = Slot::Root;
        let mut matchlen = 0;
        while let Some(i) = self.get(slot) {
            let node = self.node(i);
            matchlen = self.match_len(node, plen, data);
            path.push((slot, i));
            if node.prefixlen != matchlen || node.prefixlen == plen {
                break;
            }
            slot = Slot::Child(i, extract_bit(data, node.prefixlen));
        }
        (path, matchlen)
    }

    /// `trie_check_add_elem`.
    fn check_add(&mut self, flags: u64) -> Result<(), MapError> {
        if flags == BPF_EXIST {
            return Err(MapError::NotFound);
        }
        if self.n_entries == self.spec.max_entries {
            return Err(MapError::NoSpace);
        }
        if (u64::from(self.n_entries) + 1) * u64::from(self.spec.value_size) > MAX_MAP_BYTES {
            return Err(MapError::NoMem);
        }
        self.n_entries += 1;
        Ok(())
    }

    /// `trie_update_elem`.
    fn insert(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if flags > BPF_EXIST {
            return Err(MapError::Invalid("unknown flags"));
        }
        let (plen, data) = self.parse(key)?;
        check_len("value", self.spec.value_size as usize, value.len())?;
        if plen > self.max_prefixlen {
            return Err(MapError::Invalid("prefixlen above the key's bits"));
        }
        // Walk as far as the key matches, as the kernel does.
        let mut slot = Slot::Root;
        let mut matchlen = 0;
        let mut hit = None;
        while let Some(i) = self.get(slot) {
            let node = self.node(i);
            matchlen = self.match_len(node, plen, data);
            if node.prefixlen != matchlen || node.prefixlen == plen {
                hit = Some(i);
                break;
            }
            slot = Slot::Child(i, extract_bit(data, node.prefixlen));
        }
        let Some(i) = hit else {
            self.check_add(flags)?;
            let region = self.values.alloc(mem, value)?;
            let n = self.leaf(plen, data, region);
            self.set(slot, Some(n));
            return Ok(());
        };
        if self.node(i).prefixlen == matchlen {
            // The exact prefix is there: the kernel puts a new node (with the key's data bytes)
            // in its place; replace its value (or give an intermediate node one).
            if self.node(i).im {
                self.check_add(flags)?;
                let region = self.values.alloc(mem, value)?;
                let node = self.node_mut(i);
                node.im = false;
                node.value = Some(region);
            } else {
                if flags == BPF_NOEXIST {
                    return Err(MapError::Exists);
                }
                match self.node(i).value {
                    Some(region) => mem.contents_mut(region).copy_from_slice(value),
                    None => self.node_mut(i).value = Some(self.values.alloc(mem, value)?),
                }
            }
            self.node_mut(i).data = data.to_vec();
            return Ok(());
        }
        self.check_add(flags)?;
        let region = self.values.alloc(mem, value)?;
        let new = self.leaf(plen, data, region);
        if matchlen == plen {
            // The new prefix covers the node: it becomes its parent.
            let bit = extract_bit(&self.node(i).data, matchlen);
            self.node_mut(new).child[bit] = Some(i);
            self.set(slot, Some(new));
            return Ok(());
        }
        // Both hang below a new intermediate node of their common prefix.
        let mut child = [Some(i), Some(new)];
        if extract_bit(data, matchlen) == 0 {
            child.swap(0, 1);
        }
        let im = Node {
            child,
            prefixlen: matchlen,
            im: true,
            data: self.node(i).data.clone(),
            value: None,
        };
        let im = self.new_node(im);
        self.set(slot, Some(im));
        Ok(())
    }

    fn leaf(&mut self, plen: u32, data: &[u8], region: RegionId) -> usize {
        self.new_node(Node {
            child: [None, None],
            prefixlen: plen,
            im: false,
            data: data.to_vec(),
            value: Some(region),
        })
    }

    /// `trie_delete_elem`.
    fn remove(&mut self, key: &[u8]) -> Result<(), MapError> {
        let (plen, data) = self.parse(key)?;
        if plen > self.max_prefixlen {
            return Err(MapError::Invalid("prefixlen above the key's bits"));
        }
        let (path, matchlen) = self.walk(plen, data);
        let Some(&(trim, i)) = path.last() else { return Err(MapError::NotFound) };
        let node = self.node(i);
        if node.prefixlen != plen || node.prefixlen != matchlen || node.im {
            return Err(MapError::NotFound);
        }
        let [c0, c1] = node.child;
        self.n_entries -= 1;
        if c0.is_some() && c1.is_some() {
            // Two children: the node stays as an intermediate one.
            let node = self.node_mut(i);
            node.im = true;
            if let Some(v) = node.value.take() {
                self.values.release(v);
            }
            return Ok(());
        }
        if path.len() >= 2 && c0.is_none() && c1.is_none() {
            let (trim2, parent) = path[path.len() - 2];
            if self.node(parent).im {
                // Drop the intermediate parent too; its other child takes its place.
                let pc = self.node(parent).child;
                let other = if pc[0] == Some(i) { pc[1] } else { pc[0] };
                self.set(trim2, other);
                self.free_node(parent);
                self.free_node(i);
                return Ok(());
            }
        }
        self.set(trim, c0.or(c1));
        self.free_node(i);
        Ok(())
    }

    fn key_of(&self, i: usize) -> Vec<u8> {
        let node = self.node(i);
        let mut key = node.prefixlen.to_le_bytes().to_vec();
        key.extend_from_slice(&node.data);
        key
    }

    /// The first node in post-order below `from`: the leftmost leaf (`find_leftmost`).
    fn leftmost(&self, from: usize) -> usize {
        let mut next = from;
        let mut cur = Some(from);
        while let Some(i) = cur {
            let node = self.node(i);
            if node.im {
                cur = node.child[0];
            } else {
                next = i;
                cur = node.child[0].or(node.child[1]);
            }
        }
        next
    }
}

impl Map for LpmTrie {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, _: &mut Memory, key: &[u8], _: u32) -> Result<Option<u64>, MapError> {
        let (plen, data) = self.parse(key)?;
        Ok(self.longest(plen, data).and_then(|i| self.node(i).value).map(RegionId::base))
    }

    fn update(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
        _: u32,
    ) -> Result<(), MapError> {
        self.insert(mem, key, value, flags)
    }

    fn delete(&mut self, _: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        self.remove(key)
    }

    /// `trie_get_next_key`: post-order; an unknown key (or none) starts at the leftmost node.
    fn next_key(&self, _: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let Some(root) = self.root else { return Ok(None) };
        let key = match key {
            Some(k) => Some(self.parse(k)?),
            None => None,
        };
        let Some((plen, data)) = key.filter(|&(plen, _)| plen <= self.max_prefixlen) else {
            return Ok(Some(self.key_of(self.leftmost(root))));
        };
        let (path, matchlen) = self.walk(plen, data);
        let found = path.last().is_some_and(|&(_, i)| {
            let node = self.node(i);
            node.prefixlen == plen && node.prefixlen == matchlen && !node.im
        });
        if !found {
            return Ok(Some(self.key_of(self.leftmost(root))));
        }
        let mut k = path.len() - 1;
        let mut node = path[k].1;
        while k > 0 {
            let parent = path[k - 1].1;
            let p = self.node(parent);
            if p.child[0] == Some(node)
                && let Some(right) = p.child[1]
            {
                return Ok(Some(self.key_of(self.leftmost(right))));
            }
            if !p.im {
                return Ok(Some(self.key_of(parent)));
            }
            node = parent;
            k -= 1;
        }
        Ok(None)
    }

    /// The syscall's lookup is the same longest-prefix match as the program's.
    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let (plen, data) = self.parse(key)?;
        let region = self.longest(plen, data).and_then(|i| self.node(i).value);
        Ok(region.map(|r| mem.bytes(r).to_vec()))
    }

    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        self.insert(mem, key, value, flags)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
