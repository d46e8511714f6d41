#pragma once
// Checkpoints: everything a training run needs to continue bitwise identically, in one
// safetensors snapshot written atomically.
//
//   tensors   "model.<name>"   the parameters (PyTorch names and layouts)
//             "optim.<name>"   the optimizer's state buffers (exp_avg, exp_avg_sq, ...)
//   metadata  ctdl.step, ctdl.optimizer_steps, ctdl.lr, ctdl.rng.{seed,stream,counter}
//             (the data sampler's position), plus any entries the caller adds
// Loading reads and checks the whole file before it changes anything, so a bad checkpoint
// leaves the model, the optimizer and the generator as they were.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../io/snapshot.hpp"
#include "../optim/state.hpp"

namespace ctdl::train {

struct checkpoint_info {
    std::uint64_t step = 0;
    std::map<std::string, std::string> metadata;  ///< everything in the header's __metadata__
};

template <class Model, class Optimizer>
void save_checkpoint(const std::filesystem::path& path, const Model& net, const Optimizer& opt, std::uint64_t step,
                     const rng& data_rng, const std::map<std::string, std::string>& extra = {}) {
    using T = typename Model::value_type;
    std::vector<T> flat(Model::parameter_count);
    ctdl::detail::copy_parameters_out(net, std::span<T>(flat));
    const auto state = optim::state_to_host(opt);
    safetensors::writer w;
    add_parameters<Model>(w, std::span<const T>(flat), "model.");
    for (const auto& [name, values] : state)
        w.add("optim." + name, std::vector<std::size_t>{values.size()}, std::span<const T>(values));
    auto& meta = w.metadata();
    meta = extra;
    meta["ctdl.step"] = std::to_string(step);
    meta["ctdl.optimizer_steps"] = std::to_string(opt.step_count());
    char lr[64];
    std::snprintf(lr, sizeof lr, "%.17g", static_cast<double>(opt.lr()));
    meta["ctdl.lr"] = lr;
    meta["ctdl.rng.seed"] = std::to_string(data_rng.state().seed);
    meta["ctdl.rng.stream"] = std::to_string(data_rng.state().stream);
    meta["ctdl.rng.counter"] = std::to_string(data_rng.state().counter);
    w.write(path);
}

namespace detail {
inline std::uint64_t metadata_u64(const safetensors::file& f, const std::string& key) {
    const auto it = f.metadata().find(key);
    if (it == f.metadata().end()) f.fail("checkpoint metadata has no \"" + key + "\"");
    const std::string& v = it->second;
    std::uint64_t x = 0;
    if (v.empty() || v.size() > 20) f.fail("checkpoint metadata \"" + key + "\" is not a whole number: \"" + v + "\"");
    for (char c : v) {
        if (c < '0' || c > '9') f.fail("checkpoint metadata \"" + key + "\" is not a whole number: \"" + v + "\"");
        x = x * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return x;
}
}  // namespace detail

/// Restores net, opt and data_rng from a checkpoint; returns its step and metadata.
template <class Model, class Optimizer>
checkpoint_info load_checkpoint(const std::filesystem::path& path, Model& net, Optimizer& opt, rng& data_rng) {
    using T = typename Model::value_type;
    const auto f = safetensors::read(path);
    // Read and check everything first.
    std::vector<T> flat(Model::parameter_count);
    read_parameters<Model>(f, std::span<T>(flat), {.prefix = "model.", .allow_unexpected = true});
    std::vector<std::pair<std::string, std::vector<T>>> state = optim::state_to_host(opt);
    for (auto& [name, values] : state) {
        const std::size_t shape[] = {values.size()};
        f.read<T>("optim." + name, shape, std::span<T>(values));
    }
    checkpoint_info info;
    info.step = detail::metadata_u64(f, "ctdl.step");
    const std::uint64_t opt_steps = detail::metadata_u64(f, "ctdl.optimizer_steps");
    const rng_state rs{detail::metadata_u64(f, "ctdl.rng.seed"), detail::metadata_u64(f, "ctdl.rng.stream"),
                       detail::metadata_u64(f, "ctdl.rng.counter")};
    const auto lr_it = f.metadata().find("ctdl.lr");
    if (lr_it == f.metadata().end()) f.fail("checkpoint metadata has no \"ctdl.lr\"");
    char* end = nullptr;
    const double lr = std::strtod(lr_it->second.c_str(), &end);
    if (end == lr_it->second.c_str() || *end != '\0' || !(lr >= 0))
        f.fail("checkpoint metadata \"ctdl.lr\" is not a learning rate: \"" + lr_it->second + "\"");
    info.metadata = f.metadata();
    // Then apply.
    ctdl::detail::copy_parameters_in(net, std::span<const T>(flat));
    for (const auto& [name, values] : state) optim::state_from_host(opt, name, std::span<const T>(values));
    opt.set_step_count(opt_steps);
    opt.set_lr(static_cast<T>(lr));
    data_rng.set_state(rs);
    return info;
}

}  // namespace ctdl::train
