#include <catch2/catch.hpp>
#include <ctdl/exec/cpu/gemm.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "count_allocations.hpp"

using ctdl::trans;
namespace k = ctdl::cpu_kernels;

namespace {

struct dims {
    std::size_t m, n, k;
};

// Sizes around every blocking edge: 1, odd, tile remainders, several K blocks.
const dims sizes[] = {{1, 1, 1},     {3, 5, 7},       {17, 33, 65},   {64, 10, 256}, {130, 257, 100},
                      {256, 256, 256}, {64, 784, 256}, {1, 300, 33},  {8, 64, 513},  {29, 3, 1000}, {100, 13, 40}, {48, 96, 20}, {2, 70, 37}, {4, 9, 300}, {3, 1, 16},
                      // few rows, weights over 64 KB: the dot-product path split over threads,
                      // odd column counts, K tails, leftover k-steps of the accumulator rounds
                      {1, 257, 200}, {2, 130, 129}, {3, 70, 300}, {4, 33, 1000}, {1, 256, 784},
                      // narrow C (N <= 16, M > 4): dot-product blocks, partial row and column
                      // blocks, K < one vector, K tails
                      {5, 16, 7}, {37, 10, 256}, {70, 15, 17}, {9, 1, 33}, {200, 2, 100}, {64, 16, 784},
                      // A read in place (M <= 128) with partial row panels, several blocks a thread
                      {100, 300, 300}, {127, 1000, 64}, {64, 256, 10},
                      // C = A·B with K <= 16 (the small-K path): row remainders of 4, 2, 1
                      // rows, masked columns, large enough to split over the threads
                      {13, 50, 5}, {263, 300, 16}, {15, 33, 1}, {22, 17, 11}};

// op(X) stored row-major with padding: rows × cols with row stride ld.
template <class T>
struct operand {
    std::size_t rows, cols, ld;
    std::vector<T> v;
    operand(std::size_t r, std::size_t c, std::size_t pad, std::mt19937& g) : rows(r), cols(c), ld(c + pad), v(r * ld) {
        std::uniform_real_distribution<double> d(-1, 1);
        for (auto& x : v) x = static_cast<T>(d(g));
    }
};

// Stored shape of an operand that plays op(X) = rows × cols.
inline std::pair<std::size_t, std::size_t> stored(trans t, std::size_t r, std::size_t c) {
    return t == trans::n ? std::pair{r, c} : std::pair{c, r};
}

template <trans TA, trans TB, class T>
struct problem {
    std::size_t M, N, K;
    operand<T> a, b;
    std::vector<T> c0;  // initial C (for accumulate) with row stride ldc
    std::size_t ldc;

    problem(dims d, std::size_t pad, std::mt19937& g)
        : M(d.m), N(d.n), K(d.k),
          a(stored(TA, d.m, d.k).first, stored(TA, d.m, d.k).second, pad, g),
          b(stored(TB, d.k, d.n).first, stored(TB, d.k, d.n).second, pad, g), ldc(d.n + pad) {
        c0.resize(M * ldc);
        std::uniform_real_distribution<double> dist(-1, 1);
        for (auto& x : c0) x = static_cast<T>(dist(g));
    }
    double opa(std::size_t i, std::size_t kk) const { return TA == trans::n ? a.v[i * a.ld + kk] : a.v[kk * a.ld + i]; }
    double opb(std::size_t kk, std::size_t j) const { return TB == trans::n ? b.v[kk * b.ld + j] : b.v[j * b.ld + kk]; }

    // Naive double reference and Σ|a||b| (for the error bound).
    void reference(bool accumulate, std::vector<double>& ref, std::vector<double>& mag) const {
        ref.assign(M * N, 0.0);
        mag.assign(M * N, 0.0);
        for (std::size_t i = 0; i < M; ++i)
            for (std::size_t kk = 0; kk < K; ++kk) {
                const double x = opa(i, kk);
                for (std::size_t j = 0; j < N; ++j) {
                    ref[i * N + j] += x * opb(kk, j);
                    mag[i * N + j] += std::abs(x * opb(kk, j));
                }
            }
        if (accumulate)
            for (std::size_t i = 0; i < M; ++i)
                for (std::size_t j = 0; j < N; ++j) {
                    ref[i * N + j] += c0[i * ldc + j];
                    mag[i * N + j] += std::abs(double(c0[i * ldc + j]));
                }
    }

    template <class Ep = ctdl::epilogue::none>
    std::vector<T> run(ctdl::thread_pool& pool, bool accumulate, const Ep& ep = {}) const {
        std::vector<T> c = c0;
        k::gemm<TA, TB, T>(M, N, K, a.v.data(), a.ld, b.v.data(), b.ld, c.data(), ldc, accumulate, ep, pool);
        return c;
    }

    // Every element within the rounding bound of a K-term dot product; padding untouched.
    void check(const std::vector<T>& c, bool accumulate) const {
        std::vector<double> ref, mag;
        reference(accumulate, ref, mag);
        const double eps = std::numeric_limits<T>::epsilon();
        std::size_t bad = 0;
        for (std::size_t i = 0; i < M; ++i) {
            for (std::size_t j = 0; j < N; ++j) {
                const double err = std::abs(double(c[i * ldc + j]) - ref[i * N + j]);
                if (err > 2.0 * double(K + 2) * eps * mag[i * N + j] + 1e-300) ++bad;
            }
            for (std::size_t j = N; j < ldc; ++j)
                if (std::memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof(T)) != 0) ++bad;
        }
        INFO("M=" << M << " N=" << N << " K=" << K << " ld pad=" << (ldc - N) << " accumulate=" << accumulate);
        CHECK(bad == 0);
    }
};

template <trans TA, trans TB, class T>
void check_form(ctdl::thread_pool& p1, ctdl::thread_pool& p2) {
    std::mt19937 g(1234);
    for (const dims& d : sizes)
        for (std::size_t pad : {0, 3}) {
            problem<TA, TB, T> pr(d, pad, g);
            for (bool acc : {false, true}) {
                const auto c1 = pr.run(p1, acc);
                pr.check(c1, acc);
                const auto c2 = pr.run(p2, acc);
                INFO("1 vs 2 threads, M=" << d.m << " N=" << d.n << " K=" << d.k);
                CHECK(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(T)) == 0);
            }
        }
}

template <class T>
void check_all_forms() {
    ctdl::thread_pool p1(1), p2(2);
    check_form<trans::n, trans::n, T>(p1, p2);
    check_form<trans::n, trans::t, T>(p1, p2);
    check_form<trans::t, trans::n, T>(p1, p2);
    check_form<trans::t, trans::t, T>(p1, p2);
}

}  // namespace

TEST_CASE("gemm float: all transpose forms match a double reference, 1 and 2 threads bitwise equal") {
    check_all_forms<float>();
}

TEST_CASE("gemm double: all transpose forms match a double reference, 1 and 2 threads bitwise equal") {
    check_all_forms<double>();
}

TEST_CASE("gemm is bitwise identical for 1, 2 and 3 threads on a large product") {
    std::mt19937 g(7);
    ctdl::thread_pool p1(1), p2(2), p3(3);
    problem<trans::n, trans::t, float> pr({300, 530, 600}, 1, g);
    const auto c1 = pr.run(p1, false), c2 = pr.run(p2, false), c3 = pr.run(p3, false);
    pr.check(c1, false);
    CHECK(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(c1.data(), c3.data(), c1.size() * sizeof(float)) == 0);
}

TEST_CASE("gemm is bitwise identical for 1, 2 and 3 threads where blocks are handed out dynamically") {
    std::mt19937 g(8);
    ctdl::thread_pool p1(1), p2(2), p3(3);
    // M <= 128 with row-major A: C's columns in several blocks a thread, taken from a counter.
    problem<trans::n, trans::n, float> dx({64, 784, 256}, 0, g), odd({101, 1000, 70}, 2, g);
    problem<trans::n, trans::t, float> fwd({64, 1000, 300}, 1, g);
    problem<trans::n, trans::t, double> one({1, 999, 300}, 0, g), narrow({250, 11, 301}, 3, g);
    auto same = [&](const auto& pr) {
        for (bool acc : {false, true}) {
            const auto c1 = pr.run(p1, acc);
            pr.check(c1, acc);
            for (int rep = 0; rep < 20; ++rep) {  // which thread takes which block varies from run to run
                const auto c2 = pr.run(p2, acc), c3 = pr.run(p3, acc);
                INFO("M=" << pr.M << " N=" << pr.N << " K=" << pr.K << " accumulate=" << acc);
                REQUIRE(std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(c1[0])) == 0);
                REQUIRE(std::memcmp(c1.data(), c3.data(), c1.size() * sizeof(c1[0])) == 0);
            }
        }
    };
    same(dx);
    same(odd);
    same(fwd);
    same(one);
    same(narrow);
}

TEST_CASE("gemm with K = 0 zeroes C (or keeps it with accumulate) and still runs the epilogue") {
    ctdl::thread_pool p(2);
    std::vector<float> c(6, 5.0f), bias{1, 2, 3};
    k::gemm<trans::n, trans::n, float>(2, 3, 0, nullptr, 0, nullptr, 3, c.data(), 3, false, ctdl::epilogue::bias<float>{bias.data()}, p);
    CHECK(c == std::vector<float>{1, 2, 3, 1, 2, 3});
    k::gemm<trans::n, trans::n, float>(2, 3, 0, nullptr, 0, nullptr, 3, c.data(), 3, true, ctdl::epilogue::bias<float>{bias.data()}, p);
    CHECK(c == std::vector<float>{2, 4, 6, 2, 4, 6});
}

namespace {
// relu that counts how often each element of C passes through it.
struct counting_relu {
    std::vector<int>* hits;
    std::size_t ldc, N;
    void operator()(std::size_t row, std::size_t col0, float* c, std::size_t len) const {
        for (std::size_t j = 0; j < len; ++j) {
            ++(*hits)[row * N + col0 + j];
            c[j] = c[j] > 0 ? c[j] : 0;
        }
    }
};
}  // namespace

TEST_CASE("gemm epilogues: bias, and a custom relu called exactly once per element") {
    std::mt19937 g(99);
    ctdl::thread_pool p1(1), p2(2);
    for (dims d : {dims{5, 7, 3}, dims{64, 784, 256}, dims{130, 257, 600}, dims{1, 33, 9}, dims{70, 6, 300},
                   dims{1, 300, 784}, dims{3, 101, 700}, dims{37, 16, 250}}) {
        problem<trans::n, trans::t, float> pr(d, 2, g);
        std::vector<float> bias(d.n);
        for (std::size_t j = 0; j < d.n; ++j) bias[j] = float(j % 7) - 3.0f;
        for (bool acc : {false, true}) {
            // bias: the plain product plus b[j], bit for bit (one rounding after the product).
            const auto plain = pr.run(p1, acc);
            for (auto* pool : {&p1, &p2}) {
                const auto biased = pr.run(*pool, acc, ctdl::epilogue::bias<float>{bias.data()});
                std::size_t bad = 0;
                for (std::size_t i = 0; i < d.m; ++i)
                    for (std::size_t j = 0; j < d.n; ++j)
                        if (biased[i * pr.ldc + j] != plain[i * pr.ldc + j] + bias[j]) ++bad;
                CHECK(bad == 0);

                std::vector<int> hits(d.m * d.n, 0);
                const auto relu = pr.run(*pool, acc, counting_relu{&hits, pr.ldc, d.n});
                std::size_t wrong = 0, miscounted = 0;
                for (std::size_t i = 0; i < d.m; ++i)
                    for (std::size_t j = 0; j < d.n; ++j) {
                        const float x = plain[i * pr.ldc + j];
                        if (relu[i * pr.ldc + j] != (x > 0 ? x : 0.0f)) ++wrong;
                        if (hits[i * d.n + j] != 1) ++miscounted;
                    }
                INFO("M=" << d.m << " N=" << d.n << " K=" << d.k << " accumulate=" << acc);
                CHECK(wrong == 0);
                CHECK(miscounted == 0);
            }
        }
    }
}

TEST_CASE("gemm epilogue called exactly once per element in every form (blocks handed out dynamically)") {
    std::mt19937 g(98);
    ctdl::thread_pool p1(1), p2(2), p3(3);
    auto check = [&](const auto& pr) {
        const auto plain = pr.run(p1, false);
        for (auto* pool : {&p1, &p2, &p3}) {
            std::vector<int> hits(pr.M * pr.N, 0);
            const auto relu = pr.run(*pool, false, counting_relu{&hits, pr.ldc, pr.N});
            std::size_t wrong = 0, miscounted = 0;
            for (std::size_t i = 0; i < pr.M; ++i)
                for (std::size_t j = 0; j < pr.N; ++j) {
                    const float x = plain[i * pr.ldc + j];
                    if (relu[i * pr.ldc + j] != (x > 0 ? x : 0.0f)) ++wrong;
                    if (hits[i * pr.N + j] != 1) ++miscounted;
                }
            INFO("M=" << pr.M << " N=" << pr.N << " K=" << pr.K << " threads=" << pool->size());
            CHECK(wrong == 0);
            CHECK(miscounted == 0);
        }
    };
    for (dims d : {dims{64, 784, 256}, dims{100, 300, 300}, dims{64, 256, 10}, dims{7, 5, 100}, dims{13, 50, 5}}) {
        check(problem<trans::n, trans::n, float>(d, 1, g));
        check(problem<trans::n, trans::t, float>(d, 1, g));
        check(problem<trans::t, trans::n, float>(d, 1, g));
        check(problem<trans::t, trans::t, float>(d, 1, g));
    }
}

TEST_CASE("the small-K path (C = A·B, K <= 16) equals the packing driver bit for bit") {
    ctdl::thread_pool p1(1), p2(2);
    std::mt19937 g(77);
    auto compare = [&]<class T>(T, dims d, bool acc, ctdl::thread_pool& pool) {
        problem<trans::n, trans::n, T> pr(d, 2, g);
        auto driver = pr.c0;
        k::detail::gemm_tiles<trans::n, trans::n, T, false>(d.m, d.n, d.k, pr.a.v.data(), pr.a.ld, pr.b.v.data(),
                                                            pr.b.ld, driver.data(), pr.ldc, acc, ctdl::epilogue::none{},
                                                            pool);
        const auto small = pr.run(pool, acc);  // gemm takes the small-K path for these sizes
        INFO("M=" << d.m << " N=" << d.n << " K=" << d.k << " accumulate=" << acc << " threads=" << pool.size());
        CHECK(std::memcmp(small.data(), driver.data(), small.size() * sizeof(T)) == 0);
    };
    for (dims d : {dims{64, 256, 10}, dims{13, 50, 5}, dims{263, 300, 16}, dims{1, 40, 3}, dims{30, 14, 16}})
        for (bool acc : {false, true})
            for (auto* pool : {&p1, &p2}) {
                compare(float{}, d, acc, *pool);
                compare(double{}, d, acc, *pool);
            }
}

TEST_CASE("gemm static-size overload equals the run-time one") {
    std::mt19937 g(5);
    ctdl::thread_pool p(2);
    constexpr std::size_t M = 33, N = 47, K = 70;
    problem<trans::t, trans::n, float> pr({M, N, K}, 0, g);
    const auto ref = pr.run(p, false);
    std::vector<float> c(M * N);
    k::gemm<M, N, K, trans::t, trans::n>(pr.a.v.data(), pr.b.v.data(), c.data(), false, ctdl::epilogue::none{}, p);
    CHECK(std::memcmp(c.data(), ref.data(), c.size() * sizeof(float)) == 0);

    problem<trans::n, trans::t, double> pd({M, N, K}, 0, g);
    const auto refd = pd.run(p, true);
    std::vector<double> cd = pd.c0;
    k::gemm<M, N, K, trans::n, trans::t>(pd.a.v.data(), pd.b.v.data(), cd.data(), true, ctdl::epilogue::none{}, p);
    CHECK(std::memcmp(cd.data(), refd.data(), cd.size() * sizeof(double)) == 0);
}

TEST_CASE("each gemm call records exactly one gemm pass") {
    std::mt19937 g(3);
    ctdl::thread_pool p(2);
    problem<trans::n, trans::n, float> big({200, 300, 400}, 0, g), tiny({2, 2, 2}, 0, g);
    ctdl::count_passes counting;
    big.run(p, false);
    tiny.run(p, false);
    std::vector<float> c(4);
    k::gemm<trans::n, trans::n, float>(2, 2, 0, nullptr, 0, nullptr, 2, c.data(), 2);
    k::gemm<trans::n, trans::n, float>(0, 2, 2, nullptr, 2, nullptr, 2, c.data(), 2);
    k::gemm<2, 2, 2, trans::t, trans::t>(tiny.a.v.data(), tiny.b.v.data(), c.data());
    CHECK(counting.counts()[ctdl::pass::gemm] == 5);
    CHECK(counting.counts().total() == 5);
}

// ---------------------------------------------------------------- no allocation after warm-up

TEST_CASE("gemm allocates nothing after warm-up (1 and 2 threads, every form and tile)") {
    std::mt19937 g(11);
    ctdl::thread_pool p1(1), p2(2);
    problem<trans::n, trans::t, float> fwd({64, 256, 784}, 0, g), narrow({64, 10, 256}, 0, g), one({1, 256, 784}, 0, g);
    problem<trans::n, trans::n, float> dx({64, 784, 256}, 0, g), dx_small_k({64, 256, 10}, 0, g);
    problem<trans::t, trans::n, float> dw({256, 784, 64}, 0, g);
    std::vector<float> bias(784, 0.5f);
    // Preallocated output: only the kernels' own allocations are counted.
    std::vector<float> c(784 * 784);
    auto kernels = [&] {
        for (auto* pool : {&p1, &p2}) {
            k::gemm<trans::n, trans::t, float>(64, 256, 784, fwd.a.v.data(), 784, fwd.b.v.data(), 784, c.data(), 256, false,
                                               ctdl::epilogue::bias<float>{bias.data()}, *pool);
            k::gemm<trans::n, trans::t, float>(64, 10, 256, narrow.a.v.data(), 256, narrow.b.v.data(), 256, c.data(), 10, true,
                                               ctdl::epilogue::none{}, *pool);
            k::gemm<trans::n, trans::t, float>(1, 256, 784, one.a.v.data(), 784, one.b.v.data(), 784, c.data(), 256, false,
                                               ctdl::epilogue::none{}, *pool);
            k::gemm<trans::n, trans::n, float>(64, 784, 256, dx.a.v.data(), 256, dx.b.v.data(), 784, c.data(), 784, false,
                                               ctdl::epilogue::none{}, *pool);
            k::gemm<trans::n, trans::n, float>(64, 256, 10, dx_small_k.a.v.data(), 10, dx_small_k.b.v.data(), 256,
                                               c.data(), 256, false, ctdl::epilogue::none{}, *pool);
            k::gemm<trans::t, trans::n, float>(256, 784, 64, dw.a.v.data(), 256, dw.b.v.data(), 784, c.data(), 784, true,
                                               ctdl::epilogue::none{}, *pool);
        }
    };
    kernels();  // warm-up: per-thread scratch grows to its final size
    const std::size_t before = test_allocations.load();
    for (int step = 0; step < 3; ++step) kernels();
    CHECK(test_allocations.load() == before);
    ::operator delete(::operator new(16));  // and the counter works (a call, which is never elided)
    CHECK(test_allocations.load() > before);
}

namespace {

// Runs a product two ways, for accumulate off and on and on 1 and 2 threads, with an
// epilogue that counts each element it sees and transforms it: want = gemm's (pr.run), and
// c = run(c, ep, pool) from pr.c0; then check(c, want, acc, pool), and every element seen once.
template <class Pr, class Run, class Check>
void against_gemm(const Pr& pr, ctdl::thread_pool& p1, ctdl::thread_pool& p2, Run&& run, Check&& check) {
    using T = typename decltype(pr.c0)::value_type;
    for (bool acc : {false, true})
        for (ctdl::thread_pool* pool : {&p1, &p2}) {
            std::vector<int> seen(pr.M * pr.N, 0);
            auto ep = [&](std::size_t row, std::size_t col0, T* c, std::size_t len) {
                for (std::size_t j = 0; j < len; ++j) {
                    ++seen[row * pr.N + col0 + j];
                    c[j] = c[j] * T(2) + T(1);
                }
            };
            const auto want = pr.run(*pool, acc, ep);
            std::fill(seen.begin(), seen.end(), 0);
            std::vector<T> c = pr.c0;
            run(c, acc, ep, *pool);
            check(c, want, acc, *pool);
            CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
        }
}

}  // namespace

#if defined(__AVX512F__)
namespace {

// C = A·Bᵀ from B packed by pack_dot: equal bit for bit to gemm<n, t> on B for up to 4 rows
// (more: within rounding), accumulate or not, with an epilogue, 1 and 2 threads, padding of
// C untouched.
template <class T>
void check_packed() {
    ctdl::thread_pool p1(1), p2(2);
    std::mt19937 g(99);
    const dims cases[] = {{1, 1, 1},    {1, 3, 15},     {2, 5, 16},    {3, 13, 17},   {4, 4, 33},   {1, 256, 784},
                          {4, 257, 200}, {2, 130, 129}, {1, 10, 256},  {5, 9, 31},    {9, 70, 300}, {3, 1000, 64}};
    for (const dims& d : cases)
        for (std::size_t pad : {0, 3}) {
            problem<trans::n, trans::t, T> pr(d, pad, g);
            std::vector<T> packed(k::packed_size<T>(d.n, d.k) + 7, T(-7));  // a canary past the end
            k::pack_dot<T>(d.n, d.k, pr.b.v.data(), pr.b.ld, packed.data());
            for (std::size_t j = k::packed_size<T>(d.n, d.k); j < packed.size(); ++j) REQUIRE(packed[j] == T(-7));
            auto run = [&](std::vector<T>& c, bool acc, const auto& ep, ctdl::thread_pool& pool) {
                k::gemm_packed<T>(d.m, d.n, d.k, pr.a.v.data(), pr.a.ld, packed.data(), c.data(), pr.ldc, acc, ep, pool);
            };
            auto check = [&](const std::vector<T>& c, const std::vector<T>& want, bool acc, ctdl::thread_pool& pool) {
                INFO("M=" << d.m << " N=" << d.n << " K=" << d.k << " pad=" << pad << " accumulate=" << acc
                          << " threads=" << pool.size());
                if (d.m <= k::packed_max_rows) {
                    CHECK(std::memcmp(c.data(), want.data(), c.size() * sizeof(T)) == 0);
                } else {  // more rows: done 4 at a time, another kernel than gemm's; the same within rounding
                    std::size_t bad = 0;
                    const double tol = 8.0 * double(d.k + 2) * std::numeric_limits<T>::epsilon();
                    for (std::size_t i = 0; i < c.size(); ++i)
                        if (std::abs(double(c[i]) - double(want[i])) > tol * (std::abs(double(want[i])) + 1.0)) ++bad;
                    CHECK(bad == 0);
                }
            };
            against_gemm(pr, p1, p2, run, check);
        }
}

}  // namespace

TEST_CASE("gemm_packed (frozen small-batch weights) equals gemm<n, t> bit for bit, float and double") {
    check_packed<float>();
    check_packed<double>();
}
#endif

namespace {

// gemm_packed_b from a pack_b pack equals gemm bit for bit wherever packs_b says gemm packs
// B itself: every form, accumulate or not, with an epilogue seen once per element, 1 and 2
// threads, padding of C untouched and nothing written past the pack.
template <trans TA, trans TB, class T>
std::size_t check_prepacked_form(ctdl::thread_pool& p1, ctdl::thread_pool& p2) {
    std::mt19937 g(4321);
    const dims cases[] = {{13, 40, 33},   {100, 77, 300},  {129, 50, 513},  {256, 768, 300}, {200, 1000, 1030},
                          {1024, 96, 257}, {300, 33, 17},  {17, 500, 64},  {130, 257, 100}, {256, 256, 256},
                          {263, 300, 16}, {64, 784, 256}, {29, 3, 1000}};
    std::size_t packed_cases = 0;
    for (const dims& d : cases)
        for (std::size_t pad : {0, 3}) {
            if (!k::packs_b<TA, TB, T>(d.m, d.n, d.k)) continue;
            ++packed_cases;
            problem<TA, TB, T> pr(d, pad, g);
            const std::size_t size = k::packed_b_size<T>(d.k, d.n);
            std::vector<T> packed(size + 9, T(-7));  // a canary past the end
            k::pack_b<T>(TB, d.k, d.n, pr.b.v.data(), pr.b.ld, packed.data());
            for (std::size_t j = size; j < packed.size(); ++j) REQUIRE(packed[j] == T(-7));
            auto run = [&](std::vector<T>& c, bool acc, const auto& ep, ctdl::thread_pool& pool) {
                ctdl::count_passes counting;
                k::gemm_packed_b<TA, T>(d.m, d.n, d.k, pr.a.v.data(), pr.a.ld, packed.data(), c.data(), pr.ldc, acc,
                                        ep, pool);
                CHECK(counting.counts()[ctdl::pass::gemm] == 1);
            };
            auto check = [&](const std::vector<T>& c, const std::vector<T>& want, bool acc, ctdl::thread_pool& pool) {
                INFO("M=" << d.m << " N=" << d.n << " K=" << d.k << " pad=" << pad << " accumulate=" << acc
                          << " threads=" << pool.size());
                CHECK(std::memcmp(c.data(), want.data(), c.size() * sizeof(T)) == 0);
            };
            against_gemm(pr, p1, p2, run, check);
        }
    return packed_cases;
}

template <class T>
void check_prepacked() {
    ctdl::thread_pool p1(1), p2(2);
    // Every form has shapes gemm packs B for (so the comparisons above ran).
    CHECK(check_prepacked_form<trans::n, trans::n, T>(p1, p2) >= 8);
    CHECK(check_prepacked_form<trans::n, trans::t, T>(p1, p2) >= 8);
    CHECK(check_prepacked_form<trans::t, trans::n, T>(p1, p2) >= 8);
    CHECK(check_prepacked_form<trans::t, trans::t, T>(p1, p2) >= 8);
}

}  // namespace

TEST_CASE("gemm_packed_b (a frozen weight packed once) equals gemm bit for bit where packs_b holds") {
    check_prepacked<float>();
    check_prepacked<double>();
    // Where gemm does not pack B, packs_b says so: B read in place at few rows, small K, narrow C.
    CHECK_FALSE(k::packs_b<trans::n, trans::n, float>(64, 784, 256));
    CHECK_FALSE(k::packs_b<trans::n, trans::n, float>(300, 300, 16));
    CHECK_FALSE(k::packs_b<trans::n, trans::t, float>(300, 3, 100));
    CHECK(k::packs_b<trans::n, trans::t, float>(256, 768, 768));
    CHECK(k::packs_b<trans::n, trans::n, float>(256, 768, 768));
}
