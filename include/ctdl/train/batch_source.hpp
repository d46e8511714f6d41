#pragma once
// What train::run learns from: a batch source, in one of two kinds.
//
//   token_batch_source<D, B, T>   every target counts (data::text_dataset):
//     d.require_window(split, T)                          ctdl::error unless split s serves rows of T
//     d.sample_batch(split::train, rng, x, y)             B random rows of inputs x and targets y [B, T]
//     d.windows(split::validation, T).size()              the rows validation goes through, in order
//     d.fill_windows(split::validation, first, x, y)      rows first, first + 1, ...; returns how many
//
//   masked_batch_source<D, B, T>  each target weighed by a mask [B, T] of floats (data::sft_dataset):
//     d.require_window(split, T)
//     d.sample_batch(split::train, rng, x, y, mask)
//     d.rows(split::validation)
//     d.fill_rows(split::validation, first, x, y, mask)   rows past the returned count: mask 0
//
// with x, y: tensor<int, shape<B, T>> and mask: tensor<float, shape<B, T>> on the host.
// sample_batch must be a pure function of the rng's state and the data, so that a
// checkpoint's rng state resumes the data stream exactly.
#include <cstddef>
#include <concepts>

#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "../data/text_dataset.hpp"

namespace ctdl::train {

template <class D, std::size_t B, std::size_t T>
concept token_batch_source =
    requires(const D& d, rng& g, tensor<int, shape<B, T>>& x, tensor<int, shape<B, T>>& y, std::size_t first) {
        d.require_window(data::split::train, T);
        d.sample_batch(data::split::train, g, x, y);
        { d.windows(data::split::validation, T).size() } -> std::convertible_to<std::size_t>;
        { d.fill_windows(data::split::validation, first, x, y) } -> std::convertible_to<std::size_t>;
    };

template <class D, std::size_t B, std::size_t T>
concept masked_batch_source = requires(const D& d, rng& g, tensor<int, shape<B, T>>& x, tensor<int, shape<B, T>>& y,
                                       tensor<float, shape<B, T>>& mask, std::size_t first) {
    d.require_window(data::split::train, T);
    d.sample_batch(data::split::train, g, x, y, mask);
    { d.rows(data::split::validation) } -> std::convertible_to<std::size_t>;
    { d.fill_rows(data::split::validation, first, x, y, mask) } -> std::convertible_to<std::size_t>;
};

}  // namespace ctdl::train
