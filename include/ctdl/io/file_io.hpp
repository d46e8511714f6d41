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
//
// A writer killed mid-write (kill -9, power loss) leaves its temporary behind. Each
// atomic_write first removes the temporaries of the same path whose writer is gone:
// the pid in the name is not a running process (kill(pid, 0) fails with ESRCH), or is
// this process but not one of its writes in progress; and, in both cases, nobody holds
// the flock that every writer keeps on its temporary while it writes (this protects a
// live writer in another pid namespace sharing the directory). Files of other paths,
// and names not of this exact form, are never touched.
#if !__has_include(<unistd.h>)
#error "ctdl/io: snapshot files need a POSIX system (open, fsync, rename)"
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
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
    void reset(int fd) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_;
};

/// An open file for reading, and its status. Throws ctdl::error naming the file if it is
/// missing, a directory, or unreadable.
struct readable_file {
    unique_fd fd;
    struct ::stat status {};

    explicit readable_file(const std::filesystem::path& path) {
        int raw;
        do raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        while (raw < 0 && errno == EINTR);
        if (raw < 0) fail(path, errno_message(errno));
        fd.reset(raw);
        if (::fstat(fd.get(), &status) != 0) fail(path, errno_message(errno));
        if (S_ISDIR(status.st_mode)) fail(path, "it is a directory");
    }

    /// Reads up to n bytes at offset into p; returns how many it read (fewer only at the end).
    std::size_t read_at(void* p, std::size_t n, std::uint64_t offset, const std::filesystem::path& path) const {
        std::size_t done = 0;
        while (done < n) {
            const ::ssize_t k = ::pread(fd.get(), static_cast<char*>(p) + done, n - done,
                                        static_cast<::off_t>(offset + done));
            if (k < 0) {
                if (errno == EINTR) continue;
                fail(path, errno_message(errno));
            }
            if (k == 0) break;
            done += static_cast<std::size_t>(k);
        }
        return done;
    }

    [[noreturn]] static void fail(const std::filesystem::path& path, const std::string& what) {
        throw error("cannot read '" + path.string() + "': " + what);
    }
};

/// The whole content of the file at path. Throws ctdl::error naming the file if it is
/// missing, a directory, or unreadable.
inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
    const readable_file file{path};
    const int fd = file.fd.get();
    std::vector<std::byte> bytes;
    if (S_ISREG(file.status.st_mode) && file.status.st_size > 0)
        bytes.reserve(static_cast<std::size_t>(file.status.st_size) + 1);
    std::size_t used = 0;
    for (;;) {
        if (bytes.size() - used < 4096) bytes.resize(std::max<std::size_t>(bytes.capacity(), used + 65536));
        const ::ssize_t n = ::read(fd, bytes.data() + used, bytes.size() - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            readable_file::fail(path, errno_message(errno));
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

/// The counters of this process's atomic writes in progress (their temporaries are live).
class live_temporaries {
public:
    static void add(unsigned long id) {
        const std::lock_guard lock(mutex());
        ids().insert(id);
    }
    static void remove(unsigned long id) noexcept {
        const std::lock_guard lock(mutex());
        ids().erase(id);
    }
    static bool contains(unsigned long id) {
        const std::lock_guard lock(mutex());
        return ids().count(id) != 0;
    }

private:
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    static std::set<unsigned long>& ids() {
        static std::set<unsigned long> s;
        return s;
    }
};

/// A temporary's name split into the writer's pid and counter.
struct temporary_name {
    ::pid_t pid = 0;
    unsigned long id = 0;
};

/// If name is exactly target + ".tmp-<pid>-<counter>" (canonical decimal numbers, pid > 0),
/// its pid and counter; otherwise nothing.
inline std::optional<temporary_name> parse_temporary_name(std::string_view name, std::string_view target) {
    const std::string_view tag = ".tmp-";
    if (name.size() <= target.size() + tag.size() || name.substr(0, target.size()) != target ||
        name.substr(target.size(), tag.size()) != tag)
        return std::nullopt;
    name.remove_prefix(target.size() + tag.size());
    const std::size_t dash = name.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    const auto number = [](std::string_view s, auto& out) {
        if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc{} && end == s.data() + s.size();
    };
    temporary_name t;
    if (!number(name.substr(0, dash), t.pid) || t.pid <= 0 || !number(name.substr(dash + 1), t.id))
        return std::nullopt;
    return t;
}

/// Removes the temporaries of path left by writers that no longer exist (see the header
/// comment for the rules). Best effort and silent: a directory it cannot read, or a file
/// it cannot judge, is left as it is.
[[gnu::cold]] inline void remove_stale_temporaries(const std::filesystem::path& path) noexcept {
    try {
        const std::string dir = path.has_parent_path() ? path.parent_path().string() : std::string(".");
        const std::string target = path.filename().string();
        if (target.empty()) return;
        DIR* d = ::opendir(dir.c_str());
        if (!d) return;
        const int dfd = ::dirfd(d);
        std::vector<std::string> candidates;
        while (const ::dirent* e = ::readdir(d))
            if (parse_temporary_name(e->d_name, target)) candidates.emplace_back(e->d_name);
        for (const std::string& name : candidates) {
            const temporary_name t = *parse_temporary_name(name, target);
            if (t.pid == ::getpid()) {
                if (live_temporaries::contains(t.id)) continue;  // a write of this process in progress
            } else if (::kill(t.pid, 0) == 0 || errno != ESRCH) {
                continue;  // its writer may be running (EPERM: a process of another user)
            }
            const unique_fd fd{::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)};
            struct ::stat opened {}, named {};
            if (fd.get() < 0 || ::fstat(fd.get(), &opened) != 0 || !S_ISREG(opened.st_mode)) continue;
            if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
                continue;  // a live writer holds it (one whose pid we cannot see)
            // Still the same file under that name: then it is the dead writer's.
            if (::fstatat(dfd, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0 || named.st_ino != opened.st_ino ||
                named.st_dev != opened.st_dev)
                continue;
            (void)::unlinkat(dfd, name.c_str(), 0);
        }
        ::closedir(d);
    } catch (...) {
        // std::bad_alloc from the name list: leave the directory as it is.
    }
}

/// Atomically replaces path with the bytes that fill produces. fill is called as
/// fill(write), where write(const void* p, std::size_t n) appends n bytes.
template <class Fill>
void atomic_write(const std::filesystem::path& path, Fill&& fill) {
    const std::string where = "cannot write '" + path.string() + "': ";
    remove_stale_temporaries(path);

    // The counter is registered before the file exists, so that no other thread of this
    // process takes it for a dead writer's. A name taken by a writer elsewhere with the
    // same pid (another pid namespace) is skipped.
    std::filesystem::path tmp;
    unsigned long id = 0;
    int raw = -1;
    for (int attempt = 0; attempt < 16 && raw < 0; ++attempt) {
        id = next_temporary_id();
        tmp = path;
        tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(id);
        live_temporaries::add(id);
        do raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        while (raw < 0 && errno == EINTR);
        if (raw < 0) {
            const int e = errno;
            live_temporaries::remove(id);
            if (e != EEXIST || attempt == 15)
                throw error(where + "cannot create the temporary file '" + tmp.string() + "': " + errno_message(e));
        }
    }
    struct registered {
        unsigned long id;
        ~registered() { live_temporaries::remove(id); }
    } const registration{id};
    // Held until the file is closed: tells other processes this temporary is live.
    (void)::flock(raw, LOCK_EX | LOCK_NB);

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
