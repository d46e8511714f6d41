// The pretraining example's BPE path (examples/pretrain/tokenizer.hpp): a vocabulary learned
// from the text gives the text back exactly, a GPT trained on its ids saves with its tokenizer
// (the snapshot's metadata and tokenizer.json beside it) and loads back with it.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/infer/generate.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/train/loop.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "../examples/pretrain/tokenizer.hpp"
#include "temp_dir.hpp"

namespace {

using Catch::Matchers::Contains;
using examples::tokenizer_kind;

using tiny_bpe = ctdl::models::gpt<320, 16, 32, 2, 2, 64>;  // 256 bytes + up to 64 merges
constexpr std::size_t B = 4, T = 16;

}  // namespace

TEST_CASE("pretraining with BPE: the learned vocabulary round-trips its text") {
    const std::string corpus = ctdl::data::default_corpus(20000);
    // Non-ASCII, whitespace runs, tabs and newlines, an emoji and a lone combining mark.
    const std::string odd = corpus.substr(0, 3000) + " Ünïcödé   spaces\t\ttabs\n\n\n日本語の文 🙂 e\xCC\x81 end  ";
    for (const std::size_t ids : {256, 300, 320}) {
        const auto tok = examples::pretrain_tokenizer::learn(tokenizer_kind::bpe, odd, ids);
        INFO("vocabulary " << ids << ", learned " << tok.vocab_size());
        CHECK(tok.kind() == tokenizer_kind::bpe);
        CHECK(tok.vocab_size() <= ids);
        const auto enc = tok.encode(odd);
        CHECK(tok.decode(enc) == odd);
        CHECK(tok.characters(enc) == ctdl::data::utf8_decode(odd).size());
        if (ids > 256) CHECK(enc.size() < odd.size());  // merges: fewer tokens than bytes
        else CHECK(enc.size() == odd.size());            // the bytes alone
        // A text it was not trained on round-trips too (every byte has a token).
        const std::string other = "Zebra quartz, \xC3\xA6\xC3\xB8\xC3\xA5 \xF0\x9F\x98\x80!  \n";
        CHECK(tok.decode(tok.encode(other)) == other);
    }
    CHECK_THROWS_WITH(examples::pretrain_tokenizer::learn(tokenizer_kind::bpe, odd, 255), Contains("at least 256"));
    CHECK_THROWS_WITH(examples::pretrain_tokenizer::learn(tokenizer_kind::chars, odd, 1), Contains("at least 2"));
    // The character tokenizer of at most N ids keeps the N - 1 most frequent characters.
    const auto chars = examples::pretrain_tokenizer::learn(tokenizer_kind::chars, odd, 20);
    CHECK(chars.vocab_size() == 20);
    CHECK(chars.encode(odd).size() == ctdl::data::utf8_decode(odd).size());
}

TEST_CASE("pretraining with BPE: a trained model loads back with its tokenizer") {
    const std::string text = ctdl::data::default_corpus(20000);
    const auto tok = examples::pretrain_tokenizer::learn(tokenizer_kind::bpe, text, 320);
    const ctdl::data::text_dataset ds(tok.encode(text), 0.1);
    REQUIRE(tok.vocab_size() <= 320);
    ds.require_vocab(320);

    ctdl::model<tiny_bpe> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {.weight_decay = 0.01f}};
    ctdl::rng g(ctdl::seed{9});
    ctdl::train::options o;
    o.steps = 30;
    o.peak_lr = 3e-3;
    o.warmup_steps = 3;
    o.eval_every = 0;
    o.progress = false;
    const auto r = ctdl::train::run<B, T>(net, opt, ds, g, o);
    CHECK(r.train_curve.back().loss < r.train_curve.front().loss);

    const ctdl_test::temp_dir dir("ctdl_pretrain_bpe");
    const auto snapshot = dir.path / "gpt.safetensors";
    ctdl::save(net, snapshot, {tok.metadata_entry()});
    examples::save_tokenizer_file(tok, dir.path);
    REQUIRE(std::filesystem::exists(dir.path / "tokenizer.json"));

    // The model: the same parameters, bit for bit, and the same logits from its frozen form.
    auto frozen = ctdl::load<ctdl::model<ctdl::frozen<tiny_bpe>>>(snapshot);
    CHECK(std::equal(net.parameters(), net.parameters() + net.parameter_count, frozen.parameters()));
    const auto window = ds.tokens(ctdl::data::split::validation).first(T);
    ctdl::tensor<int, ctdl::shape<1, T>> x;
    std::copy(window.begin(), window.end(), x.data());
    const auto a = net.forward(x);
    const auto b = frozen.forward(x);
    float worst = 0, largest = 0;
    for (std::size_t i = 0; i < a.size; ++i) {
        worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
        largest = std::max(largest, std::abs(a.data()[i]));
    }
    CHECK(worst <= 1e-5f * largest);

    // The tokenizer: from the metadata (checked against tokenizer.json), and the file alone
    // as Hugging Face's format, both encoding the text to the ids the model was trained on.
    const auto loaded = examples::load_tokenizer(snapshot);
    CHECK(loaded.kind() == tokenizer_kind::bpe);
    CHECK(loaded.metadata_entry() == tok.metadata_entry());
    const auto ids = loaded.encode(text);
    CHECK(std::equal(ids.begin(), ids.end(), ds.tokens().begin(), ds.tokens().end()));
    CHECK(loaded.decode(ids) == text);
    const auto file = ctdl::data::bpe_tokenizer::from_hf_json(dir.path / "tokenizer.json");
    CHECK(file.encode(text) == ids);
    CHECK(file.vocab_size() == tok.vocab_size());

    // Generation from the loaded model decodes through the loaded tokenizer.
    ctdl::rng sampler(ctdl::seed{3});
    const std::vector<int> prompt(window.begin(), window.end());
    const auto out = ctdl::infer::generate<T>(frozen, prompt, 8, sampler, {.vocab_size = loaded.vocab_size()});
    CHECK(out.size() == T + 8);
    CHECK(std::all_of(out.begin(), out.end(), [&](int t) { return t >= 0 && std::size_t(t) < loaded.vocab_size(); }));
    CHECK(loaded.decode(std::span<const int>(out).first(T)) == tok.decode(prompt));

    // A tokenizer.json from another run beside the snapshot is refused, naming it.
    const auto other = examples::pretrain_tokenizer::learn(tokenizer_kind::bpe, text, 300);
    other.bpe()->to_hf_json(dir.path / "tokenizer.json");
    CHECK_THROWS_WITH(examples::load_tokenizer(snapshot), Contains("tokenizer.json is not the tokenizer stored in"));

    // A character-level run: its tokenizer in the metadata, and no tokenizer.json beside it.
    const auto chars = examples::pretrain_tokenizer::learn(tokenizer_kind::chars, text, 64);
    ctdl::save(net, snapshot, {chars.metadata_entry()});
    examples::save_tokenizer_file(chars, dir.path);
    CHECK_FALSE(std::filesystem::exists(dir.path / "tokenizer.json"));
    const auto char_loaded = examples::load_tokenizer(snapshot);
    CHECK(char_loaded.kind() == tokenizer_kind::chars);
    CHECK(char_loaded.encode(text) == chars.encode(text));

    // A snapshot without a tokenizer.
    ctdl::save(net, snapshot);
    CHECK_THROWS_WITH(examples::load_tokenizer(snapshot), Contains("the metadata holds no tokenizer"));
}
