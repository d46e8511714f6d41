#pragma once
// LoRA models and the files around them (nn/lora.hpp for the layer and ctdl::with_lora):
//
//   using tuned = ctdl::with_lora<gpt2_small, ctdl::lora::config<8, 16>, "attn.c_attn", "attn.c_proj">;
//   ctdl::model<tuned> net{ctdl::seed{1}};
//   ctdl::lora::load_base(net, "gpt2/model.safetensors");    // the pretrained weights; adapters as initialised
//   ... train ...
//   ctdl::lora::save_adapter(net, "adapter/", {.base_model = "gpt2"});   // peft's adapter directory
//   ctdl::lora::load_adapter(net, "adapter/");                // one written by ctdl or by peft
//   auto deployed = ctdl::lora::merge(net);                   // model<frozen<base architecture>>
//
// An adapter directory is peft's: adapter_model.safetensors with the adapter parameters only,
// named "base_model.model." + ctdl's name ("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
// as peft.PeftModel saves them), and adapter_config.json (peft_type LORA, r, lora_alpha,
// lora_dropout, target_modules: the adapted parts' paths, fan_in_fan_out for Conv1D bases).
// Loading checks the config against the type (r, lora_alpha, no rslora or DoRA) and the file
// against the adapter parameters (every one present, nothing else, shapes and dtypes), and
// changes nothing when either does not fit.
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../graph/frozen.hpp"
#include "../graph/rewrite.hpp"
#include "../model/model.hpp"
#include "../nn/lora.hpp"
#include "file_io.hpp"
#include "json.hpp"
#include "safetensors.hpp"
#include "snapshot.hpp"

namespace ctdl::lora {

/// Whether a parameter name is an adapter's ("...lora_A.weight", "...lora_B.weight").
constexpr bool is_adapter_parameter(std::string_view name) {
    for (std::string_view leaf : {std::string_view("lora_A.weight"), std::string_view("lora_B.weight")})
        if (name == leaf || (name.size() > leaf.size() && name.substr(name.size() - leaf.size()) == leaf &&
                             name[name.size() - leaf.size() - 1] == '.'))
            return true;
    return false;
}
inline bool is_base_parameter(std::string_view name) { return !is_adapter_parameter(name); }

/// The prefix peft gives every adapter tensor in its file.
inline constexpr std::string_view peft_prefix = "base_model.model.";

namespace detail {

/// The LoRA configs of A's adapted parts, checked to be one config.
template <class A>
struct adapter_shape {
    static constexpr auto find() {
        struct result {
            std::size_t parts = 0, rank = 0, alpha = 0;
            double dropout = 0;
            bool one_config = true, all_conv1d = true;
        } r;
        auto f = [&]<class P>(std::size_t) {
            if constexpr (requires { P::is_lora_adapter; }) {
                using C = typename P::config;
                if (r.parts > 0 && (C::rank != r.rank || C::alpha != r.alpha || C::dropout != r.dropout))
                    r.one_config = false;
                r.rank = C::rank, r.alpha = C::alpha, r.dropout = C::dropout;
                r.all_conv1d = r.all_conv1d && P::base_layer::in_out;
                ++r.parts;
            }
        };
        graph::for_each_part<A>(f, 0);
        return r;
    }
    static constexpr auto value = find();
};

/// Named after the mistake, with the architecture in its name.
template <class A>
struct lora_model_must_have_adapters_of_one_config {
    static_assert(adapter_shape<A>::value.parts > 0,
                  "lora: the model has no LoRA adapter (make its type with ctdl::with_lora or nn::lora)");
    static_assert(adapter_shape<A>::value.parts == 0 || adapter_shape<A>::value.one_config,
                  "lora: an adapter file holds one config (r, alpha, dropout); this model's adapters differ");
    static constexpr bool value = adapter_shape<A>::value.parts > 0 && adapter_shape<A>::value.one_config;
};

/// The paths of the adapted parts, in parameter order ("transformer.h.0.attn.c_attn", ...).
template <class M>
std::vector<std::string> adapted_parts() {
    std::vector<std::string> out;
    for (const auto& p : M::parameter_table()) {
        const std::string_view n = p.name;
        constexpr std::string_view a = "lora_A.weight";
        if (n.size() >= a.size() && n.substr(n.size() - a.size()) == a && is_adapter_parameter(n))
            out.emplace_back(n.substr(0, n.size() > a.size() ? n.size() - a.size() - 1 : 0));
    }
    return out;
}

/// Strips adapters (their base in their place) and unfreezes: the architecture a merged model has.
struct strip_rule {
    static constexpr bool counts_inside_frozen = false;
    template <class L, fixed_string>
    static auto on();
    template <class L, fixed_string>
    using leaf = L;
};
template <class X>
struct unfrozen {};
template <class X>
struct unfrozen<frozen<X>> {
    using type = X;
};
template <class L, fixed_string Path>
auto strip_rule::on() {
    if constexpr (requires { L::is_lora_adapter; }) return graph::replace<typename L::base_layer>{};
    else if constexpr (requires { typename unfrozen<L>::type; })
        return graph::replace<typename graph::rewrite<typename unfrozen<L>::type, strip_rule>::type>{};
    else return graph::descend{};
}

inline std::string config_path_text(const std::filesystem::path& dir) { return (dir / "adapter_config.json").string(); }

}  // namespace detail

/// The architecture A is with its adapters folded into their bases and nothing frozen.
template <class A>
using base_of = typename graph::rewrite<A, detail::strip_rule>::type;

/// What save_adapter writes into adapter_config.json besides what the type fixes.
struct adapter_options {
    std::string base_model;              ///< base_model_name_or_path ("gpt2", a directory, ...)
    std::string task_type = "CAUSAL_LM";  ///< peft's task type
};

/// Loads a pretrained snapshot of the base architecture (every parameter but the adapters',
/// names unchanged) into a LoRA model; the adapters keep their values. Nothing changes if the
/// file does not fit.
template <class M>
void load_base(M& model, const std::filesystem::path& path) {
    load_into(model, safetensors::read(path), read_options{.select = &is_base_parameter});
}

/// Writes model's adapters as peft's adapter directory (created if missing): see the header.
template <class M>
void save_adapter(const M& model, const std::filesystem::path& dir, const adapter_options& o = {}) {
    using A = typename M::arch_type;
    static_assert(detail::lora_model_must_have_adapters_of_one_config<A>::value);
    constexpr auto shape = detail::adapter_shape<A>::value;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw error("lora::save_adapter: cannot create '" + dir.string() + "': " + ec.message());

    std::vector<typename M::value_type> flat(M::parameter_count);
    ctdl::detail::copy_parameters_out(model, std::span(flat));
    safetensors::writer w;
    for (const auto& p : M::parameter_table())
        if (is_adapter_parameter(p.name))
            w.add(std::string(peft_prefix) + p.name, p.shape,
                  std::span<const typename M::value_type>(flat).subspan(p.offset, p.size));
    w.metadata()["format"] = "pt";

    std::string cfg = "{\n";
    const auto field = [&](std::string_view key, const std::string& json_value) {
        if (cfg.size() > 2) cfg += ",\n";
        cfg += "  ";
        json::write_string(cfg, key);
        cfg += ": " + json_value;
    };
    const auto str = [](std::string_view s) {
        std::string out;
        json::write_string(out, s);
        return out;
    };
    std::string targets = "[";
    for (const auto& t : detail::adapted_parts<M>()) targets += (targets.size() > 1 ? ", " : "") + str(t);
    targets += "]";
    char dropout[32];
    std::snprintf(dropout, sizeof dropout, "%.17g", shape.dropout);
    std::string dropout_text = dropout;
    if (dropout_text.find_first_of(".e") == std::string::npos) dropout_text += ".0";
    field("peft_type", str("LORA"));
    field("task_type", str(o.task_type));
    field("base_model_name_or_path", o.base_model.empty() ? "null" : str(o.base_model));
    field("r", std::to_string(shape.rank));
    field("lora_alpha", std::to_string(shape.alpha));
    field("lora_dropout", dropout_text);
    field("target_modules", targets);
    field("fan_in_fan_out", shape.all_conv1d ? "true" : "false");
    field("bias", str("none"));
    field("use_rslora", "false");
    field("use_dora", "false");
    field("init_lora_weights", "true");
    field("inference_mode", "true");
    field("modules_to_save", "null");
    field("rank_pattern", "{}");
    field("alpha_pattern", "{}");
    cfg += "\n}\n";

    w.write(dir / "adapter_model.safetensors");
    ctdl::detail::atomic_write(dir / "adapter_config.json", [&](auto&& write) { write(cfg.data(), cfg.size()); });
}

/// Loads an adapter directory (peft's, or one save_adapter wrote) into model's adapters;
/// nothing changes if the config or the tensors do not fit the type.
template <class M>
void load_adapter(M& model, const std::filesystem::path& dir) {
    using A = typename M::arch_type;
    static_assert(detail::lora_model_must_have_adapters_of_one_config<A>::value);
    constexpr auto shape = detail::adapter_shape<A>::value;
    const std::string where = detail::config_path_text(dir);
    const auto bytes = ctdl::detail::read_file(dir / "adapter_config.json");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    json::value cfg;
    try {
        cfg = json::parse(text);
    } catch (const ctdl::error& e) {
        throw error("lora::load_adapter: '" + where + "': " + e.what());
    }
    const auto fail = [&](const std::string& why) { throw error("lora::load_adapter: '" + where + "': " + why); };
    if (!cfg.is_object()) fail("the file is not a JSON object");
    const auto string_field = [&](std::string_view key) -> const std::string* {
        const json::value* v = cfg.find(key);
        if (!v || v->kind == json::kind::null) return nullptr;
        if (!v->is_string()) fail("field \"" + std::string(key) + "\" must be a string");
        return &v->text;
    };
    const auto integer_field = [&](std::string_view key) -> std::uint64_t {
        const json::value* v = cfg.find(key);
        if (!v) fail("field \"" + std::string(key) + "\" is missing");
        if (const auto n = v->as_u64()) return *n;
        if (v->is_number())
            if (const auto d = parse_number<double>(v->text); d && *d >= 0 && *d < 1e15 && std::floor(*d) == *d)
                return static_cast<std::uint64_t>(*d);
        fail("field \"" + std::string(key) + "\" must be a non-negative whole number, not " + ctdl::detail::quote(v->text, 40));
        return 0;
    };
    const auto flag_off = [&](std::string_view key) {
        const json::value* v = cfg.find(key);
        if (!v || v->kind == json::kind::null) return;
        if (v->kind != json::kind::boolean) fail("field \"" + std::string(key) + "\" must be true or false");
        if (v->boolean) fail("field \"" + std::string(key) + "\" is true: ctdl's LoRA has no such variant");
    };
    const std::string* type = string_field("peft_type");
    if (!type) fail("field \"peft_type\" is missing");
    if (*type != "LORA") fail("peft_type is " + ctdl::detail::quote(*type, 40) + ", not \"LORA\"");
    if (const std::uint64_t r = integer_field("r"); r != shape.rank)
        fail("r is " + std::to_string(r) + ", the model's adapters have rank " + std::to_string(shape.rank));
    if (const std::uint64_t a = integer_field("lora_alpha"); a != shape.alpha)
        fail("lora_alpha is " + std::to_string(a) + ", the model's adapters have alpha " + std::to_string(shape.alpha));
    flag_off("use_rslora");
    flag_off("use_dora");
    if (const std::string* bias = string_field("bias"); bias && *bias != "none")
        fail("bias is " + ctdl::detail::quote(*bias, 40) + ": only \"none\" (no trained biases) is supported");
    for (std::string_view key : {"rank_pattern", "alpha_pattern"})
        if (const json::value* v = cfg.find(key); v && !(v->is_object() && v->items.empty()) && v->kind != json::kind::null)
            fail("field \"" + std::string(key) + "\" must be empty: the model's adapters share one r and alpha");

    load_into(model, safetensors::read(dir / "adapter_model.safetensors"),
              read_options{.prefix = peft_prefix, .select = &is_adapter_parameter});
}

/// model<frozen<Target>> with each adapter folded into its base, W + (alpha / r) B A (for a
/// Conv1D base, its transpose added to W [In, Out]). Target is base_of<A> unless given; it
/// must have the same parameters (names and shapes) as A without its adapters.
template <class Target = void, class M>
auto merge(const M& model) {
    using A = typename M::arch_type;
    using T = typename M::value_type;
    using Exec = typename M::exec_type;
    using target_arch = std::conditional_t<std::is_void_v<Target>, base_of<A>, Target>;
    using R = ctdl::model<frozen<target_arch>, Exec, T>;
    static_assert(detail::lora_model_must_have_adapters_of_one_config<A>::value);
    static_assert(R::parameter_count == M::parameter_count - [] {
        std::size_t n = 0;
        auto f = [&]<class P>(std::size_t) {
            if constexpr (requires { P::is_lora_adapter; }) n += P::adapter_parameters;
        };
        graph::for_each_part<A>(f, 0);
        return n;
    }(), "lora::merge<Target>: Target must have the parameters of the LoRA model's base architecture");

    std::vector<T> src(M::parameter_count), dst(R::parameter_count);
    ctdl::detail::copy_parameters_out(model, std::span(src));
    std::size_t read = 0, written = 0;  // src consumed, dst filled
    auto fold = [&]<class P>(std::size_t at) {
        if constexpr (requires { P::is_lora_adapter; }) {
            constexpr std::size_t In = P::In, Out = P::Out, Rank = P::Rank;
            const std::size_t base_end = at + P::base_parameters;
            std::copy(src.begin() + read, src.begin() + base_end, dst.begin() + written);
            T* w = dst.data() + written + (at - read);
            const T* a = src.data() + base_end;
            const T* b = a + Rank * In;
            const double s = P::config::scaling;
            for (std::size_t o = 0; o < Out; ++o)
                for (std::size_t i = 0; i < In; ++i) {
                    double d = 0;
                    for (std::size_t r = 0; r < Rank; ++r) d += static_cast<double>(b[o * Rank + r]) * a[r * In + i];
                    T& wi = P::base_layer::in_out ? w[i * Out + o] : w[o * In + i];
                    wi = static_cast<T>(static_cast<double>(wi) + s * d);
                }
            written += base_end - read;
            read = at + P::parameter_count;
        }
    };
    graph::for_each_part<A>(fold, 0);
    std::copy(src.begin() + read, src.end(), dst.begin() + written);

    // The names and shapes must be the base's: those of A without its adapters, in order.
    const auto& from = M::parameter_table();
    const auto& to = R::parameter_table();
    std::size_t j = 0;
    for (const auto& p : from) {
        if (is_adapter_parameter(p.name)) continue;
        if (j >= to.size() || to[j].name != p.name || to[j].shape != p.shape)
            throw error("lora::merge: the target architecture's parameter " +
                        (j < to.size() ? "'" + to[j].name + "'" : std::string("list")) + " does not match the base's '" +
                        p.name + "'");
        ++j;
    }
    R out;
    ctdl::detail::copy_parameters_in(out, std::span<const T>(dst));
    return out;
}

}  // namespace ctdl::lora
