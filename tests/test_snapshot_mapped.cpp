// Models over parameters they do not own: ctdl::map_frozen (a mapped snapshot) and
// ctdl::view_frozen (an image in memory, as #embed gives), checked against the type as load
// checks a file; refusals of another architecture, corrupted bytes, a truncated file, and
// what cannot be used in place, each with its message and nothing changed; forward over the
// borrowed weights equal to the loaded model's bit for bit; parameters() pointing into the
// mapping; the borrowed weights read-only.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
namespace nn = ctdl::nn;
namespace st = ctdl::safetensors;
using Catch::Matchers::Contains;
using ctdl::shape;

namespace {

using arch = nn::sequential<nn::linear<32, 64>, nn::relu, nn::linear<64, 64>, nn::gelu, nn::linear<64, 10>>;
using other_arch = nn::sequential<nn::linear<32, 48>, nn::relu, nn::linear<48, 64>, nn::gelu, nn::linear<64, 10>>;
using trained = ctdl::model<arch>;
using frozen = ctdl::model<ctdl::frozen<arch>>;
static_assert(ctdl::borrowing_model<frozen>);
static_assert(!ctdl::borrowing_model<trained>);  // a trainable model owns what it trains

using ctdl_test::slurp;
using ctdl_test::spit;
std::vector<std::byte> to_bytes(const std::string& s) {
    std::vector<std::byte> b(s.size());
    if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
    return b;
}
std::uint64_t header_length(const std::string& image) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(image[static_cast<std::size_t>(i)]);
    return n;
}

template <std::size_t B>
ctdl::tensor<float, shape<B, 32>> input(unsigned salt) {
    ctdl::tensor<float, shape<B, 32>> x;
    for (std::size_t i = 0; i < x.size; ++i) x.data()[i] = float((i * 37 + salt) % 23) / 11.0f - 1.0f;
    return x;
}

template <class A, class B>
bool same_bits(const A& a, const B& b) {
    return a.size == b.size && std::memcmp(a.data(), b.data(), a.size * sizeof(float)) == 0;
}

/// The path of the file mapping that holds address p in this process (/proc/self/maps), or "".
std::string mapping_of(const void* p) {
    std::ifstream maps("/proc/self/maps");
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    for (std::string line; std::getline(maps, line);) {
        std::istringstream in(line);
        std::string range, perms, offset, dev, inode, path;
        in >> range >> perms >> offset >> dev >> inode >> path;
        const auto dash = range.find('-');
        const auto lo = std::stoull(range.substr(0, dash), nullptr, 16);
        const auto hi = std::stoull(range.substr(dash + 1), nullptr, 16);
        if (at >= lo && at < hi) return path;
    }
    return {};
}

/// f(model) throws a ctdl::error containing every part.
template <class F>
void require_error(F&& f, const std::vector<std::string>& parts) {
    try {
        f();
        FAIL("no error; expected one containing '" << parts.front() << "'");
    } catch (const ctdl::error& e) {
        const std::string what = e.what();
        INFO(what);
        for (const auto& part : parts) CHECK_THAT(what, Contains(part));
        CHECK(what.size() < 400);
    }
}

struct fixture {
    ctdl_test::temp_dir dir{"ctdl_test_snapshot_mapped"};
    fs::path good = dir.path / "net.safetensors";
    trained net{ctdl::seed{11}};
    fixture() { ctdl::save(net, good, {{"note", "mapped"}}); }
};

}  // namespace

TEST_CASE("a mapped or embedded snapshot computes what the loaded model computes, bit for bit",
          "[snapshot][mapped]") {
    const fixture fx;
    const auto loaded = ctdl::load<frozen>(fx.good);
    auto mapped = ctdl::map_frozen<frozen>(fx.good);
    const std::vector<std::byte> image = to_bytes(slurp(fx.good));  // as an embedded image would be
    auto viewed = ctdl::view_frozen<frozen>(image, "net (embedded)");
    CHECK(mapped.borrows_parameters());
    CHECK(viewed.borrows_parameters());
    CHECK_FALSE(loaded.borrows_parameters());

    // The parameters are the file's bytes: no copy.
    const float* p = std::as_const(mapped).parameters();
    CHECK(fs::equivalent(mapping_of(p), fx.good));
    CHECK(mapping_of(p + frozen::parameter_count - 1) == mapping_of(p));
    const auto data_offset = 8 + header_length(slurp(fx.good));
    CHECK(static_cast<const void*>(std::as_const(viewed).parameters()) == image.data() + data_offset);
    CHECK(std::memcmp(p, loaded.parameters(), frozen::parameter_count * sizeof(float)) == 0);
    const auto view = std::as_const(mapped).parameter("2.weight");
    CHECK(view.shape.size() == 2);
    CHECK(view.shape[0] == 64);
    CHECK(view.values.data() >= p);
    CHECK(view.values.data() < p + frozen::parameter_count);

    // Batch 1 on one thread runs from the small-batch packs (made from the borrowed weights),
    // batch 16 and any batch on more threads from the weights themselves.
    auto a = ctdl::load<frozen>(fx.good);
    const std::size_t threads = ctdl::cpu::threads();
    struct restore {
        std::size_t n;
        ~restore() { ctdl::cpu::set_threads(n); }
    } const restore_threads{threads};
    for (int round = 0; round < 4; ++round) {
        ctdl::cpu::set_threads(round % 2 ? threads : 1);
        const auto x1 = input<1>(3 + round);
        const auto x16 = input<16>(5 + round);
        const auto ref1 = a.forward(x1);
        const auto ref16 = a.forward(x16);
        CHECK(same_bits(mapped.forward(x1), ref1));
        CHECK(same_bits(viewed.forward(x1), ref1));
        CHECK(same_bits(mapped.forward(x16), ref16));
        CHECK(same_bits(viewed.forward(x16), ref16));
    }

    // Copies borrow the same memory and keep the mapping alive.
    frozen copy = mapped;
    CHECK(std::as_const(copy).parameters() == p);
    mapped = ctdl::load<frozen>(fx.good);  // the original now owns a copy
    CHECK_FALSE(mapped.borrows_parameters());
    fs::remove(fx.good);                   // the mapping outlives the name
    CHECK(same_bits(copy.forward(input<16>(9)), a.forward(input<16>(9))));
    frozen moved = std::move(copy);
    CHECK(moved.borrows_parameters());
    CHECK(same_bits(moved.forward(input<1>(9)), a.forward(input<1>(9))));
}

TEST_CASE("borrowed parameters are read-only", "[snapshot][mapped]") {
    const fixture fx;
    auto mapped = ctdl::map_frozen<frozen>(fx.good);
    const auto y = mapped.forward(input<4>(1));
    require_error([&] { (void)mapped.parameters(); }, {"borrowed read-only", "ctdl::load"});
    require_error([&] { (void)mapped.parameter("0.bias"); }, {"borrowed read-only"});
    // load_into needs to write them: refused, and nothing changed.
    ctdl::save(ctdl::model<arch>{ctdl::seed{12}}, fx.dir.path / "other.safetensors");
    require_error([&] { ctdl::load_into(mapped, fx.dir.path / "other.safetensors"); }, {"borrowed read-only"});
    CHECK(same_bits(mapped.forward(input<4>(1)), y));
    // The mapping is read-only memory: a write through a cast would fault, not change the file.
    CHECK(mapping_of(std::as_const(mapped).parameters()) != "");

    // over() itself checks what it is given.
    std::vector<float> flat(frozen::parameter_count + 1);
    require_error([&] { (void)frozen::over(std::span<const float>(flat)); }, {"model::over", "parameters given"});
    const auto* bytes = reinterpret_cast<const std::byte*>(flat.data()) + 1;
    require_error([&] { (void)frozen::over({reinterpret_cast<const float*>(bytes), frozen::parameter_count}); },
                  {"not aligned"});
    const auto own = frozen::over(std::span<const float>(flat).first(frozen::parameter_count));
    CHECK(std::as_const(own).parameters() == flat.data());
}

TEST_CASE("mapping and viewing refuse another architecture, corrupted bytes and a truncated file",
          "[snapshot][mapped][errors]") {
    const fixture fx;
    const std::string good = slurp(fx.good);
    const std::uint64_t n = header_length(good);

    // Each case: the bytes, then what the message must say. Checked for map_frozen (the
    // file), view_frozen (the bytes in memory) and load (the same refusal), with a model that
    // held good weights before left as it was.
    const auto refused = [&](const std::string& image, const std::vector<std::string>& parts) {
        const fs::path p = fx.dir.path / "bad.safetensors";
        spit(p, image);
        auto kept = ctdl::map_frozen<frozen>(fx.good);
        const float* before = std::as_const(kept).parameters();
        const auto y = kept.forward(input<2>(4));
        {
            INFO("map_frozen");
            std::vector<std::string> with_path = parts;
            with_path.push_back(p.string());
            require_error([&] { kept = ctdl::map_frozen<frozen>(p); }, with_path);
        }
        {
            INFO("view_frozen");
            const auto bytes = to_bytes(image);
            std::vector<std::string> with_origin = parts;
            with_origin.push_back("'embedded bad'");
            require_error([&] { kept = ctdl::view_frozen<frozen>(bytes, "embedded bad"); }, with_origin);
        }
        CHECK(std::as_const(kept).parameters() == before);
        CHECK(same_bits(kept.forward(input<2>(4)), y));
        auto owned = ctdl::load<frozen>(fx.good);
        const auto y2 = owned.forward(input<2>(4));
        CHECK_THROWS_AS(ctdl::load_into(owned, p), ctdl::error);
        CHECK(same_bits(owned.forward(input<2>(4)), y2));
    };

    SECTION("another architecture") {
        ctdl::save(ctdl::model<other_arch>{ctdl::seed{1}}, fx.dir.path / "other.safetensors");
        refused(slurp(fx.dir.path / "other.safetensors"), {"tensor '0.weight'", "expected shape [64, 32], found [48, 32]"});
    }
    SECTION("one flipped byte in the data") {
        for (const std::size_t at : {std::size_t(8 + n), std::size_t(8 + n + 4000), good.size() - 1}) {
            std::string bad = good;
            bad[at] = static_cast<char>(bad[at] ^ 0x04);
            refused(bad, {"checksum mismatch", "the file is corrupted"});
        }
    }
    SECTION("a truncated file") {
        refused(good.substr(0, good.size() - 4), {"reach past the end of the data section", "truncated"});
        refused(good.substr(0, 8 + n / 2), {"truncated"});
        refused(good.substr(0, 5), {"truncated"});
        refused("", {"truncated"});
    }
    SECTION("a header flipped into another shape") {
        std::string bad = good;
        const auto at = bad.find("[64,32]");
        REQUIRE(at != std::string::npos);
        bad.replace(at, 7, "[32,64]");
        refused(bad, {"tensor '0.weight'", "expected shape [64, 32], found [32, 64]"});
    }
}

TEST_CASE("what cannot be used in place is refused, naming ctdl::load, which reads it", "[snapshot][mapped][errors]") {
    const fixture fx;
    const auto flat_of = [&](const trained& m) {
        return std::vector<float>(m.parameters(), m.parameters() + trained::parameter_count);
    };
    const auto flat = flat_of(fx.net);
    const auto& table = frozen::parameter_table();
    const auto reference = ctdl::load<frozen>(fx.good).forward(input<3>(2));

    const auto in_place_refused = [&](const fs::path& p, const std::vector<std::string>& parts) {
        std::vector<std::string> with = parts;
        with.push_back("cannot be used in place; use ctdl::load");
        require_error([&] { (void)ctdl::map_frozen<frozen>(p); }, with);
        const auto bytes = to_bytes(slurp(p));
        require_error([&] { (void)ctdl::view_frozen<frozen>(bytes); }, with);
    };

    SECTION("tensors in another order (PyTorch sorts them by name)") {
        st::writer w;
        for (auto it = table.rbegin(); it != table.rend(); ++it)
            w.add(it->name, it->shape, std::span<const float>(flat).subspan(it->offset, it->size));
        const auto p = fx.dir.path / "reversed.safetensors";
        w.write(p);
        in_place_refused(p, {"tensor '0.weight' lies at data bytes", "another order"});
        auto loaded = ctdl::load<frozen>(p);
        CHECK(same_bits(loaded.forward(input<3>(2)), reference));
    }
    SECTION("another dtype (BF16)") {
        // The same weights rounded to bf16: load widens them, in place they cannot be.
        std::vector<std::uint16_t> halves(flat.size());
        for (std::size_t i = 0; i < flat.size(); ++i) halves[i] = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(flat[i]) >> 16);
        st::writer w;
        for (const auto& e : table)
            w.add(e.name, st::dtype::bf16, e.shape, std::as_bytes(std::span<const std::uint16_t>(halves).subspan(e.offset, e.size)));
        const auto p = fx.dir.path / "bf16.safetensors";
        w.write(p);
        in_place_refused(p, {"tensor '0.weight' is BF16, not the model's F32"});
        const auto loaded = ctdl::load<frozen>(p);
        for (std::size_t i = 0; i < flat.size(); ++i)
            REQUIRE(std::bit_cast<std::uint32_t>(loaded.parameters()[i]) ==
                    (std::bit_cast<std::uint32_t>(flat[i]) & 0xFFFF0000u));
    }
    SECTION("an image not aligned for float in memory") {
        const std::string image = slurp(fx.good);
        std::vector<std::byte> buffer(image.size() + 1);
        std::memcpy(buffer.data() + 1, image.data(), image.size());
        require_error([&] { (void)ctdl::view_frozen<frozen>(std::span(buffer).subspan(1)); },
                      {"not aligned to 4 bytes", "ctdl::load"});
        const auto aligned = to_bytes(image);
        CHECK(ctdl::view_frozen<frozen>(aligned).borrows_parameters());
    }
    SECTION("files that are not there, or not files") {
        require_error([&] { (void)ctdl::map_frozen<frozen>(fx.dir.path / "nope.safetensors"); },
                      {"cannot read", "nope.safetensors"});
        require_error([&] { (void)ctdl::map_frozen<frozen>(fx.dir.path); }, {"directory"});
        require_error([&] { (void)ctdl::mapped_file("/dev/null"); }, {"cannot map '/dev/null'", "not a regular file"});
    }
    SECTION("a file without a checksum (PyTorch's) maps: the checks it has are made") {
        const auto f = st::read(fx.good);
        st::writer w;
        for (const auto& t : f.tensors()) w.add(t.name, t.type, t.shape, t.bytes);
        const auto p = fx.dir.path / "plain.safetensors";
        w.write(p);
        auto mapped = ctdl::map_frozen<frozen>(p);
        CHECK(same_bits(mapped.forward(input<3>(2)), reference));
    }
}

TEST_CASE("mapped_file maps a file read-only, and safetensors::view validates borrowed bytes as read does",
          "[snapshot][mapped]") {
    const fixture fx;
    const std::string content = slurp(fx.good);
    ctdl::mapped_file m{fx.good, {.will_need = true, .huge_pages = true}};
    REQUIRE(m.bytes().size() == content.size());
    CHECK(std::memcmp(m.bytes().data(), content.data(), content.size()) == 0);
    const auto f = st::view(m.bytes(), "mapped");
    CHECK(f.borrowed());
    CHECK(f.bytes().data() == m.bytes().data());
    CHECK(f.find("0.weight")->bytes.data() == m.bytes().data() + 8 + header_length(content));
    CHECK(f.metadata().at("note") == "mapped");
    CHECK_FALSE(st::read(fx.good).borrowed());

    ctdl::mapped_file moved = std::move(m);
    CHECK(moved.bytes().data() == f.bytes().data());
    CHECK(m.bytes().empty());  // NOLINT(bugprone-use-after-move): a moved-from mapping is empty

    spit(fx.dir.path / "empty", "");
    const ctdl::mapped_file empty{fx.dir.path / "empty"};
    CHECK(empty.bytes().empty());
    CHECK_THROWS_WITH(st::view(empty.bytes(), "empty one"), Contains("'empty one'") && Contains("truncated"));
}
