#pragma once
// Reading the committed golden data (tests/golden/), shared by the tests that compare
// with PyTorch. Two formats: safetensors files, and text files where "# name" starts a
// section and the numbers after it are its values.
#include <catch2/catch.hpp>
#include <ctdl/core/parameter_info.hpp>
#include <ctdl/io/safetensors.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef CTDL_GOLDEN_DIR
#define CTDL_GOLDEN_DIR "tests/golden"
#endif

namespace ctdl_test {

inline std::string golden(const std::string& name) { return std::string(CTDL_GOLDEN_DIR) + "/" + name; }

/// Where parameter p's gradient sits in Model's gradient buffer (trainable p only).
template <class Model>
std::size_t gradient_offset(const ctdl::parameter_info& p) {
    for (const auto& s : Model::gradient_segments)
        if (p.offset >= s.param_offset && p.offset + p.size <= s.param_offset + s.size)
            return s.grad_offset + (p.offset - s.param_offset);
    FAIL("no gradient segment holds " << p.name);
    return 0;
}

/// ‖a - b‖₂ / ‖b‖₂: the error relative to the tensor's scale.
inline double relative_error(const float* a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        const double d = static_cast<double>(a[i]) - b[i];
        num += d * d;
        den += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(num / den);
}

/// The float32 tensor `name` of a safetensors file (a test failure if it is missing).
inline std::vector<float> read_floats(const ctdl::safetensors::file& f, const std::string& name) {
    const auto* t = f.find(name);
    INFO(name);
    REQUIRE(t != nullptr);
    std::vector<float> v(t->element_count());
    t->copy_to(std::span<float>(v));
    return v;
}

/// The sections of a text golden file.
inline std::map<std::string, std::vector<double>> read_golden(const std::string& file) {
    const std::string path = golden(file);
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::map<std::string, std::vector<double>> out;
    std::string line, key;
    while (std::getline(in, line)) {
        if (line.rfind("# ", 0) == 0) {
            key = line.substr(2);
            out[key];
            continue;
        }
        std::istringstream words(line);
        std::string w;
        while (words >> w) out[key].push_back(std::strtod(w.c_str(), nullptr));
    }
    return out;
}

inline const std::vector<double>& section(const std::map<std::string, std::vector<double>>& g,
                                          const std::string& key) {
    const auto it = g.find(key);
    if (it == g.end()) throw std::runtime_error("golden section missing: " + key);
    return it->second;
}

}  // namespace ctdl_test
