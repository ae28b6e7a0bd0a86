// dotcompute shipped kernel: c[i] = a[i] + b[i] for every i < n.
// WGSL twin of vector_add.cu; any 1-D launch (grid-stride loop), the block
// size set by the launch through the override `block_x`.
override block_x: u32 = 256u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> n: u32;

@compute @workgroup_size(block_x)
fn vector_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = block_x * groups.x;
    var i = gid.x;
    loop {
        if (i >= n) { break; }
        c[i] = a[i] + b[i];
        if (stride > n - i) { break; }
        i += stride;
    }
}
