//! The BTF type model: one [`BtfType`] per type id, decoded from `struct btf_type` and the
//! kind-specific data that follows it (see the kernel's `include/uapi/linux/btf.h`).

use std::fmt;

/// The kind of a BTF type (`BTF_KIND_*`); `Void` is kind 0, used only for type id 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BtfKind {
    /// Type id 0, `void` (`BTF_KIND_UNKN`).
    Void = 0,
    /// Integer (`BTF_KIND_INT`).
    Int = 1,
    /// Pointer.
    Ptr = 2,
    /// Array.
    Array = 3,
    /// Struct.
    Struct = 4,
    /// Union.
    Union = 5,
    /// Enum with values of up to 32 bits.
    Enum = 6,
    /// Forward declaration of a struct or union.
    Fwd = 7,
    /// Typedef.
    Typedef = 8,
    /// `volatile` modifier.
    Volatile = 9,
    /// `const` modifier.
    Const = 10,
    /// `restrict` modifier.
    Restrict = 11,
    /// Function (name and linkage, pointing at a `FuncProto`).
    Func = 12,
    /// Function prototype.
    FuncProto = 13,
    /// Variable.
    Var = 14,
    /// Data section (`.data`, `.bss`, `.maps`, ...).
    Datasec = 15,
    /// Floating point type.
    Float = 16,
    /// Declaration tag (`btf_decl_tag` attribute).
    DeclTag = 17,
    /// Type tag (`btf_type_tag` attribute).
    TypeTag = 18,
    /// Enum with 64-bit values.
    Enum64 = 19,
}

impl BtfKind {
    /// The kind for a raw `BTF_INFO_KIND` value, if known.
    pub fn from_raw(kind: u32) -> Option<BtfKind> {
        use BtfKind::*;
        Some(match kind {
            0 => Void,
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// Lower-case name as libbpf prints it (`"struct"`, `"func_proto"`, ...).
    pub fn as_str(self) -> &'static str {
        use BtfKind::*;
        match self {
            Void => "void",
            Int => "int",
            Ptr => "ptr",
            Array => "array",
            Struct => "struct",
            Union => "union",
            Enum => "enum",
            Fwd => "fwd",
            Typedef => "typedef",
            Volatile => "volatile",
            Const => "const",
            Restrict => "restrict",
            Func => "func",
            FuncProto => "func_proto",
            Var => "var",
            Datasec => "datasec",
            Float => "float",
            DeclTag => "decl_tag",
            TypeTag => "type_tag",
            Enum64 => "enum64",
        }
    }
}

impl fmt::Display for BtfKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Linkage values of `Func` and `Var` types.
pub mod linkage {
    /// `static` function or variable.
    pub const STATIC: u32 = 0;
    /// Global function, or global variable allocated in this object.
    pub const GLOBAL: u32 = 1;
    /// `extern` function or variable.
    pub const EXTERN: u32 = 2;
}

/// An integer type (`BTF_KIND_INT` and its trailing encoding word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Int {
    /// Offset of the name in the string section.
    pub name_off: u32,
    /// Size in bytes.
    pub size: u32,
    /// Encoding bits: [`Int::SIGNED`], [`Int::CHAR`], [`Int::BOOL`].
    pub encoding: u8,
    /// Bit offset of the value inside the storage (legacy bitfield ints; normally 0).
    pub offset: u8,
    /// Number of value bits.
    pub bits: u8,
}

impl Int {
    /// Encoding bit: signed integer.
    pub const SIGNED: u8 = 1 << 0;
    /// Encoding bit: character.
    pub const CHAR: u8 = 1 << 1;
    /// Encoding bit: boolean.
    pub const BOOL: u8 = 1 << 2;

    /// Whether the integer is signed.
    pub fn is_signed(&self) -> bool {
        self.encoding & Self::SIGNED != 0
    }

    /// Whether the integer is a character type.
    pub fn is_char(&self) -> bool {
        self.encoding & Self::CHAR != 0
    }

    /// Whether the integer is a boolean.
    pub fn is_bool(&self) -> bool {
        self.encoding & Self::BOOL != 0
    }
}

/// An array type (`struct btf_array`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    /// Element type id.
    pub elem_type: u32,
    /// Index type id.
    pub index_type: u32,
    /// Number of elements.
    pub nelems: u32,
}

/// One member of a struct or union (`struct btf_member`, bitfield info decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Offset of the name in the string section (0 for anonymous members).
    pub name_off: u32,
    /// Member type id.
    pub type_id: u32,
    /// Bit offset from the start of the enclosing struct/union.
    pub bit_offset: u32,
    /// Bitfield width in bits, 0 if the member is not a bitfield.
    pub bitfield_size: u32,
}

/// A struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composite {
    /// Offset of the name in the string section (0 for anonymous).
    pub name_off: u32,
    /// Size in bytes.
    pub size: u32,
    /// Members in declaration order.
    pub members: Vec<Member>,
}

/// One enumerator of an enum or enum64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    /// Offset of the name in the string section.
    pub name_off: u32,
    /// Value: sign-extended for signed enums, zero-extended otherwise (an unsigned enum64
    /// value above `i64::MAX` is stored as its two's complement bit pattern).
    pub value: i64,
}

/// An enum (`BTF_KIND_ENUM`, 32-bit values) or enum64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enum {
    /// Offset of the name in the string section (0 for anonymous).
    pub name_off: u32,
    /// Size in bytes.
    pub size: u32,
    /// Whether the values are signed (the `kind_flag`).
    pub signed: bool,
    /// The enumerators.
    pub values: Vec<EnumValue>,
}

/// One parameter of a function prototype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Offset of the name in the string section (0 when unnamed).
    pub name_off: u32,
    /// Parameter type id (0 for a trailing `...`).
    pub type_id: u32,
}

/// One variable of a data section (`struct btf_var_secinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarSecInfo {
    /// Type id of the `Var` (or `Func` for extern functions in `.ksyms`).
    pub type_id: u32,
    /// Byte offset inside the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// A data section (`BTF_KIND_DATASEC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datasec {
    /// Offset of the section name in the string section.
    pub name_off: u32,
    /// Section size in bytes (0 in clang's object files until a loader fixes it up).
    pub size: u32,
    /// The variables in the section.
    pub vars: Vec<VarSecInfo>,
}

/// One decoded BTF type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfType {
    /// Type id 0.
    Void,
    /// Integer.
    Int(Int),
    /// Pointer to `type_id`.
    Ptr {
        /// Pointee type id.
        type_id: u32,
    },
    /// Array.
    Array(Array),
    /// Struct.
    Struct(Composite),
    /// Union.
    Union(Composite),
    /// Enum with values up to 32 bits.
    Enum(Enum),
    /// Forward declaration.
    Fwd {
        /// Offset of the name in the string section.
        name_off: u32,
        /// Whether it declares a union (else a struct).
        is_union: bool,
    },
    /// Typedef.
    Typedef {
        /// Offset of the name in the string section.
        name_off: u32,
        /// Aliased type id.
        type_id: u32,
    },
    /// `volatile` modifier.
    Volatile {
        /// Modified type id.
        type_id: u32,
    },
    /// `const` modifier.
    Const {
        /// Modified type id.
        type_id: u32,
    },
    /// `restrict` modifier.
    Restrict {
        /// Modified type id.
        type_id: u32,
    },
    /// Function.
    Func {
        /// Offset of the name in the string section.
        name_off: u32,
        /// Type id of its `FuncProto`.
        type_id: u32,
        /// Linkage, see [`linkage`].
        linkage: u32,
    },
    /// Function prototype.
    FuncProto {
        /// Return type id (0 for void).
        ret_type: u32,
        /// Parameters.
        params: Vec<Param>,
    },
    /// Variable.
    Var {
        /// Offset of the name in the string section.
        name_off: u32,
        /// Variable type id.
        type_id: u32,
        /// Linkage, see [`linkage`].
        linkage: u32,
    },
    /// Data section.
    Datasec(Datasec),
    /// Floating point type.
    Float {
        /// Offset of the name in the string section.
        name_off: u32,
        /// Size in bytes.
        size: u32,
    },
    /// Declaration tag.
    DeclTag {
        /// Offset of the tag string in the string section.
        name_off: u32,
        /// Tagged type id.
        type_id: u32,
        /// Member/parameter index tagged, or -1 for the type itself.
        component_idx: i32,
    },
    /// Type tag.
    TypeTag {
        /// Offset of the tag string in the string section.
        name_off: u32,
        /// Tagged type id.
        type_id: u32,
    },
    /// Enum with 64-bit values.
    Enum64(Enum),
}

impl BtfType {
    /// The kind of this type.
    pub fn kind(&self) -> BtfKind {
        match self {
            BtfType::Void => BtfKind::Void,
            BtfType::Int(_) => BtfKind::Int,
            BtfType::Ptr { .. } => BtfKind::Ptr,
            BtfType::Array(_) => BtfKind::Array,
            BtfType::Struct(_) => BtfKind::Struct,
            BtfType::Union(_) => BtfKind::Union,
            BtfType::Enum(_) => BtfKind::Enum,
            BtfType::Fwd { .. } => BtfKind::Fwd,
            BtfType::Typedef { .. } => BtfKind::Typedef,
            BtfType::Volatile { .. } => BtfKind::Volatile,
            BtfType::Const { .. } => BtfKind::Const,
            BtfType::Restrict { .. } => BtfKind::Restrict,
            BtfType::Func { .. } => BtfKind::Func,
            BtfType::FuncProto { .. } => BtfKind::FuncProto,
            BtfType::Var { .. } => BtfKind::Var,
            BtfType::Datasec(_) => BtfKind::Datasec,
            BtfType::Float { .. } => BtfKind::Float,
            BtfType::DeclTag { .. } => BtfKind::DeclTag,
            BtfType::TypeTag { .. } => BtfKind::TypeTag,
            BtfType::Enum64(_) => BtfKind::Enum64,
        }
    }

    /// Offset of the type's name in the string section (0 if it has none).
    pub fn name_off(&self) -> u32 {
        match self {
            BtfType::Int(Int { name_off, .. })
            | BtfType::Struct(Composite { name_off, .. })
            | BtfType::Union(Composite { name_off, .. })
            | BtfType::Enum(Enum { name_off, .. })
            | BtfType::Enum64(Enum { name_off, .. })
            | BtfType::Datasec(Datasec { name_off, .. })
            | BtfType::Fwd { name_off, .. }
            | BtfType::Typedef { name_off, .. }
            | BtfType::Func { name_off, .. }
            | BtfType::Var { name_off, .. }
            | BtfType::Float { name_off, .. }
            | BtfType::DeclTag { name_off, .. }
            | BtfType::TypeTag { name_off, .. } => *name_off,
            BtfType::Void
            | BtfType::Ptr { .. }
            | BtfType::Array(_)
            | BtfType::Volatile { .. }
            | BtfType::Const { .. }
            | BtfType::Restrict { .. }
            | BtfType::FuncProto { .. } => 0,
        }
    }

    /// The single type this one refers to (pointee, alias, modified, array element, var or
    /// func type, tagged type); `None` for kinds without one.
    pub fn ref_type_id(&self) -> Option<u32> {
        match self {
            BtfType::Ptr { type_id }
            | BtfType::Typedef { type_id, .. }
            | BtfType::Volatile { type_id }
            | BtfType::Const { type_id }
            | BtfType::Restrict { type_id }
            | BtfType::Func { type_id, .. }
            | BtfType::Var { type_id, .. }
            | BtfType::DeclTag { type_id, .. }
            | BtfType::TypeTag { type_id, .. } => Some(*type_id),
            BtfType::Array(a) => Some(a.elem_type),
            _ => None,
        }
    }

    /// Every type id this type mentions (members, params, vars, index type, ...).
    pub fn referenced_ids(&self) -> Vec<u32> {
        match self {
            BtfType::Array(a) => vec![a.elem_type, a.index_type],
            BtfType::Struct(c) | BtfType::Union(c) => c.members.iter().map(|m| m.type_id).collect(),
            BtfType::FuncProto { ret_type, params } => {
                std::iter::once(*ret_type).chain(params.iter().map(|p| p.type_id)).collect()
            }
            BtfType::Datasec(d) => d.vars.iter().map(|v| v.type_id).collect(),
            other => other.ref_type_id().into_iter().collect(),
        }
    }

    /// The size stored in the type itself, for kinds that have one (int, struct, union,
    /// enum, enum64, datasec, float).
    pub fn own_size(&self) -> Option<u32> {
        match self {
            BtfType::Int(i) => Some(i.size),
            BtfType::Struct(c) | BtfType::Union(c) => Some(c.size),
            BtfType::Enum(e) | BtfType::Enum64(e) => Some(e.size),
            BtfType::Datasec(d) => Some(d.size),
            BtfType::Float { size, .. } => Some(*size),
            _ => None,
        }
    }

    /// The struct or union, if this is one.
    pub fn as_composite(&self) -> Option<&Composite> {
        match self {
            BtfType::Struct(c) | BtfType::Union(c) => Some(c),
            _ => None,
        }
    }

    /// The enum or enum64, if this is one.
    pub fn as_enum(&self) -> Option<&Enum> {
        match self {
            BtfType::Enum(e) | BtfType::Enum64(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a struct or a union.
    pub fn is_composite(&self) -> bool {
        matches!(self, BtfType::Struct(_) | BtfType::Union(_))
    }

    /// Whether this is an enum or enum64.
    pub fn is_any_enum(&self) -> bool {
        matches!(self, BtfType::Enum(_) | BtfType::Enum64(_))
    }

    /// Whether this is a modifier (const, volatile, restrict, type tag) or a typedef.
    pub fn is_mod_or_typedef(&self) -> bool {
        matches!(
            self,
            BtfType::Const { .. }
                | BtfType::Volatile { .. }
                | BtfType::Restrict { .. }
                | BtfType::TypeTag { .. }
                | BtfType::Typedef { .. }
        )
    }

    /// Number of members / enumerators / params / vars (the header's `vlen`), else 0.
    pub fn vlen(&self) -> usize {
        match self {
            BtfType::Struct(c) | BtfType::Union(c) => c.members.len(),
            BtfType::Enum(e) | BtfType::Enum64(e) => e.values.len(),
            BtfType::FuncProto { params, .. } => params.len(),
            BtfType::Datasec(d) => d.vars.len(),
            _ => 0,
        }
    }
}
