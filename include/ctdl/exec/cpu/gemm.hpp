#pragma once
// General matrix product on the cpu policy.
//
//   C[M,N] = op(A)[M,K] · op(B)[K,N]      (or C += op(A)·op(B) with `accumulate`)
//
// All matrices are row-major with explicit row strides; op(X) = X (trans::n) or Xᵀ
// (trans::t). After each element of C holds its final value the epilogue is called once
// for it, in row segments of contiguous columns, ep(row, col0, &C[row, col0], len), on the
// thread that computed them while they are still in L1.
//
// The kernel is BLIS-shaped (gemm_kernel.hpp, gemm_pack.hpp):
//
//   for jc in N by NC:                 B block  op(B)[pc:pc+kc, jc:jc+nc] → packed, L2/L3
//     for pc in K by KC:
//       for ic in M by MC:             A block  op(A)[ic:ic+mc, pc:pc+kc] → packed, L2
//         for jr in nc by NR:          B micro-panel (kc × NR) stays in L1
//           for ir in mc by MR:        MR × NR register tile += A micro-panel · B micro-panel
//
// Threads split C into a grid of disjoint MR/NR-aligned blocks and never split K: each
// element's sum is the same chain of FMAs (K cut at the same KC boundaries, which depend
// on K alone) whatever the thread count, so results are bitwise reproducible across
// thread counts.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "../epilogue.hpp"
#include "../pass_count.hpp"
#include "gemm_kernel.hpp"
#include "gemm_pack.hpp"
#include "gemm_simd.hpp"
#include "pool.hpp"

namespace ctdl {

// trans and the epilogues (none, bias) are shared by all policies: exec/epilogue.hpp.

namespace cpu_kernels {
namespace detail {

/// Packing scratch of the calling thread, 64-byte aligned; it only grows, so after the first
/// calls of a training loop no GEMM allocates. The thread that calls gemm holds the scratch
/// of every part of the product (part t of a parallel product packs into region t), so it
/// does not matter which of the pool's threads ends up running a part.
template <class T, int Slot>
inline T* scratch(std::size_t n) {
    struct buffer {
        T* p = nullptr;
        std::size_t cap = 0;
        ~buffer() {
            if (p) ::operator delete[](static_cast<void*>(p), std::align_val_t{64});
        }
    };
    static thread_local buffer buf;
    if (n > buf.cap) {
        if (buf.p) ::operator delete[](static_cast<void*>(buf.p), std::align_val_t{64});
        buf.p = nullptr;
        buf.p = static_cast<T*>(::operator new[](n * sizeof(T), std::align_val_t{64}));
        buf.cap = n;
    }
    return buf.p;
}

/// Work (multiply-adds) up to which a product runs on the calling thread alone.
inline constexpr std::size_t serial_work = std::size_t{1} << 18;

/// B bytes up to which the few-row dot-product path (M <= 4) runs on the calling thread alone.
inline constexpr std::size_t dot_split_bytes = std::size_t{64} << 10;

/// Blocking for T on this ISA. KC: depth of a block, so that a B micro-panel (KC × NR)
/// and an A micro-panel (MR × KC) fit L1 (48 KiB) together; MC: rows of the packed A block
/// (MC × KC, in L2); NC: columns of the packed B block (KC × NC). KC is the same for every
/// tile shape: it fixes where each element's sum is cut, so all tile shapes agree bitwise.
template <class T, std::size_t MR_ = tile<T>::rows, std::size_t NV_ = tile<T>::vecs>
struct blocking {
    static constexpr std::size_t MR = MR_;
    static constexpr std::size_t NV = NV_;
    static constexpr std::size_t NR = NV * simd<T>::width;
    static constexpr std::size_t main_nr = tile<T>::vecs * simd<T>::width;
    static constexpr std::size_t KC = 32768 / (main_nr * sizeof(T)) < 512 ? 32768 / (main_nr * sizeof(T)) : 512;
    static constexpr std::size_t MC = MR * (196608 / (MR * KC * sizeof(T)));
    static constexpr std::size_t NC = NR * (1048576 / (NR * KC * sizeof(T)));
};

/// Whether gemm_block reads op(A) in place for a block of `rows` rows (see there).
template <trans TA>
constexpr bool a_reads_in_place(std::size_t rows) {
    return TA == trans::n && rows <= 128;
}

/// n parts of [0, count) of equal size (±1): part p is [split_even(count, n, p), split_even(count, n, p+1)).
constexpr std::size_t split_even(std::size_t count, std::size_t parts, std::size_t p) {
    return p * (count / parts) + std::min(p, count % parts);
}

/// One thread's share: C[m0:m1, n0:n1] over all of K, with an MR × (NV·width) register tile.
/// TransC: the problem is the transposed one, Cᵀ = op(B)ᵀ·op(A)ᵀ, and C is written (and
/// the epilogue called) in C's own row-major layout.
/// ap, bp: packing space for the block, at least block_scratch<T, MR, NV>(M, N, K).a / .b
/// elements (M, N: the whole product's, which bound any block's).
template <trans TA, trans TB, class T, std::size_t MR, std::size_t NV, bool TransC, class Epilogue>
void gemm_block(std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1, std::size_t K, const T* A,
                std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, bool accumulate,
                const Epilogue& ep, T* ap, T* bp) {
    using bl = blocking<T, MR, NV>;
    constexpr std::size_t NR = bl::NR;
    using kernel = micro_kernel<T, MR, NV, TransC>;
    using kernel_a_rows = micro_kernel<T, MR, NV, TransC, true>;

    // K is cut into equal blocks of at most KC; the cuts depend on K alone.
    const std::size_t kblocks = (K + bl::KC - 1) / bl::KC;
    const std::size_t mblocks = (m1 - m0 + bl::MC - 1) / bl::MC;
    const std::size_t nblocks = (n1 - n0 + bl::NC - 1) / bl::NC;
    // Equal M/N blocks, rounded up to whole micro-panels.
    const std::size_t mc_max = ((m1 - m0 + mblocks - 1) / mblocks + MR - 1) / MR * MR;
    const std::size_t nc_max = ((n1 - n0 + nblocks - 1) / nblocks + NR - 1) / NR * NR;
    // With few rows (≤ 128: a training batch, batch-1 inference) each B value is used by only
    // a few row panels and copying B costs more than it saves: a row-major op(B) is read in
    // place (NR-wide vectors at row stride ldb) and only a partial last panel is packed
    // (zero padding). Measured on Zen 5: +10% at 64×784×256, equal or better up to 512².
    // Either way every element sees the same arithmetic.
    const bool b_in_place = TB == trans::n && m1 - m0 <= 128;
    // Likewise a row-major op(A) with few rows is read in place (its rows are contiguous along
    // k; MR row streams): nothing to transpose, and a thread's share can be cut into small
    // pieces without packing A again for each. Only a partial last row panel is packed.
    const bool a_in_place = a_reads_in_place<TA>(m1 - m0);

    // op(A)[i, k] = A[i·a_rs + k·a_cs]; op(B)[k, j] = B[j·b_rs + k·b_cs].
    const std::size_t a_rs = TA == trans::n ? lda : 1, a_cs = TA == trans::n ? 1 : lda;
    const std::size_t b_rs = TB == trans::n ? 1 : ldb, b_cs = TB == trans::n ? ldb : 1;

    for (std::size_t jc = n0; jc < n1; jc += nc_max) {
        const std::size_t nc = std::min(nc_max, n1 - jc);
        for (std::size_t kb = 0; kb < kblocks; ++kb) {
            const std::size_t pc = split_even(K, kblocks, kb);
            const std::size_t kc = split_even(K, kblocks, kb + 1) - pc;
            const bool add = accumulate || kb > 0, last = kb + 1 == kblocks;
            const T* bsrc = B + jc * b_rs + pc * b_cs;
            if (b_in_place) {
                if (nc % NR) pack_panels<NR>(bsrc + (nc - nc % NR) * b_rs, b_rs, b_cs, nc % NR, kc, bp);
            } else {
                pack_panels<NR>(bsrc, b_rs, b_cs, nc, kc, bp);
            }
            for (std::size_t ic = m0; ic < m1; ic += mc_max) {
                const std::size_t mc = std::min(mc_max, m1 - ic);
                const T* asrc = A + ic * a_rs + pc * a_cs;
                if (a_in_place) {
                    if (mc % MR) pack_panels<MR>(asrc + (mc - mc % MR) * a_rs, a_rs, a_cs, mc % MR, kc, ap);
                } else {
                    pack_panels<MR>(asrc, a_rs, a_cs, mc, kc, ap);
                }
                for (std::size_t jr = 0; jr < nc; jr += NR) {
                    const std::size_t nr = std::min(NR, nc - jr);
                    const T* b = b_in_place ? (nr == NR ? bsrc + jr : bp) : bp + jr * kc;
                    const std::size_t bstride = b_in_place && nr == NR ? ldb : NR;
                    for (std::size_t ir = 0; ir < mc; ir += MR) {
                        const std::size_t mr = std::min(MR, mc - ir);
                        const std::size_t row = ic + ir, col = jc + jr;
                        T* c = TransC ? C + col * ldc + row : C + row * ldc + col;
                        if (a_in_place && mr == MR)
                            kernel_a_rows::run(kc, asrc + ir * lda, lda, b, bstride, c, ldc, mr, nr, add);
                        else
                            kernel::run(kc, ap + (a_in_place ? 0 : ir * kc), MR, b, bstride, c, ldc, mr, nr, add);
                        if constexpr (TransC) {
                            if (last)
                                for (std::size_t j = 0; j < nr; ++j) ep(col + j, row, c + j * ldc, mr);
                        } else {
                            if (last)
                                for (std::size_t i = 0; i < mr; ++i) ep(row + i, col, c + i * ldc, nr);
                        }
                    }
                }
            }
        }
    }
}

/// Elements of packing space one gemm_block of a product M × N × K needs at most, for A
/// and for B, each rounded up to whole 64-byte lines.
template <class T, std::size_t MR, std::size_t NV>
constexpr std::pair<std::size_t, std::size_t> block_scratch(std::size_t M, std::size_t N, std::size_t K) {
    using bl = blocking<T, MR, NV>;
    const std::size_t kblocks = (K + bl::KC - 1) / bl::KC, kc_max = (K + kblocks - 1) / kblocks;
    const std::size_t line = 64 / sizeof(T);
    auto lines = [&](std::size_t n) { return (n + line - 1) / line * line; };
    // A block has at most min(M, MC) rows rounded up to MR (MC is a multiple of MR); likewise B.
    const std::size_t mc = (std::min(M, bl::MC) + MR - 1) / MR * MR, nc = (std::min(N, bl::NC) + bl::NR - 1) / bl::NR * bl::NR;
    return {lines(mc * kc_max), lines(nc * kc_max)};
}

/// Runs gemm_block over the pool: C is cut into MR/NR-aligned blocks that the threads take
/// one at a time from a shared counter (a thread that is descheduled holds up at most the
/// block it is in). K is never split and a block's arithmetic does not depend on where its
/// edges lie, so which thread computes which block never changes a result.
template <trans TA, trans TB, class T, std::size_t MR, std::size_t NV, bool TransC, class Epilogue>
void gemm_threads(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                  std::size_t ldb, T* C, std::size_t ldc, bool accumulate, const Epilogue& ep, thread_pool& pool) {
    constexpr std::size_t NR = blocking<T, MR, NV>::NR;
    const std::size_t mpanels = (M + MR - 1) / MR, npanels = (N + NR - 1) / NR;
    const bool serial = pool.size() == 1 || M * N * K <= serial_work || mpanels * npanels == 1;
    const std::size_t n = serial ? 1 : pool.size();
    // (Not a structured binding: clang before 16 cannot capture one in the lambda below.)
    const auto elems = block_scratch<T, MR, NV>(M, N, K);
    const std::size_t a_elems = elems.first, b_elems = elems.second;
    T* const space = scratch<T, 0>(n * (a_elems + b_elems));  // region t: part t of the pool's job
    auto block = [&](std::size_t t, std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1) {
        T* ap = space + t * (a_elems + b_elems);
        gemm_block<TA, TB, T, MR, NV, TransC, Epilogue>(m0, m1, n0, n1, K, A, lda, B, ldb, C, ldc, accumulate, ep, ap,
                                                        ap + a_elems);
    };
    if (serial) {
        block(0, 0, M, 0, N);
        return;
    }
    // A grid tm × tn of C blocks, n of them. Splitting N makes every block pack all of A
    // (M·K each), splitting M all of B (K·N each): pick the grid that packs least.
    std::size_t tm = 1, tn = n, best = ~std::size_t{0};
    for (std::size_t d = 1; d <= n; ++d) {
        if (n % d) continue;
        const std::size_t dm = d, dn = n / d;
        if (dm > mpanels || dn > npanels) continue;
        const std::size_t cost = dn * M * K + dm * K * N;
        if (cost < best) best = cost, tm = dm, tn = dn;
    }
    if (best == ~std::size_t{0}) {  // fewer panels than threads: split the longer side only
        if (mpanels >= npanels) tm = std::min(n, mpanels), tn = 1;
        else tm = 1, tn = std::min(n, npanels);
    }
    // Columns cost no extra packing when A is read in place: then 4 blocks a thread, so
    // the threads even out when one of them is slowed down.
    if (tm == 1 && a_reads_in_place<TA>(M)) tn = std::min(npanels, 4 * n);
    const std::size_t blocks = tm * tn;
    std::atomic<std::size_t> next{0};
    pool.run([&](std::size_t t, std::size_t) {
        for (std::size_t b; (b = next.fetch_add(1, std::memory_order_relaxed)) < blocks;) {
            const std::size_t ti = b / tn, tj = b % tn;
            const std::size_t m0 = std::min(M, split_even(mpanels, tm, ti) * MR);
            const std::size_t m1 = std::min(M, split_even(mpanels, tm, ti + 1) * MR);
            const std::size_t n0 = std::min(N, split_even(npanels, tn, tj) * NR);
            const std::size_t n1 = std::min(N, split_even(npanels, tn, tj + 1) * NR);
            if (m0 < m1 && n0 < n1) block(t, m0, m1, n0, n1);
        }
    });
}

/// Picks the register tile. Few rows (batch-1 inference, narrow outputs): a tile exactly
/// as tall as needed with wider rows, so no FMA works on padding. Otherwise the tile that
/// wastes least on padded edge rows and columns, weighted by how fast its inner loop runs
/// (measured on Zen 5: 14×32, 12×32 and 6×64 run alike; 8×48 is ~5% slower). The choice
/// depends on the sizes alone (never on the thread count).
template <trans TA, trans TB, class T, bool TransC, class Epilogue>
void gemm_tiles(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                std::size_t ldb, T* C, std::size_t ldc, bool accumulate, const Epilogue& ep, thread_pool& pool) {
#define CTDL_GEMM_TILE(mr, nv) \
    gemm_threads<TA, TB, T, mr, nv, TransC, Epilogue>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, pool)
#if defined(__AVX512F__)
    if (M == 1) return CTDL_GEMM_TILE(1, 4);
    if (M <= 2) return CTDL_GEMM_TILE(2, 4);
    if (M <= 4) return CTDL_GEMM_TILE(4, 4);
    if (M <= 6) return CTDL_GEMM_TILE(6, 4);
    if (M <= 8) return CTDL_GEMM_TILE(8, 3);
    if (M <= 10) return CTDL_GEMM_TILE(10, 2);
    if (M <= 12) return CTDL_GEMM_TILE(12, 2);
    if constexpr (!TransC) {
        constexpr std::size_t w = simd<T>::width;
        auto used = [](std::size_t n, std::size_t r) { return double(n) / double((n + r - 1) / r * r); };
        const double s14 = used(M, 14) * used(N, 2 * w), s12 = 0.99 * used(M, 12) * used(N, 2 * w);
        const double s8 = 0.95 * used(M, 8) * used(N, 3 * w), s6 = used(M, 6) * used(N, 4 * w);
        const double best = std::max(std::max(s14, s12), std::max(s8, s6));
        if (s14 == best) return CTDL_GEMM_TILE(14, 2);
        if (s12 == best) return CTDL_GEMM_TILE(12, 2);
        if (s6 == best) return CTDL_GEMM_TILE(6, 4);
        return CTDL_GEMM_TILE(8, 3);
    }
#endif
    if constexpr (!TransC) return CTDL_GEMM_TILE(tile<T>::rows, tile<T>::vecs);
    else if (M <= tile<T>::rows) return CTDL_GEMM_TILE(tile<T>::rows, tile<T>::vecs);
#undef CTDL_GEMM_TILE
}

#if defined(__AVX512F__)
// GCC 12 flags the undefined pass-through operand inside the interleave and lane-reduction
// intrinsics.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
/// Lane sums of `width` registers at once, r[l] = Σ lanes of v[l], by a transposing tree of
/// interleaves and adds. Every v[l] goes through the same tree (only the lane it sits in
/// differs, and a + b = b + a exactly), so a sum does not depend on l.
inline __m512 lane_sums(__m512 (&v)[16]) {
    __m512 s1[8], s2[4];
    for (int p = 0; p < 8; ++p)  // [a0+a2, b0+b2, a1+a3, b1+b3] per 128-bit chunk
        s1[p] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]), _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]));
    for (int q = 0; q < 4; ++q) {  // [a, b, c, d] per chunk: each the sum of its 4 lanes there
        const __m512d x = _mm512_castps_pd(s1[2 * q]), y = _mm512_castps_pd(s1[2 * q + 1]);
        s2[q] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    // Chunks: (c0 + c2) + (c1 + c3), four registers to a chunk.
    const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[0], s2[1], 0x88), _mm512_shuffle_f32x4(s2[0], s2[1], 0xdd));
    const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[2], s2[3], 0x88), _mm512_shuffle_f32x4(s2[2], s2[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x88), _mm512_shuffle_f32x4(u0, u1, 0xdd));
}

inline __m512d lane_sums(__m512d (&v)[8]) {
    __m512d s1[4];
    for (int p = 0; p < 4; ++p)  // [a0+a1, b0+b1] per 128-bit chunk
        s1[p] = _mm512_add_pd(_mm512_unpacklo_pd(v[2 * p], v[2 * p + 1]), _mm512_unpackhi_pd(v[2 * p], v[2 * p + 1]));
    const __m512d u0 = _mm512_add_pd(_mm512_shuffle_f64x2(s1[0], s1[1], 0x88), _mm512_shuffle_f64x2(s1[0], s1[1], 0xdd));
    const __m512d u1 = _mm512_add_pd(_mm512_shuffle_f64x2(s1[2], s1[3], 0x88), _mm512_shuffle_f64x2(s1[2], s1[3], 0xdd));
    return _mm512_add_pd(_mm512_shuffle_f64x2(u0, u1, 0x88), _mm512_shuffle_f64x2(u0, u1, 0xdd));
}

/// Narrow C = A·Bᵀ (N ≤ narrow_n; a classifier's last layer, whose weights sit in L1) as dot
/// products of rows of A with rows of B, both contiguous along k: nothing is packed or
/// transposed. Blocks of R rows × JB columns, R·JB = width accumulator registers; each
/// element is
///     c[i, j] = lane_sums( Σ_{k0 by w} a[i, k0:k0+w] ⊙ b[j, k0:k0+w] )
/// (lane partial sums by FMA, k ascending, the last partial vector zero-filled, then the
/// fixed lane tree), wherever its block lies, so results never depend on the thread count.
/// Computes rows [r0, r1), then the epilogue over each of them.
template <class T, std::size_t R, class Epilogue>
void gemm_narrow_rows(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                      std::size_t ldb, T* C, std::size_t ldc, bool accumulate, const Epilogue& ep, std::size_t r0,
                      std::size_t r1) {
    using S = simd<T>;
    using V = zmm<T>;
    using reg = typename S::reg;
    constexpr std::size_t W = S::width, JB = W / R;
    static_assert(R * JB == W);
    const std::size_t kv = K / W * W;
    const __mmask16 tail = static_cast<__mmask16>((1u << (K - kv)) - 1);
    __mmask16 all = 0xffff;
    __asm__("" : "+k"(all));  // opaque to the compiler (see step)
    for (std::size_t i0 = r0; i0 < r1; i0 += R) {
        const std::size_t rn = std::min(R, r1 - i0);
        const T* a[R];
        for (std::size_t i = 0; i < R; ++i) a[i] = A + std::min(i0 + i, M - 1) * lda;  // past the end: recomputed, discarded
        for (std::size_t j0 = 0; j0 < N; j0 += JB) {
            const std::size_t jn = std::min(JB, N - j0);
            const T* b[JB];
            for (std::size_t q = 0; q < JB; ++q) b[q] = B + std::min(j0 + q, N - 1) * ldb;
            reg acc[W];
            for (std::size_t l = 0; l < W; ++l) acc[l] = S::zero();
            // One k-step: the R rows of A into registers, then each of the JB columns of B once:
            // R + JB loads for R·JB FMAs. (A row loaded into each FMA that uses it would be R·JB
            // loads, and loads are the bottleneck; the rows are read under an all-ones mask the
            // compiler cannot see through, which keeps them plain register loads.)
            auto step = [&](std::size_t k, __mmask16 m) {
                reg av[R];
                for (std::size_t i = 0; i < R; ++i) av[i] = V::load(a[i] + k, m);
                for (std::size_t q = 0; q < JB; ++q) {
                    const reg bv = V::load(b[q] + k, m);
                    for (std::size_t i = 0; i < R; ++i) acc[i * JB + q] = S::fma(av[i], bv, acc[i * JB + q]);
                }
            };
            for (std::size_t k = 0; k < kv; k += W) step(k, all);
            if (kv < K) step(kv, tail);
            // r[i·JB + q] = c[i0 + i, j0 + q]: row i's sums, moved to lanes 0..JB-1, stored
            // straight from the register (a store to the stack and scalar reloads stall).
            const reg r = lane_sums(acc);
            const __mmask16 cols = static_cast<__mmask16>((1u << jn) - 1);
            for (std::size_t i = 0; i < rn; ++i) {
                T* c = C + (i0 + i) * ldc + j0;
                reg v = V::lanes_from(r, i * JB);
                if (accumulate) v = S::add(v, V::load(c, cols));
                V::store(c, cols, v);
            }
        }
        for (std::size_t i = 0; i < rn; ++i) ep(i0 + i, std::size_t{0}, C + (i0 + i) * ldc, N);
    }
}

/// Columns up to which C = A·Bᵀ with more than 4 rows takes the dot-product path.
inline constexpr std::size_t narrow_n = 16;

/// Narrow C = A·Bᵀ: blocks of rows (R = width/2 rows × 2 columns), split over the threads.
template <class T, class Epilogue>
void gemm_narrow(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                 std::size_t ldb, T* C, std::size_t ldc, bool accumulate, const Epilogue& ep, thread_pool& pool) {
    constexpr std::size_t R = simd<T>::width / 2;
    const std::size_t blocks = (M + R - 1) / R;
    if (pool.size() == 1 || M * N * K <= serial_work || blocks < 2) {
        gemm_narrow_rows<T, R>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, 0, M);
        return;
    }
    pool.run([&](std::size_t t, std::size_t n) {
        const std::size_t r0 = std::min(M, split_even(blocks, n, t) * R), r1 = std::min(M, split_even(blocks, n, t + 1) * R);
        if (r0 < r1) gemm_narrow_rows<T, R>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, r0, r1);
    });
}

/// One step of a dot product's K mod w tail: s + a·b with one rounding, whatever the
/// compiler's contraction setting.
template <class T>
inline T dot_tail_step(T a, T b, T s) {
    return std::fma(a, b, s);
}

/// Where gemm_dot_rows finds B: op(B)ᵀ row-major with stride ldb (B[j·ldb + k]), or packed
/// once by pack_dot (a frozen model's weights): each group of JB = 4 columns contiguous,
/// whole k-steps first ([step][column][w lanes]: one sequential stream for the group), then
/// each column's K mod w tail. The arithmetic is the same for both.
template <class T, bool Packed>
struct dot_b {
    static constexpr std::size_t JB = 4, W = simd<T>::width;
    /// Elements between two packed groups (64-byte multiples, so whole steps stay aligned).
    static constexpr std::size_t group_stride(std::size_t K) { return (JB * K + 15) / 16 * 16; }
    const T* B;
    std::size_t ld;  // ldb, or the packed group stride
    std::size_t K;
    /// Columns of the group starting at j (missing ones, past N: column j again).
    const T* group(std::size_t j) const { return Packed ? B + j / JB * ld : B + j * ld; }
    /// op(B)[k : k + w, j + q] for a whole step k (< K / w · w).
    const T* step(const T* g, std::size_t q, std::size_t k, std::size_t jn) const {
        if constexpr (Packed) return g + k * JB + q * W;
        else return g + (q < jn ? q : 0) * ld + k;
    }
    /// op(B)[kk, j + q] for kk in the tail [K / w · w, K).
    T tail(const T* g, std::size_t q, std::size_t kk, std::size_t jn) const {
        const std::size_t kv = K / W * W;
        if constexpr (Packed) return g[kv * JB + q * (K - kv) + (kk - kv)];
        else return g[(q < jn ? q : 0) * ld + kk];
    }
};

/// Batch-1 style forward, C = A·Bᵀ with M ≤ 4 rows (both operands contiguous along k):
/// dot products straight from memory (or from B packed by pack_dot). Columns in groups of
/// JB = 4, each with P accumulators per row that take the k-steps in turn (P = 4 / MR: at
/// least 16 independent FMA chains). Each element is
///     c[i, j] = hsum_lanes( (acc_0 + acc_1) + ... + acc_{P-1} ) + Σ_{tail k} a[i,k]·b[j,k]
/// where acc_p = Σ_{k-steps s ≡ p mod P, ascending} a[i, s·w : s·w+w] ⊙ b[j, s·w : s·w+w]
/// (for P > 1 the steps past the last whole round of P go to acc_0), a fixed lane reduction,
/// then the K mod w tail in order: the same whatever the thread count, packed or not.
/// Columns [j0, j1), in reverse order of groups if `reverse`, then the epilogue over the row
/// segments.
template <class T, std::size_t MR, bool Packed, class Epilogue>
void gemm_dot_rows(std::size_t K, const T* A, std::size_t lda, const dot_b<T, Packed>& bsrc, T* C, std::size_t ldc,
                   bool accumulate, const Epilogue& ep, std::size_t j0, std::size_t j1, bool reverse) {
    using S = simd<T>;
    using reg = typename S::reg;
    constexpr std::size_t W = S::width, JB = dot_b<T, Packed>::JB, P = MR == 1 ? 2 : 1;
    const std::size_t kv = K / W * W;
    const std::size_t groups = (j1 - j0 + JB - 1) / JB;
    for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t j = j0 + (reverse ? groups - 1 - g : g) * JB, jn = std::min(JB, j1 - j);
        const T* gb = bsrc.group(j);
        reg acc[P][MR][JB];
        for (auto& ap : acc)
            for (auto& ai : ap)
                for (auto& a : ai) a = S::zero();
        // One k-step into accumulator set p: the rows of A first, then each column of B once.
        // (Written this way GCC keeps every accumulator in a register: loading B into an array
        // first made it spill, at ~2/3 of the speed.)
        auto step = [&](std::size_t p, std::size_t k) {
            reg av[MR];
            for (std::size_t i = 0; i < MR; ++i) av[i] = S::load(A + i * lda + k);
            for (std::size_t q = 0; q < JB; ++q) {
                const reg bv = S::load(bsrc.step(gb, q, k, jn));
                for (std::size_t i = 0; i < MR; ++i) acc[p][i][q] = S::fma(av[i], bv, acc[p][i][q]);
            }
        };
        std::size_t k = 0;
        for (; k + P * W <= kv; k += P * W)
            for (std::size_t p = 0; p < P; ++p) step(p, k + p * W);
        for (; k < kv; k += W) step(0, k);
        for (std::size_t i = 0; i < MR; ++i)
            for (std::size_t q = 0; q < jn; ++q) {
                reg v = acc[0][i][q];
                for (std::size_t p = 1; p < P; ++p) v = S::add(v, acc[p][i][q]);
                T sum;
                if constexpr (std::is_same_v<T, float>) sum = _mm512_reduce_add_ps(v);
                else sum = _mm512_reduce_add_pd(v);
                for (std::size_t kk = kv; kk < K; ++kk) sum = dot_tail_step(A[i * lda + kk], bsrc.tail(gb, q, kk, jn), sum);
                T& c = C[i * ldc + j + q];
                c = accumulate ? c + sum : sum;
            }
    }
    for (std::size_t i = 0; i < MR; ++i) ep(i, j0, C + i * ldc + j0, j1 - j0);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Batch-1 C = A·Bᵀ (M = MR ≤ 4): its columns split over the threads.
template <class T, std::size_t MR, bool Packed, class Epilogue>
void gemm_dot(std::size_t N, std::size_t K, const T* A, std::size_t lda, const dot_b<T, Packed>& B, T* C,
              std::size_t ldc, bool accumulate, const Epilogue& ep, thread_pool& pool) {
    constexpr std::size_t JB = dot_b<T, Packed>::JB;
    const std::size_t groups = (N + JB - 1) / JB;
    // Every other call walks B backwards. Inference streams the same weights over and over;
    // when they overflow L2 (one thread, 1.07 MB for the 784-256-256-10 MLP), a walk in
    // one direction evicts each line just before it is needed again, while alternating
    // walks start where the last one ended, in what L2 still holds. The order of the
    // column groups changes no result.
    static thread_local bool flip = false;
    const bool reverse = flip = !flip;
    // Split by weight bytes, not by work: at batch 1 the work is small but B (the weights) is
    // streamed from cache; two threads hold half of B each in their own L2 (784×256 floats,
    // 800 KB, overflows one 1 MB L2 beside the next layer's weights). The split is static
    // (part t always gets the same columns), so each core keeps its half between calls.
    if (pool.size() == 1 || N * K * sizeof(T) <= dot_split_bytes || groups < 2) {
        gemm_dot_rows<T, MR>(K, A, lda, B, C, ldc, accumulate, ep, 0, N, reverse);
        return;
    }
    pool.run([&](std::size_t t, std::size_t n) {
        const std::size_t j0 = std::min(N, split_even(groups, n, t) * JB), j1 = std::min(N, split_even(groups, n, t + 1) * JB);
        if (j0 < j1) gemm_dot_rows<T, MR>(K, A, lda, B, C, ldc, accumulate, ep, j0, j1, reverse);
    });
}

/// gemm_dot for M = 1..4 rows.
template <class T, bool Packed, class Epilogue>
void gemm_dot_m(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const dot_b<T, Packed>& B,
                T* C, std::size_t ldc, bool accumulate, const Epilogue& ep, thread_pool& pool) {
    switch (M) {
        case 1: return gemm_dot<T, 1>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
        case 2: return gemm_dot<T, 2>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
        case 3: return gemm_dot<T, 3>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
        default: return gemm_dot<T, 4>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
    }
}
#endif

/// K = 0: C = 0 (or unchanged), then the epilogue.
template <class T, class Epilogue>
void gemm_empty(std::size_t M, std::size_t N, T* C, std::size_t ldc, bool accumulate, const Epilogue& ep) {
    for (std::size_t i = 0; i < M; ++i) {
        T* c = C + i * ldc;
        if (!accumulate) std::fill(c, c + N, T(0));
        ep(i, std::size_t{0}, c, N);
    }
}

}  // namespace detail

template <trans TA, trans TB, class T, class Epilogue = epilogue::none>
void gemm(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B, std::size_t ldb,
          T* C, std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}, thread_pool& pool = cpu_pool()) {
    record_pass(pass::gemm);
    if (M == 0 || N == 0) return;
    if (K == 0) {
        detail::gemm_empty(M, N, C, ldc, accumulate, ep);
        return;
    }
#if defined(__AVX512F__)
    if constexpr (TA == trans::n && TB == trans::t && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
        if (M <= 4)  // batch-1 forward: dot products, nothing packed
            return detail::gemm_dot_m(M, N, K, A, lda, detail::dot_b<T, false>{B, ldb, K}, C, ldc, accumulate, ep, pool);
        if (N <= detail::narrow_n)  // a classifier's last layer: dot products, nothing packed
            return detail::gemm_narrow<T>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, pool);
    }
#endif
    // A narrow C (few columns, more rows) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, which is short
    // and wide: op(B)ᵀ is B read with the other transpose flag, likewise op(A)ᵀ.
    constexpr trans flip_a = TA == trans::n ? trans::t : trans::n, flip_b = TB == trans::n ? trans::t : trans::n;
    if (N < detail::tile<T>::rows && N < M)
        detail::gemm_tiles<flip_b, flip_a, T, true>(N, M, K, B, ldb, A, lda, C, ldc, accumulate, ep, pool);
    else
        detail::gemm_tiles<TA, TB, T, false>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, pool);
}

// ---------------------------------------------------------------- packed small-batch B
//
// A frozen model runs the same weights again and again; at batch ≤ 4 the forward GEMM is
// a stream over them. Packed once (pack_dot), each group of 4 output columns is one
// contiguous stream in the order the kernel reads it: measured on the MLP's 784×256 and
// 256×256 weights, ~1.5× the read rate of four row streams at stride K. The arithmetic is
// gemm_dot's, so a packed product equals the unpacked one bit for bit.

/// Whether gemm_packed exists for T on this ISA.
template <class T>
inline constexpr bool packs_small_batch =
#if defined(__AVX512F__)
    std::is_same_v<T, float> || std::is_same_v<T, double>;
#else
    false;
#endif

/// Rows (M) up to which gemm_packed runs.
inline constexpr std::size_t packed_max_rows = 4;

/// Elements pack_dot writes for B = op(B)ᵀ of N rows × K (a linear layer's weight [N, K]).
template <class T>
constexpr std::size_t packed_size(std::size_t N, std::size_t K) {
    constexpr std::size_t JB = 4;
    return (N + JB - 1) / JB * ((JB * K + 15) / 16 * 16);
}

#if defined(__AVX512F__)
/// Packs B [N, K] (row stride ldb) for gemm_packed: group g = columns 4g..4g+3 at
/// g · group_stride(K): its whole k-steps as [step][column][w], then each column's tail.
/// Columns past N repeat the group's first column.
template <class T>
void pack_dot(std::size_t N, std::size_t K, const T* B, std::size_t ldb, T* packed) {
    static_assert(packs_small_batch<T>);
    using db = detail::dot_b<T, true>;
    constexpr std::size_t JB = db::JB, W = db::W;
    const std::size_t kv = K / W * W, gs = db::group_stride(K);
    for (std::size_t j = 0; j < N; j += JB) {
        T* g = packed + j / JB * gs;
        const std::size_t jn = std::min(JB, N - j);
        auto col = [&](std::size_t q) { return B + (j + (q < jn ? q : 0)) * ldb; };
        for (std::size_t k = 0; k < kv; k += W)
            for (std::size_t q = 0; q < JB; ++q) std::copy_n(col(q) + k, W, g + k * JB + q * W);
        for (std::size_t q = 0; q < JB; ++q) std::copy_n(col(q) + kv, K - kv, g + kv * JB + q * (K - kv));
        std::fill(g + JB * K, g + gs, T(0));
    }
}

/// C = A·Bᵀ (or C += ...), B packed by pack_dot(N, K, ...), then the epilogue; meant for
/// M ≤ packed_max_rows rows (more are done 4 at a time). Equal bit for bit to gemm<trans::n, trans::t> on the unpacked B.
template <class T, class Epilogue = epilogue::none>
void gemm_packed(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* packed, T* C,
                 std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}, thread_pool& pool = cpu_pool()) {
    static_assert(packs_small_batch<T>);
    record_pass(pass::gemm);
    if (M == 0 || N == 0) return;
    if (K == 0) return detail::gemm_empty(M, N, C, ldc, accumulate, ep);
    const detail::dot_b<T, true> b{packed, detail::dot_b<T, true>::group_stride(K), K};
    for (std::size_t r = 0; r < M; r += 4) {  // more than 4 rows: blocks of 4 (correct, not fast)
        auto rows_from_r = [&](std::size_t row, std::size_t col0, T* c, std::size_t len) { ep(r + row, col0, c, len); };
        detail::gemm_dot_m(std::min<std::size_t>(4, M - r), N, K, A + r * lda, lda, b, C + r * ldc, ldc, accumulate,
                           rows_from_r, pool);
    }
}
#endif

/// The same with sizes known at compile time; operands are dense (lda = K or M, ldb = N or
/// K, ldc = N).
template <std::size_t M, std::size_t N, std::size_t K, trans TA, trans TB, class T, class Epilogue = epilogue::none>
void gemm(const T* A, const T* B, T* C, bool accumulate = false, const Epilogue& ep = {},
          thread_pool& pool = cpu_pool()) {
    constexpr std::size_t lda = TA == trans::n ? K : M;
    constexpr std::size_t ldb = TB == trans::n ? N : K;
    gemm<TA, TB, T, Epilogue>(M, N, K, A, lda, B, ldb, C, N, accumulate, ep, pool);
}

}  // namespace cpu_kernels
}  // namespace ctdl
