//! Running loaded objects on any engine: what libbpf does after loading (initial values of
//! program arrays and maps of maps) and reading map state back for comparison.

use bpflab_loader::Object;
use bpflab_vm::{EngineError, Loaded, MapType};

/// Writes the `.values = { [i] = &x }` entries of program arrays and maps of maps into the
/// loaded maps, as libbpf does when it loads an object. Program and map references become
/// indices, which every engine's map interface takes for these map types.
pub fn apply_initial_values(obj: &Object, loaded: &mut dyn Loaded) -> Result<(), EngineError> {
    for (map, info) in obj.maps.iter().enumerate() {
        for init in &info.initial_values {
            let target = if init.is_program {
                obj.collection.programs.iter().position(|p| p.name == init.target)
            } else {
                obj.collection.maps.iter().position(|m| m.name == init.target)
            };
            let target = target.ok_or_else(|| EngineError::Unsupported {
                engine: "loader",
                what: format!(
                    "initial value {:?} of map {:?}: no such program or map",
                    init.target, info.name
                ),
            })?;
            let value = (target as u32).to_le_bytes();
            loaded.map_update(map, &init.slot.to_le_bytes(), &value, 0)?;
        }
    }
    Ok(())
}

/// A map's entries as `(key, value)` pairs, sorted by key.
pub type MapDump = Vec<(Vec<u8>, Vec<u8>)>;

/// Whether user space can list a map's entries through `bpf(2)`: the kernel refuses
/// iteration or lookup for queues, stacks, ring buffers, perf event arrays and xsk maps.
pub fn dumpable(map_type: MapType) -> bool {
    !matches!(
        map_type,
        MapType::Queue
            | MapType::Stack
            | MapType::Ringbuf
            | MapType::UserRingbuf
            | MapType::PerfEventArray
            | MapType::Xskmap
            // The kernel has no get_next_key for local storage and arenas (EOPNOTSUPP).
            | MapType::TaskStorage
            | MapType::SkStorage
            | MapType::InodeStorage
            | MapType::CgrpStorage
            | MapType::Arena
    )
}

/// Every map's entries, sorted by key, in collection order (empty for maps that are not
/// [`dumpable`]).
pub fn dump_maps(obj: &Object, loaded: &mut dyn Loaded) -> Result<Vec<MapDump>, EngineError> {
    let mut out = Vec::with_capacity(obj.collection.maps.len());
    for (map, spec) in obj.collection.maps.iter().enumerate() {
        if !dumpable(spec.map_type) {
            out.push(Vec::new());
            continue;
        }
        let mut keys = loaded.map_keys(map)?;
        keys.sort();
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = loaded.map_lookup(map, &key)? {
                entries.push((key, value));
            }
        }
        out.push(entries);
    }
    Ok(out)
}
