#pragma once
// Packed weights of an inference-only node tree: the nodes that keep a weight packed for
// their policy's kernels (a frozen linear layer at small batches on the cpu policy, ops/linear)
// state packed_elements() and pack_weights(params, dst). pack_nodes lays every pack out in
// one buffer, each on a 64-byte line, and has each node pack into its part. The packs hold
// elements P: the parameters' T, or the narrower type the nodes' context asks for
// (graph::context::packed_type, e.g. ctdl::bf16 in a bf16 decoding session). Such a node
// also states unpack_weights(), after which it reads the parameters again.
#include <cstddef>

#include "../exec/page_buffer.hpp"
#include "../nn/layer.hpp"

namespace ctdl::graph {

/// Packs the weights of every node in root's tree from params into packs (grown as needed).
template <class Root, class T, class P>
void pack_nodes(Root& root, const T* params, page_buffer<P>& packs) {
    auto lines = [](std::size_t n) { return (n * sizeof(P) + 63) / 64 * 64 / sizeof(P); };
    std::size_t total = 0;
    auto count = [&](auto& nd) {
        if constexpr (requires { nd.packed_elements(); }) total += lines(nd.packed_elements());
    };
    nn::for_each_node(root, count);
    if (total == 0) return;
    if (packs.size() < total) packs = page_buffer<P>(total);
    P* dst = packs.data();
    auto pack = [&](auto& nd) {
        if constexpr (requires { nd.pack_weights(params, dst); }) {
            nd.pack_weights(params, dst);
            dst += lines(nd.packed_elements());
        }
    };
    nn::for_each_node(root, pack);
}

/// Has every node of root's tree drop its packs (its kernels then read the parameters, with
/// the same results), and frees them.
template <class Root, class P>
void unpack_nodes(Root& root, page_buffer<P>& packs) {
    auto unpack = [](auto& nd) {
        if constexpr (requires { nd.unpack_weights(); }) nd.unpack_weights();
    };
    nn::for_each_node(root, unpack);
    packs = page_buffer<P>();
}

}  // namespace ctdl::graph
