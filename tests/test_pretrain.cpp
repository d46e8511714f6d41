// The pretraining loop: it learns, checkpoints resume bitwise identically, a NaN stops
// training and leaves the last checkpoint intact, a bad checkpoint changes nothing.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/infer/generate.hpp>
#include <ctdl/train/loop.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

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

/// The first `columns` comma-separated fields of each line of a CSV file.
std::vector<std::string> csv_columns(const std::filesystem::path& p, std::size_t columns) {
    std::vector<std::string> out;
    std::istringstream in(file_bytes(p));
    for (std::string line; std::getline(in, line);) {
        std::size_t end = std::string::npos, from = 0;
        for (std::size_t c = 0; c < columns; ++c) {
            end = line.find(',', from);
            if (end == std::string::npos) break;
            from = end + 1;
        }
        out.push_back(line.substr(0, end));
    }
    return out;
}

/// The mean cross-entropy of net on one window, computed on its own (batch 1).
template <class Net>
double window_loss(Net& net, const ctdl::data::text_window& w) {
    ctdl::tensor<int, ctdl::shape<1, T>> x, y;
    std::copy(w.input.begin(), w.input.end(), x.data());
    std::copy(w.target.begin(), w.target.end(), y.data());
    const auto logits = net.forward(x);
    return static_cast<double>(ctdl::loss::cross_entropy(logits, y));
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

TEST_CASE("generation: sampling.vocab_size keeps every drawn id below it") {
    // An untrained model spreads probability over all 64 output ids; a tokenizer with k
    // symbols can decode only ids below k.
    ctdl::model<ctdl::frozen<tiny>> net{ctdl::seed{4}};
    const std::vector<int> prompt{1, 2, 3};
    constexpr std::size_t n = 400;
    const auto below = [](const std::vector<int>& ids, std::size_t k) {
        return std::all_of(ids.begin() + 3, ids.end(), [k](int t) { return t >= 0 && static_cast<std::size_t>(t) < k; });
    };
    {  // without the restriction, a hot sampler leaves the first 5 ids (the test can fail)
        ctdl::rng g(ctdl::seed{11});
        CHECK_FALSE(below(ctdl::infer::generate<T>(net, prompt, n, g, 3.0), 5));
    }
    for (const std::size_t k : {1u, 2u, 5u, 52u, 63u, 64u}) {
        for (const double temperature : {0.0, 0.7, 3.0}) {
            ctdl::rng g(ctdl::seed{11});
            const auto ids = ctdl::infer::generate<T>(net, prompt, n, g, {.temperature = temperature, .vocab_size = k});
            INFO("k " << k << ", temperature " << temperature);
            REQUIRE(ids.size() == prompt.size() + n);
            CHECK(std::equal(prompt.begin(), prompt.end(), ids.begin()));
            CHECK(below(ids, k));
            if (temperature == 3.0 && k == 5) {  // every allowed id still gets drawn
                for (int v = 0; v < 5; ++v) CHECK(std::count(ids.begin() + 3, ids.end(), v) > 0);
            }
        }
    }
    // vocab_size = the model's vocabulary (or 0) draws exactly as without it
    ctdl::rng g1(ctdl::seed{5}), g2(ctdl::seed{5}), g3(ctdl::seed{5});
    const auto plain = ctdl::infer::generate<T>(net, prompt, 50, g1, 0.9);
    CHECK(ctdl::infer::generate<T>(net, prompt, 50, g2, {.temperature = 0.9, .vocab_size = 64}) == plain);
    CHECK(ctdl::infer::generate<T>(net, prompt, 50, g3, {.temperature = 0.9}) == plain);
    CHECK_THROWS_WITH(ctdl::infer::generate<T>(net, prompt, 5, g1, {.vocab_size = 65}), Catch::Contains("65"));
}

TEST_CASE("validation loss: the mean over the split's real windows, none of the batch's empty rows") {
    const std::string text = ctdl::data::default_corpus(20000);
    const ctdl::data::char_tokenizer tok(text);
    REQUIRE(tok.vocab_size() <= 64);
    using ctdl::data::split;
    // The last 50 tokens are validation: 3 windows of T = 16 (and 34 overlapping offsets).
    const ctdl::data::text_dataset ds(tok.encode(text), 50.0 / 20000);
    REQUIRE(ds.size(split::validation) == 50);
    const auto windows = ds.windows(split::validation, T);
    REQUIRE(windows.size() == 3);

    ctdl::model<tiny> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {}};
    ctdl::rng g(ctdl::seed{9});
    auto o = quiet(3);
    o.eval_batches = 2;  // room for 2 · B = 8 windows: 3 are real
    const auto r = ctdl::train::run<B, T>(net, opt, ds, g, o);
    REQUIRE(r.validation_loss);

    std::vector<double> each;
    for (const auto w : windows) each.push_back(window_loss(net, w));
    const double mean3 = (each[0] + each[1] + each[2]) / 3;
    INFO("per window " << each[0] << ", " << each[1] << ", " << each[2]);
    CHECK(*r.validation_loss == Approx(mean3).epsilon(1e-5));
    CHECK(r.validation_curve.back().loss == Approx(mean3).epsilon(1e-5));
    // Batches of 2: one batch is the first two windows; two or more batches, all three.
    CHECK(ctdl::train::validation_loss<2, T>(net, ds, 1) == Approx((each[0] + each[1]) / 2).epsilon(1e-5));
    CHECK(ctdl::train::validation_loss<2, T>(net, ds, 2) == Approx(mean3).epsilon(1e-5));
    CHECK(ctdl::train::validation_loss<2, T>(net, ds, 50) == Approx(mean3).epsilon(1e-5));
    CHECK(ctdl::train::validation_loss<1, T>(net, ds, 3) == Approx(mean3).epsilon(1e-5));
    CHECK_THROWS_WITH((ctdl::train::validation_loss<B, T>(net, ds, 0)), Catch::Contains("at least 1"));

    // A split of exactly one window (T + 1 tokens) is evaluated; one token fewer is an error.
    const ctdl::data::text_dataset one(tok.encode(text), 17.0 / 20000);
    REQUIRE(one.windows(split::validation, T).size() == 1);
    CHECK(ctdl::train::validation_loss<B, T>(net, one, 8) ==
          Approx(window_loss(net, one.windows(split::validation, T)[0])).epsilon(1e-5));
    const ctdl::data::text_dataset none(tok.encode(text), 16.0 / 20000);
    CHECK_THROWS_WITH((ctdl::train::validation_loss<B, T>(net, none, 8)), Catch::Contains("validation split has 16"));
}

TEST_CASE("pretraining: a run that cannot start or fails leaves the earlier run's outputs as they were") {
    const ctdl_test::temp_dir dir("ctdl_run_outputs");
    const auto ds = corpus_dataset();
    const auto with_outputs = [&](std::uint64_t steps) {
        auto o = quiet(steps);
        o.checkpoint = dir.path / "checkpoint.safetensors";
        o.csv = dir.path / "log.csv";
        o.plot = dir.path / "loss.svg";
        return o;
    };
    {
        ctdl::model<tiny> net{ctdl::seed{1}};
        ctdl::optim::adamw opt{net, {}};
        ctdl::rng g(ctdl::seed{9});
        ctdl::train::run<B, T>(net, opt, ds, g, with_outputs(4));
    }
    const std::vector<std::string> names{"checkpoint.safetensors", "log.csv", "loss.svg"};
    std::vector<std::string> good;
    for (const auto& n : names) {
        REQUIRE(std::filesystem::exists(dir.path / n));
        good.push_back(file_bytes(dir.path / n));
    }
    REQUIRE(csv_columns(dir.path / "log.csv", 1) == std::vector<std::string>{"step", "1", "2", "3", "4"});
    const auto unchanged = [&] {
        for (std::size_t i = 0; i < names.size(); ++i) {
            INFO(names[i]);
            CHECK(file_bytes(dir.path / names[i]) == good[i]);
        }
        CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator{}) ==
              static_cast<std::ptrdiff_t>(names.size()));  // no temporary files left
    };
    const auto fresh_run = [&](const ctdl::data::text_dataset& data, const ctdl::train::options& o) {
        ctdl::model<tiny> net{ctdl::seed{2}};
        ctdl::optim::adamw opt{net, {}};
        ctdl::rng g(ctdl::seed{3});
        ctdl::train::run<B, T>(net, opt, data, g, o);
    };

    SECTION("a validation split too short for one window") {
        const std::string text = ctdl::data::default_corpus(2000);
        const ctdl::data::char_tokenizer tok(text);
        const ctdl::data::text_dataset short_val(tok.encode(text), 10.0 / 2000);
        CHECK_THROWS_WITH(fresh_run(short_val, with_outputs(4)), Catch::Contains("validation split has 10 tokens"));
        unchanged();
    }
    SECTION("a training split too short for one window") {
        const std::string text = ctdl::data::default_corpus(30);
        const ctdl::data::char_tokenizer tok(text);
        const ctdl::data::text_dataset tiny_text(tok.encode(text), 0.5);
        CHECK_THROWS_WITH(fresh_run(tiny_text, with_outputs(4)), Catch::Contains("training split has 15 tokens"));
        unchanged();
    }
    SECTION("no validation batches") {
        auto o = with_outputs(4);
        o.eval_batches = 0;
        CHECK_THROWS_WITH(fresh_run(ds, o), Catch::Contains("eval_batches"));
        unchanged();
    }
    SECTION("an output in a folder that does not exist") {
        auto o = with_outputs(4);
        o.plot = dir.path / "missing" / "loss.svg";
        CHECK_THROWS_WITH(fresh_run(ds, o), Catch::Contains("missing") && Catch::Contains("not a directory"));
        unchanged();
    }
    SECTION("a NaN before the first checkpoint of the new run") {
        ctdl::model<tiny> net{ctdl::seed{2}};
        ctdl::optim::adamw opt{net, {}};
        ctdl::rng g(ctdl::seed{3});
        net.parameters()[5] = std::numeric_limits<float>::quiet_NaN();
        CHECK_THROWS_WITH((ctdl::train::run<B, T>(net, opt, ds, g, with_outputs(6))), Catch::Contains("non-finite"));
        unchanged();
    }
}

TEST_CASE("pretraining: the CSV log ends at the last checkpoint, and a resumed run continues it") {
    const ctdl_test::temp_dir dir("ctdl_run_log");
    const auto ds = corpus_dataset();
    const auto ckpt = dir.path / "checkpoint.safetensors";
    const auto log = dir.path / "log.csv";
    // 12 steps in one go
    ctdl::model<tiny> a{ctdl::seed{1}};
    ctdl::optim::adamw oa{a, {}};
    ctdl::rng ga(ctdl::seed{9});
    auto whole = quiet(12);
    whole.csv = dir.path / "whole.csv";
    ctdl::train::run<B, T>(a, oa, ds, ga, whole);
    const auto expected = csv_columns(whole.csv, 2);  // step, train_loss
    REQUIRE(expected.size() == 13);

    // A run checkpointing every 4 steps stops with a NaN after step 6: the log ends at the
    // checkpoint's step 4, not at step 6.
    {
        ctdl::model<tiny> b{ctdl::seed{1}};
        ctdl::optim::adamw ob{b, {}};
        ctdl::rng gb(ctdl::seed{9});
        auto o = quiet(12);
        o.checkpoint = ckpt;
        o.checkpoint_every = 4;
        o.csv = log;
        o.stop_after = 6;
        ctdl::train::run<B, T>(b, ob, ds, gb, o);  // steps 1-6: checkpoints and log at 4 and 6
        CHECK(csv_columns(log, 2) == std::vector<std::string>(expected.begin(), expected.begin() + 7));
        std::fill(b.parameters(), b.parameters() + b.parameter_count, std::numeric_limits<float>::quiet_NaN());
        o.stop_after = 0;
        CHECK_THROWS_WITH((ctdl::train::run<B, T>(b, ob, ds, gb, o)), Catch::Contains("step 7"));
        CHECK(csv_columns(log, 2) == std::vector<std::string>(expected.begin(), expected.begin() + 7));
    }
    // A log with rows past the checkpoint (an older run's, or one cut off by a crash) is
    // trimmed to the checkpoint's step when resuming.
    {
        std::ofstream(log, std::ios::app) << "7,9.5,,0.001,1,1\n8,9.25,,0.001,1,1\n9,9.1";
    }
    ctdl::model<tiny> c{ctdl::seed{123}};
    ctdl::optim::adamw oc{c, {}};
    ctdl::rng gc(ctdl::seed{0});
    REQUIRE(ctdl::train::load_checkpoint(ckpt, c, oc, gc).step == 6);
    auto o = quiet(12);
    o.checkpoint = ckpt;
    o.checkpoint_every = 4;
    o.csv = log;
    ctdl::train::run<B, T>(c, oc, ds, gc, o);
    CHECK(csv_columns(log, 2) == expected);
    CHECK(std::equal(a.parameters(), a.parameters() + a.parameter_count, c.parameters()));
}

TEST_CASE("train::run refuses an optimizer made for another model object, and changes nothing") {
    const auto ds = corpus_dataset();
    ctdl::model<tiny> a{ctdl::seed{1}}, b{ctdl::seed{2}};
    ctdl::optim::adamw opt{a};
    const std::vector<float> b0(b.parameters(), b.parameters() + b.parameter_count);
    ctdl::rng g{ctdl::seed{3}};
    CHECK_THROWS_WITH((ctdl::train::run<B, T>(b, opt, ds, g, quiet(2))), Catch::Contains("another model object"));
    CHECK(std::equal(b0.begin(), b0.end(), static_cast<const ctdl::model<tiny>&>(b).parameters()));
    CHECK(opt.step_count() == 0);
}
