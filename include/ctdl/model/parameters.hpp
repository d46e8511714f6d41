#pragma once
// Compile-time and run-time views of an architecture's parameters, from its
// visit_parameters(): the PyTorch-named table and the trainable segments.
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "../core/parameter_info.hpp"
#include "segment.hpp"

namespace ctdl::detail {

/// Builds the state_dict table: "i." prefixes from sequentials, "name." from
/// nn::named parts, "weight"/"bias" from leaves.
struct parameter_table_builder {
    std::vector<parameter_info> table;
    std::vector<std::string> prefix;
    int frozen_depth = 0;

    void push(std::size_t i) { prefix.push_back(std::to_string(i)); }
    /// A named part (nn::named): its name, which may hold dots ("transformer.h"), as one level.
    void push(std::string_view name) { prefix.emplace_back(name); }
    void pop() { prefix.pop_back(); }
    void push_frozen() { ++frozen_depth; }
    void pop_frozen() { --frozen_depth; }
    void param(const char* name, std::size_t offset, std::initializer_list<std::size_t> shape) {
        parameter_info p;
        for (const auto& s : prefix) p.name += s + ".";
        p.name += name;
        p.shape.assign(shape.begin(), shape.end());
        p.size = 1;
        for (auto e : shape) p.size *= e;
        p.offset = offset;
        p.trainable = frozen_depth == 0;
        table.push_back(std::move(p));
    }
};

/// Collects trainable ranges (constexpr), merging neighbours that touch.
template <std::size_t Capacity>
struct segment_builder {
    std::array<segment, Capacity> seg{};
    std::size_t count = 0;
    std::size_t grad = 0;
    int frozen_depth = 0;

    constexpr void push(std::size_t) {}
    constexpr void push(std::string_view) {}
    constexpr void pop() {}
    constexpr void push_frozen() { ++frozen_depth; }
    constexpr void pop_frozen() { --frozen_depth; }
    constexpr void param(const char*, std::size_t offset, std::initializer_list<std::size_t> shape) {
        if (frozen_depth) return;
        std::size_t size = 1;
        for (auto e : shape) size *= e;
        if (count && seg[count - 1].param_offset + seg[count - 1].size == offset) {
            seg[count - 1].size += size;
        } else {
            seg[count++] = segment{offset, grad, size};
        }
        grad += size;
    }
};

template <class Arch>
constexpr auto make_segments() {
    constexpr auto counted = [] {
        segment_builder<1024> b;
        Arch::visit_parameters(b, 0);
        return b;
    }();
    std::array<segment, counted.count> out{};
    for (std::size_t i = 0; i < counted.count; ++i) out[i] = counted.seg[i];
    return out;
}

}  // namespace ctdl::detail
