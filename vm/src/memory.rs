//! The interpreter's address space: typed regions, every access checked for bounds,
//! permission and alignment.
//!
//! Region `i` lives in the 4 GiB slot `i + 1` of the address space and starts in the middle of
//! it, at `((i + 1) << 32) + 2^31`, so an access a little before or after a region is still
//! attributed to that region (as a negative or too-large offset). Addresses below `1 << 32`
//! (NULL and small integers) map to nothing. A region holds less than 2 GiB.

use std::fmt;

/// Bytes of stack each call frame gets.
pub const STACK_SIZE: usize = 512;
/// Maximum call depth (frames), as in the kernel.
pub const MAX_FRAMES: usize = 8;
/// Offset of a region's first byte within its 4 GiB slot.
const BIAS: u32 = 0x8000_0000;
/// Largest region size.
pub const MAX_REGION: usize = BIAS as usize - 1;

/// What a region holds; decides which errors name it and how it may be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// The stack of call frame `n` (0 = the entry function).
    Stack(u8),
    /// The program's context structure.
    Context,
    /// Packet data between `data` and `data_end`.
    Packet,
    /// Plain input memory (raw mode: r1 points here, r2 holds its length).
    Input,
    /// A map value.
    MapValue,
    /// Read-only data (`.rodata`, helper-returned constants).
    ReadOnly,
    /// Instructions: function addresses (callbacks) point here; not readable as data.
    Code,
    /// A ring buffer record handed out by `bpf_ringbuf_reserve`.
    RingbufRecord,
    /// A simulated kernel object (socket, task, function argument), readable through helpers.
    Kernel,
}

impl fmt::Display for RegionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionKind::Stack(n) => write!(f, "stack of frame {n}"),
            RegionKind::Context => f.write_str("context"),
            RegionKind::Packet => f.write_str("packet"),
            RegionKind::Input => f.write_str("input memory"),
            RegionKind::MapValue => f.write_str("map value"),
            RegionKind::ReadOnly => f.write_str("read-only data"),
            RegionKind::Code => f.write_str("code"),
            RegionKind::RingbufRecord => f.write_str("ring buffer record"),
            RegionKind::Kernel => f.write_str("kernel object"),
        }
    }
}

/// Kind of access, for permission checks and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An atomic read-modify-write.
    Atomic,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Atomic => "atomic",
        })
    }
}

/// Why a memory access was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// The address is in no region (NULL, a scalar, or a freed region).
    #[error("{access} of {len} bytes at {addr:#x}: address is not mapped")]
    Unmapped {
        /// Access kind.
        access: Access,
        /// The address.
        addr: u64,
        /// Access width.
        len: usize,
    },
    /// The access starts or ends outside its region.
    #[error("{access} of {len} bytes at offset {off} of {kind} (size {size}) is out of bounds")]
    OutOfBounds {
        /// Access kind.
        access: Access,
        /// Region accessed.
        kind: RegionKind,
        /// Offset from the region start (negative before it).
        off: i64,
        /// Access width.
        len: usize,
        /// Region size.
        size: usize,
    },
    /// A write to a read-only region.
    #[error("{access} to read-only {kind} at offset {off}")]
    ReadOnly {
        /// Access kind.
        access: Access,
        /// Region accessed.
        kind: RegionKind,
        /// Offset from the region start.
        off: i64,
    },
    /// The region cannot be accessed this way at all (code, kernel objects, a freed region).
    #[error("{access} of {kind} at offset {off} is not allowed")]
    NoAccess {
        /// Access kind.
        access: Access,
        /// Region accessed.
        kind: RegionKind,
        /// Offset from the region start.
        off: i64,
    },
    /// A context field access the kernel would refuse for this program type.
    #[error("invalid context access: {access} of {len} bytes at offset {off} ({reason})")]
    Context {
        /// Access kind.
        access: Access,
        /// Offset into the context structure.
        off: usize,
        /// Access width.
        len: usize,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The address space has no room for another region.
    #[error("too many regions")]
    TooManyRegions,
    /// A region larger than [`MAX_REGION`] was requested.
    #[error("{kind} of {size} bytes exceeds the largest region ({MAX_REGION} bytes)")]
    RegionTooLarge {
        /// What the region was for.
        kind: RegionKind,
        /// Its requested size.
        size: usize,
    },
    /// A misaligned access to a region that requires alignment (stack, atomics).
    #[error("misaligned {access} of {len} bytes at offset {off} of {kind}")]
    Misaligned {
        /// Access kind.
        access: Access,
        /// Region accessed.
        kind: RegionKind,
        /// Offset from the region start.
        off: i64,
        /// Access width.
        len: usize,
    },
}

/// What a region allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Perm {
    /// Loads and stores.
    ReadWrite,
    /// Loads only.
    ReadOnly,
    /// Neither (code, freed regions); helpers may still use it by handle.
    None,
}

/// Field-level access to a context structure. The kernel rewrites context accesses at load
/// time (`convert_ctx_access`); bpflab interprets each one against the program type's rules.
pub trait ContextAccess: fmt::Debug {
    /// Size of the context structure in bytes.
    fn size(&self) -> usize;
    /// Loads `len` bytes at offset `off`; `mem` shows the packet the context refers to.
    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError>;
    /// Stores `len` bytes of `value` at offset `off`.
    fn store(&mut self, mem: &Memory, off: usize, len: usize, value: u64) -> Result<(), MemError>;
    /// The packet as the program left it (from `data` to `data_end`), for packet programs.
    fn packet_out(&self, mem: &Memory) -> Option<Vec<u8>>;
    /// The context structure's bytes as the program left them (`ctx_out` of a test run).
    fn ctx_out(&self, mem: &Memory) -> Option<Vec<u8>>;
    /// The context as `std::any::Any`, for helpers that need the concrete type.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The context as mutable `std::any::Any`.
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// One region of the address space.
#[derive(Clone, Debug)]
struct Region {
    kind: RegionKind,
    perm: Perm,
    /// The kernel requires naturally aligned accesses here (the stack).
    strict_align: bool,
    /// First accessible offset (packet headroom before `data_meta` is not accessible).
    lo: usize,
    data: Vec<u8>,
}

/// One region as compiled code sees it (see [`Memory::raw_regions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRegion {
    /// Host address of the region's byte at offset 0.
    pub ptr: *mut u8,
    /// Size in bytes.
    pub len: usize,
    /// First accessible offset (the packet's `data_meta`).
    pub lo: usize,
    /// Loads are allowed.
    pub readable: bool,
    /// Stores and atomics are allowed.
    pub writable: bool,
    /// Accesses must be naturally aligned (the stack); atomics must be aligned everywhere.
    pub strict_align: bool,
    /// Accesses go through the [`ContextAccess`] hook, not to `ptr`.
    pub is_context: bool,
}

impl Region {
    #[inline]
    fn raw(&mut self) -> RawRegion {
        RawRegion {
            ptr: self.data.as_mut_ptr(),
            len: self.data.len(),
            lo: self.lo,
            readable: self.perm != Perm::None,
            writable: self.perm == Perm::ReadWrite,
            strict_align: self.strict_align,
            is_context: self.kind == RegionKind::Context,
        }
    }
}

/// Handle to a region of a [`Memory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegionId(u32);

impl RegionId {
    /// The stack region of call frame `n`, for a [`Memory`] whose first [`MAX_FRAMES`]
    /// regions are the stacks.
    pub const fn stack(n: usize) -> RegionId {
        RegionId(n as u32)
    }

    /// The region at position `index` of its address space.
    pub const fn from_index(index: u32) -> RegionId {
        RegionId(index)
    }

    /// The region's position in its address space.
    pub const fn index(self) -> u32 {
        self.0
    }

    /// The virtual address of the region's first byte.
    pub const fn base(self) -> u64 {
        ((self.0 as u64 + 1) << 32) + BIAS as u64
    }
}

/// Source of [`Memory::layout`] identities: every address space gets its own.
static NEXT_MEMORY_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An address space: the regions programs can reach, and the context hook.
#[derive(Debug)]
pub struct Memory {
    regions: Vec<Region>,
    /// Regions released by [`Memory::free`], reused by [`Memory::alloc`].
    free: Vec<u32>,
    /// The context region and its access rules, during a run.
    ctx: Option<(RegionId, Box<dyn ContextAccess>)>,
    /// This address space's identity (unique in the process).
    id: u64,
    /// Counts the changes that may change a [`RawRegion`].
    version: u64,
}

impl Default for Memory {
    fn default() -> Memory {
        Memory {
            regions: Vec::new(),
            free: Vec::new(),
            ctx: None,
            id: NEXT_MEMORY_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            version: 0,
        }
    }
}

impl Memory {
    /// The layout of the address space: equal values mean that every [`RawRegion`] is as it
    /// was (no region added, freed, resized, moved or given other access rules since), in
    /// this same address space. Lets compiled code keep what it derived from them.
    #[inline]
    pub fn layout(&self) -> (u64, u64) {
        (self.id, self.version)
    }

    /// An empty address space.
    pub fn new() -> Memory {
        Memory::default()
    }

    /// Adds a region holding `data` at the end of the address space; returns its handle.
    pub fn map(
        &mut self,
        kind: RegionKind,
        data: Vec<u8>,
        writable: bool,
    ) -> Result<RegionId, MemError> {
        let perm = if writable { Perm::ReadWrite } else { Perm::ReadOnly };
        let region = Self::region(kind, data, perm)?;
        if self.regions.len() >= u32::MAX as usize - 1 {
            return Err(MemError::TooManyRegions);
        }
        self.regions.push(region);
        self.version += 1;
        Ok(RegionId(self.regions.len() as u32 - 1))
    }

    /// Adds a region, reusing a freed handle when there is one.
    pub fn alloc(
        &mut self,
        kind: RegionKind,
        data: Vec<u8>,
        perm: Perm,
    ) -> Result<RegionId, MemError> {
        match self.free.pop() {
            Some(i) => {
                self.regions[i as usize] = Self::region(kind, data, perm)?;
                self.version += 1;
                Ok(RegionId(i))
            }
            None => {
                let id = self.map(kind, data, true)?;
                self.regions[id.0 as usize].perm = perm;
                Ok(id)
            }
        }
    }

    /// Adds regions at consecutive handles (the first one's handle is returned), reusing freed
    /// handles when enough adjacent ones are free, else appending them.
    pub fn alloc_adjacent(
        &mut self,
        regions: Vec<(RegionKind, Vec<u8>, Perm)>,
    ) -> Result<RegionId, MemError> {
        let n = regions.len() as u32;
        let mut built = Vec::with_capacity(regions.len());
        for (kind, data, perm) in regions {
            built.push(Self::region(kind, data, perm)?);
        }
        let free: std::collections::BTreeSet<u32> = self.free.iter().copied().collect();
        let start = free.iter().copied().find(|&i| (1..n).all(|k| free.contains(&(i + k))));
        let first = match start {
            Some(first) => {
                self.free.retain(|&i| !(first..first + n).contains(&i));
                for (k, r) in built.into_iter().enumerate() {
                    self.regions[first as usize + k] = r;
                }
                first
            }
            None => {
                if self.regions.len() + built.len() >= u32::MAX as usize - 1 {
                    return Err(MemError::TooManyRegions);
                }
                let first = self.regions.len() as u32;
                self.regions.extend(built);
                first
            }
        };
        self.version += 1;
        Ok(RegionId(first))
    }

    /// Releases a region: its addresses fault from now on and its handle may be reused.
    pub fn free(&mut self, id: RegionId) {
        if let Some(r) = self.regions.get_mut(id.0 as usize) {
            if r.perm == Perm::None && r.data.is_empty() {
                return;
            }
            r.perm = Perm::None;
            r.data = Vec::new();
            self.free.push(id.0);
            self.version += 1;
        }
    }

    fn region(kind: RegionKind, data: Vec<u8>, perm: Perm) -> Result<Region, MemError> {
        if data.len() > MAX_REGION {
            return Err(MemError::RegionTooLarge { kind, size: data.len() });
        }
        let strict_align = matches!(kind, RegionKind::Stack(_));
        Ok(Region { kind, perm, strict_align, lo: 0, data })
    }

    /// Sets the first accessible offset of a region (the packet's `data_meta`).
    pub fn set_lo(&mut self, id: RegionId, lo: usize) {
        if let Some(r) = self.regions.get_mut(id.0 as usize) {
            r.lo = lo;
            self.version += 1;
        }
    }

    /// The first accessible offset of a region.
    pub fn lo(&self, id: RegionId) -> usize {
        self.regions.get(id.0 as usize).map_or(0, |r| r.lo)
    }

    /// The kind of a region.
    pub fn kind(&self, id: RegionId) -> Option<RegionKind> {
        self.regions.get(id.0 as usize).map(|r| r.kind)
    }

    /// Installs the context of a run: a region of `ctx.size()` bytes whose accesses go to `ctx`.
    pub fn set_context(&mut self, ctx: Box<dyn ContextAccess>) -> Result<RegionId, MemError> {
        self.clear_context();
        let id = self.alloc(RegionKind::Context, vec![0; ctx.size()], Perm::ReadWrite)?;
        self.ctx = Some((id, ctx));
        Ok(id)
    }

    /// Removes the context of the last run, returning it.
    pub fn clear_context(&mut self) -> Option<Box<dyn ContextAccess>> {
        let (id, ctx) = self.ctx.take()?;
        self.free(id);
        Some(ctx)
    }

    /// The current context.
    pub fn context(&self) -> Option<&dyn ContextAccess> {
        self.ctx.as_ref().map(|(_, c)| c.as_ref())
    }

    /// The current context, mutable.
    pub fn context_mut(&mut self) -> Option<&mut (dyn ContextAccess + 'static)> {
        self.ctx.as_mut().map(|(_, c)| c.as_mut())
    }

    /// Loads through the context hook.
    #[cold]
    fn ctx_load(&mut self, off: usize, len: usize) -> Result<u64, MemError> {
        let Some((id, ctx)) = self.ctx.take() else {
            return Err(MemError::Context { access: Access::Read, off, len, reason: "no context" });
        };
        let r = ctx.load(self, off, len);
        self.ctx = Some((id, ctx));
        r
    }

    /// Stores through the context hook.
    #[cold]
    fn ctx_store(&mut self, off: usize, len: usize, value: u64) -> Result<(), MemError> {
        let Some((id, mut ctx)) = self.ctx.take() else {
            return Err(MemError::Context {
                access: Access::Write,
                off,
                len,
                reason: "no context",
            });
        };
        let r = ctx.store(self, off, len, value);
        self.ctx = Some((id, ctx));
        r
    }

    /// The handle the next [`Memory::map`] will return.
    pub fn next_id(&self) -> RegionId {
        RegionId(self.regions.len() as u32)
    }

    /// Drops every region from `id` on (they must have been mapped after it).
    pub fn truncate(&mut self, id: RegionId) {
        self.regions.truncate(id.0 as usize);
        self.free.retain(|&i| i < id.0);
        self.version += 1;
    }

    /// Every region by index, with its host pointer and access rules, for engines that compile
    /// accesses (the JIT). A pointer is valid until the memory is next changed (a region added,
    /// freed or resized); the engine refreshes its copy after every helper call.
    pub fn raw_regions(&mut self) -> impl ExactSizeIterator<Item = RawRegion> + '_ {
        self.regions.iter_mut().map(Region::raw)
    }

    /// Region `id` as [`Memory::raw_regions`] shows it, if it exists.
    #[inline]
    pub fn raw_region(&mut self, id: RegionId) -> Option<RawRegion> {
        self.regions.get_mut(id.0 as usize).map(Region::raw)
    }

    /// The bytes of a region.
    pub fn bytes(&self, id: RegionId) -> &[u8] {
        &self.regions[id.0 as usize].data
    }

    /// The bytes of a region, to rewrite in place (the region keeps its size and place, so
    /// the [`layout`](Memory::layout) stays).
    pub fn contents_mut(&mut self, id: RegionId) -> &mut [u8] {
        &mut self.regions[id.0 as usize].data
    }

    /// The bytes of a region, for refilling between runs (counts as a change of the layout:
    /// the caller may resize it).
    pub fn bytes_mut(&mut self, id: RegionId) -> &mut Vec<u8> {
        self.version += 1;
        &mut self.regions[id.0 as usize].data
    }

    /// The region whose slot an address falls in, and the (possibly out-of-range) offset.
    pub fn resolve(&self, addr: u64) -> Option<(RegionId, RegionKind, i64)> {
        let idx = (addr >> 32).checked_sub(1)?;
        let region = self.regions.get(idx as usize)?;
        Some((RegionId(idx as u32), region.kind, signed_off(addr)))
    }

    /// Checks an access of `len` bytes at `addr`; returns the region index and offset.
    #[inline(always)]
    fn check(&self, addr: u64, len: usize, access: Access) -> Result<(usize, usize), MemError> {
        let idx = (addr >> 32).wrapping_sub(1) as usize;
        let Some(region) = self.regions.get(idx) else {
            return Err(MemError::Unmapped { access, addr, len });
        };
        // Below the region start the subtraction wraps to >= 2^31, past any region's size.
        let off = (addr as u32).wrapping_sub(BIAS) as usize;
        let size = region.data.len();
        if off + len > size || off < region.lo {
            let off = signed_off(addr);
            return Err(MemError::OutOfBounds { access, kind: region.kind, off, len, size });
        }
        if region.perm != Perm::ReadWrite {
            Self::perm_error(region, access, off)?;
        }
        if (region.strict_align || access == Access::Atomic) && !off.is_multiple_of(len) {
            return Err(MemError::Misaligned { access, kind: region.kind, off: off as i64, len });
        }
        Ok((idx, off))
    }

    /// Loads a little-endian value of `len` (1, 2, 4 or 8) bytes, zero-extended.
    #[inline(always)]
    pub fn load(&mut self, addr: u64, len: usize) -> Result<u64, MemError> {
        let (idx, off) = self.check(addr, len, Access::Read)?;
        let region = &self.regions[idx];
        if region.kind == RegionKind::Context {
            return self.ctx_load(off, len);
        }
        Ok(read_le(&region.data[off..off + len]))
    }

    /// Stores the low `len` bytes of `value`, little-endian.
    #[inline(always)]
    pub fn store(&mut self, addr: u64, len: usize, value: u64) -> Result<(), MemError> {
        let (idx, off) = self.check(addr, len, Access::Write)?;
        let region = &mut self.regions[idx];
        if region.kind == RegionKind::Context {
            return self.ctx_store(off, len, value);
        }
        write_le(&mut region.data[off..off + len], value);
        Ok(())
    }

    /// Applies `f` to the value at `addr` atomically; returns the old value.
    pub fn atomic(
        &mut self,
        addr: u64,
        len: usize,
        f: impl FnOnce(u64) -> u64,
    ) -> Result<u64, MemError> {
        let (idx, off) = self.check(addr, len, Access::Atomic)?;
        let region = &mut self.regions[idx];
        if region.kind == RegionKind::Context {
            return Err(MemError::Context {
                access: Access::Atomic,
                off,
                len,
                reason: "atomic on context",
            });
        }
        let cell = &mut region.data[off..off + len];
        let old = read_le(cell);
        write_le(cell, f(old));
        Ok(old)
    }

    /// Borrows `len` bytes at `addr` for reading (helpers' memory arguments).
    pub fn slice(&self, addr: u64, len: usize) -> Result<&[u8], MemError> {
        if len == 0 {
            return Ok(&[]);
        }
        let (idx, off) = self.check_span(addr, len, Access::Read)?;
        Ok(&self.regions[idx].data[off..off + len])
    }

    /// Borrows `len` bytes at `addr` for writing (helpers' output arguments).
    pub fn slice_mut(&mut self, addr: u64, len: usize) -> Result<&mut [u8], MemError> {
        if len == 0 {
            return Ok(&mut []);
        }
        let (idx, off) = self.check_span(addr, len, Access::Write)?;
        Ok(&mut self.regions[idx].data[off..off + len])
    }

    /// Like `check`, for spans of any length (no alignment requirement).
    fn check_span(
        &self,
        addr: u64,
        len: usize,
        access: Access,
    ) -> Result<(usize, usize), MemError> {
        let idx = (addr >> 32).wrapping_sub(1) as usize;
        let Some(region) = self.regions.get(idx) else {
            return Err(MemError::Unmapped { access, addr, len });
        };
        let off = (addr as u32).wrapping_sub(BIAS) as usize;
        let size = region.data.len();
        if off.checked_add(len).is_none_or(|end| end > size) || off < region.lo {
            let off = signed_off(addr);
            return Err(MemError::OutOfBounds { access, kind: region.kind, off, len, size });
        }
        if region.perm != Perm::ReadWrite {
            Self::perm_error(region, access, off)?;
        }
        if region.kind == RegionKind::Context {
            // Helpers never take the context as raw memory.
            return Err(MemError::NoAccess { access, kind: region.kind, off: off as i64 });
        }
        Ok((idx, off))
    }

    /// The error for an access a region's permission refuses, or `Ok` for reads of read-only data.
    #[cold]
    fn perm_error(region: &Region, access: Access, off: usize) -> Result<(), MemError> {
        let (kind, off) = (region.kind, off as i64);
        match region.perm {
            Perm::ReadWrite => Ok(()),
            Perm::ReadOnly if access == Access::Read => Ok(()),
            Perm::ReadOnly => Err(MemError::ReadOnly { access, kind, off }),
            Perm::None => Err(MemError::NoAccess { access, kind, off }),
        }
    }
}

/// The offset of `addr` from the start of the region of its slot (negative before it).
fn signed_off(addr: u64) -> i64 {
    i64::from((addr as u32).wrapping_sub(BIAS) as i32)
}

#[inline(always)]
fn read_le(b: &[u8]) -> u64 {
    match b.len() {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_le_bytes([b[0], b[1]])),
        4 => u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
    }
}

#[inline(always)]
fn write_le(b: &mut [u8], v: u64) {
    let bytes = v.to_le_bytes();
    let n = b.len();
    b.copy_from_slice(&bytes[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_load_store_and_bounds() {
        let mut m = Memory::new();
        let s = m.map(RegionKind::Stack(0), vec![0; STACK_SIZE], true).unwrap();
        let top = s.base() + STACK_SIZE as u64;
        m.store(top - 8, 8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(m.load(top - 8, 4).unwrap(), 0x5566_7788);
        assert_eq!(m.load(top - 4, 2).unwrap(), 0x3344);
        assert_eq!(
            m.load(top, 1),
            Err(MemError::OutOfBounds {
                access: Access::Read,
                kind: RegionKind::Stack(0),
                off: 512,
                len: 1,
                size: 512
            })
        );
        assert!(matches!(m.load(top - 6, 4), Err(MemError::Misaligned { off: 506, len: 4, .. })));
        // Just below the region: still this region, at a negative offset.
        assert!(matches!(
            m.store(s.base() - 8, 8, 0),
            Err(MemError::OutOfBounds { kind: RegionKind::Stack(0), off: -8, .. })
        ));
        assert_eq!(m.resolve(s.base() - 8), Some((s, RegionKind::Stack(0), -8)));
    }

    #[test]
    fn null_and_readonly() {
        let mut m = Memory::new();
        let r = m.map(RegionKind::ReadOnly, vec![7; 16], false).unwrap();
        assert_eq!(m.load(r.base() + 3, 1).unwrap(), 7);
        assert_eq!(m.load(0, 8), Err(MemError::Unmapped { access: Access::Read, addr: 0, len: 8 }));
        assert!(matches!(m.store(r.base(), 1, 0), Err(MemError::ReadOnly { .. })));
        // Unaligned reads of non-stack memory are allowed (x86 has efficient unaligned access) ...
        assert_eq!(m.load(r.base() + 1, 8).unwrap(), 0x0707_0707_0707_0707);
        // ... but atomics must be aligned everywhere.
        let w = m.map(RegionKind::Input, vec![0; 16], true).unwrap();
        assert!(matches!(m.atomic(w.base() + 2, 4, |v| v), Err(MemError::Misaligned { .. })));
        assert_eq!(m.atomic(w.base() + 8, 8, |v| v + 5).unwrap(), 0);
        assert_eq!(m.load(w.base() + 8, 8).unwrap(), 5);
    }

    #[test]
    fn spans_do_not_overflow() {
        let mut m = Memory::new();
        let r = m.map(RegionKind::Input, vec![1; 16], true).unwrap();
        assert!(m.slice(r.base() + 8, usize::MAX).is_err());
        assert_eq!(m.slice(r.base() + 8, 8).unwrap(), &[1; 8]);
        assert!(m.slice_mut(r.base() + 9, 8).is_err());
    }

    #[test]
    fn layout_changes_exactly_when_a_raw_region_may() {
        let mut m = Memory::new();
        let l0 = m.layout();
        assert_ne!(Memory::new().layout().0, l0.0, "two address spaces share an identity");
        let r = m.map(RegionKind::Input, vec![0; 16], true).unwrap();
        let l1 = m.layout();
        assert_ne!(l1, l0);
        // Contents and reads do not change the layout.
        m.store(r.base(), 8, 42).unwrap();
        m.load(r.base(), 8).unwrap();
        m.atomic(r.base() + 8, 8, |v| v + 1).unwrap();
        m.slice_mut(r.base(), 4).unwrap()[0] = 1;
        m.contents_mut(r).fill(3);
        let _ = m.raw_region(r);
        assert_eq!(m.layout(), l1);
        // Everything that may move, resize, add or drop a region, or change its rules, does.
        let mut seen = vec![l1];
        let mut step = |m: &mut Memory| {
            let l = m.layout();
            assert!(!seen.contains(&l), "layout {l:?} repeated");
            seen.push(l);
        };
        m.bytes_mut(r).push(0);
        step(&mut m);
        m.set_lo(r, 4);
        step(&mut m);
        m.free(r);
        step(&mut m);
        let a = m.alloc(RegionKind::Input, vec![1; 8], Perm::ReadOnly).unwrap();
        step(&mut m);
        m.truncate(a);
        step(&mut m);
    }
}
