#pragma once
// Decoding: a frozen model's nodes run over a run-time number of token rows, each row one
// token of one sequence at one position, reading and extending a cache (a KV cache in the
// attention layers) instead of recomputing the whole window.
//
//   void decode(const T* params, const In* in, T* out, const graph::decode_rows& d);
//
// The node tree of a decoding session is made in a context with decode = true
// (graph/context.hpp) whose input shape is the session's maximum, [Batch, MaxT]: that
// shape sizes every buffer, and d.rows (at most Batch · MaxT) says how many rows a step
// has. A prefill is the rows of one prompt (positions 0 .. len - 1 of one sequence); a
// decoding step is one row per sequence. Row-wise layers (linear, norms, activations)
// just run over d.rows; position-dependent ones read d.seq and d.pos.
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace ctdl::graph {

/// The rows of one decoding step. seq and pos are in the policy's memory.
struct decode_rows {
    std::size_t rows = 0;             ///< token rows in this step
    const std::int32_t* seq = nullptr;  ///< [rows] the sequence (0 .. Batch - 1) of each row
    const std::int32_t* pos = nullptr;  ///< [rows] its position in that sequence (0 .. MaxT - 1)
};

/// Rows of a step to keep before a graph's last step (in the policy's memory), and the rows
/// they make.
struct row_selection {
    const std::int32_t* rows = nullptr;  ///< [d.rows] indices into the step's rows
    decode_rows d;
};

}  // namespace ctdl::graph

namespace ctdl {

/// A node that can decode: decode(params, in, out, rows) over the run-time rows.
template <class N, class Ctx>
concept decoding_node = requires(N& nd, const typename Ctx::value_type* params, const typename Ctx::input_type* in,
                                 typename Ctx::value_type* out, const graph::decode_rows& d) {
    nd.decode(params, in, out, d);
};

}  // namespace ctdl
