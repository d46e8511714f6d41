#pragma once
// Snapshots: a model's parameters in a safetensors file, with PyTorch state_dict names
// and layouts, so weights move between ctdl and PyTorch unchanged.
//
//   ctdl::save(net, "net.safetensors", {{"step", "300"}});      // atomic
//   auto frozen = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>("net.safetensors");
//   ctdl::load_into(net, "net.safetensors");                     // into an existing model
//
// Metadata (the tokenizer, the step, ...), without loading the tensors or with them:
//   ctdl::metadata meta = ctdl::snapshot_metadata("net.safetensors");   // reads only the header
//   std::string tok = ctdl::snapshot_metadata("net.safetensors", "tokenizer");  // ctdl::error if absent
//   auto tokenizer = ctdl::data::char_tokenizer::from_string(ctdl::snapshot_metadata(path, "tokenizer"));
//   ctdl::metadata meta2;
//   auto net2 = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>("net.safetensors", meta2);
//
// save also writes a checksum of the tensor data (metadata "ctdl.checksum", ctdl64x8:
// io/checksum.hpp); every read checks it when it is there ("checksum mismatch", naming the
// file) and does without when it is not (files from PyTorch). snapshot_metadata and
// load(path, meta) return the metadata without it, so it round-trips through save, which
// refuses keys starting with "ctdl." (ctdl's own, also used by checkpoints).
//
// Loading checks every name, dtype and shape against the model's parameter table and
// throws ctdl::error naming the file, the tensor, and what was expected against what
// was found; a file is never partly loaded (the model is untouched when loading fails).
// A float model reads F32 tensors, and F16 and BF16 ones widened exactly (bf16: the top
// 16 bits of the float; f16: every finite half exactly, infinities, NaN payloads with the
// quiet bit set, as torch's .to(torch.float32)); a double model reads only F64. Nothing
// else is converted (F64 does not narrow into float, F32 does not widen into double).
//
// Without a copy: an inference-only model over a mapped snapshot, or over an image in the
// program (the file's bytes, e.g. #embed), checked against the type as load checks it:
//   auto net = ctdl::map_frozen<ctdl::model<ctdl::frozen<mlp>>>("net.safetensors");
//   auto net2 = ctdl::view_frozen<ctdl::model<ctdl::frozen<mlp>>>(std::as_bytes(std::span(image)));
// Their parameters() point into the file's bytes, which must be M's dtype in M's flat order
// (what save writes); another order or dtype is refused (ctdl::load copies and converts).
//
// Lower level, for checkpoints that store more than the model (optimizer state, ...):
//   add_parameters<M>(writer, host_copy, "model.")   and
//   read_parameters<M>(file, host_copy, {.prefix = "model.", .allow_unexpected = true}).
#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../core/parameter_info.hpp"
#include "mapped_file.hpp"
#include "safetensors.hpp"

namespace ctdl {

/// What save and load need from a model: a parameter table in state_dict order and a
/// flat parameter buffer of parameter_count elements of a safetensors element type.
template <class M>
concept snapshot_model = requires(M& m, const M& cm) {
    typename M::value_type;
    { M::parameter_table() } -> std::same_as<const std::vector<parameter_info>&>;
    { m.parameters() } -> std::same_as<typename M::value_type*>;
    { cm.parameters() } -> std::same_as<const typename M::value_type*>;
    { M::parameter_count } -> std::convertible_to<std::size_t>;
} && safetensors::element<typename M::value_type>;

/// Options for read_parameters.
struct read_options {
    std::string_view prefix;        ///< tensor names are prefix + parameter name
    bool allow_unexpected = false;  ///< ignore tensors that are not the model's parameters
    /// The parameters read (by name): those for which select is true, all when it is null.
    /// The others keep their values, and a tensor of theirs in the file is unexpected.
    bool (*select)(std::string_view name) = nullptr;
};

namespace detail {

// Every transfer of a model's parameters between its buffer and host memory goes
// through these two functions; a device execution policy adds its copy here.
template <snapshot_model M>
void copy_parameters_out(const M& model, std::span<typename M::value_type> out) {
    const auto* p = model.parameters();
    if constexpr (requires { typename M::exec_type; requires !M::exec_type::host_accessible; })
        M::exec_type::copy_to_host(p, out.data(), out.size());
    else
        std::copy(p, p + out.size(), out.begin());
}

template <snapshot_model M>
void copy_parameters_in(M& model, std::span<const typename M::value_type> in) {
    if constexpr (requires { typename M::exec_type; requires !M::exec_type::host_accessible; })
        M::exec_type::copy_from_host(in.data(), model.parameters(), in.size());
    else
        std::copy(in.begin(), in.end(), model.parameters());
}

template <snapshot_model M>
void check_flat_buffer(std::size_t size, const char* who) {
    if (size != M::parameter_count)
        throw error(std::string(who) + ": the buffer has " + std::to_string(size) + " elements, the model has " +
                    std::to_string(M::parameter_count) + " parameters");
    for (const auto& p : M::parameter_table()) {
        std::size_t n = 1;
        for (const std::size_t d : p.shape) n *= d;
        if (n != p.size || p.offset > M::parameter_count || p.size > M::parameter_count - p.offset)
            throw std::logic_error("model parameter table: entry '" + p.name + "' does not fit the buffer");
    }
}

/// What M's architecture says of a tensor that is not one of its parameters (name without
/// the prefix): Arch::ignored_tensor(name), a buffer to skip (GPT-2's causal masks), and
/// Arch::tied_tensor(name), the parameter it is another name for ("" when none; a tied
/// head stored once more), which it must then equal.
template <class M>
bool arch_ignores(std::string_view name) {
    if constexpr (requires { { M::arch_type::ignored_tensor(name) } -> std::convertible_to<bool>; })
        return M::arch_type::ignored_tensor(name);
    else
        return false;
}
template <class M>
std::string_view arch_tied_to(std::string_view name) {
    if constexpr (requires { { M::arch_type::tied_tensor(name) } -> std::convertible_to<std::string_view>; })
        return M::arch_type::tied_tensor(name);
    else
        return {};
}

}  // namespace detail

/// Adds every parameter of M, read from flat (a host copy of the model's parameter
/// buffer), to w as prefix + name. flat must outlive w.write().
template <snapshot_model M>
void add_parameters(safetensors::writer& w, std::span<const typename M::value_type> flat,
                    std::string_view prefix = {}) {
    detail::check_flat_buffer<M>(flat.size(), "ctdl::add_parameters");
    for (const auto& p : M::parameter_table())
        w.add(std::string(prefix) + p.name, p.shape, flat.subspan(p.offset, p.size));
}

namespace detail {

/// The tensors of f that are M's parameters, in parameter-table order, checked as
/// read_parameters documents (names, dtypes that load_as M's element type, shapes).
template <snapshot_model M>
std::vector<const safetensors::tensor_info*> match_parameters(const safetensors::file& f, const read_options& options) {
    using T = typename M::value_type;
    const auto& table = M::parameter_table();

    const auto selected = [&](std::string_view name) { return !options.select || options.select(name); };
    const auto expected_name = [&](std::string_view name) {
        if (name.substr(0, options.prefix.size()) != options.prefix) return false;
        name.remove_prefix(options.prefix.size());
        for (const auto& p : table)
            if (p.name == name) return selected(name);
        return false;
    };
    std::vector<const safetensors::tensor_info*> unexpected, tied;
    const auto unprefixed = [&](std::string_view name) {
        return name.substr(0, options.prefix.size()) == options.prefix ? name.substr(options.prefix.size())
                                                                        : std::string_view();
    };
    for (const auto& t : f.tensors())
        if (expected_name(t.name)) continue;
        else if (!unprefixed(t.name).empty() && detail::arch_ignores<M>(unprefixed(t.name))) continue;
        else if (!unprefixed(t.name).empty() && !detail::arch_tied_to<M>(unprefixed(t.name)).empty()) tied.push_back(&t);
        else unexpected.push_back(&t);
    const auto describe = [](const safetensors::tensor_info& t) {
        std::string d = "'";  // (not "'" + clip(...): GCC 12 warns -Wrestrict on that, wrongly)
        d += ctdl::detail::clip(t.name);
        d += "' (" + std::string(to_string(t.type)) + " " + safetensors::detail::shape_string(t.shape) + ")";
        return d;
    };

    std::vector<const safetensors::tensor_info*> found;
    for (const auto& p : table) {
        if (!selected(p.name)) {
            found.push_back(nullptr);
            continue;
        }
        const std::string name = std::string(options.prefix) + p.name;
        if (!f.find(name) && !unexpected.empty() && !options.allow_unexpected)
            f.fail("missing tensor '" + name + "' (expected " + safetensors::loadable_dtypes<T>() + " " + safetensors::detail::shape_string(p.shape) + "); the file has " +
                   std::to_string(unexpected.size()) + " tensor(s) the model does not have, e.g. " +
                   describe(*unexpected.front()));
        found.push_back(&f.expect_loadable<T>(name, p.shape));
    }
    if (!options.allow_unexpected && !unexpected.empty())
        f.fail("unexpected tensor " + describe(*unexpected.front()) + ": the model has no parameter of that name");

    // A tied tensor: the parameter's dtype and shape, and exactly its values.
    for (const auto* t : tied) {
        const std::string to = std::string(options.prefix) + std::string(detail::arch_tied_to<M>(unprefixed(t->name)));
        for (std::size_t i = 0; i < table.size(); ++i) {
            if (std::string(options.prefix) + table[i].name != to || !found[i]) continue;
            const auto& same = f.expect_loadable<T>(t->name, table[i].shape);
            std::vector<T> a(table[i].size), b(table[i].size);
            same.convert_to(std::span<T>(a));
            found[i]->convert_to(std::span<T>(b));
            for (std::size_t k = 0; k < a.size(); ++k)
                if (!(a[k] == b[k]))
                    f.fail("tensor " + describe(*t) + " is tied to '" + to + "' and must equal it, but differs at element " +
                           std::to_string(k));
        }
    }
    return found;
}

}  // namespace detail

/// Checks that f holds exactly M's parameters (as prefix + name; others only if
/// allow_unexpected) with M's dtype (or F16/BF16 for a float model) and shapes, then copies
/// them into flat. On error flat is untouched.
template <snapshot_model M>
void read_parameters(const safetensors::file& f, std::span<typename M::value_type> flat,
                     const read_options& options = {}) {
    detail::check_flat_buffer<M>(flat.size(), "ctdl::read_parameters");
    const auto found = detail::match_parameters<M>(f, options);
    const auto& table = M::parameter_table();
    for (std::size_t i = 0; i < table.size(); ++i)
        if (found[i]) found[i]->convert_to(flat.subspan(table[i].offset, table[i].size));
}

/// M's flat parameter buffer as it lies in f's data section, for a model that computes from
/// the file's bytes without a copy (model::over). f must hold exactly M's parameters (as
/// read_parameters checks), each in M's own dtype at its offset in M's flat layout (the
/// order ctdl::save writes), on a little-endian machine, with the data section aligned for
/// M's element type. Anything else is a ctdl::error naming the file and saying why, and
/// that ctdl::load (which copies, and converts F16/BF16) reads it.
template <snapshot_model M>
std::span<const typename M::value_type> parameters_in_place(const safetensors::file& f) {
    using T = typename M::value_type;
    detail::check_flat_buffer<M>(M::parameter_count, "ctdl::parameters_in_place");
    const auto found = detail::match_parameters<M>(f, {});
    const auto& table = M::parameter_table();
    const std::string use_load = ": it cannot be used in place; use ctdl::load, which copies";
    if constexpr (std::endian::native != std::endian::little)
        f.fail("in-place parameters need a little-endian machine (the file's byte order)" + use_load);
    for (std::size_t i = 0; i < table.size(); ++i) {
        const auto& t = *found[i];
        if (t.type != safetensors::dtype_of<T>)
            f.fail("tensor '" + ctdl::detail::clip(t.name) + "' is " + std::string(to_string(t.type)) +
                   ", not the model's " + std::string(to_string(safetensors::dtype_of<T>)) + use_load +
                   " (and converts)");
        const std::uint64_t at = std::uint64_t{table[i].offset} * sizeof(T);
        if (t.begin != at)
            f.fail("tensor '" + ctdl::detail::clip(t.name) + "' lies at data bytes [" + std::to_string(t.begin) + ", " +
                   std::to_string(t.end) + "), the model's flat layout at [" + std::to_string(at) + ", " +
                   std::to_string(at + t.bytes.size()) + ") (the tensors are in another order)" + use_load);
    }
    const auto data = f.data_section();
    if (data.size() != M::parameter_count * sizeof(T))
        f.fail("the data section has " + std::to_string(data.size()) + " bytes, the model's parameters " +
               std::to_string(M::parameter_count * sizeof(T)) + use_load);
    if (reinterpret_cast<std::uintptr_t>(data.data()) % alignof(T) != 0)
        f.fail("the data section is not aligned to " + std::to_string(alignof(T)) + " bytes in memory" + use_load +
               " (or align the image: alignas(64))");
    // The bytes are T objects in the file's (little-endian = native) representation.
    return {reinterpret_cast<const T*>(data.data()), M::parameter_count};
}

namespace detail {
/// The prefix of the metadata keys that ctdl writes itself ("ctdl.checksum"; checkpoints'
/// "ctdl.step", ...): save refuses it in the caller's metadata.
inline constexpr std::string_view reserved_metadata_prefix = "ctdl.";

/// A snapshot's metadata as its writer gave it: without the checksum that save added.
inline metadata user_metadata(metadata m) {
    m.erase(std::string(checksum_key));
    return m;
}
}  // namespace detail

/// Writes model's parameters to path as a safetensors file, atomically (temporary
/// file in the same directory, fsync, rename), with meta and the data's checksum
/// (metadata "ctdl.checksum", checked by every load). Throws ctdl::error naming path, also
/// for a key of meta that starts with "ctdl." (reserved for ctdl's own entries).
template <snapshot_model M>
void save(const M& model, const std::filesystem::path& path, const metadata& meta = {}) {
    for (const auto& entry : meta)
        if (entry.first.starts_with(detail::reserved_metadata_prefix))
            throw error("cannot write '" + path.string() + "': metadata key " + ctdl::detail::quote(entry.first, 40) +
                        " is reserved (keys starting with \"ctdl.\" are ctdl's own)");
    std::vector<typename M::value_type> flat(M::parameter_count);
    detail::copy_parameters_out(model, std::span(flat));
    safetensors::writer w;
    add_parameters<M>(w, flat);
    w.metadata() = meta;
    w.with_checksum();
    w.write(path);
}

/// Loads the parameters in f into model; model is untouched if f does not fit it.
template <snapshot_model M>
void load_into(M& model, const safetensors::file& f, const read_options& options = {}) {
    std::vector<typename M::value_type> flat(M::parameter_count);
    detail::copy_parameters_out(model, std::span(flat));  // keeps anything not in the table
    read_parameters<M>(f, flat, options);
    detail::copy_parameters_in(model, std::span<const typename M::value_type>(flat));
}

/// Loads the snapshot at path into model; model is untouched if loading fails.
template <snapshot_model M>
void load_into(M& model, const std::filesystem::path& path) {
    load_into(model, safetensors::read(path));
}

/// A new model (default-constructed, then loaded) with the parameters in path.
template <snapshot_model M>
    requires std::default_initializable<M>
M load(const std::filesystem::path& path) {
    const safetensors::file f = safetensors::read(path);  // validate before constructing
    M model{};
    load_into(model, f);
    return model;
}

/// As load(path), and sets metadata_out to the snapshot's metadata (only on success): what
/// save was given, without the checksum it added.
template <snapshot_model M>
    requires std::default_initializable<M>
M load(const std::filesystem::path& path, metadata& metadata_out) {
    const safetensors::file f = safetensors::read(path);
    M model{};
    load_into(model, f);
    metadata_out = detail::user_metadata(f.metadata());
    return model;
}

/// What can be built over borrowed parameters: model<frozen<A>, cpu, T> (model::over).
template <class M>
concept borrowing_model = snapshot_model<M> && requires(std::span<const typename M::value_type> p,
                                                       std::shared_ptr<const void> keep) {
    { M::over(p, keep) } -> std::same_as<M>;
};

/// An inference-only model computing from a snapshot image in memory (the whole file's
/// bytes: an image embedded in the program, a buffer the caller keeps) without copying its
/// parameters. The image is checked as load checks a file (names, shapes, dtypes and the
/// checksum when there is one) and must be usable in place (parameters_in_place: written
/// by ctdl::save for this architecture and dtype). image must outlive the model and its
/// copies, or keep_alive must keep it alive. origin names the image in messages.
///   alignas(64) static const unsigned char image[] = { #embed "net.safetensors" };
///   auto net = ctdl::view_frozen<ctdl::model<ctdl::frozen<mlp>>>(std::as_bytes(std::span(image)));
template <borrowing_model M>
M view_frozen(std::span<const std::byte> image, std::string origin = "<embedded image>",
              std::shared_ptr<const void> keep_alive = {}) {
    const safetensors::file f = safetensors::view(image, std::move(origin));
    return M::over(parameters_in_place<M>(f), std::move(keep_alive));
}

/// An inference-only model computing from the snapshot at path, mapped read-only into
/// memory (mapped_file): checked as view_frozen checks an image; the model and its copies
/// keep the mapping, which is unmapped when the last of them is gone. A file that cannot be
/// used in place is refused with a message saying why (use ctdl::load for it).
///   auto net = ctdl::map_frozen<ctdl::model<ctdl::frozen<mlp>>>("net.safetensors");
template <borrowing_model M>
M map_frozen(const std::filesystem::path& path, map_options options = {.will_need = true}) {
    auto mapping = std::make_shared<const mapped_file>(path, options);
    const auto bytes = mapping->bytes();
    return view_frozen<M>(bytes, path.string(), std::move(mapping));
}

/// The metadata of the snapshot at path (its "__metadata__" without save's "ctdl.checksum";
/// empty if it has none). Reads only the header, and checks it as load does (a file load
/// would refuse is refused here, but for a checksum mismatch: the data is not read).
inline metadata snapshot_metadata(const std::filesystem::path& path) {
    return detail::user_metadata(safetensors::detail::read_header_only(path).metadata);
}

/// The metadata entry key of the snapshot at path; ctdl::error naming the file and the key
/// if it has none. E.g. the tokenizer a training run stored:
///   auto tok = ctdl::data::char_tokenizer::from_string(ctdl::snapshot_metadata(path, "tokenizer"));
inline std::string snapshot_metadata(const std::filesystem::path& path, std::string_view key) {
    metadata m = snapshot_metadata(path);
    const auto it = m.find(std::string(key));
    if (it == m.end()) {
        std::string have;
        for (const auto& [k, v] : m) {
            if (have.size() > 120) {
                have += ", ...";
                break;
            }
            have += (have.empty() ? "" : ", ") + ctdl::detail::quote(k, 40);
        }
        safetensors::detail::fail_in(path.string(), "no metadata entry " + ctdl::detail::quote(key) + " (it has " +
                                                        (have.empty() ? std::string("none") : have) + ")");
    }
    return std::move(it->second);
}

}  // namespace ctdl
