//! CPU kernels: Rust closures with CUDA's grid/block semantics.
//!
//! A kernel is written in two stages. The *bind* stage runs once per launch:
//! it takes the launch's [`CpuArgs`], fetches typed views of its buffers and
//! scalars (type-checked, so a wrong argument is an error before any thread
//! runs) and returns the per-thread (or per-block) body. The body then runs
//! for every thread of the grid; blocks run in parallel on rayon, the threads
//! of one block run one after another in `threadIdx` order (x fastest).
//!
//! Invariants: read-only buffers are plain shared slices; writable buffers
//! are reachable only through [`OutputView`], whose stores are atomic and
//! bounds-checked, so racing threads cannot cause undefined behaviour and an
//! out-of-bounds store is reported as a fault of the launch instead of
//! corrupting memory.
//!
//! ```
//! use dotcompute::device::cpu::{CpuKernel, ThreadIdx};
//! let saxpy = CpuKernel::per_thread("saxpy", |args| {
//!     let a: f32 = args.scalar(0)?;
//!     let x = args.input::<f32>(1)?;
//!     let y = args.output::<f32>(2)?;
//!     let n = args.scalar::<u32>(3)? as usize;
//!     Ok(Box::new(move |t: &ThreadIdx| {
//!         let i = t.global_x();
//!         if i < n {
//!             y.store(i, a * x[i] + y.load(i));
//!         }
//!     }))
//! });
//! assert_eq!(saxpy.name(), "saxpy");
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytemuck::Pod;
use parking_lot::Mutex;

use super::atomic::{word_for, AtomicWords};
use super::memory::{zeroed_lines, Line};
use super::CpuBackend;
use crate::device::backend::{Dim3, ElemType, KernelArg, Scalar, ScalarType};
use crate::device::error::{DeviceError, DeviceResult};

/// The coordinates of one thread, as CUDA's built-in variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadIdx {
    /// `threadIdx`
    pub thread: Dim3,
    /// `blockIdx`
    pub block: Dim3,
    /// `blockDim`
    pub block_dim: Dim3,
    /// `gridDim`
    pub grid_dim: Dim3,
}

impl ThreadIdx {
    /// `blockIdx.x * blockDim.x + threadIdx.x`
    pub fn global_x(&self) -> usize {
        self.block.x as usize * self.block_dim.x as usize + self.thread.x as usize
    }
    /// `blockIdx.y * blockDim.y + threadIdx.y`
    pub fn global_y(&self) -> usize {
        self.block.y as usize * self.block_dim.y as usize + self.thread.y as usize
    }
    /// `blockIdx.z * blockDim.z + threadIdx.z`
    pub fn global_z(&self) -> usize {
        self.block.z as usize * self.block_dim.z as usize + self.thread.z as usize
    }
    /// The thread's position in its block, x fastest.
    pub fn thread_in_block(&self) -> usize {
        let d = self.block_dim;
        (self.thread.z as usize * d.y as usize + self.thread.y as usize) * d.x as usize + self.thread.x as usize
    }
    /// The block's position in the grid, x fastest.
    pub fn block_linear(&self) -> usize {
        let g = self.grid_dim;
        (self.block.z as usize * g.y as usize + self.block.y as usize) * g.x as usize + self.block.x as usize
    }
    /// The thread's position in the whole grid (block-major).
    pub fn global_linear(&self) -> usize {
        self.block_linear() * self.block_dim.volume() as usize + self.thread_in_block()
    }
}

/// One block's context for per-block kernels: its coordinates, its threads
/// and its shared memory.
///
/// A per-block body expresses `__syncthreads()` as the boundary between two
/// loops over [`threads`](BlockCtx::threads): every thread finishes the first
/// loop before any starts the second.
pub struct BlockCtx<'s> {
    /// `blockIdx`
    pub block: Dim3,
    /// `blockDim`
    pub block_dim: Dim3,
    /// `gridDim`
    pub grid_dim: Dim3,
    shared: &'s mut [u8],
}

impl BlockCtx<'_> {
    /// Every thread of the block, x fastest.
    pub fn threads(&self) -> impl Iterator<Item = ThreadIdx> + '_ {
        let d = self.block_dim;
        (0..d.z).flat_map(move |z| {
            (0..d.y).flat_map(move |y| {
                (0..d.x).map(move |x| ThreadIdx {
                    thread: Dim3::xyz(x, y, z),
                    block: self.block,
                    block_dim: self.block_dim,
                    grid_dim: self.grid_dim,
                })
            })
        })
    }

    /// Threads in the block.
    pub fn thread_count(&self) -> usize {
        self.block_dim.volume() as usize
    }

    /// The block's dynamic shared memory as `T`s (zeroed at block start).
    pub fn shared<T: Pod>(&mut self) -> DeviceResult<&mut [T]> {
        let usable = self.shared.len() / std::mem::size_of::<T>().max(1) * std::mem::size_of::<T>();
        bytemuck::try_cast_slice_mut(&mut self.shared[..usable]).map_err(|e| DeviceError::KernelFault {
            kernel: String::new(),
            reason: format!("shared memory cannot be viewed as {}: {e}", std::any::type_name::<T>()),
        })
    }
}

/// The per-thread body a bind stage returns.
pub type ThreadFn<'a> = Box<dyn Fn(&ThreadIdx) + Send + Sync + 'a>;
/// The per-block body a bind stage returns; an error fails the launch.
pub type BlockFn<'a> = Box<dyn Fn(&mut BlockCtx<'_>) -> DeviceResult<()> + Send + Sync + 'a>;

type BindThread = dyn for<'a> Fn(&CpuArgs<'a>) -> DeviceResult<ThreadFn<'a>> + Send + Sync;
type BindBlock = dyn for<'a> Fn(&CpuArgs<'a>) -> DeviceResult<BlockFn<'a>> + Send + Sync;

#[derive(Clone)]
enum Body {
    Thread(Arc<BindThread>),
    Block(Arc<BindBlock>),
}

/// A data-parallel kernel for the [`CpuBackend`].
#[derive(Clone)]
pub struct CpuKernel {
    name: Arc<str>,
    body: Body,
}

impl CpuKernel {
    /// A kernel whose body runs once per thread.
    pub fn per_thread<F>(name: impl Into<String>, bind: F) -> Self
    where
        F: for<'a> Fn(&CpuArgs<'a>) -> DeviceResult<ThreadFn<'a>> + Send + Sync + 'static,
    {
        CpuKernel {
            name: name.into().into(),
            body: Body::Thread(Arc::new(bind)),
        }
    }

    /// A kernel whose body runs once per block and loops over its threads
    /// itself, with the block's shared memory.
    pub fn per_block<F>(name: impl Into<String>, bind: F) -> Self
    where
        F: for<'a> Fn(&CpuArgs<'a>) -> DeviceResult<BlockFn<'a>> + Send + Sync + 'static,
    {
        CpuKernel {
            name: name.into().into(),
            body: Body::Block(Arc::new(bind)),
        }
    }

    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for CpuKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.body {
            Body::Thread(_) => "per_thread",
            Body::Block(_) => "per_block",
        };
        f.debug_struct("CpuKernel")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish()
    }
}

/// The first fault of a launch (an out-of-bounds store or load).
#[derive(Default)]
pub(crate) struct Fault {
    set: AtomicBool,
    first: Mutex<Option<String>>,
}

impl Fault {
    fn record(&self, reason: impl FnOnce() -> String) {
        if !self.set.swap(true, Ordering::AcqRel) {
            *self.first.lock() = Some(reason());
        }
    }
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }
    pub(crate) fn take(&self) -> Option<String> {
        self.first.lock().take()
    }
}

/// A writable buffer argument, seen by kernel threads.
///
/// Stores and loads are atomic per machine word and bounds-checked: an index
/// past the end is not performed and makes the launch fail with
/// [`DeviceError::KernelFault`].
pub struct OutputView<'a, T: Pod> {
    words: AtomicWords<'a>,
    len: usize,
    arg: usize,
    fault: &'a Fault,
    _t: PhantomData<fn() -> T>,
}

impl<T: Pod> Clone for OutputView<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Pod> Copy for OutputView<'_, T> {}

impl<T: Pod> OutputView<'_, T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes element `i`.
    pub fn store(&self, i: usize, value: T) {
        if i >= self.len {
            let (arg, len) = (self.arg, self.len);
            self.fault
                .record(|| format!("store to index {i} of argument {arg}, which has {len} elements"));
            return;
        }
        self.words
            .store(i * std::mem::size_of::<T>(), bytemuck::bytes_of(&value));
    }

    /// Reads element `i` (zero, and a fault of the launch, if out of bounds).
    pub fn load(&self, i: usize) -> T {
        let mut v = T::zeroed();
        if i >= self.len {
            let (arg, len) = (self.arg, self.len);
            self.fault
                .record(|| format!("load from index {i} of argument {arg}, which has {len} elements"));
            return v;
        }
        self.words
            .load(i * std::mem::size_of::<T>(), bytemuck::bytes_of_mut(&mut v));
        v
    }
}

enum Slot<'a> {
    In {
        bytes: &'a [u8],
        elem: ElemType,
    },
    Out {
        words: AtomicWords<'a>,
        elem: ElemType,
        len: usize,
    },
    Scalar(Scalar),
}

/// The arguments of one launch, as a CPU kernel's bind stage sees them.
pub struct CpuArgs<'a> {
    kernel: &'a str,
    slots: Vec<Slot<'a>>,
    fault: &'a Fault,
}

impl<'a> CpuArgs<'a> {
    pub(crate) fn bind(
        kernel: &'a str,
        args: &'a mut [KernelArg<'_, CpuBackend>],
        fault: &'a Fault,
    ) -> DeviceResult<Self> {
        let mut slots = Vec::with_capacity(args.len());
        for (index, arg) in args.iter_mut().enumerate() {
            let slot = match arg {
                KernelArg::Buffer { memory, elem, len } => {
                    let bytes = memory.as_bytes();
                    let n = len.saturating_mul(elem.size);
                    let bytes = bytes
                        .get(..n)
                        .ok_or_else(|| arg_err(kernel, index, "buffer shorter than its length"))?;
                    Slot::In { bytes, elem: *elem }
                }
                KernelArg::BufferMut { memory, elem, len } => {
                    let n = len.saturating_mul(elem.size);
                    let bytes = memory.as_bytes_mut();
                    let bytes = bytes
                        .get_mut(..n)
                        .ok_or_else(|| arg_err(kernel, index, "buffer shorter than its length"))?;
                    let words = AtomicWords::new(bytes, word_for(elem.size))
                        .ok_or_else(|| arg_err(kernel, index, "buffer is not aligned for atomic access"))?;
                    Slot::Out {
                        words,
                        elem: *elem,
                        len: *len,
                    }
                }
                KernelArg::Scalar(s) => Slot::Scalar(*s),
            };
            slots.push(slot);
        }
        Ok(CpuArgs { kernel, slots, fault })
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, index: usize) -> DeviceResult<&Slot<'a>> {
        self.slots.get(index).ok_or_else(|| {
            arg_err(
                self.kernel,
                index,
                &format!("missing: the launch passed {} argument(s)", self.slots.len()),
            )
        })
    }

    /// Read-only buffer argument `index` as a slice of `T`.
    pub fn input<T: Pod>(&self, index: usize) -> DeviceResult<&'a [T]> {
        match self.slot(index)? {
            Slot::In { bytes, elem, .. } if elem.is::<T>() => bytemuck::try_cast_slice(bytes)
                .map_err(|e| arg_err(self.kernel, index, &format!("cannot view as {}: {e}", elem.name))),
            Slot::In { elem, .. } => Err(type_err(self.kernel, index, elem.name, std::any::type_name::<T>())),
            Slot::Out { .. } => Err(arg_err(
                self.kernel,
                index,
                "is a writable buffer; read it through output() (pass it with arg() to read it as a slice)",
            )),
            Slot::Scalar(s) => Err(arg_err(
                self.kernel,
                index,
                &format!("is a scalar {}, not a buffer", s.type_name()),
            )),
        }
    }

    /// Writable buffer argument `index`.
    pub fn output<T: Pod>(&self, index: usize) -> DeviceResult<OutputView<'a, T>> {
        match self.slot(index)? {
            Slot::Out { words, elem, len } if elem.is::<T>() => Ok(OutputView {
                words: *words,
                len: *len,
                arg: index,
                fault: self.fault,
                _t: PhantomData,
            }),
            Slot::Out { elem, .. } => Err(type_err(self.kernel, index, elem.name, std::any::type_name::<T>())),
            Slot::In { .. } => Err(arg_err(
                self.kernel,
                index,
                "is read-only; pass it with arg_mut() to write it",
            )),
            Slot::Scalar(s) => Err(arg_err(
                self.kernel,
                index,
                &format!("is a scalar {}, not a buffer", s.type_name()),
            )),
        }
    }

    /// Scalar argument `index`.
    pub fn scalar<S: ScalarType>(&self, index: usize) -> DeviceResult<S> {
        match self.slot(index)? {
            Slot::Scalar(s) => S::from_scalar(s).ok_or_else(|| type_err(self.kernel, index, s.type_name(), S::NAME)),
            _ => Err(arg_err(
                self.kernel,
                index,
                &format!("is a buffer, not a scalar {}", S::NAME),
            )),
        }
    }
}

fn arg_err(kernel: &str, index: usize, reason: &str) -> DeviceError {
    DeviceError::KernelArgument {
        kernel: kernel.to_string(),
        index,
        reason: reason.to_string(),
    }
}

fn type_err(kernel: &str, index: usize, is: &str, wanted: &str) -> DeviceError {
    arg_err(kernel, index, &format!("holds {is}, the kernel asked for {wanted}"))
}

fn block_coords(b: u64, grid: Dim3) -> Dim3 {
    let gx = u64::from(grid.x);
    let gy = u64::from(grid.y);
    Dim3::xyz((b % gx) as u32, ((b / gx) % gy) as u32, (b / (gx * gy)) as u32)
}

/// Runs `kernel` over the grid. Called by the backend inside `catch_unwind`.
pub(crate) fn execute(
    kernel: &CpuKernel,
    grid: Dim3,
    block: Dim3,
    shared_bytes: usize,
    args: &mut [KernelArg<'_, CpuBackend>],
    fault: &Fault,
) -> DeviceResult<()> {
    use rayon::prelude::*;
    let args = CpuArgs::bind(&kernel.name, args, fault)?;
    let blocks = grid.volume();
    match &kernel.body {
        Body::Thread(bind) => {
            let body = bind(&args)?;
            (0..blocks).into_par_iter().for_each(|b| {
                if fault.is_set() {
                    return;
                }
                let mut t = ThreadIdx {
                    thread: Dim3::x(0),
                    block: block_coords(b, grid),
                    block_dim: block,
                    grid_dim: grid,
                };
                for z in 0..block.z {
                    for y in 0..block.y {
                        for x in 0..block.x {
                            t.thread = Dim3::xyz(x, y, z);
                            body(&t);
                        }
                    }
                }
            });
        }
        Body::Block(bind) => {
            let body = bind(&args)?;
            let scratch = || zeroed_lines(shared_bytes, "cpu shared memory");
            (0..blocks)
                .into_par_iter()
                .try_for_each_init(scratch, |lines, b| -> DeviceResult<()> {
                    if fault.is_set() {
                        return Ok(());
                    }
                    let lines: &mut Box<[Line]> = match lines {
                        Ok(l) => l,
                        Err(e) => {
                            return Err(DeviceError::OutOfMemory {
                                requested: shared_bytes,
                                in_use: 0,
                                limit: usize::MAX,
                                context: e.to_string(),
                            })
                        }
                    };
                    let bytes = &mut bytemuck::cast_slice_mut::<Line, u8>(lines)[..shared_bytes];
                    bytes.fill(0);
                    let mut ctx = BlockCtx {
                        block: block_coords(b, grid),
                        block_dim: block,
                        grid_dim: grid,
                        shared: bytes,
                    };
                    body(&mut ctx).map_err(|e| match e {
                        DeviceError::KernelFault { reason, .. } => DeviceError::KernelFault {
                            kernel: kernel.name.to_string(),
                            reason,
                        },
                        other => other,
                    })
                })?;
        }
    }
    Ok(())
}
