#pragma once
// Counts every heap allocation of the test binary that includes this header (in exactly one
// of its translation units): the global operator new in all its forms is replaced here by
// one that counts, then takes memory from malloc / aligned_alloc; every operator delete
// gives it back with free. The nothrow forms are replaced too, so that no allocation comes
// from elsewhere (a sanitizer's own operator new would hand out memory that free here must
// not see).
//
//   const auto before = test_allocations.load();
//   ... work that must not allocate ...
//   CHECK(test_allocations.load() == before);
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

inline std::atomic<std::size_t> test_allocations{0};

namespace count_allocations_detail {
inline void* counted(std::size_t n, std::size_t align) {
    test_allocations.fetch_add(1, std::memory_order_relaxed);
    if (n == 0) n = 1;
    void* p = align <= alignof(std::max_align_t) ? std::malloc(n) : std::aligned_alloc(align, (n + align - 1) / align * align);
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace count_allocations_detail

void* operator new(std::size_t n) { return count_allocations_detail::counted(n, alignof(std::max_align_t)); }
void* operator new[](std::size_t n) { return count_allocations_detail::counted(n, alignof(std::max_align_t)); }
void* operator new(std::size_t n, std::align_val_t a) { return count_allocations_detail::counted(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return count_allocations_detail::counted(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept try {
    return count_allocations_detail::counted(n, alignof(std::max_align_t));
} catch (...) {
    return nullptr;
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept try {
    return count_allocations_detail::counted(n, alignof(std::max_align_t));
} catch (...) {
    return nullptr;
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept try {
    return count_allocations_detail::counted(n, static_cast<std::size_t>(a));
} catch (...) {
    return nullptr;
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept try {
    return count_allocations_detail::counted(n, static_cast<std::size_t>(a));
} catch (...) {
    return nullptr;
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
