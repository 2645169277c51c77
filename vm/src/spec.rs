//! Specifications of maps and program collections, as a loader produces them and every
//! engine consumes them (no kernel or runtime state here).

use crate::engine::Program;

/// The kernel's map types (`enum bpf_map_type`), with their numeric ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MapType {
    /// BPF_MAP_TYPE_HASH.
    Hash = 1,
    /// BPF_MAP_TYPE_ARRAY.
    Array = 2,
    /// BPF_MAP_TYPE_PROG_ARRAY.
    ProgArray = 3,
    /// BPF_MAP_TYPE_PERF_EVENT_ARRAY.
    PerfEventArray = 4,
    /// BPF_MAP_TYPE_PERCPU_HASH.
    PercpuHash = 5,
    /// BPF_MAP_TYPE_PERCPU_ARRAY.
    PercpuArray = 6,
    /// BPF_MAP_TYPE_STACK_TRACE.
    StackTrace = 7,
    /// BPF_MAP_TYPE_CGROUP_ARRAY.
    CgroupArray = 8,
    /// BPF_MAP_TYPE_LRU_HASH.
    LruHash = 9,
    /// BPF_MAP_TYPE_LRU_PERCPU_HASH.
    LruPercpuHash = 10,
    /// BPF_MAP_TYPE_LPM_TRIE.
    LpmTrie = 11,
    /// BPF_MAP_TYPE_ARRAY_OF_MAPS.
    ArrayOfMaps = 12,
    /// BPF_MAP_TYPE_HASH_OF_MAPS.
    HashOfMaps = 13,
    /// BPF_MAP_TYPE_DEVMAP.
    Devmap = 14,
    /// BPF_MAP_TYPE_SOCKMAP.
    Sockmap = 15,
    /// BPF_MAP_TYPE_CPUMAP.
    Cpumap = 16,
    /// BPF_MAP_TYPE_XSKMAP.
    Xskmap = 17,
    /// BPF_MAP_TYPE_SOCKHASH.
    Sockhash = 18,
    /// BPF_MAP_TYPE_CGROUP_STORAGE.
    CgroupStorage = 19,
    /// BPF_MAP_TYPE_REUSEPORT_SOCKARRAY.
    ReuseportSockarray = 20,
    /// BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE.
    PercpuCgroupStorage = 21,
    /// BPF_MAP_TYPE_QUEUE.
    Queue = 22,
    /// BPF_MAP_TYPE_STACK.
    Stack = 23,
    /// BPF_MAP_TYPE_SK_STORAGE.
    SkStorage = 24,
    /// BPF_MAP_TYPE_DEVMAP_HASH.
    DevmapHash = 25,
    /// BPF_MAP_TYPE_STRUCT_OPS.
    StructOps = 26,
    /// BPF_MAP_TYPE_RINGBUF.
    Ringbuf = 27,
    /// BPF_MAP_TYPE_INODE_STORAGE.
    InodeStorage = 28,
    /// BPF_MAP_TYPE_TASK_STORAGE.
    TaskStorage = 29,
    /// BPF_MAP_TYPE_BLOOM_FILTER.
    BloomFilter = 30,
    /// BPF_MAP_TYPE_USER_RINGBUF.
    UserRingbuf = 31,
    /// BPF_MAP_TYPE_CGRP_STORAGE.
    CgrpStorage = 32,
    /// BPF_MAP_TYPE_ARENA.
    Arena = 33,
}

impl MapType {
    /// Every map type, in id order.
    pub const ALL: &'static [MapType] = &[
        MapType::Hash,
        MapType::Array,
        MapType::ProgArray,
        MapType::PerfEventArray,
        MapType::PercpuHash,
        MapType::PercpuArray,
        MapType::StackTrace,
        MapType::CgroupArray,
        MapType::LruHash,
        MapType::LruPercpuHash,
        MapType::LpmTrie,
        MapType::ArrayOfMaps,
        MapType::HashOfMaps,
        MapType::Devmap,
        MapType::Sockmap,
        MapType::Cpumap,
        MapType::Xskmap,
        MapType::Sockhash,
        MapType::CgroupStorage,
        MapType::ReuseportSockarray,
        MapType::PercpuCgroupStorage,
        MapType::Queue,
        MapType::Stack,
        MapType::SkStorage,
        MapType::DevmapHash,
        MapType::StructOps,
        MapType::Ringbuf,
        MapType::InodeStorage,
        MapType::TaskStorage,
        MapType::BloomFilter,
        MapType::UserRingbuf,
        MapType::CgrpStorage,
        MapType::Arena,
    ];

    /// The kernel's numeric id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The map type with this kernel id.
    pub fn from_id(id: u32) -> Option<MapType> {
        MapType::ALL.iter().copied().find(|t| t.id() == id)
    }

    /// The name libbpf and bpftool print (`hash`, `percpu_array`, `lru_hash`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PerfEventArray => "perf_event_array",
            MapType::PercpuHash => "percpu_hash",
            MapType::PercpuArray => "percpu_array",
            MapType::StackTrace => "stack_trace",
            MapType::CgroupArray => "cgroup_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPercpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::ArrayOfMaps => "array_of_maps",
            MapType::HashOfMaps => "hash_of_maps",
            MapType::Devmap => "devmap",
            MapType::Sockmap => "sockmap",
            MapType::Cpumap => "cpumap",
            MapType::Xskmap => "xskmap",
            MapType::Sockhash => "sockhash",
            MapType::CgroupStorage => "cgroup_storage",
            MapType::ReuseportSockarray => "reuseport_sockarray",
            MapType::PercpuCgroupStorage => "percpu_cgroup_storage",
            MapType::Queue => "queue",
            MapType::Stack => "stack",
            MapType::SkStorage => "sk_storage",
            MapType::DevmapHash => "devmap_hash",
            MapType::StructOps => "struct_ops",
            MapType::Ringbuf => "ringbuf",
            MapType::InodeStorage => "inode_storage",
            MapType::TaskStorage => "task_storage",
            MapType::BloomFilter => "bloom_filter",
            MapType::UserRingbuf => "user_ringbuf",
            MapType::CgrpStorage => "cgrp_storage",
            MapType::Arena => "arena",
        }
    }
}

/// Where a global-data map comes from, when it is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataSection {
    /// `.data` or `.data.*`: initialised, writable.
    Data,
    /// `.rodata` or `.rodata.*`: initialised, frozen (read-only to programs).
    Rodata,
    /// `.bss`: zero-initialised, writable.
    Bss,
}

/// How a map is pinned in bpffs (`LIBBPF_PIN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Pinning {
    /// Not pinned.
    #[default]
    None,
    /// Pinned by name under the default pin path.
    ByName,
}

/// A map as an object file defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// The map's name (the variable name, or `<obj>.data` style names for global data).
    pub name: String,
    /// The map type.
    pub map_type: MapType,
    /// Key size in bytes (0 for queue, stack, ringbuf).
    pub key_size: u32,
    /// Value size in bytes (0 for ringbuf).
    pub value_size: u32,
    /// Maximum number of entries (for ringbuf: the buffer size in bytes).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// bpffs pinning.
    pub pinning: Pinning,
    /// The inner map's template, for array_of_maps and hash_of_maps.
    pub inner: Option<Box<MapSpec>>,
    /// For global data maps: which section, and its initial bytes (length = value_size).
    pub data: Option<(DataSection, Vec<u8>)>,
    /// BTF type id of the key, where BTF describes it.
    pub btf_key_type_id: Option<u32>,
    /// BTF type id of the value, where BTF describes it.
    pub btf_value_type_id: Option<u32>,
}

impl MapSpec {
    /// A map spec with no flags, pinning, inner map, data or BTF.
    pub fn new(
        name: impl Into<String>,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapSpec {
        MapSpec {
            name: name.into(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            pinning: Pinning::None,
            inner: None,
            data: None,
            btf_key_type_id: None,
            btf_value_type_id: None,
        }
    }
}

/// A set of programs and the maps they share, as loaded from one object file. Programs
/// refer to maps by index into [`Collection::maps`] (LD_IMM64 with the `map_idx` and
/// `map_idx_value` pseudo sources).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collection {
    /// The maps, in the order the programs' `map_idx` references use.
    pub maps: Vec<MapSpec>,
    /// The programs, fully linked (subprograms appended, calls and map references relocated).
    pub programs: Vec<Program>,
    /// The object's BTF as `BPF_BTF_LOAD` takes it (fixed up like libbpf's), which the
    /// programs' func/line info and the maps' BTF type ids refer to.
    pub btf: Option<Vec<u8>>,
    /// The kernel functions the programs call (`call` with the kfunc source), by the BTF id
    /// their instructions carry: the loader records each one's name, which engines look
    /// kfuncs up by.
    pub kfuncs: Vec<KfuncRef>,
}

/// A kernel function (kfunc) a program calls, as the loader resolved it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KfuncRef {
    /// The BTF id in the target BTF, which the call instruction's immediate holds.
    pub btf_id: u32,
    /// The function's name (`bpf_dynptr_from_skb`, ...).
    pub name: String,
}

impl Collection {
    /// A collection of one program and no maps.
    pub fn single(program: Program) -> Collection {
        Collection { programs: vec![program], ..Collection::default() }
    }

    /// The program with this name.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The index of the map with this name.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }
}
