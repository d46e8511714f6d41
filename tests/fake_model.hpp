#pragma once
// A snapshot_model stand-in for the snapshot tests and the fuzz targets: the parameter
// table of nn::sequential<linear<4, 3>, relu, linear<3, 2>> (PyTorch names and layouts)
// over a plain array.
#include <array>
#include <cstddef>
#include <cstring>
#include <vector>

#include <ctdl/core/parameter_info.hpp>

namespace ctdl_test {

template <class T>
struct fake_model {
    using value_type = T;
    static constexpr std::size_t parameter_count = 12 + 3 + 6 + 2;
    static const std::vector<ctdl::parameter_info>& parameter_table() {
        static const std::vector<ctdl::parameter_info> table{
            {"0.weight", {3, 4}, 0, 12, true},
            {"0.bias", {3}, 12, 3, true},
            {"2.weight", {2, 3}, 15, 6, true},
            {"2.bias", {2}, 21, 2, true},
        };
        return table;
    }
    std::array<T, parameter_count> params{};
    T* parameters() { return params.data(); }
    const T* parameters() const { return params.data(); }
    bool same_bits(const fake_model& o) const { return std::memcmp(params.data(), o.params.data(), sizeof params) == 0; }
};

}  // namespace ctdl_test
