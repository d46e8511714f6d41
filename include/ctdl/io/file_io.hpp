#pragma once
// Whole-file reads and atomic whole-file writes (POSIX).
//
//   std::vector<std::byte> b = ctdl::detail::read_file(path);     // throws ctdl::error
//   ctdl::detail::atomic_write(path, [&](auto&& write) { write(data, n); });
//
// atomic_write writes to "<path>.tmp-<pid>-<counter>" in the same directory, fsyncs it,
// and renames it over path, so readers (and a crash at any moment) see either the old
// file or the complete new one, never a mix. On failure the temporary is removed, path
// is untouched, and a ctdl::error names the file and what went wrong.
#if !__has_include(<unistd.h>)
#error "ctdl/io: snapshot files need a POSIX system (open, fsync, rename)"
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/error.hpp"

namespace ctdl::detail {

inline std::string errno_message(int e) { return std::generic_category().message(e); }

/// Owns a POSIX file descriptor.
class unique_fd {
public:
    explicit unique_fd(int fd = -1) : fd_(fd) {}
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

/// The whole content of the file at path. Throws ctdl::error naming the file if it is
/// missing, a directory, or unreadable.
inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
    const auto fail = [&](const std::string& what) {
        throw error("cannot read '" + path.string() + "': " + what);
    };
    int raw;
    do raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    while (raw < 0 && errno == EINTR);
    if (raw < 0) fail(errno_message(errno));
    const unique_fd fd{raw};
    struct ::stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(errno_message(errno));
    if (S_ISDIR(st.st_mode)) fail("it is a directory");
    std::vector<std::byte> bytes;
    if (S_ISREG(st.st_mode) && st.st_size > 0) bytes.reserve(static_cast<std::size_t>(st.st_size) + 1);
    std::size_t used = 0;
    for (;;) {
        if (bytes.size() - used < 4096) bytes.resize(std::max<std::size_t>(bytes.capacity(), used + 65536));
        const ::ssize_t n = ::read(fd.get(), bytes.data() + used, bytes.size() - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(errno_message(errno));
        }
        if (n == 0) break;
        used += static_cast<std::size_t>(n);
    }
    bytes.resize(used);
    return bytes;
}

inline unsigned long next_temporary_id() {
    static std::atomic<unsigned long> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed);
}

/// Atomically replaces path with the bytes that fill produces. fill is called as
/// fill(write), where write(const void* p, std::size_t n) appends n bytes.
template <class Fill>
void atomic_write(const std::filesystem::path& path, Fill&& fill) {
    std::filesystem::path tmp = path;
    tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(next_temporary_id());
    const std::string where = "cannot write '" + path.string() + "': ";

    int raw;
    do raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    while (raw < 0 && errno == EINTR);
    if (raw < 0)
        throw error(where + "cannot create the temporary file '" + tmp.string() + "': " + errno_message(errno));

    const auto remove_tmp = [&] {
        std::error_code ignored;
        std::filesystem::remove(tmp, ignored);
    };
    try {
        unique_fd fd{raw};
        const auto write = [&](const void* data, std::size_t n) {
            const auto* p = static_cast<const char*>(data);
            while (n > 0) {
                const ::ssize_t k = ::write(fd.get(), p, n);
                if (k < 0) {
                    if (errno == EINTR) continue;
                    throw error(where + "writing '" + tmp.string() + "' failed: " + errno_message(errno));
                }
                p += k;
                n -= static_cast<std::size_t>(k);
            }
        };
        fill(write);
        if (::fsync(fd.get()) != 0)
            throw error(where + "fsync of '" + tmp.string() + "' failed: " + errno_message(errno));
        if (::close(fd.release()) != 0)
            throw error(where + "closing '" + tmp.string() + "' failed: " + errno_message(errno));
        std::error_code ec;
        std::filesystem::rename(tmp, path, ec);
        if (ec) throw error(where + "renaming '" + tmp.string() + "' over it failed: " + ec.message());
    } catch (const error&) {
        remove_tmp();
        throw;
    } catch (const std::exception& e) {
        remove_tmp();
        throw error(where + e.what());
    }

    // Make the rename itself durable. Best effort: the new file is complete either way.
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace ctdl::detail
