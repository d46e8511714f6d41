#pragma once
// parameter_view: one named parameter of a model (or its gradient), found by its
// state_dict name, with its PyTorch shape.
//
//   auto w = net.parameter("2.weight");          // w.shape == {10, 256}, w[i], w.values
//   auto g = net.gradient("2.weight");           // the same layout, in the gradient buffer
//   auto t = w.as<ctdl::shape<10, 256>>();       // a typed tensor_view (shape checked)
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../core/parameter_info.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"

namespace ctdl {

template <class T>
struct parameter_view {
    std::string_view name;
    std::span<T> values;                  ///< the elements, row-major in PyTorch's layout
    std::span<const std::size_t> shape;   ///< e.g. {out, in} for a linear weight
    bool trainable = true;                ///< false inside frozen<...>

    std::size_t size() const noexcept { return values.size(); }
    T& operator[](std::size_t i) const { return values[i]; }

    /// The same elements as a tensor_view of shape S; a ctdl::error when S is not its shape.
    template <shape_like S>
    tensor_view<T, S> as() const {
        bool same = S::rank == shape.size();
        for (std::size_t i = 0; same && i < S::rank; ++i) same = S::extents[i] == shape[i];
        if (!same) throw error("parameter '" + std::string(name) + "': its shape is " + format_shape() +
                               ", not the one asked for");
        return tensor_view<T, S>(values.data());
    }

    std::string format_shape() const {
        std::string s = "[";
        for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
        return s + "]";
    }
};

namespace detail {

/// The table entry called name, or a ctdl::error that lists a few of the names there are.
inline const parameter_info& find_parameter(const std::vector<parameter_info>& table, std::string_view name) {
    for (const auto& p : table)
        if (p.name == name) return p;
    std::string known;
    for (std::size_t i = 0; i < table.size() && i < 6; ++i) known += (i ? ", " : "") + table[i].name;
    if (table.size() > 6) known += ", ... (" + std::to_string(table.size()) + " in all)";
    const std::string shown = name.size() > 80 ? std::string(name.substr(0, 80)) + "..." : std::string(name);
    throw error("model: no parameter named '" + shown + "' (the model has " + (known.empty() ? "none" : known) + ")");
}

}  // namespace detail

}  // namespace ctdl
