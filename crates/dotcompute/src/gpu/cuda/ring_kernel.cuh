// dotcompute: persistent GPU ring kernel template (protocol version 1).
//
// The host and this kernel share one region of pinned host memory mapped into
// the device (layout: crates/dotcompute/src/gpu/protocol/layout.rs). The Rust
// source generator (gpu/source.rs) appends, after this file, the message
// struct declarations, static_asserts that every offset of dc::ControlBlock
// and every constant below equals the Rust side's, the user's handler, and
// one DC_RING_KERNEL(...) line that instantiates the kernel.
//
// Memory ordering. Indices are published with system-scope release stores
// and read with system-scope acquire loads, written here as inline PTX
// (ld.acquire.sys / st.release.sys, PTX ISA 6.0, sm_70+). That is exactly
// what libcu++'s cuda::atomic_ref<T, cuda::thread_scope_system> emits on
// sm_70+, but <cuda/atomic> is not available to NVRTC on its own (the pip
// NVRTC has no libcu++ headers, and NVRTC has no standard library), so the
// template does not depend on it. With -DDC_VOLATILE_FENCES the older
// pattern is used instead: volatile loads/stores with __threadfence_system()
// before a publishing store and after an observing load.
//
// Ownership (each word has one writer):
//   host   writes: header, lifecycle, in_tail, out_head
//   device writes: device_state, heartbeat, processed, batches, idle_polls,
//                  errors, last_error, fault, in_head, out_tail
// Only thread 0 of block 0 (the leader) touches the control words.

#ifndef DOTCOMPUTE_RING_KERNEL_CUH
#define DOTCOMPUTE_RING_KERNEL_CUH

#ifndef __CUDACC_RTC__
#include <cstddef>  // offsetof for host compilers; NVRTC has no standard headers
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ < 700)
#error "dotcompute ring kernels need sm_70 or newer (__nanosleep, system-scope acquire/release)"
#endif

namespace dc {

typedef unsigned long long u64;
typedef unsigned int u32;
static_assert(sizeof(u64) == 8 && sizeof(u32) == 4, "unexpected integer sizes");

// Values of the lifecycle word's low byte (host → device command).
const u64 LC_LAUNCHED = 0;
const u64 LC_ACTIVE = 1;
const u64 LC_DEACTIVATED = 2;
const u64 LC_TERMINATE = 3;

// Values of the device_state word's low byte.
const u64 ST_NOT_STARTED = 0;
const u64 ST_PARKED = 1;
const u64 ST_RUNNING = 2;
const u64 ST_EXITED = 3;
const u64 ST_FAULTED = 4;

// Values of the fault word.
const u64 FAULT_BAD_MAGIC = 1;
const u64 FAULT_BAD_VERSION = 2;
const u64 FAULT_SIZE_MISMATCH = 3;
const u64 FAULT_BAD_GEOMETRY = 4;
const u64 FAULT_CORRUPT_INPUT_TAIL = 5;
const u64 FAULT_CORRUPT_OUTPUT_HEAD = 6;
const u64 FAULT_BAD_LIFECYCLE = 7;
const u64 FAULT_HANDLER_PANICKED = 8;  // emulation only
const u64 FAULT_BAD_LAUNCH = 9;

const u64 MAGIC = 0x474E525550474344ULL;       // "DCGPURNG", little-endian
const u64 LINK_MAGIC = 0x4B4E4C5550474344ULL;  // "DCGPULNK", little-endian
const u64 PROTOCOL_VERSION = 1;
const u64 MAX_BATCH_SIZE = 65536;
const u64 MAX_RING_CAPACITY = 1ULL << 24;
const u32 MAX_NANOSLEEP_NS = 1000000;  // __nanosleep's longest sleep

// The region's first 896 bytes: seven 128-byte lines of u64 words. Fields
// are named by word index (byte offset / 8) rather than declared as struct
// members, because NVRTC cannot evaluate offsetof at compile time: word
// indices can be static_assert-ed against the Rust offsets, and are (see the
// generated protocol checks).
struct ControlBlock {
    u64 words[112];
};
static_assert(sizeof(ControlBlock) == 896, "ControlBlock is 7 lines of 128 bytes");

// Line 0: header, written by the host before launch.
const u64 W_MAGIC = 0, W_VERSION = 1, W_REGION_SIZE = 2;
const u64 W_IN_CAPACITY = 3, W_IN_SLOT_SIZE = 4, W_OUT_CAPACITY = 5, W_OUT_SLOT_SIZE = 6, W_STATE_SIZE = 7;
const u64 W_IN_SLOTS = 8, W_OUT_SLOTS = 9, W_STATE = 10;
const u64 W_BATCH_SIZE = 11, W_SPIN_POLLS = 12, W_BACKOFF_MIN_NS = 13, W_BACKOFF_MAX_NS = 14;
// Line 1: the host's lifecycle command.
const u64 W_LIFECYCLE = 16;
// Line 2: device status and counters.
const u64 W_DEVICE_STATE = 32, W_HEARTBEAT = 33, W_PROCESSED = 34, W_BATCHES = 35;
const u64 W_IDLE_POLLS = 36, W_ERRORS = 37, W_LAST_ERROR = 38, W_FAULT = 39;
// Lines 3-6: ring indices, one per line.
const u64 W_IN_TAIL = 48, W_IN_HEAD = 64, W_OUT_TAIL = 80, W_OUT_HEAD = 96;

// A kernel-to-kernel link ring (in device memory): a header line, the tail
// line, the head line, then the slots (byte 384).
const u64 LINK_W_MAGIC = 0, LINK_W_VERSION = 1, LINK_W_CAPACITY = 2, LINK_W_SLOT_SIZE = 3;
const u64 LINK_W_TAIL = 16, LINK_W_HEAD = 32;
const u64 LINK_SLOTS = 384;

// Where one ring lives (device addresses).
struct RingRef {
    u64* tail;
    u64* head;
    unsigned char* slots;
    u64 capacity;
};

// Coordination of a multi-block grid, in device memory (zeroed by the host).
struct GridWorkspace {
    u32 arrived;
    u32 generation;
    u64 action, n, head, out_tail;
    u64 errors, last_error;
    u64 pad[9];
};
static_assert(sizeof(GridWorkspace) == 128, "grid workspace is one line");

// The kernel's only parameter, by value (Rust: DeviceKernelParams).
struct KernelParams {
    ControlBlock* control;
    RingRef input;
    RingRef output;
    unsigned char* state;   // working copy of the state (device memory, or the region's buffer)
    GridWorkspace* grid;    // needed when gridDim.x > 1
};
static_assert(sizeof(KernelParams) == 88, "KernelParams is 88 bytes");

// ---------------------------------------------------------------- memory ops

__device__ __forceinline__ u64 load_acquire(const u64* p) {
#ifdef DC_VOLATILE_FENCES
    u64 v = *(const volatile u64*)p;
    __threadfence_system();
    return v;
#else
    u64 v;
    asm volatile("ld.acquire.sys.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
#endif
}

__device__ __forceinline__ void store_release(u64* p, u64 v) {
#ifdef DC_VOLATILE_FENCES
    __threadfence_system();
    *(volatile u64*)p = v;
#else
    asm volatile("st.release.sys.u64 [%0], %1;" : : "l"(p), "l"(v) : "memory");
#endif
}

__device__ __forceinline__ void store_relaxed(u64* p, u64 v) {
#ifdef DC_VOLATILE_FENCES
    *(volatile u64*)p = v;
#else
    asm volatile("st.relaxed.sys.u64 [%0], %1;" : : "l"(p), "l"(v) : "memory");
#endif
}

__device__ __forceinline__ u64 status_word(u64 state, u64 ack) { return (ack << 8) | state; }

__device__ __forceinline__ u64* word(ControlBlock* cb, u64 index) { return &cb->words[index]; }

__device__ __forceinline__ bool is_pow2(u64 x) { return x != 0 && (x & (x - 1)) == 0; }

// ------------------------------------------------------------ handler calls

// Calls a handler returning int (0 = ok, else an error code) or void.
template <typename R>
struct Status {
    template <typename F>
    __device__ __forceinline__ static int run(F f) { return (int)f(); }
};
template <>
struct Status<void> {
    template <typename F>
    __device__ __forceinline__ static int run(F f) { f(); return 0; }
};

// How the messages of a batch are handled.
const int SERIAL = 0;    // one thread, in order: the handler may update the state freely
const int PARALLEL = 1;  // every thread of the grid takes messages: state must be read-only or atomic

// ------------------------------------------------------------ grid barrier

// All threads of all blocks meet here. A grid of more than one block must be
// co-resident (cooperative launch, or no more blocks than fit at once).
__device__ __forceinline__ void grid_sync(GridWorkspace* ws) {
    __syncthreads();
    if (gridDim.x > 1 && threadIdx.x == 0) {
        volatile u32* gen = &ws->generation;
        u32 seen = *gen;
        __threadfence();
        if (atomicAdd(&ws->arrived, 1u) == gridDim.x - 1) {
            atomicExch(&ws->arrived, 0u);
            __threadfence();
            atomicAdd(&ws->generation, 1u);
        } else {
            u32 ns = 32;
            while (*gen == seen) {
                __nanosleep(ns);
                if (ns < 1024) ns <<= 1;
            }
        }
        __threadfence();
    }
    __syncthreads();
}

// Leader actions, broadcast to every thread each round.
const u64 ACT_IDLE = 0;       // nothing to do (the leader has slept already)
const u64 ACT_RUN = 1;        // handle n messages
const u64 ACT_PARK = 2;       // new park command: write the state back, then PARKED
const u64 ACT_EXIT = 3;       // terminate: write the state back, then EXITED
const u64 ACT_ABORT = 4;      // fault recorded: return at once

// The leader's private copy of everything it owns.
struct Leader {
    u64 head, out_tail;                 // authoritative indices
    u64 cached_in_tail, cached_out_head;
    u64 in_mask, out_mask;
    u64 heartbeat, processed, batches, idle_polls, errors, last_error;
    u64 cmd, seq;                       // the command being obeyed
    bool have_cmd;
    u64 idle, sleep_ns;
    u64 batch, spin_polls, min_ns, max_ns;
};

__device__ __forceinline__ void sleep_ns(u64 ns) {
    __nanosleep((u32)(ns < MAX_NANOSLEEP_NS ? ns : MAX_NANOSLEEP_NS));
}

__device__ __forceinline__ u64 fault(ControlBlock* cb, Leader& L, u64 code) {
    store_relaxed(word(cb, W_PROCESSED), L.processed);
    store_relaxed(word(cb, W_BATCHES), L.batches);
    store_relaxed(word(cb, W_LAST_ERROR), L.last_error);
    store_release(word(cb, W_ERRORS), L.errors);
    store_relaxed(word(cb, W_FAULT), code);
    store_release(word(cb, W_DEVICE_STATE), status_word(ST_FAULTED, L.have_cmd ? L.seq : 0));
    return ACT_ABORT;
}

__device__ __forceinline__ void store_counters(ControlBlock* cb, const Leader& L) {
    store_relaxed(word(cb, W_PROCESSED), L.processed);
    store_relaxed(word(cb, W_BATCHES), L.batches);
    // The code before the count, the count with release: a host that
    // acquire-loads the count first then reads a code at least as recent.
    store_relaxed(word(cb, W_LAST_ERROR), L.last_error);
    store_release(word(cb, W_ERRORS), L.errors);
    store_relaxed(word(cb, W_IDLE_POLLS), L.idle_polls);
}

// Validates a ring: in the region (matching the header) or a link ring.
__device__ __forceinline__ bool ring_ok(ControlBlock* cb, const RingRef& r, u64* region_tail, u64 region_cap,
                                        u64 slot_size) {
    if (!is_pow2(r.capacity) || r.capacity > MAX_RING_CAPACITY) return false;
    if (r.tail == region_tail) return r.capacity == region_cap;
    const u64* link = r.tail - LINK_W_TAIL;
    return load_acquire(link + LINK_W_MAGIC) == LINK_MAGIC && load_acquire(link + LINK_W_VERSION) == PROTOCOL_VERSION &&
           load_acquire(link + LINK_W_CAPACITY) == r.capacity && load_acquire(link + LINK_W_SLOT_SIZE) == slot_size &&
           r.head == link + LINK_W_HEAD && r.slots == (unsigned char*)link + LINK_SLOTS;
}

// Checks the header and attaches; returns ACT_IDLE or ACT_ABORT.
template <typename In, typename Out, typename State>
__device__ u64 attach(const KernelParams& p, Leader& L) {
    ControlBlock* cb = p.control;
    L.have_cmd = false;
    L.heartbeat = L.processed = L.batches = L.idle_polls = L.errors = L.last_error = 0;
    if (load_acquire(word(cb, W_MAGIC)) != MAGIC) return fault(cb, L, FAULT_BAD_MAGIC);
    if (load_acquire(word(cb, W_VERSION)) != PROTOCOL_VERSION) return fault(cb, L, FAULT_BAD_VERSION);
    if (load_acquire(word(cb, W_IN_SLOT_SIZE)) != sizeof(In) || load_acquire(word(cb, W_OUT_SLOT_SIZE)) != sizeof(Out) ||
        load_acquire(word(cb, W_STATE_SIZE)) != sizeof(State))
        return fault(cb, L, FAULT_SIZE_MISMATCH);
    L.batch = load_acquire(word(cb, W_BATCH_SIZE));
    L.spin_polls = load_acquire(word(cb, W_SPIN_POLLS));
    L.min_ns = load_acquire(word(cb, W_BACKOFF_MIN_NS));
    L.max_ns = load_acquire(word(cb, W_BACKOFF_MAX_NS));
    if (L.batch == 0 || L.batch > MAX_BATCH_SIZE || L.min_ns == 0 || L.min_ns > L.max_ns)
        return fault(cb, L, FAULT_BAD_GEOMETRY);
    if (!ring_ok(cb, p.input, word(cb, W_IN_TAIL), load_acquire(word(cb, W_IN_CAPACITY)), sizeof(In)) ||
        !ring_ok(cb, p.output, word(cb, W_OUT_TAIL), load_acquire(word(cb, W_OUT_CAPACITY)), sizeof(Out)))
        return fault(cb, L, FAULT_BAD_GEOMETRY);
    L.in_mask = p.input.capacity - 1;
    L.out_mask = p.output.capacity - 1;
    L.head = load_acquire(p.input.head);
    L.cached_in_tail = load_acquire(p.input.tail);
    if (L.cached_in_tail - L.head > p.input.capacity) return fault(cb, L, FAULT_CORRUPT_INPUT_TAIL);
    L.out_tail = load_acquire(p.output.tail);
    L.cached_out_head = load_acquire(p.output.head);
    if (L.out_tail - L.cached_out_head > p.output.capacity) return fault(cb, L, FAULT_CORRUPT_OUTPUT_HEAD);
    L.idle = 0;
    L.sleep_ns = L.min_ns;
    return ACT_IDLE;
}

// One poll by the leader: beat, obey a new command, look for work.
// Returns the action; for ACT_RUN, *n is the batch size.
__device__ u64 poll(const KernelParams& p, Leader& L, u64* n) {
    ControlBlock* cb = p.control;
    store_relaxed(word(cb, W_HEARTBEAT), ++L.heartbeat);
    const u64 command = load_acquire(word(cb, W_LIFECYCLE));
    const u64 cmd = command & 0xff, seq = command >> 8;
    if (cmd > LC_TERMINATE) return fault(cb, L, FAULT_BAD_LIFECYCLE);
    if (!L.have_cmd || cmd != L.cmd || seq != L.seq) {
        L.have_cmd = true;
        L.cmd = cmd;
        L.seq = seq;
        if (cmd == LC_TERMINATE) return ACT_EXIT;
        if (cmd != LC_ACTIVE) return ACT_PARK;
        store_release(word(cb, W_DEVICE_STATE), status_word(ST_RUNNING, seq));
    }
    if (cmd != LC_ACTIVE) {
        sleep_ns(L.max_ns);
        return ACT_IDLE;
    }
    u64 available = L.cached_in_tail - L.head;
    if (available < L.batch) {
        const u64 tail = load_acquire(p.input.tail);
        // Untrusted: must lie in cached_in_tail ..= head + capacity.
        if (tail - L.cached_in_tail > L.head + p.input.capacity - L.cached_in_tail)
            return fault(cb, L, FAULT_CORRUPT_INPUT_TAIL);
        L.cached_in_tail = tail;
        available = tail - L.head;
    }
    u64 want = available < L.batch ? available : L.batch;
    u64 free_slots = p.output.capacity - (L.out_tail - L.cached_out_head);
    if (free_slots < want) {
        const u64 head = load_acquire(p.output.head);
        // Untrusted: must lie in cached_out_head ..= out_tail.
        if (head - L.cached_out_head > L.out_tail - L.cached_out_head) return fault(cb, L, FAULT_CORRUPT_OUTPUT_HEAD);
        L.cached_out_head = head;
        free_slots = p.output.capacity - (L.out_tail - head);
    }
    *n = want < free_slots ? want : free_slots;
    if (*n > 0) {
        L.idle = 0;
        L.sleep_ns = L.min_ns;
        return ACT_RUN;
    }
    store_relaxed(word(cb, W_IDLE_POLLS), ++L.idle_polls);
    if (++L.idle > L.spin_polls) {
        sleep_ns(L.sleep_ns);
        L.sleep_ns = L.sleep_ns * 2 < L.max_ns ? L.sleep_ns * 2 : L.max_ns;
    }
    return ACT_IDLE;
}

// Copies the working state back to the region's buffer (block 0, all threads).
template <typename State>
__device__ __forceinline__ void write_back(const KernelParams& p) {
    unsigned char* region_state = (unsigned char*)p.control + p.control->words[W_STATE];
    if (blockIdx.x == 0 && p.state != region_state) {
        for (u64 i = threadIdx.x; i < sizeof(State); i += blockDim.x) region_state[i] = p.state[i];
    }
    __syncthreads();
}

template <typename In, typename Out, typename State, typename Handler, int Mode>
__device__ void ring_kernel_main(const KernelParams& p) {
    __shared__ u64 s_action, s_n, s_head, s_out_tail;
    __shared__ u32 s_errors;
    __shared__ u32 s_last_error;
    const bool leader = blockIdx.x == 0 && threadIdx.x == 0;
    ControlBlock* cb = p.control;
    if (gridDim.x > 1 && (p.grid == nullptr || Mode == SERIAL)) {
        // Cannot coordinate the grid: record it once and leave (no barrier reached).
        if (leader) {
            Leader L;
            L.have_cmd = false;
            L.processed = L.batches = L.errors = L.last_error = 0;
            fault(cb, L, FAULT_BAD_LAUNCH);
        }
        return;
    }
    Leader L;
    if (leader) s_action = attach<In, Out, State>(p, L);
    __syncthreads();
    if (gridDim.x > 1) {
        if (leader) p.grid->action = s_action;
        grid_sync(p.grid);
        if (threadIdx.x == 0) s_action = ((volatile GridWorkspace*)p.grid)->action;
        __syncthreads();
    }
    if (s_action == ACT_ABORT) return;
    // The working state starts as the region's state.
    {
        unsigned char* region_state = (unsigned char*)cb + cb->words[W_STATE];
        if (blockIdx.x == 0 && p.state != region_state) {
            for (u64 i = threadIdx.x; i < sizeof(State); i += blockDim.x) p.state[i] = region_state[i];
        }
    }
    grid_sync(p.grid);
    State* state = (State*)p.state;

    for (;;) {
        // 1. The leader decides; everyone learns the decision.
        if (leader) {
            u64 n = 0;
            s_action = poll(p, L, &n);
            s_n = n;
            s_head = L.head;
            s_out_tail = L.out_tail;
            if (gridDim.x > 1) {
                volatile GridWorkspace* ws = p.grid;
                ws->action = s_action;
                ws->n = n;
                ws->head = L.head;
                ws->out_tail = L.out_tail;
            }
        }
        if (threadIdx.x == 0) {
            s_errors = 0;
            s_last_error = 0;
        }
        grid_sync(p.grid);
        if (gridDim.x > 1 && threadIdx.x == 0 && blockIdx.x != 0) {
            volatile GridWorkspace* ws = p.grid;
            s_action = ws->action;
            s_n = ws->n;
            s_head = ws->head;
            s_out_tail = ws->out_tail;
        }
        __syncthreads();
        const u64 action = s_action;
        if (action == ACT_ABORT) return;
        if (action == ACT_PARK || action == ACT_EXIT) {
            write_back<State>(p);
            if (leader) {
                store_counters(cb, L);
                __threadfence_system();
                store_release(word(cb, W_DEVICE_STATE), status_word(action == ACT_EXIT ? ST_EXITED : ST_PARKED, L.seq));
            }
            if (action == ACT_EXIT) return;
            continue;
        }
        if (action != ACT_RUN) continue;

        // 2. Handle the batch: message k of the batch goes to reply k.
        const u64 n = s_n, head = s_head, out_tail = s_out_tail;
        const u64 in_mask = p.input.capacity - 1, out_mask = p.output.capacity - 1;
        const u64 first = Mode == SERIAL ? 0 : (u64)blockIdx.x * blockDim.x + threadIdx.x;
        const u64 stride = Mode == SERIAL ? 1 : (u64)gridDim.x * blockDim.x;
        if (Mode == PARALLEL || leader) {
            for (u64 k = first; k < n; k += stride) {
                const In msg = ((const In*)p.input.slots)[(head + k) & in_mask];
                Out reply{};
                const int code = Handler::call(&msg, &reply, state);
                if (code != 0) {
                    atomicAdd(&s_errors, 1u);
                    atomicExch(&s_last_error, (u32)code);
                }
                ((Out*)p.output.slots)[(out_tail + k) & out_mask] = reply;
            }
        }
        __syncthreads();
        if (gridDim.x > 1 && threadIdx.x == 0 && s_errors != 0) {
            atomicAdd((unsigned long long*)&p.grid->errors, (unsigned long long)s_errors);
            atomicExch((unsigned long long*)&p.grid->last_error, (unsigned long long)s_last_error);
        }
        grid_sync(p.grid);

        // 3. The leader publishes the replies, then frees the inputs.
        if (leader) {
            u64 errors = s_errors, last_error = s_last_error;
            if (gridDim.x > 1) {
                errors = atomicExch((unsigned long long*)&p.grid->errors, 0ULL);
                last_error = atomicExch((unsigned long long*)&p.grid->last_error, 0ULL);
            }
            if (errors != 0) {
                L.errors += errors;
                L.last_error = last_error;
            }
            L.out_tail += n;
            L.head += n;
            store_release(p.output.tail, L.out_tail);
            store_release(p.input.head, L.head);
            L.processed += n;
            L.batches += 1;
            store_counters(cb, L);
        }
    }
}

}  // namespace dc

// Instantiates a persistent ring kernel named NAME (extern "C", one parameter
// of type dc::KernelParams) handling IN into OUT with STATE, by calling
// HANDLER(const IN*, OUT*, STATE*), which returns void or int (0 = ok).
// MODE is dc::SERIAL or dc::PARALLEL.
#define DC_RING_KERNEL(NAME, IN, OUT, STATE, HANDLER, MODE)                                            \
    struct NAME##_dc_handler {                                                                         \
        __device__ __forceinline__ static int call(const IN* in, OUT* out, STATE* state) {             \
            return ::dc::Status<decltype(HANDLER(in, out, state))>::run(                               \
                [&]() { return HANDLER(in, out, state); });                                            \
        }                                                                                              \
    };                                                                                                 \
    extern "C" __global__ void NAME(::dc::KernelParams params) {                                       \
        ::dc::ring_kernel_main<IN, OUT, STATE, NAME##_dc_handler, MODE>(params);                       \
    }

#endif  // DOTCOMPUTE_RING_KERNEL_CUH
