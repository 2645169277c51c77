//! The running kernel as an [`Engine`]: a collection's BTF is loaded with `BPF_BTF_LOAD`, its
//! maps become kernel maps (typed by that BTF), its programs are loaded with `BPF_PROG_LOAD`
//! (map references rewritten to the maps' fds, with their flags and BTF func/line info) and run
//! with `BPF_PROG_TEST_RUN`. Only the low 32 bits of r0 come back, and no instruction count.

use bpflab_vm::isa::{Insn, PseudoSrc};
use bpflab_vm::{Collection, Engine, EngineError, Loaded, MapType, ProgType, RunInput, RunOutcome};

use crate::{KernelBtf, KernelError, KernelMap, KernelProgram, ProgLoadOptions, backend};

/// The kernel engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelEngine;

/// A collection loaded into the kernel.
#[derive(Debug)]
pub struct KernelLoaded {
    /// The collection's BTF, which maps and programs refer to.
    btf: Option<KernelBtf>,
    maps: Vec<KernelMap>,
    /// Inner-map templates, kept alive for the map-in-map maps that reference them.
    _inner: Vec<KernelMap>,
    /// Programs in collection order; `None` for those left out at load.
    programs: Vec<Option<KernelProgram>>,
}

impl KernelEngine {
    /// Loads `collection` into the kernel; the concrete form of [`Engine::load`]. The
    /// collection's BTF (if any) is loaded first; unlike libbpf, which then carries on without
    /// BTF, a refusal is an error ([`KernelError::BtfRejected`] with the kernel's log).
    pub fn load_collection(&self, collection: &Collection) -> Result<KernelLoaded, KernelError> {
        self.load_collection_except(collection, &[])
    }

    /// Like [`KernelEngine::load_collection`], leaving out the programs whose indices are in
    /// `skip` (those a kernel lacks features for): they keep their index, and running them
    /// is an [`EngineError::Unsupported`] error.
    pub fn load_collection_except(
        &self,
        collection: &Collection,
        skip: &[usize],
    ) -> Result<KernelLoaded, KernelError> {
        let btf = collection.btf.as_deref().map(KernelBtf::load).transpose()?;
        let mut maps = Vec::with_capacity(collection.maps.len());
        let mut inner = Vec::new();
        for spec in &collection.maps {
            let template = match &spec.inner {
                Some(t) => {
                    inner.push(KernelMap::from_spec_with_btf(t, None, btf.as_ref())?);
                    inner.last()
                }
                None => None,
            };
            maps.push(KernelMap::from_spec_with_btf(spec, template, btf.as_ref())?);
        }
        let mut programs = Vec::with_capacity(collection.programs.len());
        for (i, p) in collection.programs.iter().enumerate() {
            if skip.contains(&i) {
                programs.push(None);
                continue;
            }
            if p.prog_type == ProgType::Unspec {
                return Err(KernelError::Unsupported {
                    what: format!(
                        "program {:?} has no program type (the kernel has no raw mode)",
                        p.name
                    ),
                });
            }
            let insns = with_map_fds(&p.insns, &maps)?;
            // Trampoline programs name their target by its kernel BTF id (libbpf's
            // `libbpf_find_vmlinux_btf_id`: LSM hooks are `bpf_lsm_<hook>`).
            let attach_btf_id = match (p.prog_type, p.attach_to.as_deref()) {
                (ProgType::Tracing | ProgType::Lsm, Some(target)) => {
                    crate::features::attach_btf_id(p.prog_type, p.expected_attach_type, target)
                }
                _ => None,
            };
            let opts = ProgLoadOptions {
                name: &p.name,
                expected_attach_type: p.expected_attach_type,
                flags: p.flags,
                btf: btf.as_ref(),
                func_info: &p.func_info,
                line_info: &p.line_info,
                attach_btf_id,
                ..ProgLoadOptions::default()
            };
            programs.push(Some(KernelProgram::load_with_options(
                p.prog_type,
                &insns,
                &p.license,
                &opts,
            )?));
        }
        Ok(KernelLoaded { btf, maps, _inner: inner, programs })
    }
}

/// Rewrites `map_idx` / `map_idx_value` references to the kernel's `map_fd` / `map_value`.
pub(crate) fn with_map_fds(insns: &[Insn], maps: &[KernelMap]) -> Result<Vec<Insn>, KernelError> {
    insns
        .iter()
        .map(|insn| match *insn {
            Insn::LdImm64 {
                dst,
                src: src @ (PseudoSrc::MapIdx | PseudoSrc::MapIdxValue),
                imm,
                next_imm,
            } => {
                let map = usize::try_from(imm).ok().and_then(|i| maps.get(i)).ok_or_else(|| {
                    KernelError::Unsupported {
                        what: format!("reference to map index {imm}, which does not exist"),
                    }
                })?;
                let src =
                    if src == PseudoSrc::MapIdx { PseudoSrc::MapFd } else { PseudoSrc::MapValue };
                Ok(Insn::LdImm64 { dst, src, imm: map.fd(), next_imm })
            }
            other => Ok(other),
        })
        .collect()
}

impl Engine for KernelEngine {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn load(&self, collection: &Collection) -> Result<Box<dyn Loaded>, EngineError> {
        Ok(Box::new(self.load_collection(collection).map_err(backend)?))
    }
}

impl KernelLoaded {
    /// The collection's BTF as loaded into the kernel, if it had one.
    pub fn btf(&self) -> Option<&KernelBtf> {
        self.btf.as_ref()
    }

    /// The kernel maps, in collection order.
    pub fn maps(&self) -> &[KernelMap] {
        &self.maps
    }

    /// The number of programs, loaded or left out.
    pub fn program_count(&self) -> usize {
        self.programs.len()
    }

    /// Program `idx`, if it was loaded.
    pub fn program(&self, idx: usize) -> Option<&KernelProgram> {
        self.programs.get(idx).and_then(Option::as_ref)
    }

    fn map(&self, map: usize) -> Result<&KernelMap, EngineError> {
        self.maps.get(map).ok_or_else(|| EngineError::Unsupported {
            engine: "kernel",
            what: format!("map index {map}"),
        })
    }

    /// A program-array or map-of-maps value (a program or map index) as the kernel wants it
    /// (that program's or map's fd).
    fn translate_value(&self, map: &KernelMap, value: &[u8]) -> Result<Vec<u8>, EngineError> {
        let by_index = matches!(
            map.map_type(),
            MapType::ProgArray | MapType::ArrayOfMaps | MapType::HashOfMaps
        );
        if !by_index || value.len() != 4 {
            return Ok(value.to_vec());
        }
        let idx = u32::from_ne_bytes([value[0], value[1], value[2], value[3]]) as usize;
        let fd = if map.map_type() == MapType::ProgArray {
            self.program(idx).map(KernelProgram::raw_fd)
        } else {
            self.maps.get(idx).map(KernelMap::fd)
        };
        let fd = fd.ok_or_else(|| EngineError::Unsupported {
            engine: "kernel",
            what: format!("index {idx} in a {} map value", map.map_type().name()),
        })?;
        Ok((fd as u32).to_ne_bytes().to_vec())
    }
}

impl Loaded for KernelLoaded {
    fn run(&mut self, prog: usize, input: &RunInput) -> Result<RunOutcome, EngineError> {
        let p = self.program(prog).ok_or_else(|| EngineError::Unsupported {
            engine: "kernel",
            what: match self.programs.get(prog) {
                Some(None) => format!("program index {prog}, left out at load"),
                _ => format!("program index {prog}"),
            },
        })?;
        let run = p.test_run(&input.data, input.ctx.as_deref(), 1).map_err(backend)?;
        let mut outcome = RunOutcome::default();
        outcome.r0 = u64::from(run.retval);
        outcome.data = run.data_out;
        outcome.ctx = run.ctx_out;
        Ok(outcome)
    }

    fn map_lookup(&mut self, map: usize, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.map(map)?.lookup(key).map_err(backend)
    }

    fn map_update(
        &mut self,
        map: usize,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), EngineError> {
        let m = self.map(map)?;
        let value = self.translate_value(m, value)?;
        m.update_flags(key, &value, flags).map_err(backend)
    }

    fn map_delete(&mut self, map: usize, key: &[u8]) -> Result<(), EngineError> {
        self.map(map)?.delete(key).map_err(backend)
    }

    fn map_keys(&mut self, map: usize) -> Result<Vec<Vec<u8>>, EngineError> {
        self.map(map)?.keys().map_err(backend)
    }
}
