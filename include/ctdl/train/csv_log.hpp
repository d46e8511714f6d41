#pragma once
// The CSV log of a training run.
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/file_io.hpp"
#include "format.hpp"

namespace ctdl::train {

/// One row of a run's CSV log, newline included: "100,2.3456,,0.0003,12345.6,65.2\n".
inline std::string csv_row(std::size_t step, double train_loss, std::optional<double> val_loss, double lr,
                           double tokens_per_s, double seconds) {
    std::string r = std::to_string(step) + "," + format_number(train_loss) + ",";
    if (val_loss) r += format_number(*val_loss);
    r += "," + format_number(lr) + "," + format_number(tokens_per_s) + "," + format_number(seconds) + "\n";
    return r;
}

/// A CSV file of the run, one row per call, flushed at once (a crash loses at most the row
/// being written):
///   step,train_loss,val_loss,lr,tokens_per_s,seconds
///   100,2.3456,,0.0003,12345.6,65.2
/// val_loss is empty when not measured. Numbers are written in the shortest form that reads
/// back exactly.
class csv_log {
public:
    static constexpr std::string_view header = "step,train_loss,val_loss,lr,tokens_per_s,seconds";

    enum class mode {
        append,    // keep an existing log with the same header (resuming); start one otherwise
        truncate,  // start a new log
    };

    /// Opens path. In append mode an existing non-empty file must start with the header
    /// (ctdl::error naming the file otherwise), and a last row cut off by a crash (no
    /// final newline) is dropped.
    explicit csv_log(std::filesystem::path path, mode m = mode::append) : path_(std::move(path)) {
        const std::string where = "csv_log: '" + path_.string() + "'";
        bool need_header = true;
        std::error_code ec;
        if (m == mode::append && std::filesystem::exists(path_, ec) && std::filesystem::file_size(path_, ec) > 0 && !ec) {
            const std::vector<std::byte> bytes = ctdl::detail::read_file(path_);
            const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            const std::string_view first = text.substr(0, text.find('\n'));
            if (first != header)
                throw error(where + " exists and its first line is '" + std::string(first.substr(0, 80)) +
                            "'; expected the header '" + std::string(header) + "' (or open it with mode::truncate)");
            const std::size_t keep = text.rfind('\n') + 1;  // the header has one, so rfind succeeds
            if (keep < text.size()) {
                std::filesystem::resize_file(path_, keep, ec);
                if (ec) throw error(where + ": cannot drop its incomplete last row: " + ec.message());
            }
            need_header = false;
        }
        file_.reset(std::fopen(path_.c_str(), m == mode::append ? "ab" : "wb"));
        if (!file_) throw error(where + ": cannot open for writing: " + ctdl::detail::errno_message(errno));
        if (need_header) write(std::string(header) + "\n");
    }

    /// Appends one row and flushes it.
    void row(std::size_t step, double train_loss, std::optional<double> val_loss, double lr, double tokens_per_s,
             double seconds) {
        write(csv_row(step, train_loss, val_loss, lr, tokens_per_s, seconds));
    }

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    void write(const std::string& s) {
        if (std::fwrite(s.data(), 1, s.size(), file_.get()) != s.size() || std::fflush(file_.get()) != 0)
            throw error("csv_log: writing '" + path_.string() + "' failed: " + ctdl::detail::errno_message(errno));
    }

    struct closer {
        void operator()(std::FILE* f) const noexcept { std::fclose(f); }
    };
    std::filesystem::path path_;
    std::unique_ptr<std::FILE, closer> file_;
};

/// The CSV log of a run as train::run keeps it: rows are collected in memory and reach the
/// file only at commit(), which replaces it atomically (a temporary file renamed over it).
/// Until the first commit the file is as it was, so a run that fails early leaves an earlier
/// run's log alone, and committing together with each checkpoint keeps the log in step with it.
///
/// truncate: the log starts with the header only. append (resuming at step keep_through):
/// an existing non-empty file must start with csv_log::header (ctdl::error naming it
/// otherwise, thrown by the constructor, before anything is written); its rows are kept
/// except a last row cut off by a crash and rows whose step is past keep_through (written
/// after the checkpoint that is being resumed); a missing or empty file starts a new log.
class staged_csv_log {
public:
    explicit staged_csv_log(std::filesystem::path path, csv_log::mode m = csv_log::mode::append,
                            std::optional<std::size_t> keep_through = std::nullopt)
        : path_(std::move(path)), text_(std::string(csv_log::header) + "\n") {
        if (m != csv_log::mode::append) return;
        std::error_code ec;
        if (!std::filesystem::exists(path_, ec) || ec) return;
        const std::vector<std::byte> bytes = ctdl::detail::read_file(path_);  // ctdl::error for a directory
        if (bytes.empty()) return;
        const std::string_view old(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const std::string_view first = old.substr(0, old.find('\n'));
        if (first == csv_log::header && old.size() == first.size()) return;  // the header alone, cut off
        if (first != csv_log::header)
            throw error("csv_log: '" + path_.string() + "' exists and its first line is '" +
                        std::string(first.substr(0, 80)) + "'; expected the header '" + std::string(csv_log::header) +
                        "' (move it away, or start the run afresh)");
        for (std::size_t at = first.size() + 1; at < old.size();) {
            const std::size_t nl = old.find('\n', at);
            if (nl == std::string_view::npos) break;  // cut off by a crash
            const std::string_view line = old.substr(at, nl + 1 - at);
            at = nl + 1;
            std::size_t step = 0;
            const auto [end, err] = std::from_chars(line.data(), line.data() + line.size(), step);
            const bool numbered = err == std::errc{} && end != line.data() && *end == ',';
            if (keep_through && numbered && step > *keep_through) continue;
            text_ += line;
        }
    }

    /// Appends one row (in memory).
    void row(std::size_t step, double train_loss, std::optional<double> val_loss, double lr, double tokens_per_s,
             double seconds) {
        text_ += csv_row(step, train_loss, val_loss, lr, tokens_per_s, seconds);
    }

    /// Writes the header and every row so far to the file, atomically.
    void commit() const {
        ctdl::detail::atomic_write(path_, [&](auto&& write) { write(text_.data(), text_.size()); });
    }

    /// What commit() writes.
    const std::string& text() const noexcept { return text_; }
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
    std::string text_;
};

}  // namespace ctdl::train
