#pragma once
// text_dataset: a token sequence cut into a training split and a validation split (the
// last fraction), and the next-token windows a language model learns from.
//
//   ctdl::data::text_dataset ds{tok.encode(text), 0.1};         // last 10% is validation
//   ctdl::rng g{ctdl::seed{1}, 7};
//   ctdl::tensor<int, ctdl::shape<B, T>> x, y;
//   ds.sample_batch(ctdl::data::split::train, g, x, y);          // B random windows; y(b, t) = x(b, t + 1) in the text
//   auto saved = g.state();                                      // the data position, for a checkpoint
//
//   for (auto w : ds.windows(ctdl::data::split::validation, T))  // every non-overlapping window, in order
//       ... w.input, w.target ...                                // spans of T tokens
//
// A window of length T starting at offset o of a split s is
//   input  = s[o .. o + T - 1],   target = s[o + 1 .. o + T]
// so it needs T + 1 tokens, and o ranges over 0 .. |s| - T - 1.
//
// sample_batch draws row b's offset as next_below(|s| - T) from the rng, rows in order:
// the batch is a pure function of the rng state and the dataset, so saving rng_state
// with a checkpoint resumes the data stream exactly.
//
// windows(s, T) yields windows at offsets 0, T, 2T, ...: (|s| - 1) / T of them. Together
// their targets cover every token of s but the first, up to a tail of fewer than T
// tokens; each predicted token appears in exactly one window.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"

namespace ctdl::data {

enum class split { train, validation };

inline const char* split_name(split s) noexcept { return s == split::train ? "training" : "validation"; }

/// One next-token window: input = tokens at offset .. offset + T - 1 of its split,
/// target = the tokens one further on.
struct text_window {
    std::size_t index = 0;   // position in the sequence of windows
    std::size_t offset = 0;  // of input[0] within the split
    std::span<const int> input;
    std::span<const int> target;
};

/// The non-overlapping windows of one split, as a random-access range of text_window.
class window_range {
public:
    class iterator {
    public:
        using iterator_category = std::random_access_iterator_tag;
        using value_type = text_window;
        using difference_type = std::ptrdiff_t;
        using reference = text_window;
        using pointer = void;

        iterator() = default;
        iterator(std::span<const int> s, std::size_t T, std::size_t i) : s_(s), t_(T), i_(i) {}

        text_window operator*() const { return {i_, i_ * t_, s_.subspan(i_ * t_, t_), s_.subspan(i_ * t_ + 1, t_)}; }
        text_window operator[](difference_type k) const { return *(*this + k); }
        iterator& operator++() { return ++i_, *this; }
        iterator operator++(int) { auto c = *this; ++i_; return c; }
        iterator& operator--() { return --i_, *this; }
        iterator operator--(int) { auto c = *this; --i_; return c; }
        iterator& operator+=(difference_type k) { i_ = static_cast<std::size_t>(static_cast<difference_type>(i_) + k); return *this; }
        iterator& operator-=(difference_type k) { return *this += -k; }
        friend iterator operator+(iterator a, difference_type k) { return a += k; }
        friend iterator operator+(difference_type k, iterator a) { return a += k; }
        friend iterator operator-(iterator a, difference_type k) { return a -= k; }
        friend difference_type operator-(const iterator& a, const iterator& b) {
            return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
        }
        friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.i_ == b.i_; }
        friend auto operator<=>(const iterator& a, const iterator& b) noexcept { return a.i_ <=> b.i_; }

    private:
        std::span<const int> s_;
        std::size_t t_ = 0;
        std::size_t i_ = 0;
    };

    window_range(std::span<const int> s, std::size_t T) : s_(s), t_(T) {}

    iterator begin() const { return {s_, t_, 0}; }
    iterator end() const { return {s_, t_, size()}; }
    /// (|s| - 1) / T.
    std::size_t size() const noexcept { return (s_.size() - 1) / t_; }
    text_window operator[](std::size_t i) const { return *(begin() + static_cast<std::ptrdiff_t>(i)); }
    std::size_t window_length() const noexcept { return t_; }

private:
    std::span<const int> s_;
    std::size_t t_;
};

class text_dataset {
public:
    /// Splits tokens: the last round(n · validation_fraction) tokens are the validation
    /// split, the rest the training split. ctdl::error if the fraction is not in (0, 1),
    /// if either split would be empty, or if a token is negative.
    explicit text_dataset(std::vector<int> tokens, double validation_fraction = 0.1) : tokens_(std::move(tokens)) {
        if (!(validation_fraction > 0.0 && validation_fraction < 1.0))
            throw error("text_dataset: validation_fraction must be in (0, 1), got " + std::to_string(validation_fraction));
        const std::size_t n = tokens_.size();
        const auto n_val = static_cast<std::size_t>(std::llround(static_cast<double>(n) * validation_fraction));
        if (n_val == 0 || n_val >= n)
            throw error("text_dataset: a validation fraction of " + std::to_string(validation_fraction) + " of " +
                        std::to_string(n) + " tokens leaves " + std::to_string(n - std::min(n, n_val)) +
                        " training and " + std::to_string(n_val) +
                        " validation tokens; both splits need at least one token");
        n_train_ = n - n_val;
        for (std::size_t i = 0; i < n; ++i) {
            if (tokens_[i] < 0)
                throw error("text_dataset: token " + std::to_string(i) + " is negative (" + std::to_string(tokens_[i]) + ")");
            max_token_ = std::max(max_token_, tokens_[i]);
        }
    }

    /// All tokens, training split first.
    std::span<const int> tokens() const noexcept { return tokens_; }
    /// The tokens of one split.
    std::span<const int> tokens(split s) const noexcept {
        const std::span<const int> all = tokens_;
        return s == split::train ? all.first(n_train_) : all.subspan(n_train_);
    }
    std::size_t size(split s) const noexcept { return tokens(s).size(); }
    /// One more than the largest token id: the smallest vocabulary that covers the data.
    std::size_t vocab_bound() const noexcept { return static_cast<std::size_t>(max_token_) + 1; }

    /// Throws ctdl::error unless every token id is below vocab_size (the model's embedding rows).
    void require_vocab(std::size_t vocab_size) const {
        if (vocab_bound() <= vocab_size) return;
        const auto it = std::find_if(tokens_.begin(), tokens_.end(),
                                     [&](int t) { return static_cast<std::size_t>(t) >= vocab_size; });
        throw error("text_dataset: token " + std::to_string(it - tokens_.begin()) + " has id " + std::to_string(*it) +
                    ", outside a vocabulary of " + std::to_string(vocab_size));
    }

    /// Number of distinct window offsets of length T in split s: |s| - T (0 if |s| <= T).
    std::size_t window_count(split s, std::size_t T) const noexcept {
        return size(s) > T ? size(s) - T : 0;
    }

    /// Throws ctdl::error unless split s holds a window of length T (T + 1 tokens).
    void require_window(split s, std::size_t T) const {
        if (T == 0) throw error("text_dataset: the window length T must be at least 1");
        if (size(s) < T + 1)
            throw error("text_dataset: the " + std::string(split_name(s)) + " split has " + std::to_string(size(s)) +
                        " tokens; a window of T = " + std::to_string(T) + " needs at least " + std::to_string(T + 1) +
                        " (T + 1)");
    }

    /// Fills B rows of x and y with random windows of split s (offsets drawn from g in
    /// row order, see the header comment). x and y are B·T ints each, row-major.
    void sample_batch(split s, rng& g, std::size_t B, std::size_t T, int* x, int* y) const {
        require_window(s, T);
        const std::span<const int> src = tokens(s);
        const std::size_t offsets = src.size() - T;
        for (std::size_t b = 0; b < B; ++b) {
            const auto o = static_cast<std::size_t>(g.next_below(offsets));
            std::copy_n(src.data() + o, T, x + b * T);
            std::copy_n(src.data() + o + 1, T, y + b * T);
        }
    }

    template <std::size_t B, std::size_t T, class Exec>
        requires Exec::host_accessible
    void sample_batch(split s, rng& g, tensor_view<int, shape<B, T>, Exec> x, tensor_view<int, shape<B, T>, Exec> y) const {
        sample_batch(s, g, B, T, x.data(), y.data());
    }
    template <std::size_t B, std::size_t T, class Exec>
        requires Exec::host_accessible
    void sample_batch(split s, rng& g, tensor<int, shape<B, T>, Exec>& x, tensor<int, shape<B, T>, Exec>& y) const {
        sample_batch(s, g, B, T, x.data(), y.data());
    }

    /// The non-overlapping windows of length T of split s, in order (ctdl::error if the
    /// split is shorter than T + 1 tokens).
    window_range windows(split s, std::size_t T) const {
        require_window(s, T);
        return {tokens(s), T};
    }

    /// Copies windows first, first + 1, ... of windows(s, T) into the rows of x and y, as
    /// many as fit (B) or remain; returns that count. Rows past it are set to 0 and carry
    /// no data: weight them out of any mean. Evaluation over a split:
    ///   for (std::size_t i = 0; i < n; i += B) { auto k = ds.fill_windows(s, i, x, y); ... }
    std::size_t fill_windows(split s, std::size_t first, std::size_t B, std::size_t T, int* x, int* y) const {
        const window_range w = windows(s, T);
        const std::size_t count = first < w.size() ? std::min(B, w.size() - first) : 0;
        for (std::size_t b = 0; b < count; ++b) {
            const text_window win = w[first + b];
            std::copy(win.input.begin(), win.input.end(), x + b * T);
            std::copy(win.target.begin(), win.target.end(), y + b * T);
        }
        std::fill(x + count * T, x + B * T, 0);
        std::fill(y + count * T, y + B * T, 0);
        return count;
    }
    template <std::size_t B, std::size_t T, class Exec>
        requires Exec::host_accessible
    std::size_t fill_windows(split s, std::size_t first, tensor<int, shape<B, T>, Exec>& x,
                             tensor<int, shape<B, T>, Exec>& y) const {
        return fill_windows(s, first, B, T, x.data(), y.data());
    }
    template <std::size_t B, std::size_t T, class Exec>
        requires Exec::host_accessible
    std::size_t fill_windows(split s, std::size_t first, tensor_view<int, shape<B, T>, Exec> x,
                             tensor_view<int, shape<B, T>, Exec> y) const {
        return fill_windows(s, first, B, T, x.data(), y.data());
    }

    /// H = -Σ_v p(v) ln p(v) over the token frequencies p of split s, in nats: the loss of
    /// the best model that ignores context, the baseline a language model must beat.
    double unigram_entropy(split s) const {
        const std::span<const int> src = tokens(s);
        std::vector<std::size_t> counts(vocab_bound(), 0);
        for (int t : src) ++counts[static_cast<std::size_t>(t)];
        const double n = static_cast<double>(src.size());
        double h = 0;
        for (std::size_t c : counts)
            if (c > 0) {
                const double p = static_cast<double>(c) / n;
                h -= p * std::log(p);
            }
        return h;
    }

private:
    std::vector<int> tokens_;
    std::size_t n_train_ = 0;
    int max_token_ = 0;
};

}  // namespace ctdl::data
