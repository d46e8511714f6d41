#pragma once
// ctdl::error: what ctdl throws for bad input from the outside world (files, data,
// arguments). Mistakes that can be caught at compile time never reach this type.
#include <stdexcept>
#include <string>

namespace ctdl {

class error : public std::runtime_error {
public:
    explicit error(const std::string& what) : std::runtime_error("ctdl: " + what) {}
};

}  // namespace ctdl
