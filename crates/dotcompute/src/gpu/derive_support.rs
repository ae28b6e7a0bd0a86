//! Constant-evaluation helpers for `#[derive(GpuMessage)]`. Not a public API:
//! the derive's expansion calls these, and their signatures may change.
//!
//! Everything here is a `const fn`, so a C layout, and the C text that
//! spells it with its numbers, are computed while the user's crate compiles.

use super::message::{CudaDecl, GpuMessage};

/// A piece of the generated C text: a string, or a number printed in decimal.
#[derive(Debug, Clone, Copy)]
pub enum Piece {
    /// Literal text.
    Str(&'static str),
    /// A number, printed in decimal.
    Num(usize),
}

/// The C layout of a struct: field offsets, size, alignment and padding.
#[derive(Debug, Clone, Copy)]
pub struct CLayout<const N: usize> {
    /// Offset of each field, in declaration order.
    pub offsets: [usize; N],
    /// Size of each field.
    pub sizes: [usize; N],
    /// Alignment of each field.
    pub aligns: [usize; N],
    /// `sizeof` of the struct.
    pub size: usize,
    /// `alignof` of the struct.
    pub align: usize,
    /// Bytes of the struct that belong to no field.
    pub padding: usize,
}

const fn round_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

impl<const N: usize> CLayout<N> {
    /// Lays out fields of the given `(size, align)` in order, the way C (and
    /// `#[repr(C)]`) does: each field at the next multiple of its alignment,
    /// the struct aligned to its most aligned field (at least `min_align`)
    /// and its size rounded up to that alignment.
    pub const fn compute(fields: [(usize, usize); N], min_align: usize) -> Self {
        let mut offsets = [0usize; N];
        let mut sizes = [0usize; N];
        let mut aligns = [0usize; N];
        let mut offset = 0usize;
        let mut align = if min_align == 0 { 1 } else { min_align };
        let mut bytes = 0usize;
        let mut i = 0;
        while i < N {
            let (size, field_align) = fields[i];
            assert!(field_align.is_power_of_two(), "field alignment must be a power of two");
            offset = round_up(offset, field_align);
            offsets[i] = offset;
            sizes[i] = size;
            aligns[i] = field_align;
            offset += size;
            bytes += size;
            if field_align > align {
                align = field_align;
            }
            i += 1;
        }
        let size = round_up(offset, align);
        CLayout {
            offsets,
            sizes,
            aligns,
            size,
            align,
            padding: size - bytes,
        }
    }
}

/// `(size, align)` of an array of `len` elements of layout `elem`.
pub const fn array(elem: (usize, usize), len: usize) -> (usize, usize) {
    assert!(
        len > 0,
        "#[derive(GpuMessage)]: zero-length arrays are not valid C; remove the field"
    );
    (elem.0 * len, elem.1)
}

const fn decimal_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Length in bytes of the concatenated pieces.
pub const fn len(pieces: &[Piece]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < pieces.len() {
        total += match pieces[i] {
            Piece::Str(s) => s.len(),
            Piece::Num(n) => decimal_len(n),
        };
        i += 1;
    }
    total
}

/// The concatenated pieces as bytes; `N` must be [`len`]`(pieces)`.
pub const fn concat<const N: usize>(pieces: &[Piece]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < pieces.len() {
        match pieces[i] {
            Piece::Str(s) => {
                let b = s.as_bytes();
                let mut j = 0;
                while j < b.len() {
                    out[at] = b[j];
                    at += 1;
                    j += 1;
                }
            }
            Piece::Num(n) => {
                let digits = decimal_len(n);
                let mut k = digits;
                let mut v = n;
                while k > 0 {
                    out[at + k - 1] = b'0' + (v % 10) as u8;
                    v /= 10;
                    k -= 1;
                }
                at += digits;
            }
        }
        i += 1;
    }
    assert!(at == N, "length mismatch in generated C text");
    out
}

/// The bytes as text (they are always UTF-8: pieces are `&str` and digits).
///
/// Called by the derive in `const` items, where a panic is a compile error;
/// the bytes come from `&str` pieces and ASCII digits, so it cannot fire.
#[allow(clippy::panic)]
pub const fn as_str(bytes: &[u8]) -> &str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("generated C text is not UTF-8"),
    }
}

/// Appends `T`'s declaration to `out` unless `T`'s is already there (a type
/// nested twice is declared once). Two different types of the same C name
/// are both kept, for the source generator to report.
pub fn push_decl<T: GpuMessage>(out: &mut Vec<CudaDecl>) {
    if !out
        .iter()
        .any(|d| d.name == T::CUDA_NAME && d.rust_name == T::RUST_NAME)
    {
        out.push(CudaDecl {
            name: T::CUDA_NAME,
            decl: T::CUDA_DECL,
            rust_name: T::RUST_NAME,
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn c_layout_rules() {
        // u8, u64, u16: 0, 8, 16; size 24 (rounded to 8); 13 padding bytes.
        let l = CLayout::compute([(1, 1), (8, 8), (2, 2)], 1);
        assert_eq!(l.offsets, [0, 8, 16]);
        assert_eq!((l.size, l.align, l.padding), (24, 8, 13));
        let l = CLayout::compute([(4, 4)], 16);
        assert_eq!((l.size, l.align, l.padding), (16, 16, 12));
        assert_eq!(array((4, 4), 3), (12, 4));
    }

    #[test]
    fn concatenation_prints_numbers() {
        const P: &[Piece] = &[Piece::Str("a="), Piece::Num(0), Piece::Str(", b="), Piece::Num(1234567)];
        const L: usize = len(P);
        const B: [u8; L] = concat::<L>(P);
        assert_eq!(as_str(&B), "a=0, b=1234567");
    }
}
