#pragma once
// An owning, 64-byte-aligned, fixed-length host buffer: the storage of cpu tensors.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace ctdl {

inline constexpr std::size_t storage_alignment = 64;

template <class T>
class aligned_buffer {
    static_assert(std::is_trivially_copyable_v<T>, "aligned_buffer: elements must be trivially copyable");

public:
    using value_type = T;

    aligned_buffer() = default;
    /// n zero-initialised elements.
    explicit aligned_buffer(std::size_t n) : n_(n) {
        if (n_ == 0) return;
        p_ = static_cast<T*>(::operator new[](n_ * sizeof(T), std::align_val_t{storage_alignment}));
        std::memset(static_cast<void*>(p_), 0, n_ * sizeof(T));
    }
    aligned_buffer(const aligned_buffer& o) : aligned_buffer(o.n_) {
        if (n_) std::memcpy(static_cast<void*>(p_), o.p_, n_ * sizeof(T));
    }
    aligned_buffer(aligned_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    aligned_buffer& operator=(const aligned_buffer& o) {
        if (this != &o) {
            if (n_ == o.n_) {
                if (n_) std::memcpy(static_cast<void*>(p_), o.p_, n_ * sizeof(T));
            } else {
                aligned_buffer tmp(o);
                swap(tmp);
            }
        }
        return *this;
    }
    aligned_buffer& operator=(aligned_buffer&& o) noexcept {
        aligned_buffer tmp(std::move(o));
        swap(tmp);
        return *this;
    }
    ~aligned_buffer() { release(); }

    void swap(aligned_buffer& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
    }

    T* data() noexcept { return p_; }
    const T* data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }

private:
    void release() noexcept {
        if (p_) ::operator delete[](static_cast<void*>(p_), std::align_val_t{storage_alignment});
        p_ = nullptr;
        n_ = 0;
    }
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

}  // namespace ctdl
