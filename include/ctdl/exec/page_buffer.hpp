#pragma once
// An owning host buffer in 2 MiB pages where the system gives them (Linux transparent huge
// pages on request), else in ordinary pages: for data that is streamed through a cache
// again and again, such as a frozen model's packed weights.
//
// Why: caches are indexed by physical address. With 4 KiB pages the physical frames of a
// buffer land on the cache's sets unevenly, so a working set near the L2's size overflows
// some sets long before the cache is full. One 2 MiB page is physically contiguous and
// spreads its lines evenly. Measured: the 784-256-256-10 MLP at batch 1 on one thread,
// whose 1.07 MB of weights just exceed a 1 MB L2, 6.3–6.5 us in 4 KiB pages, 5.6–6.1 us in
// one huge page (four process runs each).
#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ctdl {

template <class T>
class page_buffer {
    static_assert(std::is_trivially_copyable_v<T>, "page_buffer: elements must be trivially copyable");
    static constexpr std::size_t page = std::size_t{2} << 20;

public:
    page_buffer() = default;
    /// n zero-initialised elements; the allocation is rounded up to whole 2 MiB pages.
    explicit page_buffer(std::size_t n) : n_(n) {
        if (n_ == 0) return;
        bytes_ = (n_ * sizeof(T) + page - 1) / page * page;
        void* p = ::operator new(bytes_, std::align_val_t{page});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        ::madvise(p, bytes_, MADV_HUGEPAGE);  // a request; without THP it changes nothing
#endif
        std::memset(p, 0, bytes_);  // first touch after the advice
        p_ = static_cast<T*>(p);
    }
    page_buffer(const page_buffer&) = delete;
    page_buffer& operator=(const page_buffer&) = delete;
    page_buffer(page_buffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), bytes_(std::exchange(o.bytes_, 0)) {}
    page_buffer& operator=(page_buffer&& o) noexcept {
        page_buffer tmp(std::move(o));
        std::swap(p_, tmp.p_);
        std::swap(n_, tmp.n_);
        std::swap(bytes_, tmp.bytes_);
        return *this;
    }
    ~page_buffer() {
        if (p_) ::operator delete(static_cast<void*>(p_), std::align_val_t{page});
    }

    T* data() noexcept { return p_; }
    const T* data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
    std::size_t bytes_ = 0;
};

}  // namespace ctdl
