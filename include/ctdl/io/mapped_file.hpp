#pragma once
// A file mapped read-only into memory (POSIX mmap), for reading a snapshot without a copy.
//
//   const ctdl::mapped_file m{"net.safetensors"};       // throws ctdl::error naming the file
//   std::span<const std::byte> b = m.bytes();           // the whole file, valid while m lives
//   auto f = ctdl::safetensors::view(m.bytes(), m.path().string());
//
// The mapping is MAP_PRIVATE and PROT_READ: the program cannot write it, and the file is not
// changed through it. Files that ctdl::save replaces stay valid under a mapping (save renames
// a new file over the old name; the mapped old file lives on until unmapped). A file
// truncated in place by another program while mapped is the usual mmap hazard (SIGBUS on
// the missing pages); map only files that are replaced, not rewritten, while in use.
// Move-only; the destructor unmaps.
#if !__has_include(<sys/mman.h>)
#error "ctdl/io/mapped_file.hpp needs a POSIX system (mmap)"
#endif

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include <sys/mman.h>
#include <sys/stat.h>

#include "../core/error.hpp"
#include "file_io.hpp"

namespace ctdl {

/// How to map: advice for the kernel (best effort; a kernel that ignores it changes nothing).
struct map_options {
    bool will_need = false;   ///< madvise(MADV_WILLNEED): start reading the whole file now
    bool huge_pages = false;  ///< madvise(MADV_HUGEPAGE), where the kernel backs files with them
};

class mapped_file {
public:
    explicit mapped_file(const std::filesystem::path& path, map_options options = {}) : path_(path) {
        const detail::readable_file f{path};  // ctdl::error "cannot read '<path>': ..." if it cannot be opened
        if (!S_ISREG(f.status.st_mode)) fail("not a regular file (only regular files can be mapped)");
        if (f.status.st_size < 0) fail("negative file size");
        const auto size = static_cast<std::uint64_t>(f.status.st_size);
        if (size > SIZE_MAX) fail("too large to map on this machine");
        size_ = static_cast<std::size_t>(size);
        if (size_ == 0) return;  // nothing to map: an empty span
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, f.fd.get(), 0);
        if (p == MAP_FAILED) fail("mmap failed: " + detail::errno_message(errno));
        data_ = p;
#ifdef MADV_WILLNEED
        if (options.will_need) (void)::madvise(data_, size_, MADV_WILLNEED);
#endif
#ifdef MADV_HUGEPAGE
        if (options.huge_pages) (void)::madvise(data_, size_, MADV_HUGEPAGE);
#endif
        (void)options;
    }

    mapped_file(mapped_file&& o) noexcept
        : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    mapped_file& operator=(mapped_file&& o) noexcept {
        if (this != &o) {
            unmap();
            path_ = std::move(o.path_);
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    ~mapped_file() { unmap(); }

    /// The file's bytes (empty for an empty file).
    std::span<const std::byte> bytes() const noexcept { return {static_cast<const std::byte*>(data_), size_}; }
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
    void* data_ = nullptr;
    std::size_t size_ = 0;

    void unmap() noexcept {
        if (data_) ::munmap(data_, size_);
        data_ = nullptr;
        size_ = 0;
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw error("cannot map '" + path_.string() + "': " + what);
    }
};

}  // namespace ctdl
