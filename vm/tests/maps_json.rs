//! JSON export and import of map state: round trips over every map type, and typed errors.

use bpflab_vm::maps::json::{self, JsonErrorKind};
use bpflab_vm::maps::{BPF_ANY, MapError, PerfEventArray, RingBuf, set_inner_map};
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::world::World;
use serde_json::{Value, json};

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn specs() -> Vec<MapSpec> {
    let mut lpm = MapSpec::new("lpm", MapType::LpmTrie, 8, 4, 16);
    lpm.flags = 1;
    let mut outer = MapSpec::new("outer", MapType::ArrayOfMaps, 4, 4, 2);
    outer.inner = Some(Box::new(MapSpec::new("t", MapType::Hash, 4, 8, 4)));
    vec![
        MapSpec::new("arr", MapType::Array, 4, 8, 3),
        MapSpec::new("hash", MapType::Hash, 4, 8, 8),
        MapSpec::new("pcpu", MapType::PercpuHash, 4, 4, 8),
        lpm,
        MapSpec::new("q", MapType::Queue, 0, 2, 4),
        MapSpec::new("st", MapType::Stack, 0, 2, 4),
        MapSpec::new("rb", MapType::Ringbuf, 0, 0, 4096),
        MapSpec::new("perf", MapType::PerfEventArray, 4, 4, 4),
        MapSpec::new("progs", MapType::ProgArray, 4, 4, 4),
        MapSpec::new("dev", MapType::Devmap, 4, 8, 4),
        MapSpec::new("devh", MapType::DevmapHash, 4, 4, 4),
        MapSpec::new("cpus", MapType::Cpumap, 4, 4, 2),
        MapSpec::new("xsks", MapType::Xskmap, 4, 4, 2),
        outer,
        MapSpec::new("inner", MapType::Hash, 4, 8, 4),
        MapSpec::new("bloom", MapType::BloomFilter, 0, 4, 10),
    ]
}

fn filled() -> World {
    let mut w = World::new(&specs(), 2).unwrap();
    let idx = |w: &World, name| w.map_index(name).unwrap();
    let i = idx(&w, "arr");
    w.update(i, &k(1), &7u64.to_le_bytes(), BPF_ANY).unwrap();
    let i = idx(&w, "hash");
    for n in [3, 1, 2] {
        w.update(i, &k(n), &u64::from(n * 100).to_le_bytes(), BPF_ANY).unwrap();
    }
    let i = idx(&w, "pcpu");
    w.update(i, &k(5), &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0], BPF_ANY).unwrap();
    let i = idx(&w, "lpm");
    w.update(i, &[24, 0, 0, 0, 10, 1, 2, 0], &k(24), BPF_ANY).unwrap();
    w.update(i, &[8, 0, 0, 0, 10, 0, 0, 0], &k(8), BPF_ANY).unwrap();
    for name in ["q", "st"] {
        let i = idx(&w, name);
        for v in [1u16, 2, 3] {
            w.update(i, &[], &v.to_le_bytes(), BPF_ANY).unwrap();
        }
    }
    let i = idx(&w, "rb");
    let (m, _) = w.map_mut(i).unwrap();
    let rb = m.as_any_mut().downcast_mut::<RingBuf>().unwrap();
    assert!(rb.output(b"first", 0));
    assert_eq!(rb.drain(), vec![b"first".to_vec()]);
    assert!(rb.output(b"second", 0));
    assert!(rb.output(b"third", 0));
    let i = idx(&w, "perf");
    let (m, _) = w.map_mut(i).unwrap();
    let pe = m.as_any_mut().downcast_mut::<PerfEventArray>().unwrap();
    pe.output(1, 1, b"ev".to_vec()).unwrap();
    let i = idx(&w, "progs");
    w.update(i, &k(2), &k(0), BPF_ANY).unwrap();
    let i = idx(&w, "dev");
    w.update(i, &k(1), &[3, 0, 0, 0, 0, 0, 0, 0], BPF_ANY).unwrap();
    let i = idx(&w, "devh");
    w.update(i, &k(9), &k(4), BPF_ANY).unwrap();
    let i = idx(&w, "cpus");
    w.update(i, &k(1), &k(256), BPF_ANY).unwrap();
    let i = idx(&w, "xsks");
    w.update(i, &k(0), &k(77), BPF_ANY).unwrap();
    let (outer, inner) = (idx(&w, "outer"), idx(&w, "inner"));
    set_inner_map(&mut w, outer, &k(1), inner, BPF_ANY).unwrap();
    w.update(inner, &k(4), &4u64.to_le_bytes(), BPF_ANY).unwrap();
    let i = idx(&w, "bloom");
    w.update(i, &[], &k(12345), BPF_ANY).unwrap();
    w
}

#[test]
fn export_format() {
    let doc = json::export(&filled());
    let maps = &doc["maps"];
    assert_eq!(maps["hash"]["type"], "hash");
    assert_eq!(maps["hash"]["key_size"], 4);
    assert_eq!(
        maps["hash"]["entries"][0],
        json!({"key": "01 00 00 00", "value": "64 00 00 00 00 00 00 00"})
    );
    assert_eq!(maps["arr"]["entries"].as_array().unwrap().len(), 3);
    assert_eq!(
        maps["pcpu"]["entries"][0],
        json!({"key": "05 00 00 00", "values": ["01 00 00 00", "02 00 00 00"]})
    );
    assert_eq!(maps["lpm"]["entries"][0]["key"], "18 00 00 00 0a 01 02 00");
    assert_eq!(maps["q"]["values"], json!(["01 00", "02 00", "03 00"]));
    assert_eq!(maps["rb"]["records"], json!([json::hex(b"second"), json::hex(b"third")]));
    assert_eq!(maps["rb"]["consumer_pos"], 16);
    assert_eq!(maps["perf"]["records"], json!({"1": ["65 76"]}));
    assert_eq!(maps["progs"]["entries"], json!([{"key": "02 00 00 00", "value": "00 00 00 00"}]));
    assert_eq!(maps["xsks"]["entries"], json!([{"key": "00 00 00 00", "value": "4d 00 00 00"}]));
    assert_eq!(maps["outer"]["entries"][0]["inner"], "inner");
    assert!(maps["bloom"]["bits"].as_array().unwrap().len() <= 5);
}

#[test]
fn round_trip_into_a_fresh_world() {
    let original = filled();
    let doc = json::export(&original);
    let mut copy = World::new(&specs(), 2).unwrap();
    json::import(&mut copy, &doc).unwrap();
    assert_eq!(json::export(&copy), doc);
    // Through text, into the filled world itself (import replaces contents).
    let mut again = filled();
    let i = again.map_index("hash").unwrap();
    again.update(i, &k(42), &[0; 8], BPF_ANY).unwrap();
    json::import_str(&mut again, &json::export_string(&original)).unwrap();
    assert_eq!(json::export(&again), doc);
    // The restored map-in-map still resolves to the inner map's handle.
    let (outer, inner) = (copy.map_index("outer").unwrap(), copy.map_index("inner").unwrap());
    let handle = copy.map_handle(inner);
    let (m, mem) = copy.map_mut(outer).unwrap();
    assert_eq!(m.lookup(mem, &k(1), 0).unwrap(), handle);
}

fn import_err(doc: Value) -> bpflab_vm::maps::json::JsonError {
    let mut w = World::new(&specs(), 2).unwrap();
    json::import(&mut w, &doc).unwrap_err()
}

#[test]
fn typed_errors() {
    let e = import_err(json!({"nope": {}}));
    assert!(matches!(e.kind, JsonErrorKind::Missing("maps")), "{e}");
    let e = import_err(json!({"maps": {"missing": {}}}));
    assert_eq!(e.map.as_deref(), Some("missing"));
    assert!(matches!(e.kind, JsonErrorKind::UnknownMap));
    let e = import_err(json!({"maps": {"hash": {"type": "array"}}}));
    assert!(matches!(e.kind, JsonErrorKind::Mismatch { field: "type", .. }), "{e}");
    let e = import_err(json!({"maps": {"hash": {"key_size": 8}}}));
    assert!(matches!(e.kind, JsonErrorKind::Mismatch { field: "key_size", .. }), "{e}");
    let e = import_err(json!({"maps": {"hash": {"entries": [
        {"key": "01 00 00 00", "value": "00 00 00 00 00 00 00 00"},
        {"key": "01 00 0g 00", "value": "00"}
    ]}}}));
    assert_eq!((e.map.as_deref(), e.entry), (Some("hash"), Some(1)));
    assert!(matches!(e.kind, JsonErrorKind::BadHex { field: "key", .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "map \"hash\": entry 1: field \"key\": bad hex bytes \"01 00 0g 00\""
    );
    let e =
        import_err(json!({"maps": {"hash": {"entries": [{"key": "01 00 00 00", "value": "00"}]}}}));
    assert!(matches!(e.kind, JsonErrorKind::Map(MapError::Size { what: "value", .. })), "{e}");
    let e = import_err(json!({"maps": {"hash": {"entries": [{"key": "01 00 00 00"}]}}}));
    assert!(matches!(e.kind, JsonErrorKind::Missing("value")), "{e}");
    let e = import_err(
        json!({"maps": {"pcpu": {"entries": [{"key": "01 00 00 00", "values": ["00 00 00 00"]}]}}}),
    );
    assert!(matches!(e.kind, JsonErrorKind::Mismatch { field: "values", .. }), "{e}");
    let e = import_err(
        json!({"maps": {"q": {"values": ["01 00", "02 00", "03 00", "04 00", "05 00"]}}}),
    );
    assert_eq!(e.entry, Some(4));
    assert!(matches!(e.kind, JsonErrorKind::Map(MapError::Full)), "{e}");
    let e = import_err(
        json!({"maps": {"outer": {"entries": [{"key": "00 00 00 00", "inner": "arr"}]}}}),
    );
    assert!(matches!(e.kind, JsonErrorKind::Map(MapError::Invalid(_))), "{e}");
    let e = import_err(json!({"maps": {"hash": {"entries": 5}}}));
    assert!(matches!(e.kind, JsonErrorKind::Type { field: "entries", .. }), "{e}");
    let mut w = World::new(&specs(), 2).unwrap();
    let e = json::import_str(&mut w, "{").unwrap_err();
    assert!(matches!(e.kind, JsonErrorKind::Syntax(_)), "{e}");
}

#[test]
fn hex_forms() {
    assert_eq!(json::parse_hex("01 0a ff"), Some(vec![1, 10, 255]));
    assert_eq!(json::parse_hex("010aff"), Some(vec![1, 10, 255]));
    assert_eq!(json::parse_hex("0x01 0x0a"), Some(vec![1, 10]));
    assert_eq!(json::parse_hex(""), Some(vec![]));
    assert_eq!(json::parse_hex("1"), None);
    assert_eq!(json::hex(&[0, 0xab]), "00 ab");
}
