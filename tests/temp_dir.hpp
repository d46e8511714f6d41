#pragma once
// A fresh directory under the system temp dir for one test, removed at scope exit.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include <unistd.h>

namespace ctdl_test {

struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(const std::string& prefix = "ctdl_test") {
        static int n = 0;
        path = std::filesystem::temp_directory_path() /
               (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    /// Writes bytes to a file in the directory and returns its path.
    std::filesystem::path write(const std::string& name, const std::string& bytes) const {
        const auto p = path / name;
        std::ofstream(p, std::ios::binary) << bytes;
        return p;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

/// The whole file's bytes ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
/// Writes bytes over the file at p.
inline void spit(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace ctdl_test
