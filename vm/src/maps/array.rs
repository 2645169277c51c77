//! `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY`: fixed `u32`-indexed slots, all present
//! and zero-initialised; elements cannot be deleted.

use super::{BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, Map, MapError, check_len, percpu_stride};
use crate::memory::{Memory, Perm, RegionId, RegionKind};
use crate::spec::{MapSpec, MapType};

/// Largest number of element slots (`max_entries * ncpus`) an array map may simulate.
pub const MAX_ARRAY_SLOTS: u64 = 1 << 22;

/// `BPF_F_RDONLY_PROG`: programs may only read the map.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// An array or per-CPU array; each element (per CPU) is its own region, created on first use.
#[derive(Debug)]
pub struct ArrayMap {
    spec: MapSpec,
    ncpus: u32,
    /// Region of element `i` on CPU `c` at `i * ncpus + c`.
    slots: Vec<Option<RegionId>>,
    perm: Perm,
}

impl ArrayMap {
    /// Creates the map; global-data maps get their initial bytes.
    pub fn new(spec: &MapSpec, mem: &mut Memory, ncpus: u32) -> Result<ArrayMap, MapError> {
        if spec.key_size != 4 || spec.value_size == 0 || spec.max_entries == 0 {
            return Err(MapError::Invalid(
                "array maps need key_size 4, value_size > 0, max_entries > 0",
            ));
        }
        let ncpus = if spec.map_type == MapType::PercpuArray { ncpus.max(1) } else { 1 };
        let slots = u64::from(spec.max_entries) * u64::from(ncpus);
        if slots > MAX_ARRAY_SLOTS {
            return Err(MapError::NoMem);
        }
        let perm = if spec.flags & BPF_F_RDONLY_PROG != 0
            || matches!(spec.data, Some((crate::spec::DataSection::Rodata, _)))
        {
            Perm::ReadOnly
        } else {
            Perm::ReadWrite
        };
        let mut map =
            ArrayMap { spec: spec.clone(), ncpus, slots: vec![None; slots as usize], perm };
        if let Some((_, bytes)) = &spec.data {
            let mut value = bytes.clone();
            value.resize(spec.value_size as usize, 0);
            let id = mem.alloc(RegionKind::MapValue, value, map.perm)?;
            map.slots[0] = Some(id);
        }
        Ok(map)
    }

    fn index(&self, key: &[u8]) -> Result<Option<u32>, MapError> {
        check_len("key", 4, key.len())?;
        let idx = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
        Ok((idx < self.spec.max_entries).then_some(idx))
    }

    /// The region of element `idx` on `cpu`, created zeroed if new.
    fn slot(&mut self, mem: &mut Memory, idx: u32, cpu: u32) -> Result<RegionId, MapError> {
        let at = idx as usize * self.ncpus as usize + (cpu % self.ncpus) as usize;
        if let Some(id) = self.slots[at] {
            return Ok(id);
        }
        let id =
            mem.alloc(RegionKind::MapValue, vec![0; self.spec.value_size as usize], self.perm)?;
        self.slots[at] = Some(id);
        Ok(id)
    }

    fn check_flags(flags: u64) -> Result<(), MapError> {
        match flags & !BPF_F_LOCK {
            _ if flags > (BPF_EXIST | BPF_F_LOCK) => Err(MapError::Invalid("unknown flags")),
            BPF_NOEXIST => Err(MapError::Exists),
            _ => Ok(()),
        }
    }

    fn write_slot(
        &mut self,
        mem: &mut Memory,
        idx: u32,
        cpu: u32,
        value: &[u8],
    ) -> Result<(), MapError> {
        let id = self.slot(mem, idx, cpu)?;
        let bytes = mem.bytes_mut(id);
        bytes.clear();
        bytes.extend_from_slice(value);
        Ok(())
    }
}

impl Map for ArrayMap {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn lookup(&mut self, mem: &mut Memory, key: &[u8], cpu: u32) -> Result<Option<u64>, MapError> {
        match self.index(key)? {
            Some(idx) => Ok(Some(self.slot(mem, idx, cpu)?.base())),
            None => Ok(None),
        }
    }

    fn update(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        Self::check_flags(flags)?;
        check_len("value", self.spec.value_size as usize, value.len())?;
        let idx = self.index(key)?.ok_or(MapError::Full)?;
        self.write_slot(mem, idx, cpu, value)
    }

    fn delete(&mut self, _mem: &mut Memory, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Invalid("array elements cannot be deleted"))
    }

    fn next_key(&self, _mem: &Memory, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let next = match key {
            None => 0,
            Some(k) => match self.index(k)? {
                Some(idx) => idx + 1,
                None => 0,
            },
        };
        Ok((next < self.spec.max_entries).then(|| next.to_le_bytes().to_vec()))
    }

    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let Some(idx) = self.index(key)? else { return Ok(None) };
        let size = self.spec.value_size as usize;
        let percpu = self.spec.map_type == MapType::PercpuArray;
        let stride = if percpu { percpu_stride(self.spec.value_size) } else { size };
        let mut out = vec![0; stride * self.ncpus as usize];
        for cpu in 0..self.ncpus as usize {
            if let Some(id) = self.slots[idx as usize * self.ncpus as usize + cpu] {
                out[cpu * stride..cpu * stride + size].copy_from_slice(mem.bytes(id));
            }
        }
        Ok(Some(out))
    }

    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        Self::check_flags(flags)?;
        let idx = self.index(key)?.ok_or(MapError::Full)?;
        let size = self.spec.value_size as usize;
        if self.spec.map_type != MapType::PercpuArray {
            check_len("value", size, value.len())?;
            return self.write_slot(mem, idx, 0, value);
        }
        let stride = percpu_stride(self.spec.value_size);
        check_len("value", stride * self.ncpus as usize, value.len())?;
        for cpu in 0..self.ncpus {
            let at = cpu as usize * stride;
            self.write_slot(mem, idx, cpu, &value[at..at + size])?;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
