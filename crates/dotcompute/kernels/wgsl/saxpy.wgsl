// dotcompute shipped kernel: y[i] = a * x[i] + y[i] for every i < n, as one
// fused multiply-add (what CUDA contracts saxpy.cu to, and what the CPU
// twin computes with mul_add). Any 1-D launch (grid-stride loop).
override block_x: u32 = 256u;

@group(0) @binding(0) var<uniform> a: f32;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> n: u32;

@compute @workgroup_size(block_x)
fn saxpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = block_x * groups.x;
    var i = gid.x;
    loop {
        if (i >= n) { break; }
        y[i] = fma(a, x[i], y[i]);
        if (stride > n - i) { break; }
        i += stride;
    }
}
