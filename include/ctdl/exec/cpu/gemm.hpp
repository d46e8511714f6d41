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
//
// gemm<TA, TB, T, Epilogue> itself is only the dispatch: it hands every path the epilogue
// erased (gemm_epilogue.hpp) and the transpositions as values, so the kernels behind it are
// compiled once per T and tile shape, whatever the epilogues and forms a program uses.
//
// Products with both operands contiguous along k and few rows (M ≤ 4) or few columns
// (N ≤ 16) take the dot-product paths of gemm_dot.hpp instead, and C = A·B with both
// operands row-major and K ≤ 16 the small-K path of gemm_small_k.hpp; neither packs.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "../epilogue.hpp"
#include "../pass_count.hpp"
#include "../prefetch.hpp"
#include "gemm_dot.hpp"
#include "gemm_epilogue.hpp"
#include "gemm_kernel.hpp"
#include "gemm_pack.hpp"
#include "gemm_simd.hpp"
#include "gemm_small_k.hpp"
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
constexpr bool a_reads_in_place(trans ta, std::size_t rows) {
    return ta == trans::n && rows <= 128;
}

/// Whether gemm_block reads op(A) in place for a share of `rows` rows: a row-major A with
/// few rows; with B prepacked (then nothing else is copied) a row-major A of any height,
/// cut into row blocks of at most 128 (see a_block_rows).
constexpr bool reads_a_in_place(trans ta, std::size_t rows, bool prepacked) {
    return prepacked ? ta == trans::n : a_reads_in_place(ta, rows);
}

/// The most rows of a row block of gemm_block: MC, or at most 128 where A is read in place
/// because B is prepacked. (Row blocks only group the work: K is cut at the same places
/// whatever they are, so results do not depend on them.)
template <class T, std::size_t MR, std::size_t NV>
constexpr std::size_t a_block_rows(trans ta, bool prepacked) {
    return prepacked && ta == trans::n ? 128 / MR * MR : blocking<T, MR, NV>::MC;
}

/// One thread's share: C[m0:m1, n0:n1] over all of K, with an MR × (NV·width) register tile.
/// transc: the problem is the transposed one, Cᵀ = op(B)ᵀ·op(A)ᵀ, and C is written (and
/// the epilogue called) in C's own row-major layout.
/// ap, bp: packing space for the block, at least block_scratch<T, MR, NV>(M, N, K).a / .b
/// elements (M, N: the whole product's, which bound any block's).
/// The transpositions (ta, tb, transc) are run-time arguments: they decide only the packing
/// strides, which operand is read in place and how a finished tile is stored (a few
/// branches per block or tile, none in the micro-kernel's k loop), so one instantiation
/// per tile shape serves every form of every product.
template <class T, std::size_t MR, std::size_t NV>
void gemm_block(trans ta, trans tb, bool transc, std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1,
                std::size_t K, const T* A, std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc,
                bool accumulate, tile_epilogue<T> ep, T* ap, T* bp, const T* pre = nullptr, std::size_t npad = 0) {
    using bl = blocking<T, MR, NV>;
    constexpr std::size_t NR = bl::NR;
    using kernel = micro_kernel<T, MR, NV>;
    using kernel_a_rows = micro_kernel<T, MR, NV, true>;
    // A last row panel of at most 4 rows (of a tile taller than 4) runs a 4-row tile: the
    // rows past the edge would cost whole FMAs (64 rows in 6-row tiles: 3% of the work).
    // Every element's arithmetic is the same in either tile.
    using kernel_rest = micro_kernel<T, 4, NV>;
    auto short_rest = [](std::size_t rows) { return MR > 4 && rows > 0 && rows <= 4; };

    // K is cut into equal blocks of at most KC; the cuts depend on K alone.
    const std::size_t kblocks = (K + bl::KC - 1) / bl::KC;
    const std::size_t mc_limit = a_block_rows<T, MR, NV>(ta, pre != nullptr);
    const std::size_t mblocks = (m1 - m0 + mc_limit - 1) / mc_limit;
    const std::size_t nblocks = (n1 - n0 + bl::NC - 1) / bl::NC;
    // Equal M/N blocks, rounded up to whole micro-panels.
    const std::size_t mc_max = ((m1 - m0 + mblocks - 1) / mblocks + MR - 1) / MR * MR;
    const std::size_t nc_max = ((n1 - n0 + nblocks - 1) / nblocks + NR - 1) / NR * NR;
    // With few rows (≤ 128: a training batch, batch-1 inference) each B value is used by only
    // a few row panels and copying B costs more than it saves: a row-major op(B) is read in
    // place (NR-wide vectors at row stride ldb) and only a partial last panel is packed
    // (zero padding). Measured on Zen 5: +10% at 64×784×256, equal or better up to 512².
    // Either way every element sees the same arithmetic.
    // pre: op(B) already packed whole (pack_b: npad columns, NR-wide panels, K block by K
    // block), so B is neither packed nor read in place here.
    const bool b_in_place = !pre && tb == trans::n && m1 - m0 <= 128;
    // Likewise a row-major op(A) with few rows is read in place (its rows are contiguous along
    // k; MR row streams): nothing to transpose, and a thread's share can be cut into small
    // pieces without packing A again for each. Only a partial last row panel is packed.
    // With B prepacked, A is also read in place when its row blocks are short enough (a
    // 256-row share in two blocks of 128): nothing at all is copied.
    const bool a_in_place = reads_a_in_place(ta, m1 - m0, pre != nullptr);

    // op(A)[i, k] = A[i·a_rs + k·a_cs]; op(B)[k, j] = B[j·b_rs + k·b_cs].
    const std::size_t a_rs = ta == trans::n ? lda : 1, a_cs = ta == trans::n ? 1 : lda;
    const std::size_t b_rs = tb == trans::n ? 1 : ldb, b_cs = tb == trans::n ? ldb : 1;

    for (std::size_t jc = n0; jc < n1; jc += nc_max) {
        const std::size_t nc = std::min(nc_max, n1 - jc);
        for (std::size_t kb = 0; kb < kblocks; ++kb) {
            const std::size_t pc = split_even(K, kblocks, kb);
            const std::size_t kc = split_even(K, kblocks, kb + 1) - pc;
            const bool add = accumulate || kb > 0, last = kb + 1 == kblocks;
            const T* bsrc = pre ? nullptr : B + jc * b_rs + pc * b_cs;
            if (b_in_place) {
                if (nc % NR) pack_panels<NR>(bsrc + (nc - nc % NR) * b_rs, b_rs, b_cs, nc % NR, kc, bp);
            } else if (!pre) {
                pack_panels<NR>(bsrc, b_rs, b_cs, nc, kc, bp);
            }
            for (std::size_t ic = m0; ic < m1; ic += mc_max) {
                const std::size_t mc = std::min(mc_max, m1 - ic);
                const T* asrc = A + ic * a_rs + pc * a_cs;
                if (a_in_place) {
                    if (short_rest(mc % MR))
                        pack_panels<4>(asrc + (mc - mc % MR) * a_rs, a_rs, a_cs, mc % MR, kc, ap);
                    else if (mc % MR)
                        pack_panels<MR>(asrc + (mc - mc % MR) * a_rs, a_rs, a_cs, mc % MR, kc, ap);
                } else {
                    pack_panels<MR>(asrc, a_rs, a_cs, mc, kc, ap);
                }
                for (std::size_t jr = 0; jr < nc; jr += NR) {
                    const std::size_t nr = std::min(NR, nc - jr);
                    const T* b = pre          ? pre + pc * npad + (jc + jr) * kc
                                 : b_in_place ? (nr == NR ? bsrc + jr : bp)
                                              : bp + jr * kc;
                    const std::size_t bstride = b_in_place && nr == NR ? ldb : NR;
                    for (std::size_t ir = 0; ir < mc; ir += MR) {
                        const std::size_t mr = std::min(MR, mc - ir);
                        const std::size_t row = ic + ir, col = jc + jr;
                        T* c = transc ? C + col * ldc + row : C + row * ldc + col;
                        // The tile's rows of C, for writing, while the k loop runs: C is often
                        // a fresh activation buffer whose lines are in no cache, and the
                        // tile's stores (then its epilogue's) otherwise wait on each line.
                        if (!transc)
                            for (std::size_t r = 0; r < mr; ++r) prefetch_span<true>(c + r * ldc, nr);
                        if (a_in_place && mr == MR)
                            kernel_a_rows::run(kc, asrc + ir * lda, lda, b, bstride, c, ldc, mr, nr, add, transc);
                        else if (a_in_place && short_rest(mr))
                            kernel_rest::run(kc, ap, 4, b, bstride, c, ldc, mr, nr, add, transc);
                        else
                            kernel::run(kc, ap + (a_in_place ? 0 : ir * kc), MR, b, bstride, c, ldc, mr, nr, add,
                                        transc);
                        if (last) ep(row, col, c, ldc, mr, nr);
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
template <class T, std::size_t MR, std::size_t NV>
void gemm_threads(trans ta, trans tb, bool transc, std::size_t M, std::size_t N, std::size_t K, const T* A,
                  std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, bool accumulate,
                  tile_epilogue<T> ep, thread_pool& pool, const T* pre = nullptr, std::size_t npad = 0) {
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
        gemm_block<T, MR, NV>(ta, tb, transc, m0, m1, n0, n1, K, A, lda, B, ldb, C, ldc, accumulate, ep, ap,
                              ap + a_elems, pre, npad);
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
        // A prepacked B costs no packing, but each row block streams all of it: weighed at
        // a quarter. A read in place (rows in blocks of at most 128) costs nothing.
        const std::size_t a_cost = reads_a_in_place(ta, (mpanels + dm - 1) / dm * MR, pre != nullptr) ? 0 : M * K;
        const std::size_t cost = dn * a_cost + dm * K * N / (pre ? 4 : 1);
        if (cost < best) best = cost, tm = dm, tn = dn;
    }
    if (best == ~std::size_t{0}) {  // fewer panels than threads: split the longer side only
        if (mpanels >= npanels) tm = std::min(n, mpanels), tn = 1;
        else tm = 1, tn = std::min(n, npanels);
    }
    // Columns cost no extra packing when A is read in place: then 4 blocks a thread, so
    // the threads even out when one of them is slowed down.
    if (tm == 1 && reads_a_in_place(ta, M, pre != nullptr))
        tn = std::min(npanels, 4 * n);
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

/// Columns below which a C with more rows than columns is computed transposed (Cᵀ =
/// op(B)ᵀ·op(A)ᵀ, short and wide): a tile up to this tall covers all of C's columns.
template <class T>
#if defined(__AVX512F__)
inline constexpr std::size_t transposed_below = 14;
#else
inline constexpr std::size_t transposed_below = tile<T>::rows;
#endif

#if defined(__AVX512F__)
/// The rows of the register tile for more than 12 rows: the tile that wastes least on
/// padded edge rows and columns, weighted by how fast its inner loop runs (see below). 6
/// stands for 6 × 4 vectors (only when wide_ok), the others for rows × 2 vectors.
template <class T>
std::size_t tall_tile_rows(std::size_t M, std::size_t N, bool wide_ok) {
    constexpr std::size_t w = simd<T>::width;
    auto used = [](std::size_t n, std::size_t r) { return double(n) / double((n + r - 1) / r * r); };
    const double n2 = used(N, 2 * w);
    const double s8 = used(M, 8) * n2, s6 = wide_ok ? 0.97 * used(M, 6) * used(N, 4 * w) : 0.0;
    const double s10 = 0.97 * used(M, 10) * n2, s12 = 0.96 * used(M, 12) * n2, s14 = 0.93 * used(M, 14) * n2;
    const double best = std::max({s8, s6, s10, s12, s14});
    return s8 == best ? 8 : s6 == best ? 6 : s10 == best ? 10 : s12 == best ? 12 : 14;
}
#endif

/// Picks the register tile. Few rows (batch-1 inference, narrow outputs): a tile exactly
/// as tall as needed, so no FMA works on padding. Otherwise the tile that wastes least on
/// padded edge rows and columns, weighted by how fast its inner loop runs (measured on
/// Zen 5 relative to 8×32: 6×64 and 10×32 0.97, 12×32 0.96, 14×32 0.93). The choice
/// depends on the sizes alone (never on the thread count).
template <class T>
void gemm_tile_driver(trans ta, trans tb, bool transc, std::size_t M, std::size_t N, std::size_t K, const T* A,
                      std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, bool accumulate,
                      tile_epilogue<T> ep, thread_pool& pool) {
#define CTDL_GEMM_TILE(mr, nv) \
    gemm_threads<T, mr, nv>(ta, tb, transc, M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, pool)
#if defined(__AVX512F__)
    if (M == 1) return CTDL_GEMM_TILE(1, 4);
    if (M <= 2) return CTDL_GEMM_TILE(2, 4);
    if (M <= 4) return CTDL_GEMM_TILE(4, 4);
    if (M <= 6) return CTDL_GEMM_TILE(6, 4);
    if (M <= 8) return CTDL_GEMM_TILE(8, 2);
    if (M <= 10) return CTDL_GEMM_TILE(10, 2);
    if (M <= 12) return CTDL_GEMM_TILE(12, 2);
    if (transc) return CTDL_GEMM_TILE(14, 2);  // M < transposed_below here
    switch (tall_tile_rows<T>(M, N, true)) {
    case 8: return CTDL_GEMM_TILE(8, 2);
    case 6: return CTDL_GEMM_TILE(6, 4);
    case 10: return CTDL_GEMM_TILE(10, 2);
    case 12: return CTDL_GEMM_TILE(12, 2);
    default: return CTDL_GEMM_TILE(14, 2);
    }
#else
    return CTDL_GEMM_TILE(tile<T>::rows, tile<T>::vecs);
#endif
#undef CTDL_GEMM_TILE
}

/// The packed driver for one form of the product (what the tests call to bypass the other paths).
template <trans TA, trans TB, class T, bool TransC>
void gemm_tiles(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                std::size_t ldb, T* C, std::size_t ldc, bool accumulate, tile_epilogue<T> ep, thread_pool& pool) {
    gemm_tile_driver<T>(TA, TB, TransC, M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, pool);
}

/// The vectors across a tile of the prepacked-B path (pack_b's panels are NV × width wide).
template <class T>
inline constexpr std::size_t prepacked_nv = tile<T>::vecs;
/// The blocking of pack_b's layout: its panels' width NR and its K cuts (KC).
template <class T>
using prepacked_blocking = blocking<T, tile<T>::rows, prepacked_nv<T>>;
/// The columns of pack_b's pack of N columns: N rounded up to whole panels.
template <class T>
constexpr std::size_t prepacked_columns(std::size_t N) {
    constexpr std::size_t NR = prepacked_blocking<T>::NR;
    return (N + NR - 1) / NR * NR;
}

/// gemm_tile_driver for a prepacked op(B): only the tiles as wide as the pack's panels.
template <class T>
void gemm_prepacked_driver(trans ta, std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda,
                           const T* pre, T* C, std::size_t ldc, bool accumulate, tile_epilogue<T> ep,
                           thread_pool& pool) {
    constexpr std::size_t NV = prepacked_nv<T>;
    const std::size_t npad = prepacked_columns<T>(N);
#define CTDL_GEMM_TILE(mr) \
    gemm_threads<T, mr, NV>(ta, trans::n, false, M, N, K, A, lda, nullptr, 0, C, ldc, accumulate, ep, pool, pre, npad)
#if defined(__AVX512F__)
    static_assert(NV == 2);
    switch (tall_tile_rows<T>(M, N, false)) {
    case 8: return CTDL_GEMM_TILE(8);
    case 10: return CTDL_GEMM_TILE(10);
    case 12: return CTDL_GEMM_TILE(12);
    default: return CTDL_GEMM_TILE(14);
    }
#else
    return CTDL_GEMM_TILE(tile<T>::rows);
#endif
#undef CTDL_GEMM_TILE
}

}  // namespace detail

/// Elements of pack_b's pack of a K × N op(B).
template <class T>
constexpr std::size_t packed_b_size(std::size_t K, std::size_t N) {
    return K * detail::prepacked_columns<T>(N);
}

/// Packs op(B) (K × N; B row-major with row stride ldb, transposed when tb = t) once, as
/// gemm would pack it for every product: K cut into gemm's blocks, and in each block (from
/// element pc · npad, npad = N rounded up to whole panels) the NR-wide panels one after
/// another, each kc × NR and depth-major, the last one zero-padded. gemm_packed_b reads it.
template <class T>
void pack_b(trans tb, std::size_t K, std::size_t N, const T* B, std::size_t ldb, T* dst) {
    using bl = detail::prepacked_blocking<T>;
    const std::size_t npad = detail::prepacked_columns<T>(N);
    const std::size_t b_rs = tb == trans::n ? 1 : ldb, b_cs = tb == trans::n ? ldb : 1;
    const std::size_t kblocks = (K + bl::KC - 1) / bl::KC;
    for (std::size_t kb = 0; kb < kblocks; ++kb) {
        const std::size_t pc = detail::split_even(K, kblocks, kb), kc = detail::split_even(K, kblocks, kb + 1) - pc;
        detail::pack_panels<bl::NR>(B + pc * b_cs, b_rs, b_cs, N, kc, dst + pc * npad);
    }
}

/// Whether gemm<TA, TB, T> packs op(B) itself for an M × N × K product (so that a pack made
/// once by pack_b saves work, and gemm_packed_b on it gives gemm's result bit for bit): not
/// on its dot-product, small-K and transposed paths, nor where it reads B in place.
template <trans TA, trans TB, class T>
constexpr bool packs_b(std::size_t M, std::size_t N, std::size_t K) {
    if (M == 0 || N == 0 || K == 0) return false;
#if defined(__AVX512F__)
    if (M <= 12) return false;  // the short tiles, some wider than the pack's panels
    if constexpr (TA == trans::n && TB == trans::t && (std::is_same_v<T, float> || std::is_same_v<T, double>))
        if (N <= detail::narrow_n) return false;
#endif
    if (N < detail::transposed_below<T> && N < M) return false;
    if constexpr (TA == trans::n && TB == trans::n)
        if (K <= detail::small_k) return false;
    return TB == trans::t || M > 128;
}

/// gemm<TA, TB, T>(M, N, K, A, lda, B, ...) from packed = pack_b(TB, K, N, B, ldb, ·): the
/// same result bit for bit where packs_b<TA, TB, T>(M, N, K).
template <trans TA, class T, class Epilogue = epilogue::none>
void gemm_packed_b(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* packed, T* C,
                   std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}, thread_pool& pool = cpu_pool()) {
    record_pass(pass::gemm);
    if (M == 0 || N == 0) return;
    const detail::tile_epilogue<T> e = detail::erase_epilogue<T>(ep);
    if (K == 0) return detail::gemm_empty(M, N, C, ldc, accumulate, e);
    detail::gemm_prepacked_driver<T>(TA, M, N, K, A, lda, packed, C, ldc, accumulate, e, pool);
}

template <trans TA, trans TB, class T, class Epilogue = epilogue::none>
void gemm(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B, std::size_t ldb,
          T* C, std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}, thread_pool& pool = cpu_pool()) {
    record_pass(pass::gemm);
    if (M == 0 || N == 0) return;
    // Every path below is compiled once per T, whatever the epilogue (gemm_epilogue.hpp).
    const detail::tile_epilogue<T> e = detail::erase_epilogue<T>(ep);
    if (K == 0) {
        detail::gemm_empty(M, N, C, ldc, accumulate, e);
        return;
    }
#if defined(__AVX512F__)
    if constexpr (TA == trans::n && TB == trans::t && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
        if (M <= 4)  // batch-1 forward: dot products, nothing packed
            return detail::gemm_dot_m(M, N, K, A, lda, detail::dot_b<T, false>{B, ldb, K}, C, ldc, accumulate, e, pool);
        if (N <= detail::narrow_n)  // a classifier's last layer: dot products, nothing packed
            return detail::gemm_narrow<T>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, e, pool);
    }
#endif
    // A narrow C (few columns, more rows) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, which is short
    // and wide: op(B)ᵀ is B read with the other transpose flag, likewise op(A)ᵀ.
    constexpr trans flip_a = TA == trans::n ? trans::t : trans::n, flip_b = TB == trans::n ? trans::t : trans::n;
    if (N < detail::transposed_below<T> && N < M)
        return detail::gemm_tile_driver<T>(flip_b, flip_a, true, N, M, K, B, ldb, A, lda, C, ldc, accumulate,
                                           detail::erase_epilogue<T, true>(ep), pool);
    if constexpr (TA == trans::n && TB == trans::n) {
        if (K <= detail::small_k)  // B's few rows sit in L1: nothing packed
            return detail::gemm_small_k<T>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, e, pool);
    }
    detail::gemm_tile_driver<T>(TA, TB, false, M, N, K, A, lda, B, ldb, C, ldc, accumulate, e, pool);
}

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
