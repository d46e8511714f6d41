#pragma once
// A string as a template argument: nn::named<"wte", L>, ctdl::with_frozen<A, "2.0">.
#include <cstddef>
#include <string_view>

namespace ctdl {

template <std::size_t N>
struct fixed_string {
    char text[N]{};
    constexpr fixed_string() = default;
    constexpr fixed_string(const char (&s)[N]) {
        for (std::size_t i = 0; i < N; ++i) text[i] = s[i];
    }
    static constexpr std::size_t length = N - 1;
    constexpr std::string_view view() const { return {text, length}; }
};

/// A and B joined by a dot ("transformer" + "h" = "transformer.h"); either alone when the
/// other is empty. (Paths of parts: graph/rewrite.hpp.)
template <fixed_string A, fixed_string B>
constexpr auto join_path() {
    constexpr std::size_t dot = A.length > 0 && B.length > 0 ? 1 : 0;
    fixed_string<A.length + dot + B.length + 1> r;
    for (std::size_t i = 0; i < A.length; ++i) r.text[i] = A.text[i];
    if (dot) r.text[A.length] = '.';
    for (std::size_t i = 0; i < B.length; ++i) r.text[A.length + dot + i] = B.text[i];
    return r;
}

/// I in decimal digits, as a fixed_string ("12").
template <std::size_t I>
constexpr auto index_string() {
    constexpr std::size_t digits = [] {
        std::size_t d = 1;
        for (std::size_t v = I; v >= 10; v /= 10) ++d;
        return d;
    }();
    fixed_string<digits + 1> r;
    std::size_t v = I;
    for (std::size_t i = digits; i-- > 0; v /= 10) r.text[i] = static_cast<char>('0' + v % 10);
    return r;
}

}  // namespace ctdl
