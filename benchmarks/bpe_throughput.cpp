// Encode throughput of ctdl::data::bpe_tokenizer: MB/s over a text, one thread.
//   bpe_throughput TOKENIZER_JSON TEXT_FILE [REPEAT_TO_BYTES]
// The text is repeated to at least REPEAT_TO_BYTES (default 1 MB) and encoded as one
// string, then a line at a time; prints the best of 5 runs of each. benchmarks/run_bpe.sh runs it beside `tokenizers`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <ctdl/data/bpe_tokenizer.hpp>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s TOKENIZER_JSON TEXT_FILE [REPEAT_TO_BYTES]\n", argv[0]);
        return 2;
    }
    const auto tok = ctdl::data::bpe_tokenizer::from_hf_json(argv[1]);
    std::ifstream in(argv[2], std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    const std::string unit = s.str();
    const std::size_t want = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000000;
    std::string text;
    while (text.size() < want) text += unit;
    double best = 1e30;
    std::size_t n = 0;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        n = tok.encode(text).size();
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = dt < best ? dt : best;
    }
    std::printf("ctdl       one string: %zu bytes -> %zu tokens, best %.4f s, %.1f MB/s\n", text.size(), n, best,
                text.size() / best / 1e6);
    // The same text a line at a time (one encode call, and so one cache, per line).
    std::vector<std::string_view> lines;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t j = std::min(text.find('\n', i), text.size() - 1) + 1;
        lines.push_back(std::string_view(text).substr(i, j - i));
        i = j;
    }
    best = 1e30;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        n = 0;
        for (const auto line : lines) n += tok.encode(line).size();
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = dt < best ? dt : best;
    }
    std::printf("ctdl       %zu lines:  %zu bytes -> %zu tokens, best %.4f s, %.1f MB/s\n", lines.size(), text.size(), n, best,
                text.size() / best / 1e6);
}
