//! Reading kernel entry points and their parameters out of PTX text.
//!
//! Invariant: parsing never fails or panics; text it does not understand
//! yields fewer entries, never wrong sizes (an unknown parameter type makes
//! the whole entry unknown, so a launch cannot be checked against a guess).

/// One `.param` of a kernel entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtxParam {
    /// The PTX type, e.g. "u64", "f32", or `b8[16]` for an aggregate.
    pub ty: String,
    /// Size in bytes.
    pub size: usize,
}

/// One `.entry` of a PTX module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtxEntry {
    /// The (mangled, unless `extern "C"`) name.
    pub name: String,
    /// Its parameters in order.
    pub params: Vec<PtxParam>,
}

fn type_size(ty: &str) -> Option<usize> {
    let bits: usize = ty.get(1..)?.parse().ok()?;
    match ty.as_bytes().first()? {
        b'u' | b's' | b'b' | b'f' if bits.is_multiple_of(8) => Some(bits / 8),
        _ => None,
    }
}

fn parse_param(decl: &str) -> Option<PtxParam> {
    let mut tokens = decl.split_whitespace().filter(|t| !t.starts_with("//"));
    if tokens.next()? != ".param" {
        return None;
    }
    let mut ty = None;
    let mut name = None;
    let mut skip_next = false;
    for t in tokens {
        if skip_next {
            skip_next = false;
            continue;
        }
        match t {
            ".align" => skip_next = true,
            ".ptr" | ".global" | ".const" | ".local" | ".shared" => {}
            t if t.starts_with('.') && ty.is_none() => ty = Some(&t[1..]),
            t => name = Some(t),
        }
    }
    let ty = ty?;
    let elem = type_size(ty)?;
    let name = name?;
    // An aggregate: `name[16]`.
    if let Some(open) = name.find('[') {
        let count: usize = name[open + 1..].trim_end_matches(']').parse().ok()?;
        return Some(PtxParam {
            ty: format!("{ty}[{count}]"),
            size: elem * count,
        });
    }
    Some(PtxParam {
        ty: ty.to_string(),
        size: elem,
    })
}

/// Every `.entry` in `ptx`, in order.
pub fn entries(ptx: &str) -> Vec<PtxEntry> {
    let mut out = Vec::new();
    let mut rest = ptx;
    while let Some(pos) = rest.find(".entry") {
        rest = &rest[pos + ".entry".len()..];
        let Some(open) = rest.find('(') else { break };
        let name = rest[..open].trim().to_string();
        let Some(close) = rest[open..].find(')') else { break };
        let body = &rest[open + 1..open + close];
        rest = &rest[open + close..];
        if name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        let decls: Vec<&str> = body.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
        let params: Option<Vec<PtxParam>> = decls.iter().map(|d| parse_param(d)).collect();
        if let Some(params) = params {
            out.push(PtxEntry { name, params });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_with_pointer_scalar_and_aggregate_params() {
        let ptx = r#"
.version 8.8
.target sm_80
.address_size 64

.visible .entry saxpy(
	.param .f32 saxpy_param_0,
	.param .u64 .ptr .global .align 4 saxpy_param_1,
	.param .u64 saxpy_param_2,
	.param .u32 saxpy_param_3
)
{
	ret;
}
.visible .entry agg(
	.param .align 8 .b8 agg_param_0[16]
)
{ ret; }
.visible .entry noargs()
{ ret; }
"#;
        let e = entries(ptx);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "saxpy");
        let sizes: Vec<usize> = e[0].params.iter().map(|p| p.size).collect();
        assert_eq!(sizes, vec![4, 8, 8, 4]);
        assert_eq!(e[0].params[0].ty, "f32");
        assert_eq!(
            e[1].params,
            vec![PtxParam {
                ty: "b8[16]".into(),
                size: 16
            }]
        );
        assert_eq!(e[2].name, "noargs");
        assert!(e[2].params.is_empty());
    }

    #[test]
    fn unknown_types_drop_the_entry_rather_than_guess() {
        assert!(entries(".entry k(\n.param .weird k_param_0\n)\n").is_empty());
        assert!(entries("garbage .entry").is_empty());
        assert!(entries("").is_empty());
    }
}
