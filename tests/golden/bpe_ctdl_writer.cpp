// Used by make_bpe_golden.py: trains ctdl's BPE on a text and writes its tokenizer.json, for
// the script to load with `tokenizers` (the ids it gives are golden data for the C++ test).
//   bpe_ctdl_writer TEXT_FILE VOCAB_SIZE OUT_JSON
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <ctdl/data/bpe_tokenizer.hpp>

int main(int argc, char** argv) {
    if (argc != 4) return 2;
    std::ifstream in(argv[1], std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    const auto t = ctdl::data::bpe_tokenizer::train(s.str(), std::strtoull(argv[2], nullptr, 10),
                                                    {.special_tokens = {"<|endoftext|>"}, .add_prefix_space = true});
    t.to_hf_json(argv[3]);
}
