#pragma once
// residual<L...>: y = x + F(x), with F = sequential<L...> (or L alone). F must keep the
// shape. Its parameters keep F's names (residual adds no name level).
//
// Backward: dF = dy (times F's output derivative, if F ends in an activation), then
//   dx = dy + F'ᵀ dF, the "+ dy" done in the epilogue of whatever computes F'ᵀ dF.
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "../exec/aligned_buffer.hpp"
#include "../graph/node_base.hpp"
#include "../graph/node_of.hpp"
#include "layer.hpp"
#include "sequential.hpp"

namespace ctdl {

/// (Its predicate, also asked by ctdl::accepts, is the residual's `accepts`: the branch takes
/// the shape and gives it back.)
template <class Inner, shape_like Input>
struct residual_branch_must_keep_the_shape {
    static_assert(std::same_as<typename Inner::template output_shape<Input>, Input>,
                  "residual: the branch must give an output of the same shape as its input");
    using type = Input;
};

}  // namespace ctdl

namespace ctdl::nn {

namespace detail {
/// c += add[row, col]; then the next epilogue.
template <class T, class Next>
struct add_then {
    const T* add;
    std::size_t ld;
    Next next;
    CTDL_HD void operator()(std::size_t row, std::size_t col0, T* c, std::size_t len) const {
        const T* a = add + row * ld + col0;
        for (std::size_t j = 0; j < len; ++j) c[j] += a[j];
        next(row, col0, c, len);
    }
};
}  // namespace detail

template <class... L>
struct residual {
    using inner = std::conditional_t<sizeof...(L) == 1, std::tuple_element_t<0, std::tuple<L...>>, sequential<L...>>;
    static constexpr std::size_t parameter_count = inner::parameter_count;
    static constexpr std::size_t trainable_parameter_count = inner::trainable_parameter_count;
    static constexpr std::size_t in_features = detail::input_features<inner>();
    static constexpr bool keeps_features = true;

    /// The shapes it takes: those its branch takes and gives back unchanged.
    template <shape_like S>
    static constexpr bool accepts = ctdl::detail::keeps_shape<inner, S>();
    template <shape_like S>
    using output_shape = typename residual_branch_must_keep_the_shape<inner, S>::type;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        inner::visit_parameters(v, offset);
    }
    template <class T, class Seed>
    static void initialize(T* params, Seed s, std::size_t offset) {
        inner::initialize(params, s, offset);
    }

    template <class Ctx>
    struct node {
        using T = typename Ctx::value_type;
        using Exec = typename Ctx::exec_type;
        using in_shape = typename Ctx::in_shape;
        using out_shape = output_shape<in_shape>;
        using inner_node = graph::node_of<inner, Ctx>;
        static constexpr std::size_t rows = leading_size<in_shape>, cols = last_extent<in_shape>;
        static constexpr bool backward_needed = inner_node::backward_needed || Ctx::need_dx;
        // F's output derivative, applied to dy before F's backward (asked only when F has one).
        static constexpr bool transform_needed = [] {
            if constexpr (inner_node::backward_needed)
                return !std::same_as<decltype(std::declval<const inner_node&>().dout_transform(nullptr, nullptr)),
                                     epilogue::none>;
            else
                return false;
        }();

        template <class F>
        void visit_children(F& f) {
            for_each_node(f_, f);
        }

        void forward(const T* params, const T* in, T* out, bool store) {
            f_.forward(params, in, fx_.data(), store);
            Exec::map_rows(rows, cols, out, [] CTDL_HD (T x, T f) { return x + f; }, epilogue::none{}, in,
                           static_cast<const T*>(fx_.data()));
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }
        void decode(const T* params, const T* in, T* out, const graph::decode_rows& d)
            requires decoding_node<inner_node, Ctx>
        {
            f_.decode(params, in, fx_.data(), d);
            Exec::map_rows(d.rows, cols, out, [] CTDL_HD (T x, T f) { return x + f; }, epilogue::none{}, in,
                           static_cast<const T*>(fx_.data()));
        }

        /// F's backward from dF, with dx = dy + F'ᵀ dF done in its dX epilogue.
        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            if constexpr (inner_node::backward_needed) {
                const T* df = io.dout;
                if constexpr (transform_needed) {
                    Exec::map_rows(rows, cols, dtmp_.data(), [] CTDL_HD (T g) { return g; },
                                   f_.dout_transform(io.in, fx_.data()), io.dout);
                    df = dtmp_.data();
                }
                f_.backward(io.part(io.in, static_cast<const T*>(fx_.data()), df, io.din,
                                    detail::add_then<T, Ep>{io.dout, cols, io.din_ep}));
            } else if constexpr (Ctx::need_dx) {
                Exec::map_rows(rows, cols, io.din, [] CTDL_HD (T g) { return g; }, io.din_ep, io.dout);
            }
        }

    private:
        inner_node f_;
        typename Exec::template buffer<T> fx_{Ctx::decode ? cols * Ctx::decode_capacity : in_shape::size};
        [[no_unique_address]] graph::cache_if<transform_needed, T, Exec> dtmp_{in_shape::size};
    };
};

namespace detail {
template <class L, class Idx>
struct repeated;
template <class L, std::size_t... I>
struct repeated<L, std::index_sequence<I...>> {
    template <std::size_t>
    using same = L;
    using type = sequential<same<I>...>;
};
}  // namespace detail

/// repeat<N, L>: N copies of L, one after another, each with its own parameters
/// (named "0.", "1.", ... as in torch.nn.Sequential / ModuleList).
template <std::size_t N, class L>
struct repeat : detail::repeated<L, std::make_index_sequence<N>>::type {
    static_assert(N > 0, "repeat<N, L>: N must be at least 1");
};

}  // namespace ctdl::nn
