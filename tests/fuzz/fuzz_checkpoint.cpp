// libFuzzer target: train::load_checkpoint's metadata, and ctdl::parse_number.
//
// The input is up to six lines: the values of ctdl.step, ctdl.optimizer_steps, ctdl.lr,
// ctdl.rng.seed, ctdl.rng.stream and ctdl.rng.counter (a field with no line is left out).
// They go into an otherwise valid checkpoint of a small MLP with AdamW, which is loaded.
// Checks: only ctdl::error is thrown, and then the model, the optimizer and the generator
// are unchanged; on success every field reads back as the strict parser reads it; a number
// that parse_number accepts is in range and (for integers) is its own canonical text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <ctdl/ctdl.hpp>
#include <ctdl/io/text.hpp>
#include <ctdl/train/checkpoint.hpp>

namespace nn = ctdl::nn;
namespace st = ctdl::safetensors;

namespace {
using mlp = nn::sequential<nn::linear<4, 3>, nn::relu, nn::linear<3, 2>>;
using net_type = ctdl::model<mlp>;
using opt_type = ctdl::optim::adamw<net_type>;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_checkpoint: invariant broken: %s\n", what);
    std::abort();
}

/// A valid checkpoint's tensors, as host copies (made once).
struct base_checkpoint {
    std::vector<float> params;
    std::vector<std::pair<std::string, std::vector<float>>> state;
    base_checkpoint() {
        net_type net{ctdl::seed{1}};
        opt_type opt{net, {.lr = 1e-3f}};
        params.assign(net.parameters(), net.parameters() + net_type::parameter_count);
        state = ctdl::optim::state_to_host(opt);
        for (auto& [name, values] : state)
            for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * float(i + 1);
    }
};

void check_numbers(std::string_view s) {
    if (const auto n = ctdl::parse_number<std::uint64_t>(s); n && std::to_string(*n) != s)
        die("parse_number<u64> accepted a non-canonical form");
    if (const auto n = ctdl::parse_number<std::int32_t>(s); n && std::to_string(*n) != s)
        die("parse_number<i32> accepted a non-canonical form");
    if (const auto x = ctdl::parse_number<float>(s); x && !std::isfinite(*x)) die("parse_number<float>: not finite");
    if (const auto x = ctdl::parse_number<double>(s); x && !std::isfinite(*x)) die("parse_number<double>: not finite");
    if (ctdl::parse_number<float>(s) && !ctdl::parse_number<double>(s)) die("a float that is not a double");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const base_checkpoint base;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_numbers(text);

    static const char* const keys[] = {"ctdl.step",     "ctdl.optimizer_steps", "ctdl.lr",
                                       "ctdl.rng.seed", "ctdl.rng.stream",      "ctdl.rng.counter"};
    st::writer w;
    ctdl::add_parameters<net_type>(w, std::span<const float>(base.params), "model.");
    for (const auto& [name, values] : base.state)
        w.add("optim." + name, std::vector<std::size_t>{values.size()}, std::span<const float>(values));
    std::vector<std::string> fields;
    for (std::size_t at = 0; fields.size() < 6 && at <= text.size();) {
        const std::size_t nl = std::min(text.find('\n', at), text.size());
        fields.emplace_back(text.substr(at, nl - at));
        check_numbers(fields.back());
        at = nl + 1;
    }
    for (std::size_t i = 0; i < fields.size(); ++i) w.metadata()[keys[i]] = fields[i];

    std::vector<std::byte> bytes;
    try {
        bytes = w.bytes();
    } catch (const ctdl::error&) {
        return 0;  // a field that is not UTF-8 cannot be written
    }
    const st::file f = st::file::parse(std::move(bytes), "fuzz");

    net_type net{ctdl::seed{2}};
    opt_type opt{net, {.lr = 0.5f}};
    ctdl::rng g(ctdl::seed{4});
    const std::vector<float> params(net.parameters(), net.parameters() + net_type::parameter_count);
    const auto state = ctdl::optim::state_to_host(opt);
    const auto rng_before = g.state();
    try {
        const auto info = ctdl::train::load_checkpoint(f, net, opt, g);
        if (fields.size() < 6) die("loaded a checkpoint that lacks a field");
        const auto u = [&](std::size_t i) { return ctdl::parse_number<std::uint64_t>(fields[i]); };
        const auto lr = ctdl::parse_number<float>(fields[2]);
        if (!u(0) || !u(1) || !lr || !u(3) || !u(4) || !u(5)) die("loaded a field the strict parser refuses");
        if (info.step != *u(0) || opt.step_count() != *u(1) || opt.lr() != *lr || std::signbit(*lr))
            die("a field read back differently");
        if (!(g.state() == ctdl::rng_state{*u(3), *u(4), *u(5)})) die("the generator's state differs");
        if (!std::equal(base.params.begin(), base.params.end(), net.parameters())) die("parameters not loaded");
    } catch (const ctdl::error& e) {
        if (std::string_view(e.what()).size() >= 400) die("an error message longer than 400 characters");
        if (!std::equal(params.begin(), params.end(), net.parameters())) die("a refused load changed the model");
        if (ctdl::optim::state_to_host(opt) != state || opt.step_count() != 0 || opt.lr() != 0.5f)
            die("a refused load changed the optimizer");
        if (!(g.state() == rng_before)) die("a refused load changed the generator");
    }
    return 0;
}
