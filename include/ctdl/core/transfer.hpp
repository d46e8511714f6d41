#pragma once
// ctdl::to<Exec>(x): a copy of tensor (or view) x under another execution policy. The only
// host <-> device transfer users write; everything else stays where it is.
//
//   auto xd = ctdl::to<ctdl::device>(x);      // cpu -> device
//   auto y  = ctdl::to<ctdl::cpu>(net.forward(xd));
#include <algorithm>
#include <type_traits>

#include "../exec/aligned_buffer.hpp"
#include "tensor.hpp"

namespace ctdl {

template <class To, tensor_like X>
auto to(const X& x) {
    using From = typename std::remove_cvref_t<X>::exec_type;
    using T = typename std::remove_cvref_t<X>::value_type;
    using S = shape_of<X>;
    tensor<T, S, To> out;
    if constexpr (From::host_accessible && To::host_accessible) {
        std::copy_n(x.data(), S::size, out.data());
    } else if constexpr (From::host_accessible) {
        To::copy_from_host(x.data(), out.data(), S::size);
    } else if constexpr (To::host_accessible) {
        From::copy_to_host(x.data(), out.data(), S::size);
    } else if constexpr (std::is_same_v<From, To>) {
        To::copy(x.data(), out.data(), S::size);
    } else {
        aligned_buffer<T> staging(S::size);
        From::copy_to_host(x.data(), staging.data(), S::size);
        To::copy_from_host(staging.data(), out.data(), S::size);
    }
    return out;
}

}  // namespace ctdl
