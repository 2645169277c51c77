//! The raw bpf(2) system call: the `union bpf_attr` members bpflab uses, laid out exactly as in
//! the kernel's `include/uapi/linux/bpf.h`, and one safe function per command. Every `unsafe`
//! of the crate lives here; each function builds its attribute from Rust slices, so the
//! pointers the kernel follows are valid for exactly the lengths it is told.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `enum bpf_cmd` values.
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_MAP_GET_NEXT_KEY: u32 = 4;
const BPF_MAP_FREEZE: u32 = 22;
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_BTF_LOAD: u32 = 18;

/// `BPF_OBJ_NAME_LEN`: object names are at most 15 bytes plus the NUL.
pub(crate) const OBJ_NAME_LEN: usize = 16;

/// A failed bpf(2) call: the errno, and the size the kernel reported back where the command
/// has one (`log_true_size` of PROG_LOAD, `btf_log_true_size` of BTF_LOAD, `data_size_out` of
/// PROG_TEST_RUN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SysError {
    pub(crate) errno: i32,
    pub(crate) size_hint: u32,
}

impl SysError {
    fn errno(errno: i32) -> SysError {
        SysError { errno, size_hint: 0 }
    }
}

/// The `BPF_MAP_CREATE` member of `union bpf_attr` (up to `map_token_fd`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; OBJ_NAME_LEN],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
    value_type_btf_obj_fd: i32,
    map_token_fd: i32,
}

/// The `BPF_MAP_*_ELEM` member of `union bpf_attr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct MapElemAttr {
    map_fd: u32,
    /// Explicit padding before the `__aligned_u64` key, so no byte is uninitialised.
    _pad: u32,
    key: u64,
    /// `value` or `next_key` (a union of two `__aligned_u64`).
    value: u64,
    flags: u64,
}

/// The `BPF_PROG_LOAD` member of `union bpf_attr` (up to `fd_array_cnt`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    /// `attach_prog_fd` or `attach_btf_obj_fd`.
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
    core_relos: u64,
    core_relo_rec_size: u32,
    log_true_size: u32,
    prog_token_fd: i32,
    fd_array_cnt: u32,
}

/// The `BPF_BTF_LOAD` member of `union bpf_attr` (up to `btf_token_fd`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
    btf_log_true_size: u32,
    btf_flags: u32,
    btf_token_fd: i32,
}

/// One `struct bpf_func_info` record of `BPF_PROG_LOAD`: the first instruction of a function
/// (in instruction slots) and the type id of its BTF FUNC.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FuncInfoRec {
    pub(crate) insn_off: u32,
    pub(crate) type_id: u32,
}

/// One `struct bpf_line_info` record of `BPF_PROG_LOAD`: an instruction slot, the offsets of
/// its file name and source line in the BTF string table, and `line << 10 | column`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LineInfoRec {
    pub(crate) insn_off: u32,
    pub(crate) file_name_off: u32,
    pub(crate) line_off: u32,
    pub(crate) line_col: u32,
}

/// The `BPF_PROG_TEST_RUN` member (`test`) of `union bpf_attr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    /// Explicit tail padding (the union is 8-byte aligned).
    _pad: u32,
}

// The layouts must match the kernel's byte for byte.
const _: () = {
    assert!(offset_of!(MapCreateAttr, map_name) == 28);
    assert!(offset_of!(MapCreateAttr, map_ifindex) == 44);
    assert!(offset_of!(MapCreateAttr, map_extra) == 64);
    assert!(offset_of!(MapCreateAttr, map_token_fd) == 76);
    assert!(size_of::<MapCreateAttr>() == 80);
    assert!(offset_of!(MapElemAttr, key) == 8);
    assert!(offset_of!(MapElemAttr, value) == 16);
    assert!(offset_of!(MapElemAttr, flags) == 24);
    assert!(size_of::<MapElemAttr>() == 32);
    assert!(offset_of!(ProgLoadAttr, insns) == 8);
    assert!(offset_of!(ProgLoadAttr, log_level) == 24);
    assert!(offset_of!(ProgLoadAttr, log_buf) == 32);
    assert!(offset_of!(ProgLoadAttr, prog_name) == 48);
    assert!(offset_of!(ProgLoadAttr, func_info) == 80);
    assert!(offset_of!(ProgLoadAttr, line_info) == 96);
    assert!(offset_of!(ProgLoadAttr, fd_array) == 120);
    assert!(offset_of!(ProgLoadAttr, log_true_size) == 140);
    assert!(offset_of!(ProgLoadAttr, fd_array_cnt) == 148);
    assert!(size_of::<ProgLoadAttr>() == 152);
    assert!(offset_of!(TestRunAttr, data_in) == 16);
    assert!(offset_of!(TestRunAttr, repeat) == 32);
    assert!(offset_of!(TestRunAttr, ctx_in) == 48);
    assert!(offset_of!(TestRunAttr, batch_size) == 72);
    assert!(size_of::<TestRunAttr>() == 80);
    assert!(offset_of!(BtfLoadAttr, btf_size) == 16);
    assert!(offset_of!(BtfLoadAttr, btf_log_true_size) == 28);
    assert!(offset_of!(BtfLoadAttr, btf_token_fd) == 36);
    assert!(size_of::<BtfLoadAttr>() == 40);
    assert!(size_of::<FuncInfoRec>() == 8);
    assert!(size_of::<LineInfoRec>() == 16);
};

/// Attribute structs that may be handed to bpf(2).
///
/// # Safety
///
/// Implementors must be `#[repr(C)]` plain old data without implicit padding, laid out as a
/// member of the kernel's `union bpf_attr`.
unsafe trait Attr: Copy {}

// SAFETY: all five are #[repr(C)] structs of integers with explicit padding fields, checked
// against the uapi offsets and sizes by the const assertions above.
unsafe impl Attr for MapCreateAttr {}
// SAFETY: as above.
unsafe impl Attr for BtfLoadAttr {}
// SAFETY: as above.
unsafe impl Attr for MapElemAttr {}
// SAFETY: as above.
unsafe impl Attr for ProgLoadAttr {}
// SAFETY: as above.
unsafe impl Attr for TestRunAttr {}

/// A user pointer as the kernel's `__aligned_u64` fields take it.
fn ptr(p: *const u8) -> u64 {
    p as usize as u64
}

/// Calls bpf(`cmd`, `attr`, sizeof(attr)), retrying on `EINTR` and (a few times) `EAGAIN`, the
/// way libbpf does. Returns the call's non-negative result, or the errno.
///
/// # Safety
///
/// Every user pointer inside `attr` must be valid for the reads and writes command `cmd` does
/// through it (with the lengths given in `attr`), for the duration of the call.
unsafe fn bpf<A: Attr>(cmd: u32, attr: &mut A) -> Result<libc::c_long, i32> {
    let mut again = 0;
    loop {
        // SAFETY: `attr` is a live, exclusively borrowed, fully initialised `A` of exactly
        // `size_of::<A>()` bytes (Attr guarantees a uapi layout without implicit padding), so
        // the kernel may read it and write back its output fields, all of which lie inside
        // the struct. The pointers inside it are valid per this function's contract.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                libc::c_long::from(cmd as i32),
                attr as *mut A,
                size_of::<A>() as libc::c_long,
            )
        };
        if ret >= 0 {
            return Ok(ret);
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        match errno {
            libc::EINTR => {}
            libc::EAGAIN if again < 5 => again += 1,
            _ => return Err(errno),
        }
    }
}

/// Wraps a file descriptor that bpf(2) just returned.
fn owned_fd(ret: libc::c_long) -> Result<OwnedFd, SysError> {
    let fd = RawFd::try_from(ret).map_err(|_| SysError::errno(libc::EOVERFLOW))?;
    // SAFETY: a non-negative result of BPF_MAP_CREATE, BPF_PROG_LOAD or BPF_BTF_LOAD is a new
    // file descriptor that nothing else in this process owns; OwnedFd takes sole ownership and
    // closes it exactly once, on drop.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What BPF_MAP_CREATE needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapParams<'a> {
    pub(crate) map_type: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) flags: u32,
    pub(crate) inner_map_fd: Option<RawFd>,
    /// The BTF object and the key and value type ids in it (0 for none).
    pub(crate) btf: Option<(BorrowedFd<'a>, u32, u32)>,
    pub(crate) name: [u8; OBJ_NAME_LEN],
    /// Bytes the kernel copies for one value through the syscall (per-CPU maps: all CPUs).
    pub(crate) value_buf: usize,
}

/// The `key` pointer of a map element command: null for maps without keys (queue, stack,
/// bloom filter), which the kernel requires (an empty slice's dangling pointer is not null).
fn key_ptr(key: &[u8]) -> u64 {
    if key.is_empty() { 0 } else { ptr(key.as_ptr()) }
}

/// A map file descriptor with the sizes it was created with.
#[derive(Debug)]
pub(crate) struct MapHandle {
    fd: OwnedFd,
    key_size: u32,
    value_size: u32,
    value_buf: usize,
}

/// BPF_MAP_CREATE.
pub(crate) fn map_create(p: &MapParams<'_>) -> Result<MapHandle, SysError> {
    let mut attr = MapCreateAttr {
        map_type: p.map_type,
        key_size: p.key_size,
        value_size: p.value_size,
        max_entries: p.max_entries,
        map_flags: p.flags,
        inner_map_fd: p.inner_map_fd.map_or(0, |fd| fd as u32),
        map_name: p.name,
        ..MapCreateAttr::default()
    };
    if let Some((btf, key, value)) = p.btf {
        attr.btf_fd = btf.as_raw_fd() as u32;
        attr.btf_key_type_id = key;
        attr.btf_value_type_id = value;
    }
    // SAFETY: MapCreateAttr holds no pointers (the name is inline; inner_map_fd and btf_fd are
    // descriptor numbers, which the kernel looks up and checks itself).
    let ret = unsafe { bpf(BPF_MAP_CREATE, &mut attr) }.map_err(SysError::errno)?;
    Ok(MapHandle {
        fd: owned_fd(ret)?,
        key_size: p.key_size,
        value_size: p.value_size,
        value_buf: p.value_buf,
    })
}

impl MapHandle {
    /// The map's file descriptor number (valid while `self` lives).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The map's file descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Key size in bytes.
    pub(crate) fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes.
    pub(crate) fn value_size(&self) -> u32 {
        self.value_size
    }

    /// Bytes of one value as the syscall copies it (all CPUs for per-CPU maps).
    pub(crate) fn value_buf(&self) -> usize {
        self.value_buf
    }

    /// BPF_MAP_LOOKUP_ELEM into `value`. Panics if the buffers do not have the map's sizes.
    pub(crate) fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), SysError> {
        assert_eq!(key.len(), self.key_size as usize, "key buffer size");
        assert_eq!(value.len(), self.value_buf, "value buffer size");
        let mut attr = MapElemAttr {
            map_fd: self.raw_fd() as u32,
            key: key_ptr(key),
            value: ptr(value.as_mut_ptr()),
            ..MapElemAttr::default()
        };
        // SAFETY: the kernel reads key_size bytes from `key` and writes the map's syscall value
        // size (value_buf: value_size, or round_up(value_size, 8) * possible CPUs for per-CPU
        // maps) to `value`; both slices have exactly those lengths (asserted above) and are
        // borrowed for the whole call.
        unsafe { bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) }.map(drop).map_err(SysError::errno)
    }

    /// BPF_MAP_UPDATE_ELEM with `flags` (`BPF_ANY` = 0). Panics if the buffers do not have
    /// the map's sizes.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), SysError> {
        assert_eq!(key.len(), self.key_size as usize, "key buffer size");
        assert_eq!(value.len(), self.value_buf, "value buffer size");
        let mut attr = MapElemAttr {
            map_fd: self.raw_fd() as u32,
            key: key_ptr(key),
            value: ptr(value.as_ptr()),
            flags,
            ..MapElemAttr::default()
        };
        // SAFETY: the kernel only reads key_size bytes from `key` (null when that is 0) and the syscall value size
        // from `value`; both slices have exactly those lengths and outlive the call.
        unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }.map(drop).map_err(SysError::errno)
    }

    /// BPF_MAP_DELETE_ELEM. Panics if the key does not have the map's key size.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), SysError> {
        assert_eq!(key.len(), self.key_size as usize, "key buffer size");
        let mut attr = MapElemAttr {
            map_fd: self.raw_fd() as u32,
            key: key_ptr(key),
            ..MapElemAttr::default()
        };
        // SAFETY: the kernel reads key_size bytes from `key`, which has that length and
        // outlives the call.
        unsafe { bpf(BPF_MAP_DELETE_ELEM, &mut attr) }.map(drop).map_err(SysError::errno)
    }

    /// BPF_MAP_GET_NEXT_KEY after `key` (the first key for `None`) into `next`. Panics if the
    /// buffers do not have the map's key size.
    pub(crate) fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), SysError> {
        assert_eq!(next.len(), self.key_size as usize, "key buffer size");
        if let Some(k) = key {
            assert_eq!(k.len(), self.key_size as usize, "key buffer size");
        }
        let mut attr = MapElemAttr {
            map_fd: self.raw_fd() as u32,
            key: key.map_or(0, |k| ptr(k.as_ptr())),
            value: ptr(next.as_mut_ptr()),
            ..MapElemAttr::default()
        };
        // SAFETY: the kernel reads key_size bytes from `key` (or nothing when it is null) and
        // writes key_size bytes to `next`; both have that length and outlive the call.
        unsafe { bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) }.map(drop).map_err(SysError::errno)
    }

    /// BPF_MAP_FREEZE: programs may still read, user space can no longer write.
    pub(crate) fn freeze(&self) -> Result<(), SysError> {
        let mut attr = MapElemAttr { map_fd: self.raw_fd() as u32, ..MapElemAttr::default() };
        // SAFETY: BPF_MAP_FREEZE only reads map_fd; the attribute holds no pointer.
        unsafe { bpf(BPF_MAP_FREEZE, &mut attr) }.map(drop).map_err(SysError::errno)
    }
}

/// The BTF side of a BPF_PROG_LOAD: the program's BTF object and its func/line info records.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProgBtf<'a> {
    pub(crate) fd: BorrowedFd<'a>,
    pub(crate) func_info: &'a [FuncInfoRec],
    pub(crate) line_info: &'a [LineInfoRec],
}

/// What BPF_PROG_LOAD needs besides the verifier log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProgParams<'a> {
    pub(crate) prog_type: u32,
    pub(crate) expected_attach_type: u32,
    /// `prog_flags` (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`, ...).
    pub(crate) flags: u32,
    /// The instructions, encoded little-endian, 8 bytes per slot.
    pub(crate) insns: &'a [u8],
    pub(crate) license: &'a CStr,
    pub(crate) name: [u8; OBJ_NAME_LEN],
    pub(crate) btf: Option<ProgBtf<'a>>,
    /// `attach_btf_id`: the kernel BTF id of the attach target (tracing programs).
    pub(crate) attach_btf_id: u32,
    /// `kern_version` (kprobe programs of old kernels checked it).
    pub(crate) kern_version: u32,
}

/// BPF_PROG_LOAD of `p.insns`, with the verifier log written to `log` at `log_level` when
/// given. On failure the size hint is the kernel's `log_true_size`.
pub(crate) fn prog_load(
    p: &ProgParams<'_>,
    log: Option<(u32, &mut [u8])>,
) -> Result<OwnedFd, SysError> {
    assert_eq!(p.insns.len() % 8, 0, "instructions are 8-byte slots");
    let too_big = |_| SysError::errno(libc::E2BIG);
    let insn_cnt = u32::try_from(p.insns.len() / 8).map_err(too_big)?;
    let mut attr = ProgLoadAttr {
        prog_type: p.prog_type,
        expected_attach_type: p.expected_attach_type,
        prog_flags: p.flags,
        insn_cnt,
        insns: ptr(p.insns.as_ptr()),
        license: ptr(p.license.as_ptr().cast()),
        prog_name: p.name,
        attach_btf_id: p.attach_btf_id,
        kern_version: p.kern_version,
        ..ProgLoadAttr::default()
    };
    if let Some(btf) = p.btf {
        attr.prog_btf_fd = btf.fd.as_raw_fd() as u32;
        if !btf.func_info.is_empty() {
            attr.func_info_rec_size = size_of::<FuncInfoRec>() as u32;
            attr.func_info_cnt = u32::try_from(btf.func_info.len()).map_err(too_big)?;
            attr.func_info = ptr(btf.func_info.as_ptr().cast());
        }
        if !btf.line_info.is_empty() {
            attr.line_info_rec_size = size_of::<LineInfoRec>() as u32;
            attr.line_info_cnt = u32::try_from(btf.line_info.len()).map_err(too_big)?;
            attr.line_info = ptr(btf.line_info.as_ptr().cast());
        }
    }
    if let Some((level, buf)) = log {
        attr.log_level = level;
        attr.log_size = u32::try_from(buf.len()).map_err(|_| SysError::errno(libc::EINVAL))?;
        attr.log_buf = ptr(buf.as_mut_ptr());
    }
    // SAFETY: the kernel reads insn_cnt * 8 bytes from `insns` (that is its length) and the
    // NUL-terminated `license` (a CStr); with BTF it reads func_info_cnt * func_info_rec_size
    // bytes from `func_info` and line_info_cnt * line_info_rec_size bytes from `line_info`,
    // which are the lengths in bytes of those two slices of #[repr(C)] records (null with a
    // zero count when empty); it writes at most log_size bytes (the length of `buf`) to
    // log_buf. It writes nothing through the other pointers. All slices are borrowed for the
    // whole call; fd_array and core_relos stay null.
    match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(ret) => owned_fd(ret),
        Err(errno) => Err(SysError { errno, size_hint: attr.log_true_size }),
    }
}

/// BPF_BTF_LOAD of the raw BTF blob `btf`, with the BTF verifier's log written to `log` at
/// `log_level` when given. On failure the size hint is the kernel's `btf_log_true_size`.
pub(crate) fn btf_load(btf: &[u8], log: Option<(u32, &mut [u8])>) -> Result<OwnedFd, SysError> {
    let mut attr = BtfLoadAttr {
        btf: ptr(btf.as_ptr()),
        btf_size: u32::try_from(btf.len()).map_err(|_| SysError::errno(libc::E2BIG))?,
        ..BtfLoadAttr::default()
    };
    if let Some((level, buf)) = log {
        attr.btf_log_level = level;
        attr.btf_log_size = u32::try_from(buf.len()).map_err(|_| SysError::errno(libc::EINVAL))?;
        attr.btf_log_buf = ptr(buf.as_mut_ptr());
    }
    // SAFETY: the kernel reads btf_size bytes (the length of `btf`) from `btf` and writes at
    // most btf_log_size bytes (the length of `buf`) to btf_log_buf, which is null when no log
    // is asked for; both slices are borrowed for the whole call. The only other output,
    // btf_log_true_size, lies inside the attribute.
    match unsafe { bpf(BPF_BTF_LOAD, &mut attr) } {
        Ok(ret) => owned_fd(ret),
        Err(errno) => Err(SysError { errno, size_hint: attr.btf_log_true_size }),
    }
}

/// What a successful BPF_PROG_TEST_RUN reported.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawRun {
    pub(crate) retval: u32,
    pub(crate) data_size_out: u32,
    pub(crate) ctx_size_out: u32,
    pub(crate) duration: u32,
}

/// BPF_PROG_TEST_RUN of program `prog` on `data_in`; the output packet goes to `data_out`
/// (at most its length). Syscall programs' test runs write the context back into `ctx_in`.
/// Empty buffers are passed as null pointers (raw_tp and syscall test runs refuse any data
/// pointer). On `ENOSPC` the size hint is the full output size.
pub(crate) fn prog_test_run(
    prog: BorrowedFd<'_>,
    data_in: &[u8],
    data_out: &mut [u8],
    ctx_in: Option<&mut [u8]>,
    ctx_out: &mut [u8],
    repeat: u32,
) -> Result<RawRun, SysError> {
    let too_big = |_| SysError::errno(libc::E2BIG);
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: u32::try_from(data_in.len()).map_err(too_big)?,
        repeat,
        ..TestRunAttr::default()
    };
    if !data_in.is_empty() {
        attr.data_in = ptr(data_in.as_ptr());
    }
    // Without a size hint the kernel would copy the whole output, so an empty buffer is
    // passed as "no output wanted" (null pointer).
    if !data_out.is_empty() {
        attr.data_size_out = u32::try_from(data_out.len()).map_err(too_big)?;
        attr.data_out = ptr(data_out.as_mut_ptr());
    }
    if let Some(ctx) = ctx_in {
        attr.ctx_size_in = u32::try_from(ctx.len()).map_err(too_big)?;
        attr.ctx_in = ptr(ctx.as_mut_ptr());
    }
    if !ctx_out.is_empty() {
        attr.ctx_size_out = u32::try_from(ctx_out.len()).map_err(too_big)?;
        attr.ctx_out = ptr(ctx_out.as_mut_ptr());
    }
    // SAFETY: the kernel reads data_size_in bytes from `data_in` (its length; null when
    // empty) and ctx_size_in bytes from `ctx_in` (its length), and for BPF_PROG_TYPE_SYSCALL
    // writes ctx_size_in bytes back to ctx_in, which is why `ctx_in` is exclusively borrowed.
    // It copies at most data_size_out bytes (the length of `data_out`, clamped by the kernel
    // since the size hint is non-zero) to data_out, which is null when the buffer is empty;
    // likewise at most ctx_size_out bytes (the length of `ctx_out`) to ctx_out, null when
    // empty. All slices are borrowed for the whole call.
    match unsafe { bpf(BPF_PROG_TEST_RUN, &mut attr) } {
        Ok(_) => Ok(RawRun {
            retval: attr.retval,
            data_size_out: attr.data_size_out,
            ctx_size_out: attr.ctx_size_out,
            duration: attr.duration,
        }),
        Err(errno) => Err(SysError { errno, size_hint: attr.data_size_out }),
    }
}
