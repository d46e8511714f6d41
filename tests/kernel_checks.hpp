// What the kernel and op tests share: seeded inputs, the shapes that make two threads
// really split work, bitwise comparison, and relative error against a double reference.
#pragma once
#include <ctdl/core/random.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

namespace ctdl_test {

// [rows, cols]; the last ones are above the serial threshold, so two threads really split them.
inline constexpr std::pair<std::size_t, std::size_t> matrices[] = {{1, 1},   {3, 5},     {64, 10},   {1, 1000},
                                                                   {257, 129}, {1000, 100}, {5, 20000}, {40000, 3}};

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t stream, double lo = -1, double hi = 1) {
    const ctdl::random_stream rs{ctdl::seed{2718}, stream};
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(lo + (hi - lo) * rs.uniform<double>(i));
    return v;
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Relative error of a against a double reference, scaled by the reference's magnitude.
template <class T>
double max_rel_err(const std::vector<T>& a, const std::vector<double>& ref, double floor = 1.0) {
    double e = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        e = std::max(e, std::abs(static_cast<double>(a[i]) - ref[i]) / std::max(floor, std::abs(ref[i])));
    return e;
}

template <class T>
constexpr double tolerance = std::is_same_v<T, float> ? 2e-6 : 1e-13;

}  // namespace ctdl_test
