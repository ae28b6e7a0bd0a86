// dotcompute shipped kernel: c = a · b for row-major a (m×k), b (k×n),
// c (m×n). 16×16 workgroups, grid (⌈n/16⌉, ⌈m/16⌉); tiles of a and b are
// staged in workgroup memory. Each output accumulates its k products in
// order with fused multiply-adds, as matmul.cu and the CPU twin do.
const TILE: u32 = 16u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> m: u32;
@group(0) @binding(4) var<uniform> n: u32;
@group(0) @binding(5) var<uniform> k: u32;

var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.y * TILE + lid.y;
    let col = wid.x * TILE + lid.x;
    var acc = 0.0;
    let tiles = (k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let ka = t * TILE + lid.x;
        let kb = t * TILE + lid.y;
        tile_a[lid.y][lid.x] = select(0.0, a[row * k + ka], row < m && ka < k);
        tile_b[lid.y][lid.x] = select(0.0, b[kb * n + col], kb < k && col < n);
        workgroupBarrier();
        let last = min(TILE, k - t * TILE);
        for (var j = 0u; j < last; j++) {
            acc = fma(tile_a[lid.y][j], tile_b[j][lid.x], acc);
        }
        workgroupBarrier();
    }
    if (row < m && col < n) {
        c[row * n + col] = acc;
    }
}
