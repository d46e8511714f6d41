#pragma once
// device_buffer<T>: owning, zero-initialised storage in the Thrust device system's memory
// (GPU memory under CUDA; host memory for Thrust's OMP and CPP systems).
#include <cstddef>
#include <utility>

#include <thrust/copy.h>
#include <thrust/device_vector.h>
#include <thrust/fill.h>

namespace ctdl {

template <class T>
class device_buffer {
public:
    using value_type = T;
    device_buffer() = default;
    explicit device_buffer(std::size_t n) : v_(n, T{}) {}

    T* data() noexcept { return n() ? thrust::raw_pointer_cast(v_.data()) : nullptr; }
    const T* data() const noexcept { return n() ? thrust::raw_pointer_cast(v_.data()) : nullptr; }
    std::size_t size() const noexcept { return v_.size(); }

    void swap(device_buffer& o) noexcept { v_.swap(o.v_); }

private:
    std::size_t n() const noexcept { return v_.size(); }
    thrust::device_vector<T> v_;
};

}  // namespace ctdl
