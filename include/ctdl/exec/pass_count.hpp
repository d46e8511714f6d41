#pragma once
// Kernel-pass counting: tests assert that fusion and gradient pruning really happened by
// counting the passes a policy runs over memory (a GEMM, a map, a reduction...).
//
//   ctdl::count_passes counting;          // counting is on while this object lives
//   net.forward(x);
//   REQUIRE(counting.counts()[ctdl::pass::gemm] == 3);
//
// Off by default. When off, recording a pass costs one load of a thread-local pointer and a
// predictable branch per kernel launch (never per element).
#include <array>
#include <cstddef>
#include <cstdint>

namespace ctdl {

enum class pass : unsigned {
    gemm,     // one matrix product (with its fused epilogue)
    map,      // one elementwise pass over one or several tensors
    reduce,   // one reduction pass (row or column sums, norms, ...)
    softmax,  // one row-softmax pass (fused softmax + cross-entropy counts here too)
    copy,     // a copy or fill of a buffer
    update,   // an optimizer update over a flat parameter buffer
    attention,  // one fused causal-attention pass (all heads of a batch)
    gather,   // an embedding lookup or its scatter-add backward
    other,
    kinds_    // number of kinds; not a kind
};

inline constexpr std::size_t pass_kinds = static_cast<std::size_t>(pass::kinds_);

struct pass_counts {
    std::array<std::uint64_t, pass_kinds> n{};
    constexpr std::uint64_t operator[](pass p) const { return n[static_cast<std::size_t>(p)]; }
    constexpr std::uint64_t total() const {
        std::uint64_t t = 0;
        for (auto v : n) t += v;
        return t;
    }
};

namespace detail {
inline thread_local pass_counts* active_pass_counts = nullptr;
}

/// Called by policies once per kernel pass, on the thread that issues the pass.
inline void record_pass(pass p) noexcept {
    if (auto* c = detail::active_pass_counts) [[unlikely]]
        ++c->n[static_cast<std::size_t>(p)];
}

/// While alive, counts the passes issued from this thread. Scopes nest; the innermost counts.
class count_passes {
public:
    count_passes() noexcept : outer_(detail::active_pass_counts) { detail::active_pass_counts = &counts_; }
    ~count_passes() { detail::active_pass_counts = outer_; }
    count_passes(const count_passes&) = delete;
    count_passes& operator=(const count_passes&) = delete;

    const pass_counts& counts() const noexcept { return counts_; }
    void reset() noexcept { counts_ = {}; }

private:
    pass_counts counts_{};
    pass_counts* outer_;
};

}  // namespace ctdl
