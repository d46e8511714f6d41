// graph::gradient_hook (graph/node_io.hpp): what the backward pass tells a listener, and that
// it is true. Data-parallel training (dist/) starts summing a bucket of gradients as soon as
// the hook says it is final, so every call's claim is checked here: the gradients from its
// offset to the end already hold their final values when it is made.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/dist/communicator.hpp>
#include <ctdl/dist/data_parallel.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/models/gpt2.hpp>

#include <cstddef>
#include <utility>
#include <vector>

namespace {

struct recorder {
    const float* grads = nullptr;
    std::size_t n = 0;
    std::vector<std::pair<std::size_t, std::vector<float>>> calls;  // offset, grads[offset, n) then

    static void final_from(void* self, std::size_t offset) {
        auto& r = *static_cast<recorder*>(self);
        r.calls.push_back({offset, std::vector<float>(r.grads + offset, r.grads + r.n)});
    }
};

// One backward pass of net on random tokens with the hook; checks every call against the
// final gradients; returns the offsets told.
template <class Model, std::size_t B, std::size_t T, std::size_t V>
std::vector<std::size_t> check_hook(Model& net, bool accumulate) {
    ctdl::rng g(ctdl::seed{3});
    ctdl::tensor<int, ctdl::shape<B, T>> x, y;
    for (std::size_t i = 0; i < B * T; ++i) {
        x.data()[i] = static_cast<int>(g.next_below(V));
        y.data()[i] = static_cast<int>(g.next_below(V));
    }
    auto& acts = net.template activations_for<ctdl::shape<B, T>, int>();
    if (accumulate) {  // a first micro-batch, so that the second adds to it
        const auto& logits = net.forward(x, acts);
        ctdl::loss::cross_entropy.forward_backward(logits, y, acts.dout);
        net.backward(acts, x, acts.dout);
        std::swap(x, y);
    }
    const auto& logits = net.forward(x, acts);
    ctdl::loss::cross_entropy.forward_backward(logits, y, acts.dout);
    recorder r{net.gradients(), Model::gradient_count, {}};
    const ctdl::graph::gradient_hook hook{&r, &recorder::final_from};
    net.backward(acts, x, acts.dout, accumulate, &hook);
    std::vector<std::size_t> offsets;
    const float* final_grads = net.gradients();
    for (std::size_t k = 0; k < r.calls.size(); ++k) {
        const auto& [offset, then] = r.calls[k];
        offsets.push_back(offset);
        INFO("call " << k << " at offset " << offset << " of " << Model::gradient_count);
        REQUIRE(offset <= Model::gradient_count);
        if (k > 0) REQUIRE(offset <= r.calls[k - 1].first);  // offsets never grow
        // Bitwise: nothing after the call changed what it declared final.
        REQUIRE(then == std::vector<float>(final_grads + offset, final_grads + Model::gradient_count));
    }
    REQUIRE(!offsets.empty());
    REQUIRE(offsets.back() == 0);
    return offsets;
}

constexpr std::size_t V = 32, T = 16;

}  // namespace

TEST_CASE("gradient_hook: each call's range is final, offsets fall to 0 (GPT, untied head)") {
    struct gpt : ctdl::models::gpt<V, T, 32, 2, 2, 64> {};
    ctdl::model<gpt> net{ctdl::seed{1}};
    for (const bool accumulate : {false, true}) {
        const auto offsets = check_hook<ctdl::model<gpt>, 2, T, V>(net, accumulate);
        // One call per part of every sequential, at least: embeddings, blocks' parts, head.
        REQUIRE(offsets.size() >= 10);
        REQUIRE(offsets.front() < ctdl::model<gpt>::gradient_count);  // the head's gradients come first
    }
}

TEST_CASE("gradient_hook: a tied head writes its embedding's gradient, which is final only at offset 0 (GPT-2)") {
    struct gpt2 : ctdl::models::gpt2<V, T, 32, 2, 2> {};
    ctdl::model<gpt2> net{ctdl::seed{1}};
    check_hook<ctdl::model<gpt2>, 2, T, V>(net, false);  // every call checked against the final values
}

TEST_CASE("gradient_hook: frozen parts have no gradients to tell about (with_frozen)") {
    struct gpt : ctdl::models::gpt<V, T, 32, 2, 2, 64> {};
    using tuned = ctdl::models::gpt_with_frozen_bottom<gpt, 1>;  // embeddings and block 0 frozen
    ctdl::model<tuned> net{ctdl::seed{1}};
    STATIC_REQUIRE(ctdl::model<tuned>::gradient_count < ctdl::model<gpt>::gradient_count);
    const auto offsets = check_hook<ctdl::model<tuned>, 2, T, V>(net, false);
    // data_parallel's buckets cover the gradient buffer, the trainable parameters only.
    std::size_t covered = 0;
    for (const auto& [b, e] : ctdl::dist::data_parallel<ctdl::dist::single>::buckets(ctdl::model<tuned>::gradient_count, 100))
        covered += e - b;
    REQUIRE(covered == ctdl::model<tuned>::gradient_count);
    REQUIRE(offsets.back() == 0);
}

TEST_CASE("data_parallel::buckets: from the end of the buffer, each at most the size, covering it once") {
    using dp = ctdl::dist::data_parallel<ctdl::dist::single>;
    REQUIRE(dp::buckets(10, 4) == std::vector<std::pair<std::size_t, std::size_t>>{{6, 10}, {2, 6}, {0, 2}});
    REQUIRE(dp::buckets(8, 4) == std::vector<std::pair<std::size_t, std::size_t>>{{4, 8}, {0, 4}});
    REQUIRE(dp::buckets(3, 100) == std::vector<std::pair<std::size_t, std::size_t>>{{0, 3}});
    REQUIRE(dp::buckets(0, 4).empty());
    ctdl::dist::single one;
    REQUIRE_THROWS_WITH((dp{one, {.bucket_bytes = 0}}), Catch::Contains("bucket_bytes must be at least 1"));
}

TEST_CASE("dist::agree: one rank's failure is everyone's error, naming the rank, and no failure is no error") {
    ctdl::dist::single one;
    REQUIRE_NOTHROW(ctdl::dist::agree(one, "reading", ""));
    REQUIRE_THROWS_WITH(ctdl::dist::collectively(one, "reading the data", [] { throw ctdl::error("cannot read 'x'"); }),
                        "ctdl: dist: reading the data failed, so the run stops: rank 0: cannot read 'x'");
}
