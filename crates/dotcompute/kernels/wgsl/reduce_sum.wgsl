// dotcompute shipped kernel: per-workgroup sums of input[0..n]. Each
// invocation sums its grid-stride elements, then the workgroup folds the
// sums in a tree (strides block/2, ..., 1, lower index on the left), as
// reduce_sum.cu and its CPU twin do, so the partials are bit-identical.
// partial[w] receives workgroup w's sum. The block (override block_x) must
// be a power of two; the workgroup memory is sized by it.
override block_x: u32 = 256u;

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<uniform> n: u32;

var<workgroup> scratch: array<f32, block_x>;

@compute @workgroup_size(block_x)
fn reduce_sum(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = block_x * groups.x;
    var sum = 0.0;
    var i = wid.x * block_x + tid;
    loop {
        if (i >= n) { break; }
        sum += input[i];
        if (stride > n - i) { break; }
        i += stride;
    }
    scratch[tid] = sum;
    workgroupBarrier();
    var s = block_x / 2u;
    loop {
        if (s == 0u) { break; }
        if (tid < s) {
            scratch[tid] += scratch[tid + s];
        }
        workgroupBarrier();
        s = s / 2u;
    }
    if (tid == 0u) {
        partial[wid.x] = scratch[0];
    }
}
