#pragma once
// A string as a template argument: nn::named<"wte", L>, ctdl::with_frozen<A, "2.0">.
#include <cstddef>
#include <string_view>

namespace ctdl {

template <std::size_t N>
struct fixed_string {
    char text[N]{};
    constexpr fixed_string(const char (&s)[N]) {
        for (std::size_t i = 0; i < N; ++i) text[i] = s[i];
    }
    static constexpr std::size_t length = N - 1;
    constexpr std::string_view view() const { return {text, length}; }
};

}  // namespace ctdl
