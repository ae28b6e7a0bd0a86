//! A bit-exact re-implementation of the parts of numpy's random `Generator`
//! that PyDotCompute's benchmark generators use, so that our synthetic
//! graphs and streams are the *same* data as theirs for the same seed.
//!
//! What is reproduced, and how:
//! - [`SeedSequence`]: numpy's `SeedSequence(seed)` entropy pool (4 words)
//!   and `generate_state`, hash constants and mixing as in numpy's
//!   `bit_generator.pyx`.
//! - [`Pcg64`]: numpy's `PCG64` (PCG XSL RR 128/64, state step then output),
//!   seeded from `SeedSequence(seed).generate_state(4, uint64)` as
//!   `state = s[0]:s[1]`, `inc = s[2]:s[3]`, including numpy's buffered
//!   32-bit draws (`next_uint32` returns the low half of a 64-bit draw and
//!   keeps the high half for the next call; `next_uint64` does not touch
//!   that buffer).
//! - [`NumpyGenerator`]: `default_rng(seed)` with `integers(low, high)`
//!   (int64, `endpoint=False`, numpy's Lemire method on 32-bit draws when the
//!   range fits in 32 bits, on 64-bit draws otherwise), `standard_normal`
//!   (numpy's 256-layer ziggurat with its exact tables), `uniform`, and
//!   `choice(n, k, replace=False)` (Floyd's algorithm with numpy's hash set,
//!   then numpy's Fisher–Yates shuffle; or the tail shuffle numpy uses for
//!   large samples).
//!
//! Invariant: for the same seed, every method returns the value numpy 2.x's
//! `np.random.default_rng(seed)` returns for the same sequence of calls. The
//! tests check this against values computed with numpy.
//!
//! ```
//! use dotcompute_workloads::numpy_rng::NumpyGenerator;
//!
//! // numpy: rng = np.random.default_rng(42); [rng.integers(0, 1000) for _ in range(3)]
//! let mut rng = NumpyGenerator::new(42);
//! let draws: Vec<i64> = (0..3).map(|_| rng.integers(0, 1000)).collect();
//! assert_eq!(draws, [89, 773, 654]);
//! ```

mod ziggurat_tables;

use ziggurat_tables::{FI, KI, WI};

const INIT_A: u32 = 0x43b0_d7e5;
const MULT_A: u32 = 0x931e_8875;
const INIT_B: u32 = 0x8b51_f9dd;
const MULT_B: u32 = 0x58f3_8ded;
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
const XSHIFT: u32 = 16;
const POOL_SIZE: usize = 4;

/// numpy's `SeedSequence` for an integer seed with no spawn key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSequence {
    pool: [u32; POOL_SIZE],
}

fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut value = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(MULT_A);
    value = value.wrapping_mul(*hash_const);
    value ^ (value >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let r = MIX_MULT_L.wrapping_mul(x).wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    r ^ (r >> XSHIFT)
}

impl SeedSequence {
    /// `SeedSequence(seed)`: the seed is split into 32-bit words, least
    /// significant first (one word for seeds below 2^32), as numpy does.
    pub fn new(seed: u64) -> Self {
        let entropy: Vec<u32> = if seed >> 32 == 0 {
            vec![seed as u32]
        } else {
            vec![seed as u32, (seed >> 32) as u32]
        };
        let mut pool = [0u32; POOL_SIZE];
        let mut hash_const = INIT_A;
        for (i, slot) in pool.iter_mut().enumerate() {
            *slot = hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const);
        }
        for src in 0..POOL_SIZE {
            for dst in 0..POOL_SIZE {
                if src != dst {
                    let h = hashmix(pool[src], &mut hash_const);
                    pool[dst] = mix(pool[dst], h);
                }
            }
        }
        // Entropy longer than the pool (never for a u64 seed) would be mixed in here.
        SeedSequence { pool }
    }

    /// `generate_state(n_words, uint32)`.
    pub fn generate_state_u32(&self, n_words: usize) -> Vec<u32> {
        let mut hash_const = INIT_B;
        (0..n_words)
            .map(|i| {
                let mut v = self.pool[i % POOL_SIZE] ^ hash_const;
                hash_const = hash_const.wrapping_mul(MULT_B);
                v = v.wrapping_mul(hash_const);
                v ^ (v >> XSHIFT)
            })
            .collect()
    }

    /// `generate_state(n_words, uint64)`: pairs of 32-bit words, little-endian.
    pub fn generate_state_u64(&self, n_words: usize) -> Vec<u64> {
        self.generate_state_u32(2 * n_words)
            .chunks_exact(2)
            .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
            .collect()
    }
}

const PCG_MULT: u128 = 0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645;

/// numpy's `PCG64` bit generator (PCG XSL RR 128/64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcg64 {
    state: u128,
    inc: u128,
    /// numpy's `has_uint32` / `uinteger`: the unused high half of the last
    /// 64-bit draw made for a 32-bit request.
    buffered_u32: Option<u32>,
}

impl Pcg64 {
    /// `PCG64(seed)`, seeded through `SeedSequence(seed)` like numpy.
    pub fn new(seed: u64) -> Self {
        let s = SeedSequence::new(seed).generate_state_u64(4);
        let initstate = (u128::from(s[0]) << 64) | u128::from(s[1]);
        let initseq = (u128::from(s[2]) << 64) | u128::from(s[3]);
        Self::from_state_inc(initstate, initseq)
    }

    /// PCG's `srandom(initstate, initseq)`.
    pub fn from_state_inc(initstate: u128, initseq: u128) -> Self {
        let mut rng = Pcg64 {
            state: 0,
            inc: (initseq << 1) | 1,
            buffered_u32: None,
        };
        rng.step();
        rng.state = rng.state.wrapping_add(initstate);
        rng.step();
        rng
    }

    /// The 128-bit state and increment (numpy's `PCG64.state['state']`).
    pub fn state(&self) -> (u128, u128) {
        (self.state, self.inc)
    }

    #[inline]
    fn step(&mut self) {
        self.state = self.state.wrapping_mul(PCG_MULT).wrapping_add(self.inc);
    }

    /// The next 64-bit output (`next_uint64`, `random_raw`).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let s = self.state;
        let value = ((s >> 64) as u64) ^ (s as u64);
        value.rotate_right((s >> 122) as u32)
    }

    /// The next 32-bit output (`next_uint32`): half of a 64-bit draw, low half first.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.buffered_u32.take() {
            return v;
        }
        let next = self.next_u64();
        self.buffered_u32 = Some((next >> 32) as u32);
        next as u32
    }

    /// `next_double`: 53 random bits in [0, 1).
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// `np.random.default_rng(seed)`: a [`Pcg64`] with numpy's distributions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumpyGenerator {
    bits: Pcg64,
}

// numpy's `ziggurat_nor_r` = 3.6541528853610087963519472518 and
// `ziggurat_nor_inv_r` = 0.27366123732975827203338247596, as the doubles
// those literals round to.
const ZIGGURAT_NOR_R: f64 = 3.654_152_885_361_009;
const ZIGGURAT_NOR_INV_R: f64 = 0.273_661_237_329_758_3;

impl NumpyGenerator {
    /// `default_rng(seed)`.
    pub fn new(seed: u64) -> Self {
        NumpyGenerator { bits: Pcg64::new(seed) }
    }

    /// The underlying bit generator.
    pub fn bit_generator(&mut self) -> &mut Pcg64 {
        &mut self.bits
    }

    /// numpy's `buffered_bounded_lemire_uint32`: uniform in `0..=rng`, `rng < u32::MAX`.
    #[inline]
    fn bounded_lemire_u32(&mut self, rng: u32) -> u32 {
        let rng_excl = rng + 1;
        let mut m = u64::from(self.bits.next_u32()) * u64::from(rng_excl);
        let mut leftover = m as u32;
        if leftover < rng_excl {
            let threshold = (u32::MAX - rng) % rng_excl;
            while leftover < threshold {
                m = u64::from(self.bits.next_u32()) * u64::from(rng_excl);
                leftover = m as u32;
            }
        }
        (m >> 32) as u32
    }

    /// numpy's `bounded_lemire_uint64`: uniform in `0..=rng`, `rng < u64::MAX`.
    #[inline]
    fn bounded_lemire_u64(&mut self, rng: u64) -> u64 {
        let rng_excl = rng + 1;
        let mut m = u128::from(self.bits.next_u64()) * u128::from(rng_excl);
        let mut leftover = m as u64;
        if leftover < rng_excl {
            let threshold = (u64::MAX - rng) % rng_excl;
            while leftover < threshold {
                m = u128::from(self.bits.next_u64()) * u128::from(rng_excl);
                leftover = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// numpy's `random_bounded_uint64` (Lemire, not masked): uniform in `0..=rng`.
    #[inline]
    pub fn bounded_u64(&mut self, rng: u64) -> u64 {
        if rng == 0 {
            0
        } else if rng <= u64::from(u32::MAX) {
            if rng == u64::from(u32::MAX) {
                u64::from(self.bits.next_u32())
            } else {
                u64::from(self.bounded_lemire_u32(rng as u32))
            }
        } else if rng == u64::MAX {
            self.bits.next_u64()
        } else {
            self.bounded_lemire_u64(rng)
        }
    }

    /// `integers(low, high)` for int64 with `endpoint=False`: uniform in
    /// `low..high`. Returns `low` when `high <= low + 1` (numpy raises for
    /// `high <= low`; callers here never ask for an empty range).
    #[inline]
    pub fn integers(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let rng = (high as u64).wrapping_sub(low as u64).wrapping_sub(1);
        (low as u64).wrapping_add(self.bounded_u64(rng)) as i64
    }

    /// `integers(low, high, size=out.len())`: the same stream as that many
    /// scalar calls.
    pub fn integers_fill(&mut self, low: i64, high: i64, out: &mut [i64]) {
        for v in out {
            *v = self.integers(low, high);
        }
    }

    /// `standard_normal()`: numpy's ziggurat.
    pub fn standard_normal(&mut self) -> f64 {
        loop {
            let mut r = self.bits.next_u64();
            let idx = (r & 0xff) as usize;
            r >>= 8;
            let sign = r & 1;
            let rabs = (r >> 1) & 0x000f_ffff_ffff_ffff;
            let mut x = rabs as f64 * WI[idx];
            if sign == 1 {
                x = -x;
            }
            if rabs < KI[idx] {
                return x;
            }
            if idx == 0 {
                loop {
                    let xx = -ZIGGURAT_NOR_INV_R * (-self.bits.next_f64()).ln_1p();
                    let yy = -(-self.bits.next_f64()).ln_1p();
                    if yy + yy > xx * xx {
                        return if (rabs >> 8) & 1 == 1 {
                            -(ZIGGURAT_NOR_R + xx)
                        } else {
                            ZIGGURAT_NOR_R + xx
                        };
                    }
                }
            } else if (FI[idx - 1] - FI[idx]) * self.bits.next_f64() + FI[idx] < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }

    /// `uniform(low, high)`: `low + (high - low) * next_double`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.bits.next_f64()
    }

    /// numpy's `_shuffle_int(n, first, data)`: Fisher–Yates from the end
    /// down to `first`, each swap partner drawn with `random_bounded_uint64(0, i)`.
    fn shuffle_from(&mut self, data: &mut [i64], first: usize) {
        for i in (first.max(1)..data.len()).rev() {
            let j = self.bounded_u64(i as u64) as usize;
            data.swap(i, j);
        }
    }

    /// `choice(pop_size, size, replace=False)` (shuffled, no weights):
    /// `size` distinct values of `0..pop_size`. Returns `None` when
    /// `size > pop_size`, where numpy raises.
    pub fn choice_without_replacement(&mut self, pop_size: usize, size: usize) -> Option<Vec<i64>> {
        if size > pop_size {
            return None;
        }
        // numpy: cutoff 50 with shuffle; tail-shuffle when the sample is a large fraction.
        if pop_size > 10_000 && size > pop_size / 50 {
            let mut idx: Vec<i64> = (0..pop_size as i64).collect();
            self.shuffle_from(&mut idx, (pop_size - size).max(1));
            return Some(idx.split_off(pop_size - size));
        }
        // Floyd's algorithm with numpy's open-addressing set.
        let set_size = (1.2 * size as f64) as u64;
        let mask = gen_mask(set_size);
        let mut hash_set = vec![u64::MAX; (mask + 1) as usize];
        let mut out = vec![0i64; size];
        for j in (pop_size - size)..pop_size {
            let val = self.bounded_u64(j as u64);
            let mut loc = val & mask;
            while hash_set[loc as usize] != u64::MAX && hash_set[loc as usize] != val {
                loc = (loc + 1) & mask;
            }
            let slot = j - (pop_size - size);
            if hash_set[loc as usize] == u64::MAX {
                hash_set[loc as usize] = val;
                out[slot] = val as i64;
            } else {
                let mut loc = j as u64 & mask;
                while hash_set[loc as usize] != u64::MAX {
                    loc = (loc + 1) & mask;
                }
                hash_set[loc as usize] = j as u64;
                out[slot] = j as i64;
            }
        }
        self.shuffle_from(&mut out, 1);
        Some(out)
    }

    /// `choice(values)` with replacement, no weights, for a scalar: one
    /// `integers(0, len)` draw. `None` for an empty slice.
    pub fn choice_of<T: Copy>(&mut self, values: &[T]) -> Option<T> {
        if values.is_empty() {
            return None;
        }
        let i = self.integers(0, values.len() as i64) as usize;
        values.get(i).copied()
    }
}

/// numpy's `_gen_mask`: the smallest all-ones mask covering `max`.
fn gen_mask(max: u64) -> u64 {
    let mut mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    mask
}

#[cfg(test)]
mod tests {
    //! Expected values were printed by numpy 2.4 (`np.random.default_rng`,
    //! `PCG64`, `SeedSequence`) for the same calls.
    use super::*;

    #[test]
    fn seed_sequence_matches_numpy() {
        assert_eq!(
            SeedSequence::new(42).generate_state_u32(8),
            [3444837047, 2669555309, 2046530742, 3581440988, 1691623607, 2099784219, 1184028159, 862288241]
        );
        assert_eq!(
            SeedSequence::new(0).generate_state_u32(4),
            [2968811710, 3677149159, 745650761, 2884920346]
        );
        assert_eq!(
            SeedSequence::new((1 << 40) + 5).generate_state_u32(4),
            [3767146251, 3672381269, 2127416108, 2216012776]
        );
    }

    #[test]
    fn pcg64_state_and_raw_output_match_numpy() {
        let mut bg = Pcg64::new(42);
        assert_eq!(
            bg.state(),
            (0xcea44f6798798f2aacbc7c9d68860ac8, 0xfa505436c9a8416e66caf2e28d25abff)
        );
        assert_eq!(
            [bg.next_u64(), bg.next_u64(), bg.next_u64()],
            [0xc621fbcd16d92688, 0x705a5661a791ffc1, 0xdbcd12c26eda1624]
        );
    }

    #[test]
    fn integers_match_numpy_scalar_and_array_calls() {
        let mut g = NumpyGenerator::new(42);
        let v: Vec<i64> = (0..5).map(|_| g.integers(0, 1000)).collect();
        assert_eq!(v, [89, 773, 654, 438, 433]);
        let mut g = NumpyGenerator::new(42);
        let mut a = [0i64; 5];
        g.integers_fill(0, 1000, &mut a);
        let mut b = [0i64; 3];
        g.integers_fill(0, 1000, &mut b);
        assert_eq!(a, [89, 773, 654, 438, 433]);
        assert_eq!(b, [858, 85, 697]);
        let mut g = NumpyGenerator::new(42);
        let mut c = [0i64; 3];
        g.integers_fill(0, 1 << 40, &mut c);
        assert_eq!(c, [850973674774, 482551947687, 944038396526]);
    }

    #[test]
    fn standard_normal_matches_numpy_bit_for_bit() {
        let mut g = NumpyGenerator::new(42);
        let got: Vec<u64> = (0..4).map(|_| g.standard_normal().to_bits()).collect();
        let want = [
            f64::from_bits(0x3FD3807C1104FC6B), // 0x1.3807c1104fc6bp-2
            -f64::from_bits(0x3FF0A3C65FCA9A7E),
            f64::from_bits(0x3FE803B239E77350),
            f64::from_bits(0x3FEE191B2D157F36),
        ];
        assert_eq!(got, want.map(f64::to_bits));
    }

    #[test]
    fn a_million_normals_sum_like_numpy() {
        // numpy: default_rng(42).standard_normal(1_000_000).sum() == 0x1.86028eced01b0p+6,
        // max |z| == 5.0072352319089966 (exercises the tail and wedge paths).
        let mut g = NumpyGenerator::new(42);
        let mut sum = 0.0f64;
        let mut max = 0.0f64;
        let mut z = Vec::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            let v = g.standard_normal();
            z.push(v);
            max = max.max(v.abs());
        }
        // numpy sums pairwise (blocks of 8, unrolled by 8 accumulators); the
        // bit pattern of the sum depends on that order, so compare closely.
        for v in &z {
            sum += v;
        }
        assert!((sum - f64::from_bits(0x4058_6028_ECED_01B0)).abs() < 1e-9, "{sum}");
        assert_eq!(max, 5.0072352319089966);
    }

    #[test]
    fn uniform_matches_numpy() {
        let mut g = NumpyGenerator::new(42);
        assert_eq!(g.uniform(3.0, 5.0).to_bits(), 0x4012310FDE68B6C9);
        assert_eq!(g.uniform(3.0, 5.0).to_bits(), 0x400F05A5661A7920);
    }

    #[test]
    fn choice_without_replacement_matches_numpy() {
        let mut g = NumpyGenerator::new(7);
        assert_eq!(
            g.choice_without_replacement(100_000, 5).unwrap(),
            [62507, 68416, 94486, 57829, 89720]
        );
        let mut g = NumpyGenerator::new(7);
        assert_eq!(g.choice_without_replacement(10, 4).unwrap(), [6, 5, 9, 8]);
        assert!(g.choice_without_replacement(3, 4).is_none());
        let mut g = NumpyGenerator::new(7);
        assert_eq!(g.choice_without_replacement(5, 5).unwrap(), [1, 0, 4, 3, 2]);
        // A sample above pop/50 of a population above 10 000 takes numpy's tail-shuffle path.
        let mut g = NumpyGenerator::new(7);
        let v = g.choice_without_replacement(20_000, 1_000).unwrap();
        assert_eq!(v[..5], [3762, 1432, 9397, 10263, 5947]);
        assert_eq!(v.iter().sum::<i64>(), 10_281_121);
    }
}
