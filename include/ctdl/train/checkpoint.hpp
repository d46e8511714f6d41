#pragma once
// Checkpoints: everything a training run needs to continue bitwise identically, in one
// safetensors snapshot written atomically.
//
//   tensors   "model.<name>"   the parameters (PyTorch names and layouts)
//             "optim.<name>"   the optimizer's state buffers (exp_avg, exp_avg_sq, ...)
//   metadata  ctdl.step, ctdl.optimizer_steps, ctdl.lr, ctdl.rng.{seed,stream,counter}
//             (the data sampler's position), plus any entries the caller adds
// The numbers are parsed strictly (ctdl::parse_number): a step of 2^64 or an lr of "inf",
// "1e300", "1e-300", " 0.25" or "0x1p-2" is refused with a ctdl::error naming the field.
// Loading reads and checks the whole file before it changes anything, so a bad checkpoint
// leaves the model, the optimizer and the generator as they were.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../io/snapshot.hpp"
#include "../io/text.hpp"
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
    w.with_checksum();  // checked when the checkpoint is read
    w.write(path);
}

namespace detail {

/// The checkpoint's metadata entry key as a T (parse_number's strict form); ctdl::error
/// naming the file and the field when it is absent or not a T. range describes what is
/// accepted, for the message.
template <class T>
T checkpoint_number(const safetensors::file& f, const std::string& key, const char* range) {
    const auto it = f.metadata().find(key);
    if (it == f.metadata().end()) f.fail("checkpoint metadata has no \"" + key + "\"");
    const std::optional<T> v = parse_number<T>(it->second);
    if (!v) f.fail("checkpoint metadata \"" + key + "\" is not " + range + ": " + ctdl::detail::quote(it->second));
    return *v;
}

}  // namespace detail

/// Restores net, opt and data_rng from the checkpoint f; returns its step and metadata.
/// Everything is read and checked before anything changes: on ctdl::error, net, opt and
/// data_rng are as they were.
template <class Model, class Optimizer>
checkpoint_info load_checkpoint(const safetensors::file& f, Model& net, Optimizer& opt, rng& data_rng) {
    using T = typename Model::value_type;
    // Read and check everything first.
    std::vector<T> flat(Model::parameter_count);
    read_parameters<Model>(f, std::span<T>(flat), {.prefix = "model.", .allow_unexpected = true});
    std::vector<std::pair<std::string, std::vector<T>>> state = optim::state_to_host(opt);
    for (auto& [name, values] : state) {
        const std::size_t shape[] = {values.size()};
        f.read<T>("optim." + name, shape, std::span<T>(values));
    }
    constexpr const char* whole = "a whole number in [0, 2^64)";
    checkpoint_info info;
    info.step = detail::checkpoint_number<std::uint64_t>(f, "ctdl.step", whole);
    const auto opt_steps = detail::checkpoint_number<std::uint64_t>(f, "ctdl.optimizer_steps", whole);
    const rng_state rs{detail::checkpoint_number<std::uint64_t>(f, "ctdl.rng.seed", whole),
                       detail::checkpoint_number<std::uint64_t>(f, "ctdl.rng.stream", whole),
                       detail::checkpoint_number<std::uint64_t>(f, "ctdl.rng.counter", whole)};
    const char* lr_range = sizeof(T) == 4 ? "a learning rate (a decimal number >= 0 that a float holds)"
                                          : "a learning rate (a decimal number >= 0 that a double holds)";
    const T lr = detail::checkpoint_number<T>(f, "ctdl.lr", lr_range);
    if (std::signbit(lr))
        f.fail("checkpoint metadata \"ctdl.lr\" is not " + std::string(lr_range) + ": " +
               ctdl::detail::quote(f.metadata().at("ctdl.lr")));
    info.metadata = f.metadata();
    // Then apply; set_lr first, as it is the one step that may still refuse.
    opt.set_lr(lr);
    ctdl::detail::copy_parameters_in(net, std::span<const T>(flat));
    for (const auto& [name, values] : state) optim::state_from_host(opt, name, std::span<const T>(values));
    opt.set_step_count(opt_steps);
    data_rng.set_state(rs);
    return info;
}

/// Restores net, opt and data_rng from the checkpoint at path; returns its step and metadata.
template <class Model, class Optimizer>
checkpoint_info load_checkpoint(const std::filesystem::path& path, Model& net, Optimizer& opt, rng& data_rng) {
    return load_checkpoint(safetensors::read(path), net, opt, data_rng);
}

}  // namespace ctdl::train
