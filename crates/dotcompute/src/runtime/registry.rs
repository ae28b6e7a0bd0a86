//! The process-wide kernel registry.
//!
//! Kernels defined with `#[ring_kernel]` are collected at link time (through
//! `inventory`); kernels built with [`KernelBuilder::register`](crate::KernelBuilder::register)
//! are added at run time. Invariant: an id maps to exactly one definition; an
//! id defined more than once is never resolved to one of them silently —
//! looking it up gives [`Error::DuplicateKernel`] with every location.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::runtime::spec::KernelSpec;
use crate::runtime::telemetry::lock;

/// A kernel registered at compile time by `#[ring_kernel]`. Not meant to be
/// written by hand.
#[doc(hidden)]
pub struct StaticRegistration {
    /// The kernel id.
    pub id: &'static str,
    /// Source file of the definition.
    pub file: &'static str,
    /// Source line of the definition.
    pub line: u32,
    /// Builds the spec (validating the configuration).
    pub spec: fn() -> Result<KernelSpec>,
}

inventory::collect!(StaticRegistration);

enum Source {
    Static(&'static StaticRegistration),
    Dynamic(KernelSpec),
}

impl Source {
    fn location(&self) -> String {
        match self {
            Source::Static(r) => format!("#[ring_kernel] at {}:{}", r.file, r.line),
            Source::Dynamic(_) => "KernelBuilder::register".to_string(),
        }
    }
}

fn table() -> &'static Mutex<BTreeMap<String, Vec<Source>>> {
    static TABLE: OnceLock<Mutex<BTreeMap<String, Vec<Source>>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map: BTreeMap<String, Vec<Source>> = BTreeMap::new();
        for r in inventory::iter::<StaticRegistration> {
            map.entry(r.id.to_string()).or_default().push(Source::Static(r));
        }
        Mutex::new(map)
    })
}

/// Adds a spec under its id. Fails with [`Error::DuplicateKernel`] if the id
/// is already registered (the registry keeps the first definition).
pub fn register(spec: KernelSpec) -> Result<()> {
    let mut map = lock(table());
    if let Some(existing) = map.get(spec.id()) {
        let mut locations: Vec<String> = existing.iter().map(Source::location).collect();
        locations.push("KernelBuilder::register".to_string());
        return Err(Error::DuplicateKernel {
            id: spec.id().to_string(),
            locations,
        });
    }
    map.insert(spec.id().to_string(), vec![Source::Dynamic(spec)]);
    Ok(())
}

/// The spec registered under `id`.
pub fn lookup(id: &str) -> Result<KernelSpec> {
    let map = lock(table());
    match map.get(id).map(Vec::as_slice) {
        None | Some([]) => Err(Error::KernelNotFound {
            id: id.to_string(),
            known: map.keys().cloned().collect(),
        }),
        Some([Source::Static(r)]) => (r.spec)(),
        Some([Source::Dynamic(spec)]) => Ok(spec.clone()),
        Some(many) => Err(Error::DuplicateKernel {
            id: id.to_string(),
            locations: many.iter().map(Source::location).collect(),
        }),
    }
}

/// Every registered id, sorted.
pub fn registered_ids() -> Vec<String> {
    lock(table()).keys().cloned().collect()
}

/// Ids registered more than once, with their locations.
pub fn duplicates() -> Vec<(String, Vec<String>)> {
    lock(table())
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, v)| (k.clone(), v.iter().map(Source::location).collect()))
        .collect()
}
