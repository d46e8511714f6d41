// Optimizers, clipping and schedules: PyTorch parity (tests/golden/optim_*.txt), pass
// counts, frozen ranges, determinism across thread counts, checkpoint state.
#include <catch2/catch.hpp>
#include <ctdl/exec/cpu.hpp>
#include <ctdl/optim/optim.hpp>

#include <array>
#include <cmath>
#include <concepts>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "golden_files.hpp"

namespace optim = ctdl::optim;

namespace {

using ctdl_test::read_golden;
using ctdl_test::section;

template <class T>
constexpr double rel_tol = std::same_as<T, float> ? 1e-5 : 1e-12;
template <class T>
constexpr double abs_tol = std::same_as<T, float> ? 1e-6 : 1e-13;

// Inputs are float values printed with %.9g: exact once rounded to float.
template <class T>
T input(double v) {
    return static_cast<T>(static_cast<float>(v));
}

template <class T>
bool close(double got, double want) {
    return std::abs(got - want) <= abs_tol<T> + rel_tol<T> * std::abs(want);
}

// ---------------------------------------------------------------- fake models

// 42 parameters, of which [20, 25) are frozen: two segments with a gap, 37 gradients.
template <class T>
struct gap_model {
    using value_type = T;
    static constexpr std::size_t parameter_count = 42;
    static constexpr std::size_t gradient_count = 37;
    static constexpr std::array<ctdl::segment, 2> gradient_segments{{{0, 0, 20}, {25, 20, 17}}};

    std::array<T, parameter_count> params{};
    std::array<T, gradient_count> grads{};
    T* parameters() { return params.data(); }
    T* gradients() { return grads.data(); }

    // Trainable element i (in gradient order) lives at this parameter index.
    static constexpr std::size_t param_index(std::size_t i) { return i < 20 ? i : i + 5; }
    static constexpr bool frozen(std::size_t p) { return p >= 20 && p < 25; }
};

// Large enough for the update to be split over two threads; the second segment starts at
// an odd offset, and a frozen gap of 11 parameters sits between the two.
template <class T>
struct big_model {
    using value_type = T;
    static constexpr std::size_t parameter_count = 90015;
    static constexpr std::size_t gradient_count = 90004;
    static constexpr std::array<ctdl::segment, 2> gradient_segments{{{0, 0, 50001}, {50012, 50001, 40003}}};

    std::vector<T> params = std::vector<T>(parameter_count);
    std::vector<T> grads = std::vector<T>(gradient_count);
    T* parameters() { return params.data(); }
    T* gradients() { return grads.data(); }
};

template <class Model>
void fill_pseudo_random(Model& m, unsigned seed) {
    unsigned s = seed;
    auto next = [&] {
        s = s * 1664525u + 1013904223u;
        return static_cast<typename Model::value_type>(static_cast<double>(s >> 8) / 16777216.0 - 0.5);
    };
    for (auto& p : m.params) p = next();
    for (auto& g : m.grads) g = next();
}

// Runs the golden case `file` with an optimizer made by make(model).
template <class T, class Make>
void check_golden(const std::string& file, Make make) {
    const auto g = read_golden(file);
    gap_model<T> m;
    const auto& p0 = section(g, "params");
    REQUIRE(p0.size() == 37);
    for (std::size_t p = 0; p < m.parameter_count; ++p) m.params[p] = T(1000 + p);  // frozen sentinels
    for (std::size_t i = 0; i < 37; ++i) m.params[m.param_index(i)] = input<T>(p0[i]);
    auto opt = make(m);
    const std::string label = std::same_as<T, float> ? "float" : "double";
    for (int k = 0; k < 5; ++k) {
        const auto& grad = section(g, "grad " + std::to_string(k));
        for (std::size_t i = 0; i < 37; ++i) m.grads[i] = input<T>(grad[i]);
        opt.step();
        const auto& want = section(g, label + " after " + std::to_string(k));
        for (std::size_t i = 0; i < 37; ++i) {
            INFO(file << " " << label << " step " << k << " element " << i);
            CHECK(close<T>(m.params[m.param_index(i)], want[i]));
        }
    }
    for (std::size_t p = 20; p < 25; ++p) CHECK(m.params[p] == T(1000 + p));
    CHECK(opt.step_count() == 5);
}

}  // namespace

// ---------------------------------------------------------------- construction

TEST_CASE("optimizers deduce the model from the constructor (CTAD) and take designated options") {
    gap_model<float> f;
    gap_model<double> d;
    optim::sgd s{f, {.lr = 0.05f}};
    optim::sgd sd{d, {.lr = 0.05f, .momentum = 0.9}};
    optim::adam a{f};
    optim::adamw w{d, {.lr = 3e-4, .betas = {0.9, 0.95}, .weight_decay = 0.1}};
    STATIC_REQUIRE(std::same_as<decltype(s), optim::sgd<gap_model<float>>>);
    STATIC_REQUIRE(std::same_as<decltype(sd), optim::sgd<gap_model<double>>>);
    STATIC_REQUIRE(std::same_as<decltype(a), optim::adam<gap_model<float>>>);
    STATIC_REQUIRE(std::same_as<decltype(w), optim::adamw<gap_model<double>>>);
    STATIC_REQUIRE(optim::trainable_count<gap_model<float>> == 37);
    CHECK(s.lr() == 0.05f);
    CHECK(a.lr() == 1e-3f);
    CHECK(a.options().betas.second == 0.999f);
    CHECK(w.options().weight_decay == 0.1);
    CHECK(optim::adamw{f}.options().weight_decay == 1e-2f);
    s.set_lr(0.5f);
    CHECK(s.lr() == 0.5f);
    CHECK(s.state_tensors().empty());      // no momentum: no buffer
    CHECK(sd.state_tensors().size() == 1);
    CHECK(sd.state_tensors()[0].name == "momentum_buffer");
    CHECK(sd.state_tensors()[0].values.size() == 37);
}

TEST_CASE("bad optimizer options throw ctdl::error") {
    gap_model<float> m;
    CHECK_THROWS_AS(optim::sgd(m, {.lr = -1.f}), ctdl::error);
    CHECK_THROWS_AS(optim::sgd(m, {.lr = 0.1f, .nesterov = true}), ctdl::error);
    CHECK_THROWS_AS(optim::sgd(m, {.lr = 0.1f, .momentum = 0.9f, .dampening = 0.1f, .nesterov = true}), ctdl::error);
    CHECK_THROWS_AS(optim::adam(m, {.betas = {1.f, 0.999f}}), ctdl::error);
    CHECK_THROWS_AS(optim::adamw(m, {.eps = -1.f}), ctdl::error);
    CHECK_THROWS_WITH(optim::adamw(m, {.weight_decay = -0.5f}), Catch::Contains("adamw: weight_decay"));
    optim::adam a{m};
    CHECK_THROWS_AS(a.set_lr(-1.f), ctdl::error);
    CHECK_THROWS_AS(optim::clip_grad_norm(m, -1.0), ctdl::error);
}

// ---------------------------------------------------------------- PyTorch parity

TEMPLATE_TEST_CASE("sgd matches torch.optim.SGD (momentum, nesterov, weight decay)", "", float, double) {
    check_golden<TestType>("optim_sgd_nesterov.txt", [](auto& m) {
        return optim::sgd{m, {.lr = TestType(0.05), .momentum = TestType(0.9), .weight_decay = TestType(0.01),
                              .nesterov = true}};
    });
}

TEMPLATE_TEST_CASE("sgd matches torch.optim.SGD (momentum, dampening)", "", float, double) {
    check_golden<TestType>("optim_sgd_dampening.txt", [](auto& m) {
        return optim::sgd{m, {.lr = TestType(0.1), .momentum = TestType(0.8), .dampening = TestType(0.3)}};
    });
}

TEMPLATE_TEST_CASE("adam matches torch.optim.Adam (L2 weight decay)", "", float, double) {
    check_golden<TestType>("optim_adam.txt", [](auto& m) {
        return optim::adam{m, {.lr = TestType(0.01), .betas = {TestType(0.9), TestType(0.99)}, .eps = TestType(1e-8),
                               .weight_decay = TestType(0.05)}};
    });
}

TEMPLATE_TEST_CASE("adamw matches torch.optim.AdamW (decoupled weight decay)", "", float, double) {
    check_golden<TestType>("optim_adamw.txt", [](auto& m) {
        return optim::adamw{m, {.lr = TestType(0.01), .weight_decay = TestType(0.1)}};
    });
}

TEMPLATE_TEST_CASE("clip_grad_norm matches torch.nn.utils.clip_grad_norm_", "", float, double) {
    using T = TestType;
    const auto g = read_golden("optim_clip.txt");
    const std::string label = std::same_as<T, float> ? "float" : "double";
    for (const std::string tag : {"clipped", "unclipped"}) {
        gap_model<T> m;
        const auto& grad = section(g, "grad");
        for (std::size_t i = 0; i < 37; ++i) m.grads[i] = input<T>(grad[i]);
        ctdl::count_passes counting;
        const double norm = optim::clip_grad_norm(m, tag == "clipped" ? 1.0 : 1000.0);
        INFO(tag << " " << label);
        CHECK(close<T>(norm, section(g, tag + " " + label + " norm")[0]));
        const auto& want = section(g, tag + " " + label + " grad");
        for (std::size_t i = 0; i < 37; ++i) CHECK(close<T>(m.grads[i], want[i]));
        CHECK(counting.counts()[ctdl::pass::reduce] == 1);
        CHECK(counting.counts()[ctdl::pass::map] == (tag == "clipped" ? 1u : 0u));
        if (tag == "unclipped")
            for (std::size_t i = 0; i < 37; ++i) CHECK(m.grads[i] == input<T>(grad[i]));
    }
}

TEST_CASE("clipping leaves gradients alone when the norm is not finite") {
    gap_model<float> m;
    m.grads.fill(1.f);
    m.grads[3] = INFINITY;
    CHECK(std::isinf(optim::clip_grad_norm(m, 1.0)));
    CHECK(m.grads[0] == 1.f);
    CHECK(optim::clip_scale(3.0, 1.0) == Approx(1.0 / (3.0 + 1e-6)));
    CHECK(optim::clip_scale(0.5, 1.0) == 1.0);
}

TEST_CASE("step(grad_scale) equals clipping first and stepping after") {
    gap_model<double> a, b;
    fill_pseudo_random(a, 11);
    for (auto& g : a.grads) g *= 10;
    b = a;
    optim::adamw oa{a, {.lr = 0.01}};
    optim::adamw ob{b, {.lr = 0.01}};
    for (int k = 0; k < 3; ++k) {
        oa.step(optim::clip_scale(optim::grad_norm(a), 0.5));
        optim::clip_grad_norm(b, 0.5);
        ob.step();
        for (std::size_t i = 0; i < 37; ++i) a.grads[i] = b.grads[i] = 10 * std::cos(double(i + 7 * k));
    }
    for (std::size_t p = 0; p < a.parameter_count; ++p) CHECK(a.params[p] == Approx(b.params[p]).epsilon(1e-12));
}

// ---------------------------------------------------------------- passes, frozen ranges, threads

TEST_CASE("each step is one update pass and nothing else") {
    gap_model<float> m;
    fill_pseudo_random(m, 3);
    optim::sgd s{m, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f, .nesterov = true}};
    optim::adam a{m, {.weight_decay = 0.1f}};
    optim::adamw w{m};
    ctdl::count_passes counting;
    s.step();
    s.step();
    CHECK(counting.counts()[ctdl::pass::update] == 2);
    CHECK(counting.counts().total() == 2);
    counting.reset();
    a.step();
    w.step();
    w.step(0.5f);
    CHECK(counting.counts()[ctdl::pass::update] == 3);
    CHECK(counting.counts().total() == 3);
}

TEMPLATE_TEST_CASE("frozen parameters are never touched, whatever the weight decay", "", float, double) {
    using T = TestType;
    gap_model<T> m;
    fill_pseudo_random(m, 5);
    const auto before = m.params;
    optim::sgd s{m, {.lr = T(0.1), .momentum = T(0.9), .weight_decay = T(0.5)}};
    optim::adam a{m, {.weight_decay = T(0.5)}};
    optim::adamw w{m, {.weight_decay = T(0.5)}};
    for (int k = 0; k < 3; ++k) {
        s.step();
        a.step();
        w.step();
    }
    for (std::size_t p = 0; p < m.parameter_count; ++p) {
        INFO("parameter " << p);
        if (gap_model<T>::frozen(p))
            CHECK(m.params[p] == before[p]);
        else
            CHECK(m.params[p] != before[p]);
    }
}

TEMPLATE_TEST_CASE("updates are bitwise the same on one thread and on two", "", float, double) {
    using T = TestType;
    const std::size_t threads = ctdl::cpu::threads();
    big_model<T> one, two;
    fill_pseudo_random(one, 9);
    two = one;
    const auto frozen_before = std::vector<T>(one.params.begin() + 50001, one.params.begin() + 50012);
    auto run = [](big_model<T>& m, std::size_t n) {
        ctdl::cpu::set_threads(n);
        optim::sgd s{m, {.lr = T(0.01), .momentum = T(0.9), .weight_decay = T(0.1), .nesterov = true}};
        optim::adam a{m, {.lr = T(0.01), .weight_decay = T(0.01)}};
        optim::adamw w{m, {.lr = T(0.01)}};
        for (int k = 0; k < 3; ++k) {
            s.step();
            a.step();
            w.step();
        }
    };
    run(one, 1);
    run(two, 2);
    ctdl::cpu::set_threads(threads);
    CHECK(one.params == two.params);
    CHECK(std::equal(frozen_before.begin(), frozen_before.end(), one.params.begin() + 50001));
}

// ---------------------------------------------------------------- checkpoints

TEMPLATE_TEST_CASE("restoring the state and step count resumes bitwise", "", float, double) {
    using T = TestType;
    auto grads_for = [](gap_model<T>& m, int k) {
        for (std::size_t i = 0; i < 37; ++i) m.grads[i] = T(std::sin(0.3 * double(i) + k));
    };
    auto check = [&](auto make) {
        gap_model<T> straight, resumed;
        fill_pseudo_random(straight, 13);
        resumed = straight;
        auto a = make(straight);
        for (int k = 0; k < 5; ++k) {
            grads_for(straight, k);
            a.step();
        }
        auto b = make(resumed);
        for (int k = 0; k < 3; ++k) {
            grads_for(resumed, k);
            b.step();
        }
        // Save, then restore into a fresh optimizer.
        std::vector<std::vector<T>> saved;
        for (const auto& s : std::as_const(b).state_tensors()) saved.emplace_back(s.values.begin(), s.values.end());
        const auto steps = b.step_count();
        auto c = make(resumed);
        auto state = c.state_tensors();
        REQUIRE(state.size() == saved.size());
        for (std::size_t i = 0; i < state.size(); ++i) std::copy(saved[i].begin(), saved[i].end(), state[i].values.begin());
        c.set_step_count(steps);
        for (int k = 3; k < 5; ++k) {
            grads_for(resumed, k);
            c.step();
        }
        CHECK(straight.params == resumed.params);
        CHECK(c.step_count() == 5);
    };
    check([](auto& m) { return optim::sgd{m, {.lr = T(0.1), .momentum = T(0.9)}}; });
    check([](auto& m) { return optim::adam{m, {.lr = T(0.01)}}; });
    check([](auto& m) {
        auto o = optim::adamw{m, {.lr = T(0.01)}};
        CHECK(o.state_tensors()[0].name == "exp_avg");
        CHECK(o.state_tensors()[1].name == "exp_avg_sq");
        return o;
    });
}

// ---------------------------------------------------------------- schedules

TEST_CASE("constant_lr and warmup_cosine at their key points") {
    constexpr optim::constant_lr c{0.1};
    STATIC_REQUIRE(c(0) == 0.1);
    CHECK(c(123456) == 0.1);

    const optim::warmup_cosine s{1.0, 10, 110, 0.1};
    CHECK(s(0) == 0.0);
    CHECK(s(5) == Approx(0.5));
    CHECK(s(9) == Approx(0.9));
    CHECK(s(10) == Approx(1.0));                                  // the peak, at the end of the warmup
    CHECK(s(60) == Approx(0.55));                                 // half way: (peak + min) / 2
    CHECK(s(35) == Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4))));
    CHECK(s(110) == 0.1);
    CHECK(s(1000000) == 0.1);
    for (std::uint64_t k = 10; k < 110; ++k) CHECK(s(k + 1) <= s(k));  // non-increasing decay

    const optim::warmup_cosine no_warmup{.peak_lr = 3e-4, .total_steps = 100};
    CHECK(no_warmup(0) == Approx(3e-4));
    CHECK(no_warmup(100) == 0.0);

    gap_model<float> m;
    optim::adamw opt{m};
    opt.set_lr(s(5));
    CHECK(opt.lr() == 0.5f);
}
