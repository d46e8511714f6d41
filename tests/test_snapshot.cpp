// Snapshots: safetensors reading/writing, save/load over models, every refusal of a bad
// file (with its message, and the model untouched), atomic writes, a fuzzed header
// parser, and files written by PyTorch's safetensors package.
#include <catch2/catch.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/io/snapshot.hpp>

#include "temp_dir.hpp"
#include "fake_model.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <csignal>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
namespace st = ctdl::safetensors;
using Catch::Matchers::Contains;

namespace {

// ---------------------------------------------------------------- a model stand-in (fake_model.hpp)
using ctdl_test::fake_model;
static_assert(ctdl::snapshot_model<fake_model<float>>);
static_assert(ctdl::snapshot_model<fake_model<double>>);
static_assert(!ctdl::snapshot_model<int>);

/// Values that a lossy or converting path would not reproduce bit for bit: NaN payloads,
/// infinities, signed zeros, subnormals, and irrationals.
template <class T>
fake_model<T> tricky_model(unsigned salt) {
    using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    fake_model<T> m;
    for (std::size_t i = 0; i < m.params.size(); ++i)
        m.params[i] = static_cast<T>(std::sin(double(i * 7 + salt)) * 1e3 / 3.0);
    m.params[0] = std::numeric_limits<T>::infinity();
    m.params[1] = -std::numeric_limits<T>::infinity();
    m.params[2] = T(-0.0);
    m.params[3] = std::numeric_limits<T>::denorm_min();
    m.params[4] = std::bit_cast<T>(std::bit_cast<bits>(std::numeric_limits<T>::quiet_NaN()) | bits{0x5A5});
    return m;
}

template <class T>
bool same_bits(const fake_model<T>& a, const fake_model<T>& b) {
    return std::memcmp(a.params.data(), b.params.data(), sizeof a.params) == 0;
}

// ---------------------------------------------------------------- files
struct temp_dir {
    fs::path path;
    temp_dir() {
        static int n = 0;
        path = fs::temp_directory_path() /
               ("ctdl_test_snapshot_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
    /// Files whose name contains ".tmp-" (leftover temporaries).
    int temporaries() const {
        int n = 0;
        for (const auto& e : fs::recursive_directory_iterator(path))
            if (e.path().filename().string().find(".tmp-") != std::string::npos) ++n;
        return n;
    }
};

using ctdl_test::slurp;
using ctdl_test::spit;

std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
    return s;
}

/// A file image: the header length, the header, then data_size bytes of data.
std::string craft(const std::string& header, std::size_t data_size) {
    std::string data(data_size, '\0');
    for (std::size_t i = 0; i < data_size; ++i) data[i] = static_cast<char>(i * 13 + 1);
    return le64(header.size()) + header + data;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  std::uint64_t begin, std::uint64_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
           std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// The four entries of fake_model<float>, contiguous: 92 data bytes.
const std::string w0 = entry("0.weight", "F32", "[3,4]", 0, 48);
const std::string b0 = entry("0.bias", "F32", "[3]", 48, 60);
const std::string w2 = entry("2.weight", "F32", "[2,3]", 60, 84);
const std::string b2 = entry("2.bias", "F32", "[2]", 84, 92);

std::string as_bytes_string(const std::vector<std::byte>& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::vector<std::byte> to_bytes(const std::string& s) {
    std::vector<std::byte> b(s.size());
    if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
    return b;
}

/// Writes image to a file, checks that loading it into a float model fails with a
/// message containing every one of parts (and the file name), and that the model's
/// parameters are untouched.
void require_refused(const std::string& image, const std::vector<std::string>& parts) {
    const temp_dir dir;
    const fs::path p = dir / "bad.safetensors";
    spit(p, image);
    auto model = tricky_model<float>(1);
    const auto before = model;
    try {
        ctdl::load_into(model, p);
        FAIL("loading succeeded; expected an error containing '" << parts.front() << "'");
    } catch (const ctdl::error& e) {
        const std::string what = e.what();
        INFO(what.substr(0, 400));
        CHECK_THAT(what, Contains(p.string()));
        for (const auto& part : parts) CHECK_THAT(what, Contains(part));
        CHECK(what.size() < 300);  // whatever the file holds, the message stays short
    }
    CHECK(same_bits(model, before));
    CHECK_THROWS_AS(ctdl::load<fake_model<float>>(p), ctdl::error);
}

/// As require_refused, and reading only the header (snapshot_metadata) refuses the file too.
void require_unreadable(const std::string& image, const std::vector<std::string>& parts) {
    require_refused(image, parts);
    const temp_dir dir;
    const fs::path p = dir / "bad.safetensors";
    spit(p, image);
    try {
        (void)ctdl::snapshot_metadata(p);
        FAIL("snapshot_metadata succeeded; expected an error containing '" << parts.front() << "'");
    } catch (const ctdl::error& e) {
        const std::string what = e.what();
        INFO(what.substr(0, 400));
        for (const auto& part : parts) CHECK_THAT(what, Contains(part));
        CHECK(what.size() < 300);
    }
}

const fs::path golden_dir = fs::path(__FILE__).parent_path() / "golden";

}  // namespace

// ================================================================ round trips

TEMPLATE_TEST_CASE("save then load reproduces every parameter bit for bit", "[snapshot]", float, double) {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    const auto model = tricky_model<TestType>(3);
    ctdl::save(model, p);

    const auto loaded = ctdl::load<fake_model<TestType>>(p);
    CHECK(same_bits(loaded, model));

    auto into = tricky_model<TestType>(99);
    ctdl::load_into(into, p);
    CHECK(same_bits(into, model));

    // Overwriting an existing snapshot replaces it.
    const auto other = tricky_model<TestType>(5);
    ctdl::save(other, p);
    CHECK(same_bits(ctdl::load<fake_model<TestType>>(p), other));
    CHECK(dir.temporaries() == 0);
}

TEST_CASE("the header is compact JSON in parameter-table order and padded to 8 bytes", "[snapshot]") {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    ctdl::save(tricky_model<float>(0), p);
    const std::string bytes = slurp(p);
    REQUIRE(bytes.size() >= 8);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    CHECK((8 + n) % 8 == 0);
    REQUIRE(bytes.size() == 8 + n + 23 * 4);
    const std::string header = bytes.substr(8, n);
    // The metadata holds the checksum of the data section (and nothing else here).
    const auto data = std::as_bytes(std::span(bytes)).subspan(8 + n);
    const std::string json = "{\"__metadata__\":{\"ctdl.checksum\":\"" +
                             ctdl::detail::checksum_string(ctdl::detail::checksum_of(data)) + "\"}," + w0 + "," + b0 +
                             "," + w2 + "," + b2 + "}";
    CHECK(header.substr(0, json.size()) == json);
    CHECK(header.find_first_not_of(' ', json.size()) == std::string::npos);

    // Data: the raw little-endian floats in table order.
    const auto m = tricky_model<float>(0);
    CHECK(std::memcmp(bytes.data() + 8 + n, m.params.data(), sizeof m.params) == 0);

    // The double model says F64 and uses 8 bytes per element.
    ctdl::save(tricky_model<double>(0), p);
    const auto f = st::read(p);
    REQUIRE(f.tensors().size() == 4);
    CHECK(f.tensors()[0].type == st::dtype::f64);
    CHECK(f.tensors()[3].end == 23 * 8);
}

TEST_CASE("metadata round-trips including characters JSON must escape", "[snapshot]") {
    const temp_dir dir;
    const auto p = dir / "meta.safetensors";
    const ctdl::metadata meta{
        {"step", "1200"},
        {"rng", "7 3 123456789"},
        {"quote\"back\\slash", "tab\there\nnewline\x01\x1f"},
        {"unicode", "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x99\x82"},
        {"empty", ""},
        {"long", std::string(5000, 'x')},
    };
    ctdl::save(tricky_model<float>(0), p, meta);
    const auto f = st::read(p);
    auto with_checksum = meta;
    with_checksum["ctdl.checksum"] = f.metadata().at("ctdl.checksum");
    CHECK(f.metadata() == with_checksum);
    CHECK(f.header().substr(0, 16) == "{\"__metadata__\":");
    CHECK(ctdl::snapshot_metadata(p) == meta);  // as save was given it
    ctdl::metadata back;
    CHECK(same_bits(ctdl::load<fake_model<float>>(p, back), tricky_model<float>(0)));
    CHECK(back == meta);
    ctdl::save(tricky_model<float>(0), p, back);  // and round-trips
    CHECK(ctdl::snapshot_metadata(p) == meta);

    ctdl::save(tricky_model<float>(0), p);
    CHECK(ctdl::snapshot_metadata(p).empty());
    CHECK(st::read(p).metadata().size() == 1);

    // "ctdl." keys are ctdl's own: save refuses them and leaves the file as it was.
    const std::string before = slurp(p);
    CHECK_THROWS_WITH(ctdl::save(tricky_model<float>(1), p, {{"ctdl.checksum", "ctdl64x8:0000000000000000"}}),
                      Contains("meta.safetensors") && Contains("\"ctdl.checksum\" is reserved"));
    CHECK_THROWS_WITH(ctdl::save(tricky_model<float>(1), p, {{"ctdl.step", "1"}}), Contains("reserved"));
    CHECK(slurp(p) == before);
    ctdl::save(tricky_model<float>(1), p, {{"ctdl", "x"}, {"ctdlx.y", "z"}});  // only the "ctdl." prefix
}

TEST_CASE("the checksum is ctdl64x8 as its definition computes it (Python, golden)", "[snapshot][checksum]") {
    std::ifstream in(golden_dir / "checksum_ctdl64x8.txt");
    REQUIRE(in);
    std::size_t n = 0;
    std::string expected;
    int lines = 0;
    while (in >> n >> expected) {
        INFO("length " << n);
        std::vector<std::byte> b(n);
        for (std::size_t i = 0; i < n; ++i) b[i] = std::byte((i * 131 + (i >> 7) + n) % 256);
        CHECK(ctdl::detail::checksum_string(ctdl::detail::checksum_of(b)) == expected);
        // Fed in pieces of any size, the same.
        ctdl::detail::checksum64 h;
        for (std::size_t done = 0, step = 1; done < n; done += step, step = step * 3 % 97 + 1)
            h.update(std::span(b).subspan(done, std::min(step, n - done)));
        CHECK(ctdl::detail::checksum_string(h.finish()) == expected);
        CHECK(ctdl::detail::parse_checksum(expected) == ctdl::detail::checksum_of(b));
        ++lines;
    }
    CHECK(lines == 12);
    for (const char* bad : {"", "ctdl64x8:", "ctdl64x8:0123456789abcde", "ctdl64x8:0123456789ABCDEF",
                            "ctdl64x8:0123456789abcdef0", "fnv1a64:0123456789abcdef", "ctdl64x8-0123456789abcdef"})
        CHECK_FALSE(ctdl::detail::parse_checksum(bad));
}

TEST_CASE("every read checks the checksum when there is one, and does without when not", "[snapshot][checksum]") {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    ctdl::save(tricky_model<float>(3), p, {{"step", "7"}});
    const std::string good = slurp(p);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[static_cast<std::size_t>(i)]);

    // One flipped bit anywhere in the data: refused by load, load_into and read, model untouched.
    for (const std::size_t at : {std::size_t(8 + n), std::size_t(8 + n + 50), good.size() - 1})
        for (const int bit : {0, 7}) {
            std::string bad = good;
            bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
            require_refused(bad, {"checksum mismatch", "the file is corrupted", "ctdl64x8:"});
        }
    // The same bytes without the checksum load (as PyTorch's files do): the checksum was the
    // only thing that told.
    {
        const auto f = st::read(p);
        st::writer w;
        for (const auto& t : f.tensors()) w.add(t.name, t.type, t.shape, t.bytes);
        w.metadata()["step"] = "7";
        const auto plain = dir / "plain.safetensors";
        w.write(plain);
        CHECK(st::read(plain).metadata().count("ctdl.checksum") == 0);
        CHECK(same_bits(ctdl::load<fake_model<float>>(plain), tricky_model<float>(3)));
        std::string flipped = slurp(plain);
        flipped[flipped.size() - 1] = static_cast<char>(flipped.back() ^ 1);
        spit(plain, flipped);
        CHECK_FALSE(same_bits(ctdl::load<fake_model<float>>(plain), tricky_model<float>(3)));
    }
    // A checksum that is not ctdl64x8:<16 hex digits> is refused, also by snapshot_metadata.
    {
        const std::string key = "ctdl64x8:";
        const std::size_t at = good.find(key);
        REQUIRE(at != std::string::npos);
        std::string bad = good;
        bad.replace(at, 4, "fnv1");
        require_unreadable(bad, {"\"ctdl.checksum\" is not ctdl64x8:<16 lowercase hex digits>", "\"fnv164x8:"});
        bad = good;
        bad[at + key.size()] = 'G';
        require_unreadable(bad, {"\"ctdl.checksum\" is not ctdl64x8"});
    }
    // A checksum of other data (the header of one file, the data of another of the same size).
    {
        ctdl::save(tricky_model<float>(4), dir / "other.safetensors", {{"step", "7"}});
        const std::string other = slurp(dir / "other.safetensors");
        REQUIRE(other.size() == good.size());
        require_refused(good.substr(0, 8 + n) + other.substr(8 + n), {"checksum mismatch"});
    }
    // The header-only reader cannot see a mismatch (it does not read the data): it returns
    // the metadata, and load refuses.
    std::string bad = good;
    bad.back() = static_cast<char>(bad.back() ^ 0x10);
    spit(dir / "bad.safetensors", bad);
    CHECK(ctdl::snapshot_metadata(dir / "bad.safetensors") == ctdl::metadata{{"step", "7"}});
}

TEST_CASE("the writer and reader handle extra tensors of any dtype", "[snapshot][safetensors]") {
    const temp_dir dir;
    const auto p = dir / "state.safetensors";
    const auto model = tricky_model<float>(2);
    std::vector<float> flat(model.params.begin(), model.params.end());
    const std::int64_t step = -1234567890123;
    const std::vector<std::uint8_t> mask{1, 0, 255};
    const std::vector<double> moments{1.5, -2.25, 1e300, 4.0, 5.0, 6.0};

    st::writer w;
    ctdl::add_parameters<fake_model<float>>(w, flat, "model.");
    w.add("optim.step", {}, std::span(&step, 1));
    w.add("optim.mask", {3}, std::span(mask));
    w.add("optim.moments", {2, 3}, std::span(moments));
    w.add("optim.empty", {0, 5}, std::span<const float>());
    w.metadata()["kind"] = "checkpoint";
    w.write(p);
    CHECK(as_bytes_string(w.bytes()) == slurp(p));

    const auto f = st::read(p);
    REQUIRE(f.tensors().size() == 8);
    CHECK(f.tensors()[4].name == "optim.step");
    CHECK(f.tensors()[4].shape.empty());
    CHECK(f.metadata().at("kind") == "checkpoint");

    std::int64_t step_back = 0;
    f.read<std::int64_t>("optim.step", {}, std::span(&step_back, 1));
    CHECK(step_back == step);
    std::vector<std::uint8_t> mask_back(3);
    f.read<std::uint8_t>("optim.mask", std::vector<std::size_t>{3}, mask_back);
    CHECK(mask_back == mask);
    std::vector<double> moments_back(6);
    f.read<double>("optim.moments", std::vector<std::size_t>{2, 3}, moments_back);
    CHECK(moments_back == moments);
    CHECK(f.find("optim.empty")->element_count() == 0);
    CHECK(f.find("nope") == nullptr);
    CHECK_THROWS_WITH(f.read<double>("optim.mask", std::vector<std::size_t>{3}, moments_back),
                      Contains("tensor 'optim.mask': expected dtype F64, found U8"));

    // The model's parameters, under a prefix, next to other tensors.
    fake_model<float> back{};
    CHECK_THROWS_WITH(ctdl::load_into(back, p), Contains("missing tensor '0.weight'") &&
                                                    Contains("e.g. 'model.0.weight' (F32 [3, 4])"));
    CHECK_THROWS_WITH(ctdl::load_into(back, f, {.prefix = "model."}),
                      Contains("unexpected tensor 'optim.step' (I64 [])"));
    ctdl::load_into(back, f, {.prefix = "model.", .allow_unexpected = true});
    CHECK(same_bits(back, model));
}

TEST_CASE("the writer refuses bad tensors and names", "[snapshot][safetensors]") {
    const std::vector<float> v(6);
    st::writer w;
    w.add("a", {2, 3}, std::span(v));
    CHECK_THROWS_WITH(w.add("a", {6}, std::span(v)), Contains("tensor 'a': added twice"));
    CHECK_THROWS_WITH(w.add("b", {2, 2}, std::span(v)), Contains("F32 [2, 2] needs 16 bytes, but the data has 24"));
    CHECK_THROWS_WITH(w.add("__metadata__", {6}, std::span(v)), Contains("reserved"));
    CHECK_THROWS_WITH(w.add("", {6}, std::span(v)), Contains("empty"));
    CHECK_THROWS_WITH(w.add("bad\xFF", {6}, std::span(v)), Contains("UTF-8"));
    CHECK_THROWS_WITH(w.add("huge", {std::size_t{1} << 40, std::size_t{1} << 40}, std::span(v)),
                      Contains("overflows"));
    w.metadata()["k"] = "\xC0\x80";  // overlong encoding
    const temp_dir dir;
    CHECK_THROWS_WITH(w.write(dir / "x.safetensors"), Contains("x.safetensors") && Contains("UTF-8"));
    CHECK_FALSE(fs::exists(dir / "x.safetensors"));
}

// ================================================================ refusals

TEST_CASE("loading refuses a file that does not match the model", "[snapshot][errors]") {
    SECTION("missing tensor") {
        require_refused(craft("{" + w0 + "," + b0 + "," + w2 + "}", 84),
                        {"missing tensor '2.bias'", "expected F32 (or F16/BF16) [2]"});
    }
    SECTION("unexpected tensor") {
        require_refused(craft("{" + w0 + "," + b0 + "," + w2 + "," + b2 + "," +
                              entry("4.weight", "F32", "[1]", 92, 96) + "}", 96),
                        {"unexpected tensor '4.weight' (F32 [1])", "no parameter of that name"});
    }
    SECTION("wrong shape") {
        require_refused(craft("{" + entry("0.weight", "F32", "[4,3]", 0, 48) + "," + b0 + "," + w2 + "," + b2 + "}", 92),
                        {"tensor '0.weight'", "expected shape [3, 4], found [4, 3]"});
    }
    SECTION("wrong rank") {
        require_refused(craft("{" + w0 + "," + entry("0.bias", "F32", "[3,1]", 48, 60) + "," + w2 + "," + b2 + "}", 92),
                        {"tensor '0.bias'", "expected shape [3], found [3, 1]"});
    }
    SECTION("F64 into a float model") {
        require_refused(craft("{" + entry("0.weight", "F64", "[3,4]", 0, 96) + "," +
                              entry("0.bias", "F64", "[3]", 96, 120) + "," + entry("2.weight", "F64", "[2,3]", 120, 168) +
                              "," + entry("2.bias", "F64", "[2]", 168, 184) + "}", 184),
                        {"tensor '0.weight'", "expected dtype F32 (or F16/BF16), found F64",
                         "only F16 and BF16 are converted"});
    }
    SECTION("F16 or BF16 into a float model of another shape") {
        require_refused(craft("{" + w0 + "," + entry("0.bias", "F16", "[4]", 48, 56) + "," +
                              entry("2.weight", "F32", "[2,3]", 56, 80) + "," + entry("2.bias", "BF16", "[2]", 80, 84) + "}", 84),
                        {"tensor '0.bias'", "expected shape [3], found [4]"});
    }
    SECTION("other 16-bit dtypes into a float model") {
        require_refused(craft("{" + w0 + "," + entry("0.bias", "I16", "[3]", 48, 54) + "," +
                              entry("2.weight", "F32", "[2,3]", 54, 78) + "," + entry("2.bias", "F32", "[2]", 78, 86) + "}", 86),
                        {"tensor '0.bias'", "expected dtype F32 (or F16/BF16), found I16"});
    }
}

TEST_CASE("F16 and BF16 tensors load into a float model, widened exactly, but F32 does not widen into double", "[snapshot]") {
    const temp_dir dir;
    const auto p = dir / "mixed.safetensors";
    // 0.bias in F16, 2.bias in BF16, the weights in F32: values every dtype holds exactly.
    auto expected = tricky_model<float>(2);
    const std::uint16_t f16[3] = {0xBE00, 0x3C00, 0x8000};  // -1.5, 1, -0
    const std::uint16_t bf16[2] = {0x40E0, 0x4110};         // 7, 9
    expected.params[12] = -1.5f;
    expected.params[13] = 1.0f;
    expected.params[14] = -0.0f;
    expected.params[21] = 7.0f;
    expected.params[22] = 9.0f;
    st::writer w;
    w.add("0.weight", {3, 4}, std::span<const float>(expected.params.data(), 12));
    w.add("0.bias", st::dtype::f16, {3}, std::as_bytes(std::span(f16)));
    w.add("2.weight", {2, 3}, std::span<const float>(expected.params.data() + 15, 6));
    w.add("2.bias", st::dtype::bf16, {2}, std::as_bytes(std::span(bf16)));
    w.write(p);
    CHECK(same_bits(ctdl::load<fake_model<float>>(p), expected));
    auto into = tricky_model<float>(7);
    ctdl::load_into(into, p);
    CHECK(same_bits(into, expected));

    // A double model takes only F64: neither F32 nor the 16-bit dtypes widen into it.
    auto d = tricky_model<double>(1);
    const auto before = d;
    CHECK_THROWS_WITH(ctdl::load_into(d, p), Contains("mixed.safetensors") && Contains("tensor '0.weight'") &&
                                                 Contains("expected dtype F64, found F32"));
    CHECK(same_bits(d, before));
    ctdl::save(expected, p);
    CHECK_THROWS_WITH(ctdl::load_into(d, p), Contains("expected dtype F64, found F32"));
    CHECK(same_bits(d, before));

    // The conversions themselves, on the values that are easy to get wrong.
    CHECK(st::detail::f16_to_f32_bits(0x0001) == 0x33800000u);  // 2^-24, the smallest subnormal
    CHECK(st::detail::f16_to_f32_bits(0x03FF) == 0x387FC000u);  // the largest subnormal
    CHECK(st::detail::f16_to_f32_bits(0x0400) == 0x38800000u);  // 2^-14, the smallest normal
    CHECK(st::detail::f16_to_f32_bits(0x7BFF) == 0x477FE000u);  // 65504
    CHECK(st::detail::f16_to_f32_bits(0xFC00) == 0xFF800000u);  // -inf
    CHECK(st::detail::f16_to_f32_bits(0x7C01) == 0x7FC02000u);  // a signalling NaN comes out quiet
    CHECK(st::detail::f16_to_f32_bits(0x8000) == 0x80000000u);  // -0
    CHECK(st::detail::bf16_to_f32_bits(0x7F81) == 0x7F810000u);  // bf16: the top half, as it is
}

TEST_CASE("reading refuses a malformed file", "[snapshot][errors]") {
    const std::string good = "{" + w0 + "," + b0 + "," + w2 + "," + b2 + "}";
    SECTION("shorter than 8 bytes") {
        require_refused(std::string("\x05\0\0", 3), {"truncated", "3 bytes, fewer than the 8-byte header length"});
        require_refused("", {"truncated", "0 bytes"});
    }
    SECTION("data section shorter than the offsets need") {
        const std::string image = craft(good, 92);
        require_refused(image.substr(0, image.size() - 4),
                        {"tensor '2.bias'", "data_offsets [84, 92] reach past the end of the data section (88 bytes)",
                         "truncated"});
    }
    SECTION("header length beyond the file") {
        require_refused(le64(1000) + "{}", {"truncated", "header length 1000 runs past the end of the file (10 bytes)"});
    }
    SECTION("huge header length") {
        require_refused(le64(std::uint64_t{1} << 40) + "{}", {"header length 1099511627776 exceeds the limit"});
        require_refused(le64(~std::uint64_t{0}) + "{}", {"exceeds the limit"});
    }
    SECTION("malformed JSON, with its position") {
        require_refused(craft("{\"0.weight\":{\"dtype\":\"F32\",,}}", 0),
                        {"malformed header JSON at header byte 27 (file byte 35)", "expected a string as object key"});
        require_refused(craft("{" + w0 + ",}", 48), {"malformed header JSON", "expected a string as object key"});
        require_refused(craft("", 0), {"malformed header JSON at header byte 0", "expected a value"});
        require_refused(craft(good + "x", 92), {"malformed header JSON", "after the JSON value"});
        require_refused(craft("{\"a\xFF\":1}", 0), {"malformed header JSON at header byte 3", "invalid UTF-8"});
    }
    SECTION("the header is not an object") {
        require_refused(craft("[]", 0), {"the header is not a JSON object"});
    }
    SECTION("overlapping data_offsets") {
        require_refused(craft("{" + w0 + "," + entry("0.bias", "F32", "[3]", 40, 52) + "," +
                              entry("2.weight", "F32", "[2,3]", 52, 76) + "," + entry("2.bias", "F32", "[2]", 76, 84) + "}", 84),
                        {"'0.weight' [0, 48] and '0.bias' [40, 52] overlap"});
    }
    SECTION("data_offsets out of range") {
        require_refused(craft("{" + w0 + "," + b0 + "," + w2 + "," + entry("2.bias", "F32", "[2]", 1000, 1008) + "}", 92),
                        {"tensor '2.bias'", "[1000, 1008] reach past the end of the data section (92 bytes)"});
        require_refused(craft("{" + w0 + "," + b0 + "," + w2 + "," +
                              entry("2.bias", "F32", "[2]", 18446744073709551608u, 18446744073709551615u) + "}", 92),
                        {"tensor '2.bias'", "hold 7 bytes, but F32 [2] needs 8"});
    }
    SECTION("data_offsets that do not match dtype size x shape") {
        require_refused(craft("{" + entry("0.weight", "F32", "[3,4]", 0, 44) + "," + entry("0.bias", "F32", "[3]", 44, 56) +
                              "," + entry("2.weight", "F32", "[2,3]", 56, 80) + "," + entry("2.bias", "F32", "[2]", 80, 88) + "}", 88),
                        {"tensor '0.weight'", "data_offsets [0, 44] hold 44 bytes, but F32 [3, 4] needs 48"});
        require_refused(craft("{" + entry("0.weight", "F32", "[3,4]", 48, 0) + "}", 48),
                        {"tensor '0.weight'", "data_offsets [48, 0] end before begin"});
    }
    SECTION("data_offsets that leave a gap or trailing bytes") {
        require_refused(craft("{" + w0 + "," + entry("0.bias", "F32", "[3]", 52, 64) + "," +
                              entry("2.weight", "F32", "[2,3]", 64, 88) + "," + entry("2.bias", "F32", "[2]", 88, 96) + "}", 96),
                        {"no tensor covers data bytes [48, 52) after tensor '0.weight' [0, 48]"});
        require_refused(craft("{" + entry("0.weight", "F32", "[3,4]", 4, 52) + "}", 52),
                        {"no tensor covers data bytes [0, 4)"});
        require_refused(craft(good, 96), {"the data section has 96 bytes, but the tensors cover only 92"});
    }
    SECTION("duplicate names") {
        require_refused(craft("{" + w0 + "," + b0 + "," + w2 + "," + b2 + "," + entry("0.bias", "F32", "[3]", 92, 104) + "}", 104),
                        {"malformed header JSON", "duplicate key \"0.bias\""});
    }
    SECTION("entries that are not objects or lack fields") {
        require_refused(craft("{\"0.weight\":[1,2]}", 0), {"tensor '0.weight': the entry is not a JSON object"});
        require_refused(craft("{\"0.weight\":\"F32\"}", 0), {"tensor '0.weight': the entry is not a JSON object"});
        require_refused(craft("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4]}}", 48),
                        {"tensor '0.weight': missing field \"data_offsets\""});
        require_refused(craft("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48],\"x\":1}}", 48),
                        {"tensor '0.weight': unknown field \"x\""});
        require_refused(craft("{\"0.weight\":{\"dtype\":32,\"shape\":[3,4],\"data_offsets\":[0,48]}}", 48),
                        {"tensor '0.weight': \"dtype\" is not a string"});
        require_refused(craft("{\"__metadata__\":{\"step\":3}}", 0), {"\"__metadata__\" entry 'step' is not a string"});
        require_refused(craft("{\"__metadata__\":[]}", 0), {"\"__metadata__\" is not a JSON object"});
    }
    SECTION("unknown dtype") {
        require_refused(craft("{" + entry("0.weight", "F33", "[3,4]", 0, 48) + "}", 48),
                        {"tensor '0.weight': unknown dtype \"F33\""});
        require_refused(craft("{" + entry("0.weight", "f32", "[3,4]", 0, 48) + "}", 48), {"unknown dtype \"f32\""});
    }
    SECTION("shapes and offsets that are not non-negative integers, or overflow") {
        require_refused(craft("{" + entry("0.weight", "F32", "[3,-4]", 0, 48) + "}", 48),
                        {"tensor '0.weight'", "\"shape\" holds something other than a non-negative integer"});
        require_refused(craft("{" + entry("0.weight", "F32", "[3,4.0]", 0, 48) + "}", 48), {"non-negative integer"});
        require_refused(craft("{" + entry("0.weight", "F32", "[18446744073709551616]", 0, 48) + "}", 48),
                        {"non-negative integer"});
        require_refused(craft("{" + entry("0.weight", "F32", "[4294967296,4294967296,2]", 0, 48) + "}", 48),
                        {"tensor '0.weight'", "overflows the element count"});
        require_refused(craft("{" + entry("0.weight", "F64", "[2147483648,2147483648]", 0, 48) + "}", 48),
                        {"tensor '0.weight'", "overflows the byte count"});
        require_refused(craft("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48,4]}}", 48),
                        {"\"data_offsets\" is not [begin, end]"});
        require_refused(craft("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,1e2]}}", 48),
                        {"\"data_offsets\" is not [begin, end]"});
    }
}

TEST_CASE("loading refuses a missing or unreadable file", "[snapshot][errors]") {
    const temp_dir dir;
    fake_model<float> model = tricky_model<float>(1);
    const auto before = model;
    CHECK_THROWS_WITH(ctdl::load_into(model, dir / "nope.safetensors"),
                      Contains("cannot read '" + (dir / "nope.safetensors").string() + "'") &&
                          Contains("No such file"));
    CHECK_THROWS_WITH(ctdl::load_into(model, dir.path), Contains(dir.path.string()) && Contains("directory"));
    CHECK_THROWS_WITH(ctdl::load<fake_model<float>>(dir / "nope.safetensors"), Contains("nope.safetensors"));
    CHECK(same_bits(model, before));
}

// ================================================================ bounded headers

namespace {
/// A shape array of n ones: "[1,1,...,1]".
std::string ones(std::size_t n) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) s += i ? ",1" : "1";
    return s + "]";
}

/// A header of n empty U8 tensors named t0, t1, ... (all at [0, 0]).
std::string many_tensors(std::size_t n) {
    std::string h = "{";
    h.reserve(n * 56);
    for (std::size_t i = 0; i < n; ++i) {
        if (i) h += ',';
        std::string name = "t";  // (not "t" + to_string(i): GCC 12 warns -Wrestrict on that, wrongly)
        name += std::to_string(i);
        h += entry(name, "U8", "[0]", 0, 0);
    }
    return h + "}";
}

/// The virtual memory this process has mapped, in bytes (Linux), or 0.
std::uint64_t mapped_bytes() {
    std::ifstream in("/proc/self/statm");
    std::uint64_t pages = 0;
    in >> pages;
    return pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}
}  // namespace

TEST_CASE("a header costs bounded memory, and every refusal is short", "[snapshot][errors][limits]") {
    SECTION("a huge shape array") {
        require_unreadable(craft("{" + entry("0.weight", "F32", ones(2'000'000), 0, 4) + "}", 4),
                           {"in the entry \"0.weight\"", "an array has more than 16 elements"});
    }
    SECTION("rank 1000, and 17") {
        require_unreadable(craft("{" + entry("0.weight", "F32", ones(1000), 0, 4) + "}", 4),
                           {"an array has more than 16 elements"});
        require_unreadable(craft("{" + entry("0.weight", "F32", ones(17), 0, 4) + "}", 4),
                           {"an array has more than 16 elements"});
        // rank 16 is a valid file (the model just has no such tensor)
        const auto f = st::file::parse(to_bytes(craft("{" + entry("x", "F32", ones(16), 0, 4) + "}", 4)));
        CHECK(f.find("x")->shape == std::vector<std::size_t>(16, 1));
    }
    SECTION("a million tiny tensors") {
        require_unreadable(craft(many_tensors(1'000'000), 0), {"the header has more than 100000 tensors"});
        // exactly the limit is a valid file
        const auto f = st::file::parse(to_bytes(craft(many_tensors(st::max_tensors), 0)));
        CHECK(f.tensors().size() == st::max_tensors);
    }
    SECTION("a header length larger than the file") {
        require_unreadable(le64(50'000'000) + "{}", {"header length 50000000 runs past the end of the file (10 bytes)"});
        require_unreadable(le64(3) + "{}", {"header length 3 runs past the end of the file (10 bytes)"});
        require_unreadable(le64(st::max_header_size + 1) + "{}", {"exceeds the limit"});
        require_unreadable(std::string("\\x02\\0\\0", 3), {"truncated", "3 bytes"});
    }
    SECTION("long names, dtypes and keys") {
        const std::string long_name(100000, 'n');
        require_unreadable(craft("{" + entry(long_name, "F32", "[1]", 0, 4) + "}", 4),
                           {"an object key is longer than 4096 bytes"});
        require_unreadable(craft("{" + entry("0.weight", std::string(1'000'000, 'D'), "[1]", 0, 4) + "}", 4),
                           {"in the entry \"0.weight\"", "a string is longer than 4096 bytes"});
        require_unreadable(craft("{" + entry("0.weight", std::string(4000, 'D'), "[1]", 0, 4) + "}", 4),
                           {"unknown dtype \"DDDD", "(4000 bytes)"});
        require_unreadable(craft("{\"__metadata__\":{\"" + long_name + "\":\"v\"}}", 0),
                           {"in the entry \"__metadata__\"", "an object key is longer than 4096 bytes"});
        require_unreadable(craft("{\"__metadata__\":{\"k\":[\"v\"]}}", 0), {"nesting is deeper than 1 levels"});
        require_unreadable(craft("{\"__metadata__\":{\"k\":{}}}", 0), {"nesting is deeper than 1 levels"});
        require_unreadable(craft("{\"__metadata__\":{\"k\":1}}", 0), {"entry 'k' is not a string"});
        require_unreadable(craft("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", 4),
                           {"nesting is deeper than 2 levels"});
        require_unreadable(craft("{" + w0 + "," + entry(long_name.substr(0, 4000), "F33", "[1]", 48, 52) + "}", 52),
                           {"tensor 'nnnnnnnnnn", "...': unknown dtype \"F33\""});
        // a tensor the model lacks, named at length: the message quotes a short part of it
        require_refused(craft("{" + w0 + "," + b0 + "," + w2 + "," + b2 + "," +
                              entry(long_name.substr(0, 4000), "F32", "[1]", 92, 96) + "}", 96),
                        {"unexpected tensor 'nnnnnnnnnn"});
    }
    SECTION("long shapes in messages are cut") {
        std::string shape = "[0";
        for (int i = 0; i < 15; ++i) shape += ",18446744073709551615";
        require_refused(craft("{" + w0 + "," + b0 + "," + entry("2.weight", "F32", shape + "]", 60, 60) + "," +
                              entry("2.bias", "F32", "[2]", 60, 68) + "}", 68),
                        {"tensor '2.weight'", "expected shape [2, 3], found [0, 18446744073709551615", "...] (rank 16)"});
    }
    SECTION("a second \"__metadata__\" is refused") {
        require_unreadable(craft("{\"__metadata__\":{\"k\":\"v\"}," + entry("0.weight", "F32", "[1]", 0, 4) +
                                 ",\"__metadata__\":{}}", 4),
                           {"duplicate key \"__metadata__\""});
    }
}

TEST_CASE("running out of memory while reading a file is a ctdl::error", "[snapshot][errors][limits]") {
    // AddressSanitizer reserves terabytes of address space, so RLIMIT_AS cannot be lowered
    // to provoke std::bad_alloc under it: this check runs in the plain builds.
#if defined(__SANITIZE_ADDRESS__)
    constexpr bool asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    constexpr bool asan = true;
#else
    constexpr bool asan = false;
#endif
#else
    constexpr bool asan = false;
#endif
    if (asan) {
        WARN("skipped under AddressSanitizer");
        return;
    }
    const temp_dir dir;
    const auto p = dir / "sparse.safetensors";
    // A valid 4 GiB file that takes no disk space: one U8 tensor of 4 GiB, all zeros.
    const std::uint64_t big = std::uint64_t{1} << 32;
    std::string header = "{\"__metadata__\":{\"tokenizer\":\"t\"}," + entry("big", "U8", "[" + std::to_string(big) + "]", 0, big) + "}";
    header.resize((header.size() + 7) / 8 * 8, ' ');
    spit(p, le64(header.size()) + header);
    REQUIRE(::truncate(p.c_str(), static_cast<::off_t>(8 + header.size() + big)) == 0);

    auto model = tricky_model<float>(1);
    const auto before = model;
    ::rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_AS, &saved) == 0);
    ::rlimit small = saved;
    small.rlim_cur = mapped_bytes() + (std::uint64_t{512} << 20);
    REQUIRE(::setrlimit(RLIMIT_AS, &small) == 0);
    std::string what, load_what;
    ctdl::metadata meta;
    try {
        ctdl::load_into(model, p);
    } catch (const ctdl::error& e) {
        what = e.what();
    } catch (const std::bad_alloc&) {
        what = "std::bad_alloc";
    }
    try {
        (void)ctdl::load<fake_model<float>>(p);
    } catch (const std::exception& e) {
        load_what = e.what();
    }
    try {
        meta = ctdl::snapshot_metadata(p);  // reads only the header: needs no memory for the data
    } catch (const std::exception& e) {
        meta["error"] = e.what();
    }
    ::setrlimit(RLIMIT_AS, &saved);
    CHECK_THAT(what, Contains(p.string()) && Contains("out of memory"));
    CHECK_THAT(load_what, Contains(p.string()) && Contains("out of memory"));
    CHECK(same_bits(model, before));
    CHECK(meta == ctdl::metadata{{"tokenizer", "t"}});
}

TEST_CASE("the JSON reader's limits", "[snapshot][json][limits]") {
    namespace json = ctdl::json;
    CHECK_NOTHROW(json::parse("[1,2,3]", {.max_array_items = 3}));
    CHECK_THROWS_WITH(json::parse("[1,2,3,4]", {.max_array_items = 3}), Contains("more than 3 elements"));
    CHECK_THROWS_WITH(json::parse("{\"a\":1,\"b\":2}", {.max_object_members = 1}), Contains("more than 1 members"));
    CHECK_THROWS_WITH(json::parse("[\"abcd\"]", {.max_string_bytes = 3}), Contains("a string is longer than 3 bytes"));
    CHECK_NOTHROW(json::parse("[\"abc\"]", {.max_string_bytes = 3}));
    CHECK_NOTHROW(json::parse("[\"\\u00e9\\u00e9\"]", {.max_string_bytes = 4}));
    CHECK_THROWS(json::parse("[\"\\u00e9\\u00e9\\u00e9\"]", {.max_string_bytes = 4}));
    CHECK_THROWS_WITH(json::parse("{\"abcd\":1}", {.max_key_bytes = 3}), Contains("an object key is longer than 3"));
    CHECK_THROWS_WITH(json::parse("[[1]]", {.max_depth = 1}), Contains("nesting is deeper than 1"));
    CHECK_THROWS_WITH(json::parse("{\"" + std::string(1000, 'k') + "\":1,\"" + std::string(1000, 'k') + "\":2}"),
                      Contains("duplicate key \"kkkk") && Contains("(1000 bytes)"));

    std::vector<std::pair<std::string, std::string>> seen;
    json::for_each_member(
        " {\"a\": [1, 2], \"b\": \"x\"} ", {.max_members = 2},
        [](const std::string& key) { return json::limits{.max_array_items = key == "a" ? 2u : 0u}; },
        [&](std::string key, json::value v) { seen.emplace_back(key, v.is_array() ? "array" : v.text); });
    CHECK(seen == std::vector<std::pair<std::string, std::string>>{{"a", "array"}, {"b", "x"}});
    const auto none = [](const std::string&) { return json::limits{}; };
    const auto ignore = [](std::string, json::value) {};
    CHECK_THROWS_WITH(json::for_each_member("{\"a\":1,\"b\":2,\"c\":3}", {.max_members = 2}, none, ignore),
                      Contains("more than 2 members"));
    CHECK_THROWS_WITH(json::for_each_member("{\"a\":1,\"a\":2}", {}, none, ignore), Contains("duplicate key \"a\""));
    CHECK_THROWS_WITH(json::for_each_member("[]", {}, none, ignore), Contains("expected a JSON object"));
    CHECK_THROWS_WITH(json::for_each_member("{} x", {}, none, ignore), Contains("after the JSON value"));
    CHECK_THROWS_WITH(json::for_each_member("{\"a\":[1,2,3]}", {}, [](const std::string&) {
        return json::limits{.max_array_items = 2};
    }, ignore), Contains("more than 2 elements"));
    CHECK_NOTHROW(json::for_each_member(" { } ", {}, none, ignore));
}

// ================================================================ metadata

TEST_CASE("a snapshot's metadata can be read without its tensors, or with them", "[snapshot][metadata]") {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    const auto good = tricky_model<float>(3);
    const ctdl::data::char_tokenizer tok("hello, world\n");
    ctdl::save(good, p, {{"tokenizer", tok.to_string()}, {"step", "300"}});

    CHECK(ctdl::snapshot_metadata(p) == ctdl::metadata{{"tokenizer", tok.to_string()}, {"step", "300"}});
    CHECK(ctdl::snapshot_metadata(p, "step") == "300");
    // The tokenizer a run stored, back in one line:
    const auto again = ctdl::data::char_tokenizer::from_string(ctdl::snapshot_metadata(p, "tokenizer"));
    CHECK(again == tok);
    CHECK_THROWS_WITH(ctdl::snapshot_metadata(p, "vocab"),
                      Contains(p.string()) && Contains("no metadata entry \"vocab\"") && Contains("\"step\", \"tokenizer\""));

    ctdl::metadata meta{{"stale", "x"}};
    const auto loaded = ctdl::load<fake_model<float>>(p, meta);
    CHECK(same_bits(loaded, good));
    CHECK(meta.at("step") == "300");
    CHECK(meta.count("stale") == 0);

    // No metadata: an empty map (and the writer emits no "__metadata__").
    ctdl::save(good, dir / "plain.safetensors");
    CHECK(ctdl::snapshot_metadata(dir / "plain.safetensors").empty());
    CHECK_THROWS_WITH(ctdl::snapshot_metadata(dir / "plain.safetensors", "tokenizer"), Contains("(it has none)"));

    // A failed load leaves metadata_out as it was.
    ctdl::metadata kept{{"mine", "1"}};
    CHECK_THROWS_AS(ctdl::load<fake_model<double>>(p, kept), ctdl::error);
    CHECK(kept == ctdl::metadata{{"mine", "1"}});
    CHECK_THROWS_WITH(ctdl::snapshot_metadata(dir / "nope.safetensors"), Contains("cannot read") && Contains("nope"));
    CHECK_THROWS_WITH(ctdl::snapshot_metadata(dir.path), Contains("directory"));

    // Only the header is read, but it is checked as load checks it: data that the offsets
    // say is there must be there.
    std::string image = slurp(p);
    spit(dir / "short.safetensors", image.substr(0, image.size() - 1));
    CHECK_THROWS_WITH(ctdl::snapshot_metadata(dir / "short.safetensors"), Contains("reach past the end of the data section"));
    spit(dir / "long.safetensors", image + "x");
    CHECK_THROWS_WITH(ctdl::snapshot_metadata(dir / "long.safetensors"), Contains("the tensors cover only"));
}

// ================================================================ atomic writes

TEST_CASE("a failed save leaves the destination as it was and no temporaries", "[snapshot][atomic]") {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    const auto good = tricky_model<float>(4);
    ctdl::save(good, p);
    const std::string before = slurp(p);

    SECTION("into a directory that does not exist") {
        const auto q = dir / "missing" / "net.safetensors";
        CHECK_THROWS_WITH(ctdl::save(good, q), Contains("cannot write '" + q.string() + "'"));
        CHECK_FALSE(fs::exists(dir / "missing"));
    }
    SECTION("onto a path that is a directory") {
        const auto d = dir / "is_a_dir";
        fs::create_directory(d);
        spit(d / "inside", "keep me");
        CHECK_THROWS_WITH(ctdl::save(good, d), Contains("cannot write '" + d.string() + "'") && Contains("renaming"));
        CHECK(fs::is_directory(d));
        CHECK(slurp(d / "inside") == "keep me");
    }
    SECTION("when writing fails midway") {
        CHECK_THROWS_WITH(ctdl::detail::atomic_write(p,
                                                     [](auto&& write) {
                                                         write("partial", 7);
                                                         throw std::runtime_error("disk on fire");
                                                     }),
                          Contains("cannot write '" + p.string() + "'") && Contains("disk on fire"));
    }
    SECTION("when the file system refuses the bytes (file size limit)") {
        ::rlimit saved{};
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
        const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
        ::rlimit small = saved;
        small.rlim_cur = 64;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
        std::string what;
        try {
            ctdl::save(tricky_model<float>(9), p);
        } catch (const ctdl::error& e) {
            what = e.what();
        }
        ::setrlimit(RLIMIT_FSIZE, &saved);
        std::signal(SIGXFSZ, old_handler);
        CHECK_THAT(what, Contains("cannot write '" + p.string() + "'") && Contains("failed"));
    }
    SECTION("when the header cannot be written") {
        st::writer w;
        w.metadata()["\xFF"] = "x";
        CHECK_THROWS_WITH(w.write(p), Contains(p.string()));
    }
    CHECK(slurp(p) == before);
    CHECK(dir.temporaries() == 0);
    CHECK(same_bits(ctdl::load<fake_model<float>>(p), good));
}

namespace {
/// A pid that no process has: a child that has exited and been reaped.
::pid_t dead_pid() {
    const ::pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(::kill(child, 0) == -1);
    return child;
}

/// A child process that lives until the object is destroyed.
struct live_child {
    ::pid_t pid = -1;
    int pipe_fds[2] = {-1, -1};
    live_child() {
        REQUIRE(::pipe(pipe_fds) == 0);
        pid = ::fork();
        if (pid == 0) {  // wait for the parent to close the write end, then exit
            ::close(pipe_fds[1]);
            char c;
            while (::read(pipe_fds[0], &c, 1) > 0) {
            }
            ::_exit(0);
        }
        REQUIRE(pid > 0);
        ::close(pipe_fds[0]);
    }
    ~live_child() {
        ::close(pipe_fds[1]);
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
};

std::string temporary_of(const fs::path& target, long pid, unsigned long n) {
    return target.filename().string() + ".tmp-" + std::to_string(pid) + "-" + std::to_string(n);
}
}  // namespace

TEST_CASE("a save removes the stale temporaries of its own path and nothing else", "[snapshot][atomic]") {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    const std::string big(1 << 16, 'x');  // stands for a half-written snapshot
    const live_child alive;
    const ::pid_t dead = dead_pid(), dead2 = dead_pid();

    // Stale: writers that are gone, and an earlier process that had this pid.
    const std::vector<std::string> stale = {temporary_of(p, dead, 0), temporary_of(p, dead, 17),
                                            temporary_of(p, dead2, 3), temporary_of(p, ::getpid(), 999999)};
    // Kept: a live writer's, another path's, names not of the exact form, a dead pid's file
    // that someone holds the writer's lock on (a writer in another pid namespace).
    const std::vector<std::string> kept = {
        temporary_of(p, alive.pid, 0),
        temporary_of(dir / "other.safetensors", dead, 0),
        temporary_of(dir / "net.safetensors.bak", dead, 0),
        "net.safetensors.tmp-" + std::to_string(dead),
        "net.safetensors.tmp-" + std::to_string(dead) + "-1x",
        "net.safetensors.tmp-0" + std::to_string(dead) + "-1",
        "net.safetensors.tmp--" + std::to_string(dead) + "-1",
        "xnet.safetensors.tmp-" + std::to_string(dead) + "-1",
        "notes.txt",
        temporary_of(p, dead, 42),
    };
    for (const auto& n : stale) spit(dir / n, big);
    for (const auto& n : kept) spit(dir / n, "keep " + n);
    const int locked = ::open((dir / kept.back()).c_str(), O_RDONLY);
    REQUIRE(locked >= 0);
    REQUIRE(::flock(locked, LOCK_EX) == 0);

    const auto good = tricky_model<float>(5);
    ctdl::save(good, p);
    ::close(locked);
    for (const auto& n : stale) {
        INFO(n);
        CHECK_FALSE(fs::exists(dir / n));
    }
    for (const auto& n : kept) {
        INFO(n);
        CHECK(slurp(dir / n) == "keep " + n);
    }
    CHECK(same_bits(ctdl::load<fake_model<float>>(p), good));

    SECTION("a directory entry that is not a file is left alone") {
        fs::create_directory(dir / temporary_of(p, dead, 5));
        ctdl::save(good, p);
        CHECK(fs::is_directory(dir / temporary_of(p, dead, 5)));
    }
    SECTION("a save never removes the temporary of a save in progress in this process") {
        const auto inner = tricky_model<float>(6);
        const auto outer_image = [&] {
            st::writer w;
            ctdl::add_parameters<fake_model<float>>(w, good.params);
            return as_bytes_string(w.bytes());
        }();
        const auto own_temporaries = [&] {
            const std::string prefix = "net.safetensors.tmp-" + std::to_string(::getpid()) + "-";
            int n = 0;
            for (const auto& e : fs::directory_iterator(dir.path))
                if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
            return n;
        };
        ctdl::detail::atomic_write(p, [&](auto&& write) {
            write(outer_image.data(), 100);
            CHECK(own_temporaries() == 1);  // the outer write's
            ctdl::save(inner, p);           // removes stale temporaries before it writes
            CHECK(own_temporaries() == 1);
            CHECK(same_bits(ctdl::load<fake_model<float>>(p), inner));
            write(outer_image.data() + 100, outer_image.size() - 100);
        });
        CHECK(own_temporaries() == 0);
        CHECK(same_bits(ctdl::load<fake_model<float>>(p), good));
    }
}

TEST_CASE("a save killed with SIGKILL mid-write leaves a temporary that the next save removes", "[snapshot][atomic]") {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    const auto good = tricky_model<float>(7);
    for (int round = 0; round < 3; ++round) {
        int ready[2];
        REQUIRE(::pipe(ready) == 0);
        const ::pid_t child = ::fork();
        if (child == 0) {  // a writer that is killed while its temporary is half written
            ::close(ready[0]);
            try {
                ctdl::detail::atomic_write(p, [&](auto&& write) {
                    const std::string chunk(1 << 16, 'x');
                    write(chunk.data(), chunk.size());
                    (void)!::write(ready[1], "r", 1);
                    for (;;) ::pause();
                });
            } catch (...) {
            }
            ::_exit(1);
        }
        REQUIRE(child > 0);
        ::close(ready[1]);
        char c = 0;
        REQUIRE(::read(ready[0], &c, 1) == 1);
        ::close(ready[0]);
        REQUIRE(::kill(child, SIGKILL) == 0);
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        REQUIRE(WIFSIGNALED(status));
        CHECK(dir.temporaries() == 1);  // what kill -9 leaves
        ctdl::save(good, p);
        CHECK(dir.temporaries() == 0);  // the next save removed it
        CHECK(same_bits(ctdl::load<fake_model<float>>(p), good));
    }
}

TEST_CASE("concurrent saves from several processes to one path all succeed", "[snapshot][atomic]") {
    const temp_dir dir;
    const auto p = dir / "net.safetensors";
    std::vector<::pid_t> children;
    for (int c = 0; c < 4; ++c) {
        const ::pid_t pid = ::fork();
        if (pid == 0) {
            int code = 0;
            try {
                for (unsigned i = 0; i < 25; ++i) ctdl::save(tricky_model<float>(10 * unsigned(c) + i % 3), p);
            } catch (...) {
                code = 1;
            }
            ::_exit(code);
        }
        REQUIRE(pid > 0);
        children.push_back(pid);
    }
    for (const ::pid_t pid : children) {
        int status = -1;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK_NOTHROW(ctdl::load<fake_model<float>>(p));
    CHECK(dir.temporaries() == 0);
}

// ================================================================ interoperability

namespace {
// The values tests/golden/make_snapshot_golden.py writes: element i of the k-th tensor.
double golden_value(std::size_t k, std::size_t i) {
    return static_cast<double>(static_cast<long>((i * 37 + k * 11) % 101) - 50) / 64.0;
}

template <class T>
void check_golden(const fake_model<T>& m) {
    const auto& table = fake_model<T>::parameter_table();
    for (std::size_t k = 0; k < table.size(); ++k)
        for (std::size_t i = 0; i < table[k].size; ++i) {
            INFO(table[k].name << "[" << i << "]");
            CHECK(m.params[table[k].offset + i] == static_cast<T>(golden_value(k, i)));
        }
}
}  // namespace

TEST_CASE("files written by the PyTorch safetensors package load with the right values", "[snapshot][golden]") {
    const auto f32 = golden_dir / "snapshot_torch.safetensors";
    const auto f64 = golden_dir / "snapshot_torch_f64.safetensors";
    REQUIRE(fs::exists(f32));

    check_golden(ctdl::load<fake_model<float>>(f32));
    check_golden(ctdl::load<fake_model<double>>(f64));
    CHECK(st::read(f32).metadata() == ctdl::metadata{{"step", "42"}, {"note", "written by PyTorch"}});

    // PyTorch's key order differs from ours (it sorts by name); lookups are by name.
    const auto f = st::read(f32);
    CHECK(f.tensors()[0].name == "0.bias");
    CHECK(f.find("2.weight")->shape == std::vector<std::size_t>{2, 3});

    auto model = tricky_model<float>(1);
    const auto before = model;
    CHECK_THROWS_WITH(ctdl::load_into(model, f64), Contains("snapshot_torch_f64.safetensors") &&
                                                       Contains("expected dtype F32 (or F16/BF16), found F64"));
    CHECK(same_bits(model, before));

    // Our file for the same values is byte-for-byte a valid file with the same tensors.
    const temp_dir dir;
    ctdl::save(ctdl::load<fake_model<float>>(f32), dir / "again.safetensors");
    check_golden(ctdl::load<fake_model<float>>(dir / "again.safetensors"));
}

TEST_CASE("16-bit snapshots written by PyTorch widen to torch's own float32, bit for bit", "[snapshot][golden]") {
    // make_snapshot_golden.py: each file beside t.to(torch.float32) of each of its tensors.
    for (const std::string tag : {"f16", "bf16", "mixed_bf16"}) {
        INFO(tag);
        const auto sixteen = golden_dir / ("snapshot_torch_" + tag + ".safetensors");
        const auto as_f32 = golden_dir / ("snapshot_torch_" + tag + "_as_f32.safetensors");
        REQUIRE(fs::exists(sixteen));
        const auto f = st::read(sixteen);
        CHECK(f.find("0.bias")->type == (tag == "f16" ? st::dtype::f16 : st::dtype::bf16));
        CHECK(f.find("0.weight")->type == (tag == "mixed_bf16" ? st::dtype::f32 : f.find("0.bias")->type));
        const auto ours = ctdl::load<fake_model<float>>(sixteen);
        const auto torchs = ctdl::load<fake_model<float>>(as_f32);
        CHECK(same_bits(ours, torchs));
        if (tag != "mixed_bf16") {  // the special values are there
            CHECK(std::isnan(ours.params[6]));
            CHECK(std::isinf(ours.params[3]));
            CHECK(ours.params[0] == (tag == "f16" ? std::ldexp(1.0f, -24) : std::ldexp(1.0f, -133)));  // subnormals
        }
    }
    // Every one of the 65536 patterns of each dtype.
    const auto f = st::read(golden_dir / "widen_torch.safetensors");
    for (const std::string tag : {"f16", "bf16"}) {
        INFO(tag);
        std::vector<float> ours(65536), torchs(65536);
        f.find(tag)->convert_to(std::span(ours));
        f.find(tag + ".f32")->copy_to(std::span(torchs));
        std::size_t differ = 0;
        for (std::size_t i = 0; i < ours.size(); ++i)
            if (std::bit_cast<std::uint32_t>(ours[i]) != std::bit_cast<std::uint32_t>(torchs[i])) {
                if (differ++ < 4) UNSCOPED_INFO("pattern " << i << ": ours " << std::bit_cast<std::uint32_t>(ours[i])
                                                             << ", torch " << std::bit_cast<std::uint32_t>(torchs[i]));
            }
        CHECK(differ == 0);
    }
}

// ================================================================ the JSON reader

TEST_CASE("the JSON reader is strict", "[snapshot][json]") {
    namespace json = ctdl::json;
    const auto v = json::parse(" {\"a\": [0, 18446744073709551615, -1, 1.5e-3, true, false, null],"
                               " \"s\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude42\"} ");
    REQUIRE(v.is_object());
    const auto* a = v.find("a");
    REQUIRE(a);
    REQUIRE(a->items.size() == 7);
    CHECK(a->items[0].as_u64() == 0u);
    CHECK(a->items[1].as_u64() == 18446744073709551615u);
    CHECK_FALSE(a->items[2].as_u64());
    CHECK_FALSE(a->items[3].as_u64());
    CHECK(a->items[3].text == "1.5e-3");
    CHECK(a->items[4].boolean);
    CHECK(a->items[6].kind == json::kind::null);
    CHECK(v.find("s")->text == "\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x99\x82");
    CHECK_FALSE(json::parse("18446744073709551616").as_u64());

    const char* bad[] = {
        "", " ", "{", "}", "{,}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "-", "1.", ".5", "1e", "+1",
        "NaN", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\tb\"", "\"\xC3\"", "\"\xED\xA0\x80\"", "\"\xF5\x80\x80\x80\"", "\"\xC0\xAF\"", "// c\n{}", "{}{}",
        "{\"a\":1,\"a\":2}", "'a'", "[1 2]", "\xEF\xBB\xBF{}",
    };
    for (const char* s : bad) {
        INFO("input: " << s);
        CHECK_THROWS_AS(json::parse(s), json::parse_error);
    }
    // Deep nesting is refused, not a stack overflow.
    CHECK_THROWS_WITH(json::parse(std::string(100000, '[')), Contains("nesting is deeper than 64"));
    CHECK_NOTHROW(json::parse(std::string(64, '[') + std::string(64, ']')));

    std::string out;
    json::write_string(out, "q\"\\\n\x01\xC3\xA9");
    CHECK(out == "\"q\\\"\\\\\\n\\u0001\xC3\xA9\"");
    CHECK(json::parse(out).text == "q\"\\\n\x01\xC3\xA9");
}

TEST_CASE("random and mutated headers never crash the reader", "[snapshot][fuzz]") {
    st::writer w;
    const auto model = tricky_model<float>(0);
    ctdl::add_parameters<fake_model<float>>(w, model.params);
    w.metadata()["step"] = "7";
    const std::string valid = as_bytes_string(w.bytes());
    const std::size_t header_end = 8 + static_cast<std::size_t>(static_cast<unsigned char>(valid[0]) |
                                                                (static_cast<unsigned char>(valid[1]) << 8));

    std::mt19937_64 rng(20240611);
    const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    const std::string alphabet = "{}[]\",:0123456789.-+eE \t\\u\"truefalsnl_FIBU0.weightdtypshaeofs\x80\xC3\xFF";

    int parsed = 0, refused = 0;
    const auto attempt = [&](const std::string& image) {
        try {
            const auto f = st::file::parse(to_bytes(image), "fuzz");
            ++parsed;
            std::vector<float> flat(fake_model<float>::parameter_count);
            ctdl::read_parameters<fake_model<float>>(f, flat);
        } catch (const ctdl::error&) {
            ++refused;
        }
    };

    // CTDL_FUZZ_ROUNDS=1000000 runs a longer campaign (e.g. in the sanitizer build).
    const char* env_rounds = std::getenv("CTDL_FUZZ_ROUNDS");
    const long rounds = env_rounds ? std::max(6L, std::atol(env_rounds)) : 12000;
    for (long round = 0; round < rounds; ++round) {
        std::string image;
        switch (round % 6) {
            case 0: {  // random bytes
                image.resize(pick(120));
                for (auto& c : image) c = static_cast<char>(rng());
                break;
            }
            case 1: {  // a valid length prefix, random header bytes
                std::string h(pick(100), ' ');
                for (auto& c : h) c = static_cast<char>(rng());
                image = le64(h.size()) + h + std::string(pick(64), '\0');
                break;
            }
            case 2: {  // a header from JSON-ish characters
                std::string h = "{";
                for (std::size_t i = pick(80); i > 0; --i) h += alphabet[pick(alphabet.size())];
                image = le64(h.size()) + h + std::string(pick(100), '\0');
                break;
            }
            case 3: {  // the valid file with a few header bytes replaced
                image = valid;
                for (std::size_t i = 1 + pick(4); i > 0; --i)
                    image[8 + pick(header_end - 8)] = rng() % 2 ? alphabet[pick(alphabet.size())] : static_cast<char>(rng());
                break;
            }
            case 4: {  // the valid file with a header slice deleted or duplicated, length fixed up or not
                std::string h = valid.substr(8, header_end - 8);
                const std::size_t at = pick(h.size()), len = pick(h.size() - at + 1);
                if (rng() % 2) h.erase(at, len);
                else h.insert(at, h.substr(at, len));
                image = (rng() % 4 ? le64(h.size()) : valid.substr(0, 8)) + h + valid.substr(header_end);
                break;
            }
            default: {  // truncated, extended, or a different length field
                image = valid;
                const auto r = rng() % 3;
                if (r == 0) image.resize(pick(image.size()));
                else if (r == 1) image.append(pick(16), '\0');
                else image.replace(0, 8, le64(rng() % 2 ? rng() : pick(2 * header_end)));
            }
        }
        attempt(image);
    }
    INFO("parsed " << parsed << ", refused " << refused);
    CHECK(refused > rounds * 9 / 10);
    CHECK(parsed > rounds / 1000);
}
