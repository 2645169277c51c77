//! Map state as JSON: [`export`] writes every map of a [`World`], [`import`] loads such a
//! document back. Keys and values are hex bytes as bpftool prints them (`"01 00 00 00"`).
//!
//! ```json
//! {"maps": {
//!   "counts": {"type": "hash", "key_size": 4, "value_size": 8, "max_entries": 64,
//!              "entries": [{"key": "01 00 00 00", "value": "2a 00 00 00 00 00 00 00"}]},
//!   "pcpu":   {"type": "percpu_array", ..., "entries": [{"key": "..", "values": ["..", ".."]}]},
//!   "q":      {"type": "queue", ..., "values": ["..", ".."]},
//!   "events": {"type": "ringbuf", ..., "consumer_pos": 0, "producer_pos": 24,
//!              "records": [".."]},
//!   "perf":   {"type": "perf_event_array", ..., "entries": [{"key": "..", "cpu": 0}],
//!              "records": {"0": [".."]}},
//!   "outer":  {"type": "array_of_maps", ..., "entries": [{"key": "..", "inner": "name"}]},
//!   "bloom":  {"type": "bloom_filter", ..., "bits": [3, 17]}
//! }}
//! ```
//!
//! Arrays list every element, except those of more than 65,536 elements
//! ([`super::DENSE_ARRAY_SLOTS`]), which list only the elements written or handed to a program
//! (the others are zero). Per-CPU values are a list with one value per CPU; queues and stacks list their values
//! oldest first; a ring buffer lists the records a consumer would read, in order. Importing
//! replaces each named map's contents (maps the document does not name are left alone).

use serde_json::{Map as JsonMap, Value, json};

use super::{
    ArrayMap, BPF_ANY, BloomFilter, CpuMap, DENSE_ARRAY_SLOTS, DevMap, MapError, OfMaps,
    PerfEventArray, ProgArray, QueueStack, RingBuf, XskMap, percpu_stride, set_inner_map,
};
use crate::spec::MapType;
use crate::world::World;

/// What is wrong with a JSON document, and where.
#[derive(Debug, thiserror::Error)]
#[error("{}{}{kind}", .map.as_ref().map(|m| format!("map {m:?}: ")).unwrap_or_default(),
    .entry.map(|e| format!("entry {e}: ")).unwrap_or_default())]
pub struct JsonError {
    /// The map the problem is in, if any.
    pub map: Option<String>,
    /// The index of the entry (or value, or record) in its list, if any.
    pub entry: Option<usize>,
    /// What is wrong.
    pub kind: JsonErrorKind,
}

/// The kinds of [`JsonError`].
#[derive(Debug, thiserror::Error)]
pub enum JsonErrorKind {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    Syntax(String),
    /// A field is missing.
    #[error("missing field {0:?}")]
    Missing(&'static str),
    /// A field has the wrong JSON type.
    #[error("field {field:?} must be {expected}")]
    Type {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The world has no map of this name.
    #[error("no such map in the world")]
    UnknownMap,
    /// The document describes the map differently from the world's.
    #[error("{field} is {got} in the document, {expected} in the world")]
    Mismatch {
        /// The field (`type`, `key_size`, ...).
        field: &'static str,
        /// The world's.
        expected: String,
        /// The document's.
        got: String,
    },
    /// A hex byte string is malformed.
    #[error("field {field:?}: bad hex bytes {text:?}")]
    BadHex {
        /// The field.
        field: &'static str,
        /// The text.
        text: String,
    },
    /// The map refused the entry.
    #[error("{0}")]
    Map(#[from] MapError),
}

/// Lowercase hex bytes separated by spaces, as bpftool prints them.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Parses hex bytes: pairs of digits, optionally separated by whitespace.
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let word = word.strip_prefix("0x").unwrap_or(word);
        if word.len() % 2 != 0 {
            return None;
        }
        for pair in word.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).ok()?;
            out.push(u8::from_str_radix(pair, 16).ok()?);
        }
    }
    Some(out)
}

fn is_percpu(t: MapType) -> bool {
    matches!(t, MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash)
}

/// Every map of `world` and its contents.
pub fn export(world: &World) -> Value {
    let mut maps = JsonMap::new();
    for idx in 0..world.map_count() {
        let Some(map) = world.map(idx) else { continue };
        let spec = map.spec();
        let mut obj = JsonMap::new();
        obj.insert("type".into(), json!(spec.map_type.name()));
        obj.insert("key_size".into(), json!(spec.key_size));
        obj.insert("value_size".into(), json!(spec.value_size));
        obj.insert("max_entries".into(), json!(spec.max_entries));
        obj.insert("flags".into(), json!(spec.flags));
        if let Err(e) = export_contents(world, idx, &mut obj) {
            obj.insert("error".into(), json!(e.to_string()));
        }
        maps.insert(spec.name.clone(), Value::Object(obj));
    }
    json!({ "maps": maps })
}

/// [`export`] as pretty-printed text.
pub fn export_string(world: &World) -> String {
    serde_json::to_string_pretty(&export(world)).unwrap_or_default()
}

fn entry(key: &[u8], value: &[u8]) -> Value {
    json!({ "key": hex(key), "value": hex(value) })
}

fn export_contents(
    world: &World,
    idx: usize,
    obj: &mut JsonMap<String, Value>,
) -> Result<(), MapError> {
    let map = world.map(idx).ok_or(MapError::Invalid("no such map"))?;
    let spec = map.spec();
    let any = map.as_any();
    let list = |v: Vec<Value>| Value::Array(v);
    if let Some(q) = any.downcast_ref::<QueueStack>() {
        obj.insert("values".into(), list(q.values().map(|v| json!(hex(v))).collect()));
    } else if let Some(rb) = any.downcast_ref::<RingBuf>() {
        obj.insert("consumer_pos".into(), json!(rb.consumer_pos()));
        obj.insert("producer_pos".into(), json!(rb.producer_pos()));
        obj.insert("records".into(), list(rb.pending().iter().map(|r| json!(hex(r))).collect()));
    } else if let Some(pe) = any.downcast_ref::<PerfEventArray>() {
        let events = pe.events().map(|(i, c)| json!({"key": hex(&i.to_le_bytes()), "cpu": c}));
        obj.insert("entries".into(), list(events.collect()));
        let mut records = JsonMap::new();
        for (i, recs) in pe.all_records() {
            records.insert(i.to_string(), list(recs.iter().map(|r| json!(hex(r))).collect()));
        }
        obj.insert("records".into(), Value::Object(records));
    } else if let Some(b) = any.downcast_ref::<BloomFilter>() {
        obj.insert("bits".into(), list(b.set_bits().map(|b| json!(b)).collect()));
    } else if let Some(of) = any.downcast_ref::<OfMaps>() {
        let entries = of.inner_maps().map(|(k, i)| {
            let name = world.map(i).map_or(String::new(), |m| m.spec().name.clone());
            json!({"key": hex(k), "inner": name, "index": i})
        });
        obj.insert("entries".into(), list(entries.collect()));
    } else if let Some(x) = any.downcast_ref::<XskMap>() {
        let entries = x.sockets().map(|(i, s)| entry(&i.to_le_bytes(), &s.to_le_bytes()));
        obj.insert("entries".into(), list(entries.collect()));
    } else {
        let keys: Vec<Vec<u8>> = if let Some(p) = any.downcast_ref::<ProgArray>() {
            p.programs().map(|(i, _)| i.to_le_bytes().to_vec()).collect()
        } else if let Some(d) = any.downcast_ref::<DevMap>() {
            d.devices(&world.mem).map(|(i, _)| i.to_le_bytes().to_vec()).collect()
        } else if let Some(c) = any.downcast_ref::<CpuMap>() {
            c.queues().map(|(i, _)| i.to_le_bytes().to_vec()).collect()
        } else if let Some(a) = any
            .downcast_ref::<ArrayMap>()
            .filter(|_| u64::from(spec.max_entries) > DENSE_ARRAY_SLOTS)
        {
            // Large arrays list the elements touched; the others are zero (and importing
            // leaves unlisted array elements alone).
            a.touched_indices().into_iter().map(|i| i.to_le_bytes().to_vec()).collect()
        } else {
            world.keys(idx)?
        };
        let percpu = is_percpu(spec.map_type);
        let size = spec.value_size as usize;
        let stride = percpu_stride(spec.value_size);
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(value) = world.lookup(idx, &key)? else { continue };
            if percpu {
                let values: Vec<Value> =
                    value.chunks(stride).map(|c| json!(hex(&c[..size.min(c.len())]))).collect();
                entries.push(json!({"key": hex(&key), "values": values}));
            } else {
                entries.push(entry(&key, &value));
            }
        }
        obj.insert("entries".into(), list(entries));
    }
    Ok(())
}

/// Loads the map contents of `doc` (the [`export`] format) into `world`: each named map is
/// emptied (arrays keep elements the document does not list) and refilled.
pub fn import(world: &mut World, doc: &Value) -> Result<(), JsonError> {
    let top = |kind| JsonError { map: None, entry: None, kind };
    let maps = doc
        .get("maps")
        .ok_or(top(JsonErrorKind::Missing("maps")))?
        .as_object()
        .ok_or(top(JsonErrorKind::Type { field: "maps", expected: "an object" }))?;
    for (name, m) in maps {
        let err = |entry, kind| JsonError { map: Some(name.clone()), entry, kind };
        let idx = world.map_index(name).ok_or(err(None, JsonErrorKind::UnknownMap))?;
        import_map(world, idx, m).map_err(|(entry, kind)| err(entry, kind))?;
    }
    Ok(())
}

/// [`import`] from text.
pub fn import_str(world: &mut World, text: &str) -> Result<(), JsonError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| JsonError {
        map: None,
        entry: None,
        kind: JsonErrorKind::Syntax(e.to_string()),
    })?;
    import(world, &doc)
}

type Fail = (Option<usize>, JsonErrorKind);

fn field<'v>(v: &'v Value, name: &'static str) -> Result<&'v Value, JsonErrorKind> {
    v.get(name).ok_or(JsonErrorKind::Missing(name))
}

fn array<'v>(v: &'v Value, name: &'static str) -> Result<&'v [Value], JsonErrorKind> {
    match v.get(name) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(JsonErrorKind::Type { field: name, expected: "a list" }),
    }
}

fn bytes(v: &Value, name: &'static str) -> Result<Vec<u8>, JsonErrorKind> {
    let text = v.as_str().ok_or(JsonErrorKind::Type { field: name, expected: "hex bytes" })?;
    parse_hex(text).ok_or_else(|| JsonErrorKind::BadHex { field: name, text: text.to_owned() })
}

fn number(v: &Value, name: &'static str) -> Result<u64, JsonErrorKind> {
    v.as_u64().ok_or(JsonErrorKind::Type { field: name, expected: "a non-negative integer" })
}

fn import_map(world: &mut World, idx: usize, m: &Value) -> Result<(), Fail> {
    let at = |i: usize| move |kind| (Some(i), kind);
    let spec = world.map(idx).map(|m| m.spec().clone()).ok_or((None, JsonErrorKind::UnknownMap))?;
    if !m.is_object() {
        return Err((None, JsonErrorKind::Type { field: "map", expected: "an object" }));
    }
    if let Some(t) = m.get("type") {
        let t = t
            .as_str()
            .ok_or((None, JsonErrorKind::Type { field: "type", expected: "a string" }))?;
        if t != spec.map_type.name() {
            let (expected, got) = (spec.map_type.name().to_owned(), t.to_owned());
            return Err((None, JsonErrorKind::Mismatch { field: "type", expected, got }));
        }
    }
    for (name, want) in [("key_size", spec.key_size), ("value_size", spec.value_size)] {
        if let Some(v) = m.get(name) {
            let got = number(v, name).map_err(|k| (None, k))?;
            if got != u64::from(want) {
                let (expected, got) = (want.to_string(), got.to_string());
                return Err((None, JsonErrorKind::Mismatch { field: name, expected, got }));
            }
        }
    }
    let map_err = |e: MapError| (None, JsonErrorKind::Map(e));
    let entries = array(m, "entries").map_err(|k| (None, k))?;
    let (map, mem) = world.map_mut(idx).ok_or((None, JsonErrorKind::UnknownMap))?;
    let any = map.as_any_mut();
    if let Some(q) = any.downcast_mut::<QueueStack>() {
        q.clear();
        for (i, v) in array(m, "values").map_err(|k| (None, k))?.iter().enumerate() {
            let v = bytes(v, "values").map_err(at(i))?;
            super::Map::push(q, mem, &v, BPF_ANY).map_err(|e| (Some(i), e.into()))?;
        }
        return Ok(());
    }
    if let Some(rb) = any.downcast_mut::<RingBuf>() {
        let pos = m.get("consumer_pos").map_or(Ok(0), |v| number(v, "consumer_pos"));
        rb.reset(mem, pos.map_err(|k| (None, k))?);
        for (i, v) in array(m, "records").map_err(|k| (None, k))?.iter().enumerate() {
            let v = bytes(v, "records").map_err(at(i))?;
            if !rb.output(&v, 0) {
                return Err((Some(i), MapError::Full.into()));
            }
        }
        return Ok(());
    }
    if let Some(pe) = any.downcast_mut::<PerfEventArray>() {
        pe.clear();
        for (i, e) in entries.iter().enumerate() {
            let key = bytes(field(e, "key").map_err(at(i))?, "key").map_err(at(i))?;
            let cpu = number(field(e, "cpu").map_err(at(i))?, "cpu").map_err(at(i))?;
            let cpu = u32::try_from(cpu)
                .map_err(|_| (Some(i), JsonErrorKind::Type { field: "cpu", expected: "a u32" }))?;
            super::Map::write(pe, mem, &key, &cpu.to_le_bytes(), BPF_ANY)
                .map_err(|e| (Some(i), e.into()))?;
        }
        if let Some(records) = m.get("records") {
            let records = records
                .as_object()
                .ok_or((None, JsonErrorKind::Type { field: "records", expected: "an object" }))?;
            for (index, list) in records {
                let bad =
                    || (None, JsonErrorKind::Type { field: "records", expected: "index → list" });
                let index: u32 = index.parse().map_err(|_| bad())?;
                let list = list.as_array().ok_or_else(bad)?;
                let recs = list
                    .iter()
                    .enumerate()
                    .map(|(i, r)| bytes(r, "records").map_err(at(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                pe.set_records(index, recs);
            }
        }
        return Ok(());
    }
    if let Some(b) = any.downcast_mut::<BloomFilter>() {
        b.clear();
        for (i, v) in array(m, "bits").map_err(|k| (None, k))?.iter().enumerate() {
            let bit = number(v, "bits").map_err(at(i))?;
            b.set_bit(u32::try_from(bit).map_err(|_| {
                (Some(i), JsonErrorKind::Type { field: "bits", expected: "a u32" })
            })?);
        }
        return Ok(());
    }
    let is_of_maps = any.is::<OfMaps>();
    // Empty the map (arrays cannot be emptied; their listed elements are overwritten).
    let present: Option<Vec<Vec<u8>>> = if let Some(p) = any.downcast_ref::<ProgArray>() {
        Some(p.programs().map(|(i, _)| i.to_le_bytes().to_vec()).collect())
    } else if let Some(d) = any.downcast_ref::<DevMap>() {
        Some(d.devices(mem).map(|(i, _)| i.to_le_bytes().to_vec()).collect())
    } else if let Some(c) = any.downcast_ref::<CpuMap>() {
        Some(c.queues().map(|(i, _)| i.to_le_bytes().to_vec()).collect())
    } else if let Some(x) = any.downcast_ref::<XskMap>() {
        Some(x.sockets().map(|(i, _)| i.to_le_bytes().to_vec()).collect())
    } else {
        any.downcast_ref::<OfMaps>().map(|o| o.inner_maps().map(|(k, _)| k.to_vec()).collect())
    };
    // Empty the map (arrays cannot be emptied; their listed elements are overwritten).
    if !matches!(spec.map_type, MapType::Array | MapType::PercpuArray) {
        let present = match present {
            Some(p) => p,
            None => world.keys(idx).map_err(map_err)?,
        };
        for key in &present {
            world.delete(idx, key).map_err(map_err)?;
        }
    }
    let percpu = is_percpu(spec.map_type);
    let stride = percpu_stride(spec.value_size);
    for (i, e) in entries.iter().enumerate() {
        let key = bytes(field(e, "key").map_err(at(i))?, "key").map_err(at(i))?;
        if is_of_maps {
            let inner = match field(e, "inner").map_err(at(i))? {
                Value::String(name) => world.map_index(name).ok_or((
                    Some(i),
                    JsonErrorKind::Mismatch {
                        field: "inner",
                        expected: "the name of a map of the world".into(),
                        got: name.clone(),
                    },
                ))?,
                v => number(v, "inner").map_err(at(i))? as usize,
            };
            set_inner_map(world, idx, &key, inner, BPF_ANY).map_err(|e| (Some(i), e.into()))?;
            continue;
        }
        let value = if percpu {
            let values = array(e, "values").map_err(at(i))?;
            if values.len() != world.ncpus as usize {
                return Err((
                    Some(i),
                    JsonErrorKind::Mismatch {
                        field: "values",
                        expected: format!("{} per-CPU values", world.ncpus),
                        got: values.len().to_string(),
                    },
                ));
            }
            let mut all = vec![0; stride * values.len()];
            for (cpu, v) in values.iter().enumerate() {
                let v = bytes(v, "values").map_err(at(i))?;
                if v.len() != spec.value_size as usize {
                    return Err((
                        Some(i),
                        MapError::Size {
                            what: "value",
                            expected: spec.value_size as usize,
                            got: v.len(),
                        }
                        .into(),
                    ));
                }
                all[cpu * stride..cpu * stride + v.len()].copy_from_slice(&v);
            }
            all
        } else {
            bytes(field(e, "value").map_err(at(i))?, "value").map_err(at(i))?
        };
        world.update(idx, &key, &value, BPF_ANY).map_err(|e| (Some(i), e.into()))?;
    }
    Ok(())
}
