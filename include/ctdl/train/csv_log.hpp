#pragma once
// The CSV log of a training run.
#include <cerrno>
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
        std::string r = std::to_string(step) + "," + format_number(train_loss) + ",";
        if (val_loss) r += format_number(*val_loss);
        r += "," + format_number(lr) + "," + format_number(tokens_per_s) + "," + format_number(seconds) + "\n";
        write(r);
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

}  // namespace ctdl::train
