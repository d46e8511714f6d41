// The cpu policy's causal attention (launch<ops::attention_*, cpu>: the tiled kernels of
// ops/attention/cpu.hpp) against the per-task math every policy shares
// (ops/attention/math.hpp) run in double, over shapes that hit every tail of its tiles:
// sequences and head sizes that are not multiples of the vector width, of the row tile or of
// the 16-key block, and a head larger than one transposed block (128); and against the
// op's generic kernel run on the cpu policy. A hidden [.benchmark] case times the two.
#include <catch2/catch.hpp>
#include <ctdl/core/random.hpp>
#include <ctdl/exec/cpu.hpp>
#include <ctdl/exec/kernel.hpp>
#include <ctdl/exec/pass_count.hpp>
#include <ctdl/ops/attention/cpu.hpp>
#include <ctdl/ops/attention/kernels.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <vector>

namespace {

namespace am = ctdl::ops::attention_math;
namespace ops = ctdl::ops;

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t stream, double lo, double hi) {
    const ctdl::random_stream rs{ctdl::seed{31}, stream};
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(lo + (hi - lo) * rs.uniform<double>(i));
    return v;
}

/// max |a − ref| / max(floor, max |ref|).
template <class T>
double rel_err(const std::vector<T>& a, const std::vector<double>& ref, double floor = 1e-3) {
    double e = 0, m = floor;
    for (std::size_t i = 0; i < a.size(); ++i) {
        e = std::max(e, std::abs(static_cast<double>(a[i]) - ref[i]));
        m = std::max(m, std::abs(ref[i]));
    }
    return e / m;
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
struct run {
    std::vector<T> p, att, dqkv;
};

/// Forward then backward through launch on the cpu policy (Generic: the op's generic
/// kernel, Op::run<cpu>, which bypasses the cpu policy's specialisation).
template <class T, bool Generic = false>
run<T> cpu_attention(const am::dims& d, T scale, const std::vector<T>& qkv, const std::vector<T>& datt) {
    const std::size_t tasks = d.batch * d.heads;
    run<T> r{std::vector<T>(tasks * d.seq * d.seq, T(-7)), std::vector<T>(d.batch * d.seq * d.width, T(-7)),
             std::vector<T>(qkv.size(), T(-7))};
    std::vector<T> scratch(tasks * d.seq * d.seq, T(-7));
    const T* p = r.p.data();
    if constexpr (Generic) {
        ops::attention_forward::run<ctdl::cpu>(d, scale, qkv.data(), r.p.data(), r.att.data());
        ops::attention_backward::run<ctdl::cpu>(d, scale, qkv.data(), p, datt.data(), r.dqkv.data(), scratch.data());
    } else {
        ctdl::launch<ops::attention_forward, ctdl::cpu>(d, scale, qkv.data(), r.p.data(), r.att.data());
        ctdl::launch<ops::attention_backward, ctdl::cpu>(d, scale, qkv.data(), p, datt.data(), r.dqkv.data(),
                                                         scratch.data());
    }
    return r;
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
    return {v.begin(), v.end()};
}

}  // namespace

TEMPLATE_TEST_CASE("cpu attention matches attention_math and is independent of the thread count", "", float,
                   double) {
    using T = TestType;
    // {batch, seq, heads, head_dim}
    const std::size_t shapes[][4] = {{2, 64, 4, 32}, {1, 1, 1, 1},  {2, 6, 2, 4},    {1, 37, 3, 20}, {1, 17, 2, 16},
                                     {2, 24, 2, 40}, {1, 9, 1, 33}, {1, 130, 1, 130}, {1, 50, 2, 8}};
    const std::size_t threads_before = ctdl::cpu::threads();
    for (const auto& s : shapes) {
        const am::dims d{s[0], s[1], s[2], s[3], s[2] * s[3]};
        INFO("batch " << d.batch << " seq " << d.seq << " heads " << d.heads << " head_dim " << d.head_dim);
        const std::size_t rows = d.batch * d.seq, tasks = d.batch * d.heads;
        const auto qkv = random_vector<T>(rows * 3 * d.width, 1, -2, 2);
        const auto datt = random_vector<T>(rows * d.width, 2, -1, 1);
        const T scale = T(1) / std::sqrt(T(d.head_dim));

        // Reference: attention_math in double.
        const std::vector<double> qkv_d(qkv.begin(), qkv.end()), datt_d(datt.begin(), datt.end());
        std::vector<double> p(tasks * d.seq * d.seq), att(rows * d.width), dqkv(qkv.size()), scratch(tasks * d.seq);
        for (std::size_t bh = 0; bh < tasks; ++bh) {
            am::forward(d, bh, double(scale), qkv_d.data(), p.data() + bh * d.seq * d.seq, att.data());
            am::backward(d, bh, double(scale), qkv_d.data(), static_cast<const double*>(p.data() + bh * d.seq * d.seq),
                         datt_d.data(), dqkv.data(), scratch.data() + bh * d.seq);
        }

        ctdl::cpu::set_threads(1);
        const auto one = cpu_attention<T>(d, scale, qkv, datt);
        ctdl::cpu::set_threads(2);
        const auto two = cpu_attention<T>(d, scale, qkv, datt);
        CHECK(bitwise_equal(one.p, two.p));
        CHECK(bitwise_equal(one.att, two.att));
        CHECK(bitwise_equal(one.dqkv, two.dqkv));

        const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
        CHECK(rel_err(one.p, p) <= tol);
        CHECK(rel_err(one.att, att) <= tol);
        CHECK(rel_err(one.dqkv, dqkv) <= tol);
        // Probabilities above the diagonal are exact zeros.
        bool zeros = true;
        for (std::size_t bh = 0; bh < tasks; ++bh)
            for (std::size_t i = 0; i < d.seq; ++i)
                for (std::size_t j = i + 1; j < d.seq; ++j) zeros = zeros && one.p[(bh * d.seq + i) * d.seq + j] == T(0);
        CHECK(zeros);
    }
    ctdl::cpu::set_threads(threads_before);
}

TEMPLATE_TEST_CASE("cpu attention: the first rows of a longer sequence give the short sequence's outputs bitwise",
                   "", float, double) {
    using T = TestType;
    const std::size_t heads = 2, hd = 20, width = heads * hd, long_seq = 37;
    const am::dims dl{1, long_seq, heads, hd, width};
    const auto qkv = random_vector<T>(long_seq * 3 * width, 5, -2, 2);
    const auto datt = random_vector<T>(long_seq * width, 6, -1, 1);
    const auto full = cpu_attention<T>(dl, T(0.25), qkv, datt);
    for (const std::size_t seq : {1, 5, 8, 16, 17, 30}) {
        INFO("seq " << seq);
        const am::dims ds{1, seq, heads, hd, width};
        const std::vector<T> q(qkv.begin(), qkv.begin() + seq * 3 * width), d(datt.begin(), datt.begin() + seq * width);
        const auto part = cpu_attention<T>(ds, T(0.25), q, d);
        CHECK(std::memcmp(part.att.data(), full.att.data(), seq * width * sizeof(T)) == 0);
        bool same = true;
        for (std::size_t h = 0; h < heads; ++h)
            for (std::size_t i = 0; i < seq; ++i)
                same = same && std::memcmp(&part.p[(h * seq + i) * seq], &full.p[(h * long_seq + i) * long_seq],
                                           seq * sizeof(T)) == 0;
        CHECK(same);
    }
}

TEST_CASE("cpu attention records one attention pass per call") {
    const am::dims d{2, 8, 2, 4, 8};
    const auto qkv = random_vector<float>(2 * 8 * 24, 3, -1, 1);
    const auto datt = random_vector<float>(2 * 8 * 8, 4, -1, 1);
    {
        ctdl::count_passes counting;
        (void)cpu_attention<float, false>(d, 0.5f, qkv, datt);
        CHECK(counting.counts()[ctdl::pass::attention] == 2);
        CHECK(counting.counts().total() == 2);
    }
    ctdl::count_passes counting;
    (void)cpu_attention<float, true>(d, 0.5f, qkv, datt);
    CHECK(counting.counts()[ctdl::pass::attention] == 2);
    CHECK(counting.counts().total() == 2);
}

TEMPLATE_TEST_CASE("cpu attention: the cpu policy's kernel and the op's generic kernel agree to rounding", "", float,
                   double) {
    using T = TestType;
    // {batch, seq, heads, head_dim}: the GPT benchmark's head (seq 64, hd 32), and sequences
    // that are not multiples of 16 (nor of the row tile of 8).
    const std::size_t shapes[][4] = {{2, 64, 4, 32}, {1, 37, 3, 20}, {2, 23, 2, 40}, {1, 50, 2, 8}};
    const std::size_t threads_before = ctdl::cpu::threads();
    for (const std::size_t threads : {1, 2}) {
        ctdl::cpu::set_threads(threads);
        for (const auto& s : shapes) {
            const am::dims d{s[0], s[1], s[2], s[3], s[2] * s[3]};
            INFO("threads " << threads << " batch " << d.batch << " seq " << d.seq << " heads " << d.heads
                            << " head_dim " << d.head_dim);
            const std::size_t rows = d.batch * d.seq;
            const auto qkv = random_vector<T>(rows * 3 * d.width, 7, -2, 2);
            const auto datt = random_vector<T>(rows * d.width, 8, -1, 1);
            const T scale = T(1) / std::sqrt(T(d.head_dim));
            const auto tiled = cpu_attention<T, false>(d, scale, qkv, datt);
            const auto generic = cpu_attention<T, true>(d, scale, qkv, datt);
            const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;  // measured: 3.3e-7 for float
            CHECK(rel_err(tiled.p, to_double(generic.p)) <= tol);
            CHECK(rel_err(tiled.att, to_double(generic.att)) <= tol);
            CHECK(rel_err(tiled.dqkv, to_double(generic.dqkv)) <= tol);
            // every gradient: dq, dk and dv each against its own magnitude
            for (std::size_t part = 0; part < 3; ++part) {
                INFO("part " << part << " (q, k, v)");
                std::vector<T> a, b;
                for (std::size_t r = 0; r < rows; ++r)
                    for (std::size_t c = 0; c < d.width; ++c) {
                        a.push_back(tiled.dqkv[r * 3 * d.width + part * d.width + c]);
                        b.push_back(generic.dqkv[r * 3 * d.width + part * d.width + c]);
                    }
                CHECK(rel_err(a, to_double(b)) <= tol);
            }
        }
    }
    ctdl::cpu::set_threads(threads_before);
}

// Forward + backward at the GPT benchmark's attention (benchmarks/bench_gpt.cpp: batch 16,
// context 64, width 128, 4 heads) on one thread: the cpu policy's kernel against the op's
// generic kernel. Run: test_cpu_attention "[.benchmark]".
TEST_CASE("cpu attention: tiled vs generic kernel, GPT benchmark shape, 1 thread", "[.benchmark]") {
    using T = float;
    const am::dims d{16, 64, 4, 32, 128};
    const std::size_t rows = d.batch * d.seq, tasks = d.batch * d.heads;
    const auto qkv = random_vector<T>(rows * 3 * d.width, 9, -2, 2);
    const auto datt = random_vector<T>(rows * d.width, 10, -1, 1);
    std::vector<T> p(tasks * d.seq * d.seq), att(rows * d.width), dqkv(qkv.size()), scratch(tasks * d.seq * d.seq);
    const T scale = T(1) / std::sqrt(T(d.head_dim));
    const std::size_t threads_before = ctdl::cpu::threads();
    ctdl::cpu::set_threads(1);
    const auto step = [&]<bool Generic>() {
        if constexpr (Generic) {
            ops::attention_forward::run<ctdl::cpu>(d, scale, qkv.data(), p.data(), att.data());
            ops::attention_backward::run<ctdl::cpu>(d, scale, qkv.data(), static_cast<const T*>(p.data()),
                                                    datt.data(), dqkv.data(), scratch.data());
        } else {
            ctdl::launch<ops::attention_forward, ctdl::cpu>(d, scale, qkv.data(), p.data(), att.data());
            ctdl::launch<ops::attention_backward, ctdl::cpu>(d, scale, qkv.data(), static_cast<const T*>(p.data()),
                                                             datt.data(), dqkv.data(), scratch.data());
        }
    };
    // min over rounds of the mean of `reps` steps, the two kernels interleaved
    constexpr int rounds = 7, reps = 20;
    double best[2] = {1e30, 1e30};
    for (int round = 0; round < rounds; ++round)
        for (int g = 0; g < 2; ++g) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int r = 0; r < reps; ++r) g ? step.template operator()<true>() : step.template operator()<false>();
            const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
            best[g] = std::min(best[g], us / reps);
        }
    ctdl::cpu::set_threads(threads_before);
    std::cout << "attention forward+backward, batch 16, seq 64, width 128, 4 heads, float, 1 thread:\n"
              << "  cpu tiled kernel (kernel<ops::attention_*, cpu>): " << best[0] << " us\n"
              << "  generic kernel (ops::attention_*::run<cpu>):      " << best[1] << " us\n"
              << "  speedup: " << best[1] / best[0] << "x\n";
    CHECK(best[0] > 0);
}
