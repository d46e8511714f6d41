// The cpu policy's causal attention (exec/cpu/attention.hpp) against the per-task math every
// policy shares (exec/attention_math.hpp) run in double, over shapes that hit every tail of
// its tiles: sequences and head sizes that are not multiples of the vector width, of the
// row tile or of the 16-key block, and a head larger than one transposed block (128).
#include <catch2/catch.hpp>
#include <ctdl/core/random.hpp>
#include <ctdl/exec/attention_math.hpp>
#include <ctdl/exec/cpu.hpp>
#include <ctdl/exec/pass_count.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

namespace am = ctdl::attention_math;

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

template <class T>
run<T> cpu_attention(const am::dims& d, T scale, const std::vector<T>& qkv, const std::vector<T>& datt) {
    const std::size_t tasks = d.batch * d.heads;
    run<T> r{std::vector<T>(tasks * d.seq * d.seq, T(-7)), std::vector<T>(d.batch * d.seq * d.width, T(-7)),
             std::vector<T>(qkv.size(), T(-7))};
    std::vector<T> scratch(tasks * d.seq * d.seq, T(-7));
    ctdl::cpu::attention_forward(d, scale, qkv.data(), r.p.data(), r.att.data());
    ctdl::cpu::attention_backward(d, scale, qkv.data(), static_cast<const T*>(r.p.data()), datt.data(),
                                  r.dqkv.data(), scratch.data());
    return r;
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
    ctdl::count_passes counting;
    (void)cpu_attention<float>(d, 0.5f, qkv, datt);
    CHECK(counting.counts()[ctdl::pass::attention] == 2);
    CHECK(counting.counts().total() == 2);
}
