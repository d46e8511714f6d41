// Numbers read from files are parsed strictly: ctdl::parse_number, and checkpoint metadata
// that is out of range or not in ctdl's own form is refused, naming the field, with the
// model, the optimizer and the generator left as they were.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/io/text.hpp>
#include <ctdl/train/checkpoint.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace nn = ctdl::nn;
namespace st = ctdl::safetensors;
using Catch::Matchers::Contains;

TEST_CASE("parse_number accepts ctdl's own number forms and nothing else", "[io][number]") {
    using ctdl::parse_number;
    CHECK(parse_number<std::uint64_t>("0") == 0u);
    CHECK(parse_number<std::uint64_t>("300") == 300u);
    CHECK(parse_number<std::uint64_t>("18446744073709551615") == UINT64_MAX);
    CHECK(parse_number<std::int32_t>("-2147483648") == INT32_MIN);
    CHECK(parse_number<std::int32_t>("2147483647") == INT32_MAX);
    for (const char* bad : {"18446744073709551616", "99999999999999999999", "184467440737095516150", "-1", "-0",
                            "+1", " 1", "1 ", "1\n", "007", "00", "0x10", "1e3", "1.0", "", "-", "1_000", "\xd9\xa1"}) {
        INFO("\"" << bad << "\"");
        CHECK_FALSE(parse_number<std::uint64_t>(bad));
    }
    CHECK_FALSE(parse_number<std::int32_t>("2147483648"));
    CHECK_FALSE(parse_number<std::int32_t>("-2147483649"));
    CHECK_FALSE(parse_number<std::int32_t>("--1"));
    CHECK_FALSE(parse_number<std::int32_t>("-+1"));
    CHECK_FALSE(parse_number<std::uint8_t>("256"));

    CHECK(parse_number<float>("0.25") == 0.25f);
    CHECK(parse_number<float>("0") == 0.0f);
    CHECK(parse_number<float>("0.0e-999") == 0.0f);  // zero written with any exponent is zero
    CHECK(parse_number<float>("3.4028234663852886e+38") == std::numeric_limits<float>::max());
    CHECK(parse_number<float>("0.0010000000474974513") == 0.001f);  // what save_checkpoint writes for 1e-3f
    CHECK(parse_number<double>("1e300") == 1e300);
    CHECK(parse_number<double>("-2.5E-3") == -2.5e-3);
    for (const char* bad : {"inf", "-inf", "infinity", "nan", "NaN", "1e300", "1e39", "-1e39", "1e-300", "1e-50",
                            " 0.25", "0.25 ", "+0.25", "0x1p-2", "0X1P-2", "0x0", ".5", "5.", "1e", "1e+", "--1", "",
                            "-", "1,5", "0.25f", "1e-2.5"}) {
        INFO("\"" << bad << "\"");
        CHECK_FALSE(parse_number<float>(bad));
    }
    for (const char* bad : {"inf", "1e309", "1e-400", "0x1p-2", " 1"}) {
        INFO("\"" << bad << "\"");
        CHECK_FALSE(parse_number<double>(bad));
    }
}

TEST_CASE("quote keeps untrusted text in messages short", "[io][number]") {
    using ctdl::detail::quote;
    CHECK(quote("abc") == "\"abc\"");
    CHECK(quote("a\nb") == "\"a?b\"");
    const std::string q = quote(std::string(1000000, '7'));
    CHECK(q.size() < 110);
    CHECK_THAT(q, Contains("1000000 bytes"));
    // Never cut inside a UTF-8 character.
    const std::string e = quote(std::string(79, 'a') + "\xC3\xA9" + std::string(10, 'b'));
    CHECK_THAT(e, Contains(std::string(79, 'a') + "\"..."));
}

namespace {

using mlp = nn::sequential<nn::linear<4, 3>, nn::relu, nn::linear<3, 2>>;
using net_type = ctdl::model<mlp>;
using opt_type = ctdl::optim::adamw<net_type>;

/// Everything load_checkpoint may change, copied.
struct trainer_state {
    std::vector<float> params;
    std::vector<std::pair<std::string, std::vector<float>>> optim;
    std::uint64_t steps;
    float lr;
    ctdl::rng_state rng;
    bool operator==(const trainer_state&) const = default;
};

trainer_state snapshot_of(const net_type& net, const opt_type& opt, const ctdl::rng& g) {
    return {std::vector<float>(net.parameters(), net.parameters() + net_type::parameter_count),
            ctdl::optim::state_to_host(opt), opt.step_count(), opt.lr(), g.state()};
}

/// The checkpoint at from, with metadata entry key set to value, written to to.
void rewrite_metadata(const std::filesystem::path& from, const std::filesystem::path& to, const std::string& key,
                      const std::string& value) {
    const auto f = st::read(from);
    st::writer w;
    for (const auto& t : f.tensors()) w.add(t.name, t.type, t.shape, t.bytes);
    w.metadata() = f.metadata();
    w.metadata()[key] = value;
    w.write(to);
}

}  // namespace

TEST_CASE("checkpoint metadata out of range or not in ctdl's form is refused and changes nothing",
          "[io][checkpoint]") {
    const ctdl_test::temp_dir dir("ctdl_test_io_limits");
    const auto good = dir.path / "good.safetensors";
    {
        net_type net{ctdl::seed{1}};
        opt_type opt{net, {.lr = 1e-3f}};
        for (auto& s : opt.state_tensors())
            for (std::size_t i = 0; i < s.values.size(); ++i) s.values[i] = 0.5f + float(i);
        opt.set_step_count(5);
        ctdl::rng g(ctdl::seed{3});
        ctdl::train::save_checkpoint(good, net, opt, 7, g, {{"tokenizer", "t"}});
    }
    const auto fresh_load = [&](const std::filesystem::path& p) {
        net_type net{ctdl::seed{2}};
        opt_type opt{net, {.lr = 0.5f}};
        ctdl::rng g(ctdl::seed{4});
        const trainer_state before = snapshot_of(net, opt, g);
        std::string what;
        try {
            ctdl::train::load_checkpoint(p, net, opt, g);
        } catch (const ctdl::error& e) {
            what = e.what();
        }
        CHECK(snapshot_of(net, opt, g) == before);  // nothing half-loaded
        return what;
    };

    SECTION("a good checkpoint loads exactly") {
        net_type net{ctdl::seed{2}};
        opt_type opt{net, {.lr = 0.5f}};
        ctdl::rng g(ctdl::seed{4});
        const auto info = ctdl::train::load_checkpoint(good, net, opt, g);
        CHECK(info.step == 7);
        CHECK(opt.step_count() == 5);
        CHECK(opt.lr() == 1e-3f);
        CHECK(g.state() == ctdl::rng(ctdl::seed{3}).state());
        CHECK(info.metadata.at("tokenizer") == "t");
    }
    SECTION("whole-number fields") {
        const char* fields[] = {"ctdl.step", "ctdl.optimizer_steps", "ctdl.rng.seed", "ctdl.rng.stream",
                                "ctdl.rng.counter"};
        const std::string bad[] = {"18446744073709551616", "99999999999999999999", "-1", " 7", "7 ", "+7", "0x7",
                                   "7e0", "7.0", "", "07", std::string(100000, '9')};
        for (const char* field : fields)
            for (const auto& value : bad) {
                INFO(field << " = \"" << value.substr(0, 40) << "\"");
                const auto p = dir.path / "bad.safetensors";
                rewrite_metadata(good, p, field, value);
                const std::string what = fresh_load(p);
                CHECK_THAT(what, Contains(std::string("\"") + field + "\"") && Contains("not a whole number"));
                CHECK(what.size() < 300);
            }
    }
    SECTION("the learning rate") {
        const std::string bad[] = {"inf",  "-inf", "nan",  "1e300",  "1e39",   "1e-300", "1e-50",
                                   " 0.25", "0.25 ", "+0.25", "0x1p-2", "-0.25", "-0",     "",
                                   ".25",  "1e",   "0.25f", std::string(100000, '1')};
        for (const auto& value : bad) {
            INFO("ctdl.lr = \"" << value.substr(0, 40) << "\"");
            const auto p = dir.path / "bad.safetensors";
            rewrite_metadata(good, p, "ctdl.lr", value);
            const std::string what = fresh_load(p);
            CHECK_THAT(what, Contains("\"ctdl.lr\"") && Contains("not a learning rate"));
            CHECK(what.size() < 300);
        }
    }
    SECTION("a missing field") {
        const auto f = st::read(good);
        st::writer w;
        for (const auto& t : f.tensors()) w.add(t.name, t.type, t.shape, t.bytes);
        w.metadata() = f.metadata();
        w.metadata().erase("ctdl.rng.counter");
        const auto p = dir.path / "bad.safetensors";
        w.write(p);
        CHECK_THAT(fresh_load(p), Contains("no \"ctdl.rng.counter\""));
    }
}
