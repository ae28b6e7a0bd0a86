//! WGSL compilation: naga parses and validates the source (so an error is a
//! typed [`DeviceError::Shader`] with naga's message and the line, never a
//! wgpu panic), then reflection turns the module's bindings into the
//! kernel's parameter list.
//!
//! The launch convention every WGSL kernel of this crate follows:
//! - argument `i` of a launch is `@group(0) @binding(i)`; the bindings of
//!   group 0 are exactly `0..n` (no gaps, no other group);
//! - a `var<storage, read>` binding takes a read-only buffer argument, a
//!   `var<storage, read_write>` one a writable buffer argument, and a
//!   `var<uniform>` binding of a scalar type (`u32`, `i32`, `f32`, `f64`,
//!   or `vec2<u32>` / `vec2<i32>` for a 64-bit integer) takes a scalar
//!   argument of that type;
//! - the entry point's workgroup size is either literal (the launch's block
//!   must equal it) or uses the pipeline-overridable constants `block_x`,
//!   `block_y`, `block_z`, which the launch sets from its block (one
//!   pipeline is built and kept per block shape).
//!
//! Invariant: a module that passes [`reflect`] has a parameter list that
//! matches its bindings one to one, so a launch checked against the list
//! can never make wgpu see a binding it does not declare or miss one it
//! needs.

use std::borrow::Cow;

use naga::valid::{Capabilities, ValidationFlags, Validator};

use crate::device::error::{DeviceError, DeviceResult};

/// What [`WgpuBackend::compile`](super::WgpuBackend) takes: WGSL source and
/// the entry point to build.
///
/// ```
/// use dotcompute::device::wgpu::WgslSource;
/// let src = WgslSource::new("double", "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n\
///     @compute @workgroup_size(64) fn double(@builtin(global_invocation_id) g: vec3<u32>) {\n\
///         if (g.x < arrayLength(&v)) { v[g.x] = 2.0 * v[g.x]; }\n\
///     }", "double");
/// assert_eq!(src.entry, "double");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgslSource {
    /// The shader's name, for messages.
    pub name: String,
    /// The WGSL text.
    pub source: Cow<'static, str>,
    /// The `@compute` entry point.
    pub entry: String,
    /// The same kernel written without `f64`, for adapters that lack
    /// `SHADER_F64` (a shipped kernel that has one states its precision).
    pub f32_fallback: Option<Cow<'static, str>>,
}

impl WgslSource {
    /// A source with one entry point.
    pub fn new(name: impl Into<String>, source: impl Into<Cow<'static, str>>, entry: impl Into<String>) -> Self {
        WgslSource {
            name: name.into(),
            source: source.into(),
            entry: entry.into(),
            f32_fallback: None,
        }
    }
}

/// How a launch argument binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `var<storage, read>`: a read-only buffer.
    StorageRead,
    /// `var<storage, read_write>`: a writable buffer.
    StorageReadWrite,
    /// `var<uniform>` of a scalar: a scalar argument.
    Uniform,
}

/// The WGSL type of a parameter, as far as a launch checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WgslType {
    /// `u32`
    U32,
    /// `i32`
    I32,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `vec2<u32>`: 64 bits, low word first: a `u64`, or an `f64` that a
    /// kernel without f64 reads as its bits.
    U64Pair,
    /// `vec2<i32>`: a 64-bit signed integer, low word first.
    I64Pair,
    /// Anything else (a struct, a vector): checked by size only.
    Other,
}

impl WgslType {
    fn name(self) -> &'static str {
        match self {
            WgslType::U32 => "u32",
            WgslType::I32 => "i32",
            WgslType::F32 => "f32",
            WgslType::F64 => "f64",
            WgslType::U64Pair => "vec2<u32>",
            WgslType::I64Pair => "vec2<i32>",
            WgslType::Other => "a composite type",
        }
    }

    /// Whether a Rust element or scalar type called `rust` (as
    /// [`ScalarType::NAME`](crate::device::ScalarType::NAME) or a Pod type
    /// name) may stand for this WGSL type.
    pub(crate) fn accepts(self, rust: &str) -> bool {
        match self {
            WgslType::U32 => rust == "u32",
            WgslType::I32 => rust == "i32",
            WgslType::F32 => rust == "f32",
            WgslType::F64 => rust == "f64",
            WgslType::U64Pair => rust == "u64" || rust == "f64",
            WgslType::I64Pair => rust == "i64",
            WgslType::Other => true,
        }
    }
}

impl std::fmt::Display for WgslType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One parameter of a WGSL kernel (one binding of group 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgslParam {
    /// The variable's name.
    pub name: String,
    /// How it binds.
    pub kind: ParamKind,
    /// For a buffer: the element type of its array (or the whole type); for
    /// a uniform: the scalar's type.
    pub ty: WgslType,
    /// For a buffer: the array's element stride in bytes (or the type's
    /// size); for a uniform: the scalar's size.
    pub elem_size: u32,
}

/// What reflection found about a compiled module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reflection {
    /// Parameters in binding order.
    pub params: Vec<WgslParam>,
    /// The literal workgroup size (for dimensions set by an override, its
    /// default).
    pub workgroup_size: [u32; 3],
    /// Which dimensions are set by the overrides `block_x`, `block_y`, `block_z`.
    pub block_overrides: [bool; 3],
    /// Whether the module uses `f64`.
    pub uses_f64: bool,
}

/// naga's location of a span as (line, column), 1-based.
fn location(span: naga::Span, source: &str) -> (Option<u32>, Option<u32>) {
    if span.is_defined() {
        let loc = span.location(source);
        (Some(loc.line_number), Some(loc.line_position))
    } else {
        (None, None)
    }
}

fn shader_error(name: &str, line: Option<u32>, column: Option<u32>, message: String) -> DeviceError {
    DeviceError::Shader {
        name: name.to_string(),
        line,
        column,
        message,
    }
}

/// Parses and validates `source` for a device with (`f64`) or without
/// `SHADER_F64`, and reflects entry point `entry`'s parameters.
///
/// # Errors
///
/// [`DeviceError::Shader`] with naga's message and the line for a syntax
/// or validation error, or for bindings that break the launch convention
/// of the [module docs](self); [`DeviceError::EntryNotFound`] when `entry`
/// is not a compute entry point of the module.
pub fn reflect(name: &str, source: &str, entry: &str, f64: bool) -> DeviceResult<(naga::Module, Reflection)> {
    // naga's parser recurses; shaders from users may nest deeply. Parse on
    // the caller's stack (8 MiB main thread, 2 MiB others is plenty for our
    // sizes; naga has its own recursion limit and errors out above it).
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        let (line, column) = e
            .location(source)
            .map_or((None, None), |l| (Some(l.line_number), Some(l.line_position)));
        shader_error(name, line, column, e.emit_to_string_with_path(source, name))
    })?;
    let mut caps = Capabilities::empty();
    if f64 {
        caps |= Capabilities::FLOAT64;
    }
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| {
            let (line, column) = e
                .spans()
                .next()
                .map_or((None, None), |(span, _)| location(*span, source));
            let mut message = e.emit_to_string_with_path(source, name);
            if !f64 && uses_f64(&module) {
                message = format!(
                    "the shader uses f64, which this adapter does not support (no SHADER_F64 feature)\n{message}"
                );
            }
            shader_error(name, line, column, message)
        })?;
    let _ = info;
    let ep = module
        .entry_points
        .iter()
        .find(|ep| ep.name == entry && ep.stage == naga::ShaderStage::Compute)
        .ok_or_else(|| DeviceError::EntryNotFound {
            module: name.to_string(),
            entry: entry.to_string(),
        })?;

    let mut block_overrides = [false; 3];
    if let Some(overrides) = &ep.workgroup_size_overrides {
        for (d, o) in overrides.iter().enumerate() {
            let Some(expr) = o else { continue };
            let named = match module.global_expressions[*expr] {
                naga::Expression::Override(h) => module.overrides[h].name.clone(),
                _ => None,
            };
            let want = ["block_x", "block_y", "block_z"][d];
            if named.as_deref() != Some(want) {
                return Err(shader_error(
                    name,
                    None,
                    None,
                    format!(
                        "entry point '{entry}': workgroup size dimension {d} must be a literal or the override \
                         `{want}` (found {})",
                        named.map_or_else(|| "an expression".to_string(), |n| format!("`{n}`"))
                    ),
                ));
            }
            block_overrides[d] = true;
        }
    }

    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| shader_error(name, None, None, format!("cannot lay out the shader's types: {e}")))?;

    let mut params: Vec<(u32, WgslParam)> = Vec::new();
    for (_, var) in module.global_variables.iter() {
        let Some(binding) = &var.binding else { continue };
        let var_name = var
            .name
            .clone()
            .unwrap_or_else(|| format!("binding {}", binding.binding));
        let (line, column) = (None, None);
        if binding.group != 0 {
            return Err(shader_error(
                name,
                line,
                column,
                format!(
                    "'{var_name}' is in @group({}); kernels bind their arguments in @group(0) only",
                    binding.group
                ),
            ));
        }
        let kind = match var.space {
            naga::AddressSpace::Storage { access } => {
                if access.contains(naga::StorageAccess::STORE) {
                    ParamKind::StorageReadWrite
                } else {
                    ParamKind::StorageRead
                }
            }
            naga::AddressSpace::Uniform => ParamKind::Uniform,
            _ => {
                return Err(shader_error(
                    name,
                    line,
                    column,
                    format!("'{var_name}' binds a texture or sampler; kernels take buffers and scalars only"),
                ))
            }
        };
        let (ty, elem_size) = element_of(&module, &layouter, var.ty);
        if kind == ParamKind::Uniform && ty == WgslType::Other {
            return Err(shader_error(
                name,
                line,
                column,
                format!(
                    "uniform '{var_name}' must be a scalar (u32, i32, f32, f64) or vec2<u32>/vec2<i32> for a \
                     64-bit integer"
                ),
            ));
        }
        params.push((
            binding.binding,
            WgslParam {
                name: var_name,
                kind,
                ty,
                elem_size,
            },
        ));
    }
    params.sort_by_key(|(b, _)| *b);
    for (i, (b, p)) in params.iter().enumerate() {
        if *b as usize != i {
            return Err(shader_error(
                name,
                None,
                None,
                format!(
                    "'{}' is @binding({b}) but the bindings of a kernel must be 0..{} without gaps or repeats \
                     (argument i is @binding(i))",
                    p.name,
                    params.len()
                ),
            ));
        }
    }
    let uses_f64 = uses_f64(&module);
    let reflection = Reflection {
        params: params.into_iter().map(|(_, p)| p).collect(),
        workgroup_size: ep.workgroup_size,
        block_overrides,
        uses_f64,
    };
    Ok((module, reflection))
}

fn scalar_type(s: naga::Scalar) -> WgslType {
    match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => WgslType::U32,
        (naga::ScalarKind::Sint, 4) => WgslType::I32,
        (naga::ScalarKind::Float, 4) => WgslType::F32,
        (naga::ScalarKind::Float, 8) => WgslType::F64,
        _ => WgslType::Other,
    }
}

fn value_type(inner: &naga::TypeInner) -> WgslType {
    match inner {
        naga::TypeInner::Scalar(s) | naga::TypeInner::Atomic(s) => scalar_type(*s),
        naga::TypeInner::Vector {
            size: naga::VectorSize::Bi,
            scalar,
        } => match scalar_type(*scalar) {
            WgslType::U32 => WgslType::U64Pair,
            WgslType::I32 => WgslType::I64Pair,
            _ => WgslType::Other,
        },
        _ => WgslType::Other,
    }
}

/// The element type and stride of a buffer's type (an array's element, or
/// the whole type).
fn element_of(module: &naga::Module, layouter: &naga::proc::Layouter, ty: naga::Handle<naga::Type>) -> (WgslType, u32) {
    match &module.types[ty].inner {
        naga::TypeInner::Array { base, stride, .. } => (value_type(&module.types[*base].inner), *stride),
        inner => (value_type(inner), layouter[ty].size),
    }
}

fn uses_f64(module: &naga::Module) -> bool {
    module.types.iter().any(|(_, t)| match &t.inner {
        naga::TypeInner::Scalar(s)
        | naga::TypeInner::Vector { scalar: s, .. }
        | naga::TypeInner::Matrix { scalar: s, .. } => s.kind == naga::ScalarKind::Float && s.width == 8,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
override block_x: u32 = 64;
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(2) var<uniform> n: u32;
@compute @workgroup_size(block_x) fn k(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x < n) { b[g.x] = a[g.x]; }
}";

    #[test]
    fn reflects_bindings_in_order() {
        let (_, r) = reflect("good", GOOD, "k", false).unwrap();
        let kinds: Vec<_> = r.params.iter().map(|p| (p.kind, p.ty, p.elem_size)).collect();
        assert_eq!(
            kinds,
            vec![
                (ParamKind::StorageRead, WgslType::F32, 4),
                (ParamKind::StorageReadWrite, WgslType::F32, 4),
                (ParamKind::Uniform, WgslType::U32, 4)
            ]
        );
        assert_eq!(r.block_overrides, [true, false, false]);
        assert!(!r.uses_f64);
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let bad = "@compute @workgroup_size(1)\nfn k() {\n  let x: u32 = ;\n}\n";
        match reflect("bad", bad, "k", false) {
            Err(DeviceError::Shader { line, message, .. }) => {
                assert_eq!(line, Some(3), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gaps_in_bindings_are_refused() {
        let src = GOOD.replace("@binding(2)", "@binding(3)");
        let e = reflect("gap", &src, "k", false).unwrap_err().to_string();
        assert!(e.contains("@binding(3)"), "{e}");
    }

    #[test]
    fn f64_without_the_feature_says_so() {
        let src = "@group(0) @binding(0) var<storage, read_write> v: array<f64>;\n\
                   @compute @workgroup_size(1) fn k() { v[0] = v[0] * 2.0lf; }";
        let e = reflect("f64", src, "k", false).unwrap_err().to_string();
        assert!(e.contains("SHADER_F64"), "{e}");
        assert!(reflect("f64", src, "k", true).is_ok());
    }
}
