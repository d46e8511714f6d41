#pragma once
// Finite-difference gradient checks for whole models in double precision.
//
// The scalar checked is L = Σ y ⊙ R for a fixed random R, so dL/dy = R. Every trainable
// parameter's analytic gradient (model::backward) is compared with the central difference
// (L(θ + h) - L(θ - h)) / 2h.
#include <ctdl/ctdl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ctdl_test {

template <class X>
void fill_uniform(X& x, std::uint64_t stream, double lo = -1.0, double hi = 1.0) {
    ctdl::init::uniform(x, ctdl::random_stream(ctdl::seed{1234}, stream), lo, hi);
}

struct gradcheck_result {
    double max_rel_error = 0;
    std::size_t checked = 0;
};

/// Returns the largest relative error over all trainable parameters.
template <class Model, class X>
gradcheck_result gradcheck(Model& net, const X& x, double h = 1e-6) {
    using In = ctdl::shape_of<X>;
    using Out = ctdl::output_shape<typename Model::arch_type, In>;
    ctdl::tensor<double, Out> r;
    fill_uniform(r, 99);
    auto loss = [&] {
        auto y = net.forward(x);
        double s = 0;
        for (std::size_t i = 0; i < Out::size; ++i) s += y.data()[i] * r.data()[i];
        return s;
    };
    auto& acts = net.template activations_for<In, ctdl::element_of<X>>();
    net.forward(x, acts);
    ctdl::tensor<double, Out> dy = r;
    net.backward(acts, x, dy);

    gradcheck_result res;
    for (const auto& seg : Model::gradient_segments) {
        for (std::size_t i = 0; i < seg.size; ++i) {
            double* p = net.parameters() + seg.param_offset + i;
            const double saved = *p;
            *p = saved + h;
            const double up = loss();
            *p = saved - h;
            const double down = loss();
            *p = saved;
            const double numeric = (up - down) / (2 * h);
            const double analytic = net.gradients()[seg.grad_offset + i];
            const double scale = std::max({std::abs(numeric), std::abs(analytic), 1e-2});
            res.max_rel_error = std::max(res.max_rel_error, std::abs(numeric - analytic) / scale);
            ++res.checked;
        }
    }
    return res;
}

}  // namespace ctdl_test
