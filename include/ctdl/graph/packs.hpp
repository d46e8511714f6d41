#pragma once
// Packed weights of an inference-only node tree: the nodes that keep a weight packed for
// their policy's kernels (a frozen linear layer at small batches on the cpu policy, ops/linear)
// state packed_elements() and pack_weights(params, dst). pack_nodes lays every pack out in
// one buffer, each on a 64-byte line, and has each node pack into its part.
#include <cstddef>

#include "../exec/page_buffer.hpp"
#include "../nn/layer.hpp"

namespace ctdl::graph {

/// Packs the weights of every node in root's tree from params into packs (grown as needed).
template <class Root, class T>
void pack_nodes(Root& root, const T* params, page_buffer<T>& packs) {
    auto lines = [](std::size_t n) { return (n * sizeof(T) + 63) / 64 * 64 / sizeof(T); };
    std::size_t total = 0;
    auto count = [&](auto& nd) {
        if constexpr (requires { nd.packed_elements(); }) total += lines(nd.packed_elements());
    };
    nn::for_each_node(root, count);
    if (total == 0) return;
    if (packs.size() < total) packs = page_buffer<T>(total);
    T* dst = packs.data();
    auto pack = [&](auto& nd) {
        if constexpr (requires { nd.pack_weights(params, dst); }) {
            nd.pack_weights(params, dst);
            dst += lines(nd.packed_elements());
        }
    };
    nn::for_each_node(root, pack);
}

}  // namespace ctdl::graph
