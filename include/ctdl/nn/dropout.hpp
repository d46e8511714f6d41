#pragma once
// dropout<P>: while training, each element is zeroed with probability P and the others are
// scaled by 1/(1-P); at inference (a frozen model, or forward without keeping activations)
// it is the identity. The mask comes from a counter-based stream, so a given seed and
// step give the same mask on any thread count.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../core/random.hpp"
#include "../exec/aligned_buffer.hpp"
#include "../exec/hd.hpp"
#include "../graph/node_base.hpp"
#include "layer.hpp"

namespace ctdl::nn {

template <double P>
struct dropout : parameter_free {
    static_assert(P >= 0.0 && P < 1.0, "dropout<P>: P must be in [0, 1)");

    template <class Ctx>
    struct node : graph::node_base<Ctx> {
        using base = graph::node_base<Ctx>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::rows, base::cols, base::need_dx;
        using out_shape = in_shape;

        /// Masks of successive training steps come from successive ranges of the stream of
        /// (seed, this layer's place in the graph).
        void reseed(seed s) {
            stream_ = random_stream(s, 0x64726f70ull ^ (Ctx::param_offset << 20) ^ in_shape::size);
            calls_ = 0;
        }

        void forward(const T*, const T* in, T* out, bool store) {
            if (!store || P == 0.0) {
                Exec::map_rows(rows, cols, out, [] CTDL_HD (T x) { return x; }, epilogue::none{}, in);
                return;
            }
            Exec::for_each_index(in_shape::size, draw_mask{stream_, calls_++ * in_shape::size, mask_.data()});
            Exec::map_rows(rows, cols, out, [] CTDL_HD (T x, T k) { return x * k; }, epilogue::none{}, in,
                           static_cast<const T*>(mask_.data()));
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }
        /// Decoding is inference: the identity.
        void decode(const T*, const T* in, T* out, const graph::decode_rows& d) {
            Exec::copy(in, out, d.rows * cols);
        }
        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            if constexpr (need_dx)
                Exec::map_rows(rows, cols, io.din, [] CTDL_HD (T g, T k) { return g * k; }, io.din_ep, io.dout,
                               static_cast<const T*>(mask_.data()));
        }

    private:
        /// m[i] = 0 with probability P, else 1/(1-P); draw base + i of the layer's stream.
        struct draw_mask {
            random_stream stream;
            std::uint64_t base;
            T* m;
            CTDL_HD void operator()(std::size_t i) const {
                m[i] = stream.template uniform<double>(base + i) < P ? T(0) : T(1.0 / (1.0 - P));
            }
        };

        random_stream stream_{seed{0}, 0x64726f70ull ^ (Ctx::param_offset << 20) ^ in_shape::size};
        std::uint64_t calls_ = 0;
        typename Exec::template buffer<T> mask_{in_shape::size};
    };
};

}  // namespace ctdl::nn
