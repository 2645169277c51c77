//! Shared helpers of bpflab-btf's integration tests: fixture loading through goblin, running
//! bpftool, rendering a parsed `Btf` in bpftool's `format raw` text, and building BTF blobs.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use bpflab_btf::{Btf, BtfExt, BtfType, linkage};

/// Path of a file under tests/fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The bytes of ELF section `name` of `path`, via goblin.
pub fn elf_section(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let elf = goblin::elf::Elf::parse(&data).expect("fixture is a valid ELF");
    elf.section_headers.iter().find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(name)).map(
        |sh| {
            let start = sh.sh_offset as usize;
            data[start..start + sh.sh_size as usize].to_vec()
        },
    )
}

/// Symbols of an ELF object: (name, section name, value, is_func).
pub fn elf_symbols(path: &std::path::Path) -> Vec<(String, String, u64, bool)> {
    let data = std::fs::read(path).expect("reading fixture");
    let elf = goblin::elf::Elf::parse(&data).expect("fixture is a valid ELF");
    elf.syms
        .iter()
        .filter_map(|s| {
            let name = elf.strtab.get_at(s.st_name)?.to_owned();
            let sh = elf.section_headers.get(s.st_shndx)?;
            let sec = elf.shdr_strtab.get_at(sh.sh_name)?.to_owned();
            Some((name, sec, s.st_value, s.st_type() == goblin::elf::sym::STT_FUNC))
        })
        .collect()
}

/// A fixture object's `.BTF` and `.BTF.ext`, parsed.
pub fn load_obj(name: &str) -> (Btf, BtfExt) {
    let path = fixture(name);
    let btf_data = elf_section(&path, ".BTF").expect(".BTF section");
    let btf = Btf::parse(&btf_data).expect("parsing .BTF");
    let ext = match elf_section(&path, ".BTF.ext") {
        Some(d) => BtfExt::parse(&d, &btf).expect("parsing .BTF.ext"),
        None => BtfExt::default(),
    };
    (btf, ext)
}

/// The running kernel's BTF, parsed once.
pub fn vmlinux() -> &'static Btf {
    static V: OnceLock<Btf> = OnceLock::new();
    V.get_or_init(|| Btf::from_vmlinux().expect("parsing /sys/kernel/btf/vmlinux"))
}

/// `bpftool btf dump file PATH format raw`, as text.
pub fn bpftool_raw(path: &str) -> String {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", path, "format", "raw"])
        .output()
        .expect("running bpftool (install bpftool)");
    assert!(out.status.success(), "bpftool failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("bpftool output is UTF-8")
}

/// bpftool's raw dump of vmlinux, once.
pub fn vmlinux_raw() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| bpftool_raw("/sys/kernel/btf/vmlinux"))
}

/// One type of a bpftool raw dump: its header line and indented member lines.
#[derive(Debug, Clone)]
pub struct RawType {
    pub id: u32,
    pub kind: String,
    pub name: String,
    pub header: String,
    pub lines: Vec<String>,
}

impl RawType {
    /// Value of `key=` in the header line (a trailing comma stripped).
    pub fn field(&self, key: &str) -> Option<u64> {
        find_key(&self.header, key)
    }
}

/// Value of `key=NUMBER` in a raw dump line.
pub fn find_key(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|tok| tok.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.trim_end_matches(',').parse().ok())
}

/// Quoted name in a raw dump line.
pub fn quoted(line: &str) -> &str {
    let start = line.find('\'').expect("quoted name") + 1;
    let len = line[start..].find('\'').expect("closing quote");
    &line[start..start + len]
}

/// Splits bpftool raw output into types.
pub fn parse_raw(text: &str) -> Vec<RawType> {
    let mut out: Vec<RawType> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let (id, rest) = rest.split_once("] ").expect("[id] KIND");
            let kind = rest.split_whitespace().next().expect("kind").to_owned();
            out.push(RawType {
                id: id.parse().expect("numeric id"),
                kind,
                name: quoted(rest).to_owned(),
                header: line.to_owned(),
                lines: Vec::new(),
            });
        } else if line.starts_with('\t') {
            out.last_mut().expect("member line after a type").lines.push(line.to_owned());
        }
    }
    out
}

/// Bit offset and bitfield size of `field` in struct/union `id`, searching through anonymous
/// members in declaration order like C name lookup, using only bpftool's dump.
pub fn raw_field(types: &[RawType], id: u32, field: &str) -> Option<(u64, u64)> {
    let t = types.iter().find(|t| t.id == id)?;
    for line in &t.lines {
        let name = quoted(line);
        let off = find_key(line, "bits_offset")?;
        if name == field {
            return Some((off, find_key(line, "bitfield_size").unwrap_or(0)));
        }
        if name == "(anon)" {
            let member_type = find_key(line, "type_id")? as u32;
            // Anonymous members are struct/union types, maybe behind modifiers.
            if let Some((o, b)) = raw_field(types, resolve_raw(types, member_type), field) {
                return Some((off + o, b));
            }
        }
    }
    None
}

/// Follows typedef/const/volatile/restrict in a raw dump.
pub fn resolve_raw(types: &[RawType], mut id: u32) -> u32 {
    for _ in 0..32 {
        let Some(t) = types.iter().find(|t| t.id == id) else { return id };
        if !matches!(t.kind.as_str(), "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG") {
            return id;
        }
        id = t.field("type_id").expect("type_id") as u32;
    }
    id
}

/// The first raw type of `kind` named `name`.
pub fn raw_by_name<'a>(types: &'a [RawType], kind: &str, name: &str) -> &'a RawType {
    types
        .iter()
        .find(|t| t.kind == kind && t.name == name)
        .unwrap_or_else(|| panic!("bpftool has no {kind} '{name}'"))
}

fn name_or_anon(btf: &Btf, off: u32) -> String {
    let s = btf.string_at(off).expect("valid name");
    if s.is_empty() { "(anon)".to_owned() } else { s.to_owned() }
}

/// Renders type `id` of `btf` exactly as `bpftool btf dump ... format raw` prints it.
pub fn render_raw(btf: &Btf, id: u32) -> Vec<String> {
    let t = btf.type_by_id(id).expect("type");
    let name = name_or_anon(btf, t.name_off());
    let head = |kind: &str, rest: String| {
        if rest.is_empty() {
            format!("[{id}] {kind} '{name}'")
        } else {
            format!("[{id}] {kind} '{name}' {rest}")
        }
    };
    let func_linkage = |l: u32| match l {
        linkage::STATIC => "static",
        linkage::GLOBAL => "global",
        linkage::EXTERN => "extern",
        _ => "(unknown)",
    };
    let mut out = Vec::new();
    match t {
        BtfType::Void => out.push(format!("[{id}] UNKNOWN")),
        BtfType::Int(i) => {
            let enc = match i.encoding {
                0 => "(none)",
                1 => "SIGNED",
                2 => "CHAR",
                4 => "BOOL",
                _ => "UNKN",
            };
            out.push(head(
                "INT",
                format!(
                    "size={} bits_offset={} nr_bits={} encoding={enc}",
                    i.size, i.offset, i.bits
                ),
            ));
        }
        BtfType::Ptr { type_id } => out.push(head("PTR", format!("type_id={type_id}"))),
        BtfType::Array(a) => out.push(head(
            "ARRAY",
            format!("type_id={} index_type_id={} nr_elems={}", a.elem_type, a.index_type, a.nelems),
        )),
        BtfType::Struct(c) | BtfType::Union(c) => {
            let kind = if matches!(t, BtfType::Struct(_)) { "STRUCT" } else { "UNION" };
            out.push(head(kind, format!("size={} vlen={}", c.size, c.members.len())));
            for m in &c.members {
                let mut l = format!(
                    "\t'{}' type_id={} bits_offset={}",
                    name_or_anon(btf, m.name_off),
                    m.type_id,
                    m.bit_offset
                );
                if m.bitfield_size != 0 {
                    l.push_str(&format!(" bitfield_size={}", m.bitfield_size));
                }
                out.push(l);
            }
        }
        BtfType::Enum(e) | BtfType::Enum64(e) => {
            let is64 = matches!(t, BtfType::Enum64(_));
            let enc = if e.signed { "SIGNED" } else { "UNSIGNED" };
            out.push(head(
                if is64 { "ENUM64" } else { "ENUM" },
                format!("encoding={enc} size={} vlen={}", e.size, e.values.len()),
            ));
            for v in &e.values {
                let val = match (is64, e.signed) {
                    (false, _) => format!("{}", v.value),
                    (true, true) => format!("{}LL", v.value),
                    (true, false) => format!("{}ULL", v.value as u64),
                };
                out.push(format!("\t'{}' val={val}", name_or_anon(btf, v.name_off)));
            }
        }
        BtfType::Fwd { is_union, .. } => out
            .push(head("FWD", format!("fwd_kind={}", if *is_union { "union" } else { "struct" }))),
        BtfType::Typedef { type_id, .. } => out.push(head("TYPEDEF", format!("type_id={type_id}"))),
        BtfType::Volatile { type_id } => out.push(head("VOLATILE", format!("type_id={type_id}"))),
        BtfType::Const { type_id } => out.push(head("CONST", format!("type_id={type_id}"))),
        BtfType::Restrict { type_id } => out.push(head("RESTRICT", format!("type_id={type_id}"))),
        BtfType::Func { type_id, linkage, .. } => {
            out.push(head("FUNC", format!("type_id={type_id} linkage={}", func_linkage(*linkage))))
        }
        BtfType::FuncProto { ret_type, params } => {
            out.push(head("FUNC_PROTO", format!("ret_type_id={ret_type} vlen={}", params.len())));
            for p in params {
                out.push(format!("\t'{}' type_id={}", name_or_anon(btf, p.name_off), p.type_id));
            }
        }
        BtfType::Var { type_id, linkage, .. } => {
            out.push(head("VAR", format!("type_id={type_id}, linkage={}", func_linkage(*linkage))))
        }
        BtfType::Datasec(d) => {
            out.push(head("DATASEC", format!("size={} vlen={}", d.size, d.vars.len())));
            for v in &d.vars {
                let vt = btf.type_by_id(v.type_id).expect("var type");
                out.push(format!(
                    "\ttype_id={} offset={} size={} ({} '{}')",
                    v.type_id,
                    v.offset,
                    v.size,
                    vt.kind().as_str().to_uppercase(),
                    name_or_anon(btf, vt.name_off())
                ));
            }
        }
        BtfType::Float { size, .. } => out.push(head("FLOAT", format!("size={size}"))),
        BtfType::DeclTag { type_id, component_idx, .. } => {
            out.push(head("DECL_TAG", format!("type_id={type_id} component_idx={component_idx}")))
        }
        BtfType::TypeTag { type_id, .. } => {
            out.push(head("TYPE_TAG", format!("type_id={type_id}")))
        }
    }
    out
}

/// Compares every type of `btf` with bpftool's raw dump `text`; returns the number of types.
pub fn assert_matches_bpftool(btf: &Btf, text: &str) -> usize {
    let mut expected = text.lines().filter(|l| l.starts_with('[') || l.starts_with('\t'));
    let mut n = 0;
    for id in 1..btf.len() {
        for line in render_raw(btf, id) {
            let want = expected.next().unwrap_or_else(|| panic!("bpftool ended before [{id}]"));
            assert_eq!(line, want, "type [{id}] differs from bpftool");
        }
        n += 1;
    }
    assert!(expected.next().is_none(), "bpftool has more types than parsed ({n})");
    n
}

/// Builds little-endian BTF blobs by hand for error tests.
#[derive(Default, Clone)]
pub struct BtfBuilder {
    pub types: Vec<u8>,
    pub strings: Vec<u8>,
}

impl BtfBuilder {
    pub fn new() -> Self {
        BtfBuilder { types: Vec::new(), strings: vec![0] }
    }

    /// Adds a string, returns its offset.
    pub fn str(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// Adds a `btf_type` with `extra` trailing words.
    pub fn ty(
        &mut self,
        name_off: u32,
        kind: u32,
        vlen: u32,
        kflag: bool,
        size_or_type: u32,
        extra: &[u32],
    ) {
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen;
        for w in [name_off, info, size_or_type].iter().chain(extra) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
    }

    pub fn int(&mut self, name: &str, size: u32, signed: bool) {
        let n = self.str(name);
        let enc = if signed { 1u32 << 24 } else { 0 };
        self.ty(n, 1, 0, false, size, &[enc | (size * 8)]);
    }

    pub fn typedef(&mut self, name: &str, target: u32) {
        let n = self.str(name);
        self.ty(n, 8, 0, false, target, &[]);
    }

    /// The blob: 24-byte header, types, strings.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        out.extend_from_slice(&24u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Writes a u32 at `off` of `data`.
pub fn put_u32(data: &mut [u8], off: usize, v: u32) {
    data[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
