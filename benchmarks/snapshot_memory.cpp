// Memory of the pretraining example's GPT (models::gpt<96, 64, 128, 4, 4, 512>) in its three
// forms: trainable (parameters + gradients), frozen and loaded (an owned copy of the
// parameters), frozen and mapped (ctdl::map_frozen: the snapshot's pages, shared with the
// page cache); and the speed of the snapshot checksum (ctdl64x8) on a 100 MB buffer.
//
//   snapshot_memory [DIR]     (DIR: where the snapshot is written; default the temp dir)
//
// Each form is measured in a child process of its own: VmRSS, RssAnon and RssFile from
// /proc/self/status before the model is made and after one forward pass at batch 1.
#include <ctdl/ctdl.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::size_t vocab = 96, context = 64;
using gpt = ctdl::models::gpt<vocab, context, 128, 4, 4, 512>;

struct rss {
    long total = 0, anon = 0, file = 0;  // KiB
};

rss read_rss() {
    std::ifstream in("/proc/self/status");
    rss r;
    for (std::string line; std::getline(in, line);) {
        const auto value = [&] { return std::stol(line.substr(line.find(':') + 1)); };
        if (line.rfind("VmRSS:", 0) == 0) r.total = value();
        if (line.rfind("RssAnon:", 0) == 0) r.anon = value();
        if (line.rfind("RssFile:", 0) == 0) r.file = value();
    }
    return r;
}

template <std::size_t Batch, class Make>
void measure(const char* name, Make make) {
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ctdl::tensor<int, ctdl::shape<Batch, context>> ids;
        for (std::size_t i = 0; i < ids.size; ++i) ids.data()[i] = static_cast<int>(i * 7 % vocab);
        const rss before = read_rss();
        auto net = make();
        const rss made = read_rss();
        const auto logits = net.forward(ids);
        const rss after = read_rss();
        std::printf("%-22s b%-3zu %9.2f MiB %9.2f MiB %9.2f MiB %9.2f MiB %9.2f MiB   (logit %.4f)\n", name,
                    Batch, (made.total - before.total) / 1024.0, (after.total - before.total) / 1024.0,
                    (after.anon - before.anon) / 1024.0, (after.file - before.file) / 1024.0,
                    net.borrows_parameters_or_owned_bytes() / 1048576.0, static_cast<double>(logits.data()[0]));
        std::fflush(stdout);
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
}

}  // namespace

// (A small adapter so that measure() can print each form's own parameter bytes.)
template <class M>
struct form : M {
    using M::M;
    form(M&& m) : M(std::move(m)) {}
    double borrows_parameters_or_owned_bytes() const {
        std::size_t bytes = M::parameter_count * sizeof(float);
        if constexpr (ctdl::trainable<M>) bytes += M::gradient_count * sizeof(float);
        else if (this->borrows_parameters()) bytes = 0;
        return static_cast<double>(bytes);
    }
};

int main(int argc, char** argv) {
    const std::filesystem::path dir = argc > 1 ? argv[1] : std::filesystem::temp_directory_path();
    const auto path = dir / "ctdl_snapshot_memory_gpt.safetensors";
    using trained = ctdl::model<gpt>;
    using frozen = ctdl::model<ctdl::frozen<gpt>>;
    ctdl::cpu::set_threads(1);
    {
        const trained net{ctdl::seed{1}};
        ctdl::save(net, path);
    }
    std::printf("GPT %zu parameters: %.2f MiB of float; snapshot %.2f MiB\n\n", trained::parameter_count,
                trained::parameter_count * 4 / 1048576.0, std::filesystem::file_size(path) / 1048576.0);
    std::printf("RSS growth (KiB/1024) from before the model is made: when made, and after one forward pass at\n"
                "batch b (of it: anonymous, file-backed); the parameter (+ gradient) bytes the model owns.\n"
                "One thread: batch 1 of a frozen model computes from packed copies of its linear weights.\n\n");
    std::printf("%-22s %4s %13s %13s %13s %13s %13s\n", "form", "", "RSS made", "RSS +forward", "anon", "file",
                "owned params");
    measure<1>("trainable (model<A>)", [] { return form<trained>(ctdl::seed{1}); });
    measure<1>("frozen, ctdl::load", [&] { return form<frozen>(ctdl::load<frozen>(path)); });
    measure<1>("frozen, map_frozen", [&] { return form<frozen>(ctdl::map_frozen<frozen>(path)); });
    measure<16>("trainable (model<A>)", [] { return form<trained>(ctdl::seed{1}); });
    measure<16>("frozen, ctdl::load", [&] { return form<frozen>(ctdl::load<frozen>(path)); });
    measure<16>("frozen, map_frozen", [&] { return form<frozen>(ctdl::map_frozen<frozen>(path)); });

    // The checksum's speed on 100 MB (best of 7), beside memcpy's.
    std::vector<std::byte> buffer(100'000'000), copy(buffer.size());
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = std::byte(i * 131 + (i >> 9));
    double hash_s = 1e9, copy_s = 1e9;
    std::uint64_t h = 0;
    for (int r = 0; r < 7; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        h ^= ctdl::detail::checksum_of(buffer);
        hash_s = std::min(hash_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        t0 = std::chrono::steady_clock::now();
        std::memcpy(copy.data(), buffer.data(), buffer.size());
        copy_s = std::min(copy_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("\nchecksum ctdl64x8 over 100 MB: %.1f GB/s (%.1f ms); memcpy %.1f GB/s  [%016llx]\n", 0.1 / hash_s,
                hash_s * 1e3, 0.1 / copy_s, static_cast<unsigned long long>(h ^ std::to_integer<unsigned>(copy[7])));
    std::filesystem::remove(path);
}
