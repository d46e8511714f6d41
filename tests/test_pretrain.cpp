// The pretraining loop: it learns, checkpoints resume bitwise identically, a NaN stops
// training and leaves the last checkpoint intact, a bad checkpoint changes nothing.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/infer/generate.hpp>
#include <ctdl/train/loop.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace {

using tiny = ctdl::models::gpt<64, 16, 32, 2, 2, 64>;
constexpr std::size_t B = 4, T = 16;

ctdl::data::text_dataset corpus_dataset() {
    const std::string text = ctdl::data::default_corpus(20000);
    const ctdl::data::char_tokenizer tok(text);
    REQUIRE(tok.vocab_size() <= 64);
    return ctdl::data::text_dataset(tok.encode(text), 0.1);
}

ctdl::train::options quiet(std::uint64_t steps) {
    ctdl::train::options o;
    o.steps = steps;
    o.peak_lr = 3e-3;
    o.warmup_steps = 5;
    o.eval_every = 0;
    o.eval_batches = 2;
    o.progress = false;
    return o;
}

std::string file_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("pretraining: the loss falls below the corpus's unigram entropy") {
    const auto ds = corpus_dataset();
    ctdl::model<tiny> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {.weight_decay = 0.01f}};
    ctdl::rng g(ctdl::seed{9});
    auto o = quiet(150);
    o.eval_every = 50;
    o.grad_accumulation = 2;
    const auto r = ctdl::train::run<B, T>(net, opt, ds, g, o);
    REQUIRE(r.validation_loss);
    CHECK(r.validation_curve.size() == 3);
    INFO("validation loss " << *r.validation_loss << ", unigram entropy "
                            << ds.unigram_entropy(ctdl::data::split::validation));
    CHECK(*r.validation_loss < ds.unigram_entropy(ctdl::data::split::validation));
    CHECK(r.train_curve.back().loss < r.train_curve.front().loss);
}

TEST_CASE("pretraining: resuming from a checkpoint continues bitwise identically") {
    const auto ds = corpus_dataset();
    const auto path = std::filesystem::temp_directory_path() / "ctdl_resume_test.safetensors";
    // 2N steps in one go
    ctdl::model<tiny> a{ctdl::seed{1}};
    ctdl::optim::adamw oa{a, {}};
    ctdl::rng ga(ctdl::seed{9});
    ctdl::train::run<B, T>(a, oa, ds, ga, quiet(20));
    // N steps, a checkpoint, a fresh process state, then N more
    {
        ctdl::model<tiny> b{ctdl::seed{1}};
        ctdl::optim::adamw ob{b, {}};
        ctdl::rng gb(ctdl::seed{9});
        auto o = quiet(20);  // the same schedule as the whole run
        o.stop_after = 10;
        o.checkpoint = path;
        ctdl::train::run<B, T>(b, ob, ds, gb, o);
    }
    ctdl::model<tiny> c{ctdl::seed{123}};  // different weights: all come from the checkpoint
    ctdl::optim::adamw oc{c, {}};
    ctdl::rng gc(ctdl::seed{0});
    const auto info = ctdl::train::load_checkpoint(path, c, oc, gc);
    CHECK(info.step == 10);
    ctdl::train::run<B, T>(c, oc, ds, gc, quiet(20));
    CHECK(std::equal(a.parameters(), a.parameters() + a.parameter_count, c.parameters()));
    CHECK(ga.state() == gc.state());
    std::filesystem::remove(path);
}

TEST_CASE("pretraining: a NaN stops training and leaves the last checkpoint intact") {
    const auto ds = corpus_dataset();
    const auto path = std::filesystem::temp_directory_path() / "ctdl_nan_test.safetensors";
    ctdl::model<tiny> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {}};
    ctdl::rng g(ctdl::seed{9});
    auto o = quiet(5);
    o.checkpoint = path;
    ctdl::train::run<B, T>(net, opt, ds, g, o);
    const std::string good = file_bytes(path);
    net.parameters()[3] = std::numeric_limits<float>::quiet_NaN();  // corrupt the model
    o.steps = 10;
    CHECK_THROWS_WITH((ctdl::train::run<B, T>(net, opt, ds, g, o)),
                      Catch::Contains("step 6") && Catch::Contains("non-finite") &&
                          Catch::Contains("is as it was"));
    CHECK(file_bytes(path) == good);
    std::filesystem::remove(path);
}

TEST_CASE("pretraining: a checkpoint that does not fit changes nothing") {
    const auto path = std::filesystem::temp_directory_path() / "ctdl_bad_checkpoint.safetensors";
    ctdl::model<tiny> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {}};
    ctdl::rng g(ctdl::seed{9});
    ctdl::train::save_checkpoint(path, net, opt, 3, g);
    // another architecture cannot load it, and keeps its own state
    using other = ctdl::models::gpt<64, 16, 32, 2, 1, 64>;
    ctdl::model<other> m{ctdl::seed{2}};
    ctdl::optim::adamw om{m, {}};
    ctdl::rng gm(ctdl::seed{5});
    const std::vector<float> before(m.parameters(), m.parameters() + m.parameter_count);
    CHECK_THROWS_AS(ctdl::train::load_checkpoint(path, m, om, gm), ctdl::error);
    CHECK(std::equal(before.begin(), before.end(), m.parameters()));
    CHECK(gm.state() == ctdl::rng(ctdl::seed{5}).state());
    std::filesystem::remove(path);
}

TEST_CASE("generation: greedy is deterministic, sampling follows the generator, short prompts are refused") {
    ctdl::model<ctdl::frozen<tiny>> net{ctdl::seed{4}};
    std::vector<int> prompt(T);
    for (std::size_t i = 0; i < T; ++i) prompt[i] = static_cast<int>(i % 50);
    ctdl::rng g1(ctdl::seed{1}), g2(ctdl::seed{1}), g3(ctdl::seed{2});
    const auto greedy = ctdl::infer::generate<T>(net, prompt, 10, g1, 0.0);
    CHECK(greedy.size() == T + 10);
    CHECK(std::equal(prompt.begin(), prompt.end(), greedy.begin()));
    CHECK(ctdl::infer::generate<T>(net, prompt, 10, g1, 0.0) == greedy);
    const auto a = ctdl::infer::generate<T>(net, prompt, 30, g2, 1.0);
    const auto b = ctdl::infer::generate<T>(net, prompt, 30, g3, 1.0);
    ctdl::rng g2again(ctdl::seed{1});
    CHECK(ctdl::infer::generate<T>(net, prompt, 30, g2again, 1.0) == a);
    CHECK(a != b);
    for (int t : a) CHECK((t >= 0 && t < 64));
    CHECK_THROWS_WITH(ctdl::infer::generate<T>(net, std::vector<int>{}, 5, g1), Catch::Contains("empty"));
    // a prompt shorter than the context works too
    CHECK(ctdl::infer::generate<T>(net, std::vector<int>(3, 1), 5, g1).size() == 8);
}

TEST_CASE("a sequence shorter than the context: right padding gives the short sequence's outputs bitwise") {
    ctdl::model<ctdl::frozen<tiny>> net{ctdl::seed{4}};
    constexpr std::size_t L = 5;
    ctdl::tensor<int, ctdl::shape<1, L>> short_ids;
    ctdl::tensor<int, ctdl::shape<1, T>> padded;  // zeros after the first L
    for (std::size_t t = 0; t < L; ++t) short_ids(0, t) = padded(0, t) = static_cast<int>(7 * t % 50);
    for (std::size_t t = L; t < T; ++t) padded(0, t) = static_cast<int>(t);
    const auto a = net.forward(short_ids);
    const auto b = net.forward(padded);
    for (std::size_t t = 0; t < L; ++t)
        for (std::size_t v = 0; v < 64; ++v) REQUIRE(a(0, t, v) == b(0, t, v));
}
