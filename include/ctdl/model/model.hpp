#pragma once
// model<Arch, Exec, T>: the state of a network whose architecture is the type Arch.
//
// A model owns one flat parameter buffer (PyTorch state_dict order, compile-time offsets),
// a gradient buffer for the trainable parameters only (none for model<frozen<A>>), and
// activation storage per input shape, allocated on first use: after warm-up, a training
// step allocates nothing.
//
//   ctdl::model<mlp> net{ctdl::seed{7}};
//   auto y = net.forward(x);                      // inference: a new tensor
//   auto& acts = net.activations_for<shape<64, 784>>();   // or own a model::activations<In>
//   net.forward(x, acts);  net.backward(acts, x, dy);      // the lower-level API
//
// An inference-only cpu model can also compute from parameters it does not own (a mapped
// snapshot, an image embedded in the program: ctdl::map_frozen, ctdl::view_frozen in
// io/snapshot.hpp), with model::over(params, keep_alive). Such a model's parameters are
// read-only: the non-const parameters() (and parameter(name), load_into, ...) throws a
// ctdl::error, the const ones read the borrowed memory; its copies borrow the same memory
// (sharing keep_alive); assigning an owning model to it makes it an owning copy.
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "../exec/aligned_buffer.hpp"
#include "../exec/cpu.hpp"
#include "../exec/hd.hpp"
#include "../exec/page_buffer.hpp"
#include "../graph/context.hpp"
#include "../graph/frozen.hpp"
#include "../graph/node_io.hpp"
#include "../graph/node_of.hpp"
#include "../graph/packs.hpp"
#include "../nn/layer.hpp"
#include "parameter_view.hpp"
#include "parameters.hpp"

namespace ctdl {

template <class Arch, class Exec = cpu, class T = float>
class model;

/// Named after the mistake, with the type in its name (ctdl::layer: core/concepts.hpp).
template <class Arch>
struct model_arch_must_be_a_layer {
    static constexpr bool value = layer<Arch>;
    static_assert(value, "model<Arch, Exec, T>: Arch must be a layer or a graph of layers (parameter_count, "
                         "trainable_parameter_count, output_shape<S>, visit_parameters, initialize: ctdl::layer)");
};

/// Named after the mistake, with the type in its name (ctdl::execution_policy: core/concepts.hpp).
template <class Exec>
struct model_policy_must_be_an_execution_policy {
    static constexpr bool value = execution_policy<Exec>;
    static_assert(value, "model<Arch, Exec, T>: Exec must be an execution policy such as ctdl::cpu or ctdl::device "
                         "(buffer<T>, host_accessible, for_each_index, sum, copy_to_host, copy_from_host, copy, "
                         "gemm, map_rows, sum_cols: ctdl::execution_policy)");
};

/// A model whose Arch is not a layer or whose Exec is not a policy: it says which (once),
/// and is otherwise an empty shell (no parameters, no passes), so that its declaration
/// adds no second error.
template <class Arch, class Exec, class T>
    requires(!layer<Arch> || !execution_policy<Exec>)
class model<Arch, Exec, T> {
    // (Instantiated, not tested: each check says its own sentence, and nothing more is said.)
    static_assert(sizeof(model_arch_must_be_a_layer<Arch>) > 0);
    static_assert(sizeof(model_policy_must_be_an_execution_policy<Exec>) > 0);

public:
    using arch_type = Arch;
    using exec_type = Exec;
    using value_type = T;
    static constexpr std::size_t parameter_count = 0;
    static constexpr std::size_t gradient_count = 0;
    template <class... Args>
    explicit model(Args&&...) {}
};

/// A model with a gradient buffer and a backward pass (not model<frozen<A>>, nor a model
/// without parameters).
template <class M>
concept trainable = requires {
    { M::gradient_count } -> std::convertible_to<std::size_t>;
} && (M::gradient_count > 0);

/// Named after the mistake, so that the first error line says it.
template <class Model>
struct model_is_frozen_and_cannot_be_trained {
    static_assert(trainable<Model>,
                  "this model has no trainable parameters (model<frozen<A>> has no gradients and no backward "
                  "pass): train model<A>, then freeze() it");
    static constexpr bool value = true;
};

template <class Model, class Input>
struct model_input_must_match_architecture {
    static_assert(std::same_as<typename std::remove_cvref_t<Input>::value_type, typename Model::value_type> ||
                      std::integral<typename std::remove_cvref_t<Input>::value_type>,
                  "model: the input's element type must be the model's (or integer token ids for an embedding)");
    static_assert(std::same_as<typename std::remove_cvref_t<Input>::exec_type, typename Model::exec_type>,
                  "model: the input lives under another execution policy than the model (use ctdl::to<Exec>)");
    static constexpr bool value = true;
};

template <class X>
using element_of = typename std::remove_cvref_t<X>::value_type;

namespace detail {
/// Parameters a model computes from without owning them (model::over), and what keeps them
/// alive. A move leaves the source without them, as a moved-from owning buffer is empty.
template <class T>
struct borrowed_parameters {
    const T* data = nullptr;
    std::shared_ptr<const void> keep_alive;

    borrowed_parameters() = default;
    borrowed_parameters(const T* d, std::shared_ptr<const void> k) : data(d), keep_alive(std::move(k)) {}
    borrowed_parameters(const borrowed_parameters&) = default;
    borrowed_parameters& operator=(const borrowed_parameters&) = default;
    borrowed_parameters(borrowed_parameters&& o) noexcept
        : data(std::exchange(o.data, nullptr)), keep_alive(std::move(o.keep_alive)) {}
    borrowed_parameters& operator=(borrowed_parameters&& o) noexcept {
        data = std::exchange(o.data, nullptr);
        keep_alive = std::move(o.keep_alive);
        return *this;
    }
};

[[noreturn]] inline void parameters_are_borrowed() {
    throw error("model: its parameters are borrowed read-only (model::over, ctdl::map_frozen, ctdl::view_frozen): "
                "they cannot be written; ctdl::load makes a model that owns a copy");
}
}  // namespace detail

template <class Arch, class Exec, class T>
class model {
    // (A model with another Arch or Exec is the refused one above.)
    static_assert(model_arch_must_be_a_layer<Arch>::value);
    static_assert(model_policy_must_be_an_execution_policy<Exec>::value);
    static_assert(std::floating_point<T>, "model<Arch, Exec, T>: T must be float or double");

public:
    using arch_type = Arch;
    using exec_type = Exec;
    using value_type = T;
    static constexpr std::size_t parameter_count = ctdl::parameter_count<Arch>;
    static constexpr std::size_t gradient_count = ctdl::trainable_parameter_count<Arch>;
    static constexpr auto gradient_segments = detail::make_segments<Arch>();

    /// Parameters initialised as PyTorch initialises the same modules, from seed s.
    explicit model(seed s = seed{0}) : seed_(s), params_(parameter_count) {
        if constexpr (Exec::host_accessible) {
            Arch::initialize(params_.data(), s, 0);
        } else {  // initialised on the host (the same numbers as on the cpu), then copied once
            aligned_buffer<T> host(parameter_count);
            Arch::initialize(host.data(), s, 0);
            Exec::copy_from_host(host.data(), params_.data(), parameter_count);
        }
    }

    model(model&&) noexcept = default;
    model& operator=(model&&) noexcept = default;
    /// A copy has the same parameters (and gradients); activations are not copied. A copy
    /// of a model over borrowed parameters borrows them too.
    model(const model& o) : seed_(o.seed_), params_(o.params_), borrowed_(o.borrowed_) { copy_gradients(o); }
    model& operator=(const model& o) {
        if (this == &o) return *this;
        seed_ = o.seed_;
        params_ = o.params_;
        copy_gradients(o);
        borrowed_ = o.borrowed_;
        ++version_;
        ++frozen_version_;
        return *this;
    }

    /// An inference-only model that computes from params (parameter_count elements in the
    /// flat layout, state_dict order) without copying them; keep_alive is held by the model
    /// and its copies (e.g. the mapping that params lie in). params must stay unchanged
    /// while the model uses them. ctdl::error if params has another size or is not
    /// aligned for T. (The usual way: ctdl::map_frozen / ctdl::view_frozen, which check a
    /// snapshot against the model first.)
    static model over(std::span<const T> params, std::shared_ptr<const void> keep_alive = {})
        requires(gradient_count == 0 && Exec::host_accessible)
    {
        if (params.size() != parameter_count)
            throw error("model::over: " + std::to_string(params.size()) + " parameters given, the model has " +
                        std::to_string(parameter_count));
        if (reinterpret_cast<std::uintptr_t>(params.data()) % alignof(T) != 0)
            throw error("model::over: the parameters are not aligned to " + std::to_string(alignof(T)) + " bytes");
        model m(adopt_tag{}, seed{0}, typename Exec::template buffer<T>{});
        m.borrowed_ = {params.data(), std::move(keep_alive)};
        return m;
    }

    /// Whether the parameters are borrowed (over): then they are read-only.
    bool borrows_parameters() const noexcept { return borrowed_.data != nullptr; }

    /// The flat parameter buffer. Non-const access marks the parameters as changed: an
    /// inference-only model repacks what it keeps packed (see pack_for) before its next forward.
    /// A ctdl::error for a model over borrowed parameters (they are read-only).
    T* parameters() {
        if (borrowed_.data) detail::parameters_are_borrowed();
        ++version_;
        ++frozen_version_;
        return params_.data();
    }
    /// The same buffer, for writing only its trainable parameters (what an optimizer step
    /// does): the frozen ones stay as they are, so what the model keeps packed of them
    /// (a frozen layer's weight on a gradient path: ops/linear/frozen_packs.hpp) stays valid.
    /// Writing a frozen parameter through it is a mistake the model does not see: use
    /// parameters() (or parameter(name), load_into) for that.
    T* trainable_parameters()
        requires(gradient_count > 0)
    {
        if (borrowed_.data) detail::parameters_are_borrowed();
        ++version_;
        return params_.data();
    }
    const T* parameters() const noexcept { return weights(); }
    /// Whether the nodes keep packed copies of frozen weights for the kernels that read them
    /// (on the cpu policy: an inference-only model's small-batch linear layers, and a
    /// trainable model's frozen layers on a gradient path such as LoRA's base projections,
    /// which keep two copies of each such weight: ops/linear/frozen_packs.hpp). On by
    /// default; off, every kernel reads the parameters, with the same results bit for bit,
    /// and the packs are freed at each activation storage's next forward.
    void keep_packed_weights(bool on) noexcept { keep_packed_ = on; }
    bool keeps_packed_weights() const noexcept { return keep_packed_; }
    /// Changes with every non-const parameters() (what keeps packed weights knows when to repack).
    std::uint64_t parameter_version() const noexcept { return version_; }
    /// The flat gradients of the last backward (trainable parameters only, in order). After
    /// a backward_step that kept them in its activation storage's dout, they are there,
    /// until the next write of that dout (the next loss) or the next backward.
    T* gradients() requires(gradient_count > 0) { return grads_in_ ? grads_in_ : own_gradients(); }
    const T* gradients() const requires(gradient_count > 0) { return grads_in_ ? grads_in_ : own_gradients(); }
    /// The bytes of gradient storage the model holds itself: gradient_count values once a
    /// gradient lives in it, 0 while every backward has been a backward_step that kept its
    /// gradients in the activations' dout.
    std::size_t gradient_bytes() const noexcept { return grads_.size() * sizeof(T); }

    /// The parameters by state_dict name, in order ("0.weight", "0.bias", "2.weight", ...).
    static const std::vector<parameter_info>& parameter_table() {
        static const std::vector<parameter_info> table = [] {
            detail::parameter_table_builder b;
            Arch::visit_parameters(b, 0);
            return std::move(b.table);
        }();
        return table;
    }

    /// One parameter by its state_dict name ("2.weight"), with its shape (host policies).
    /// Non-const access counts as a change of the parameters, as parameters() does.
    parameter_view<T> parameter(std::string_view name)
        requires(Exec::host_accessible)
    {
        const auto& p = detail::find_parameter(parameter_table(), name);
        return {p.name, {parameters() + p.offset, p.size}, p.shape, p.trainable};
    }
    parameter_view<const T> parameter(std::string_view name) const
        requires(Exec::host_accessible)
    {
        const auto& p = detail::find_parameter(parameter_table(), name);
        return {p.name, {parameters() + p.offset, p.size}, p.shape, p.trainable};
    }
    /// The gradient of a trainable parameter, in its shape; a ctdl::error for a frozen one.
    parameter_view<T> gradient(std::string_view name)
        requires(Exec::host_accessible && gradient_count > 0)
    {
        const auto& p = detail::find_parameter(parameter_table(), name);
        return {p.name, {gradients() + gradient_offset(p), p.size}, p.shape, true};
    }
    parameter_view<const T> gradient(std::string_view name) const
        requires(Exec::host_accessible && gradient_count > 0)
    {
        const auto& p = detail::find_parameter(parameter_table(), name);
        return {p.name, {gradients() + gradient_offset(p), p.size}, p.shape, true};
    }

    /// The activation storage of this model for input shape In: the node tree, the output,
    /// and the gradient at the output. Owned by the user, or by the model (activations_for).
    template <shape_like In, class Input = T>
    class activations {
        using root_context = graph::context<In, T, Exec, 0, 0, false, false, Input>;

    public:
        using root_type = graph::node_of<Arch, root_context>;
        using out_shape = output_shape<Arch, In>;
        static constexpr bool backward_needed = root_type::backward_needed;

        root_type root;
        tensor<T, out_shape, Exec> out;
        /// The version of the model's frozen parameters its nodes' packed weights were made
        /// from (0: none), and where they are (one buffer, in huge pages; empty where no node
        /// packs).
        std::uint64_t packed_version = 0;
        page_buffer<T> packs{};
        /// Scratch for dL/dy in train_step (trainable models only).
        [[no_unique_address]] std::conditional_t<(gradient_count > 0), tensor<T, out_shape, Exec>, std::nullptr_t> dout{};
        /// Whether backward_step keeps the gradients in dout: they fit in it, and the graph
        /// is done with dout before it writes any gradient (its last part writes none: a
        /// frozen output layer, as under LoRA; graph/node_io.hpp).
        static constexpr bool gradients_in_dout = gradient_count > 0 && gradient_count <= out_shape::size &&
                                                  graph::output_gradient_dies_first<root_type>;
    };

    /// The model's own activation storage for input shape In (made on first use).
    template <shape_like In, class Input = T>
    activations<In, Input>& activations_for() {
        using A = activations<In, Input>;
        const std::type_info* id = &typeid(A);
        for (auto& w : workspaces_)
            if (w.id == id) return *static_cast<A*>(w.ptr.get());
        auto* a = new A();
        auto reseed = [&](auto& nd) {
            if constexpr (requires { nd.reseed(seed_); }) nd.reseed(seed_);
        };
        nn::for_each_node(a->root, reseed);
        workspaces_.push_back({id, std::shared_ptr<void>(a, [](void* p) { delete static_cast<A*>(p); })});
        return *a;
    }

    /// y = f(x): inference, into a new tensor.
    template <tensor_like X>
    auto forward(const X& x) {
        static_assert(model_input_must_match_architecture<model, X>::value);
        using In = shape_of<X>;
        tensor<T, output_shape<Arch, In>, Exec> y;
        pack_for(activations_for<In, element_of<X>>()).root.forward(weights(), x.data(), y.data(), false);
        return y;
    }

    /// y = f(x) into y (no allocation once the activations exist).
    template <tensor_like X, tensor_like Y>
    void forward(const X& x, Y&& y) {
        static_assert(model_input_must_match_architecture<model, X>::value);
        static_assert(copy_needs_equal_shapes<output_shape<Arch, shape_of<X>>, shape_of<Y>>::value);
        pack_for(activations_for<shape_of<X>, element_of<X>>()).root.forward(weights(), x.data(), y.data(), false);
    }

    /// The training forward: y = f(x), keeping in acts what backward needs. Returns acts.out.
    template <tensor_like X>
    const auto& forward(const X& x, activations<shape_of<X>, element_of<X>>& acts) {
        static_assert(model_input_must_match_architecture<model, X>::value);
        pack_for(acts).root.forward(weights(), x.data(), acts.out.data(), true);
        return acts.out;
    }

    /// The backward pass for the last forward(x, acts): from dy = dL/dy, writes dL/dθ into
    /// gradients() (or adds to them with accumulate). dy is overwritten (it becomes the
    /// gradient before the last layer's activation). A gradient_hook (graph/node_io.hpp), when
    /// given, is told as the gradients become final, last ones first, and finally for 0.
    template <tensor_like X, tensor_like DY>
    void backward(activations<shape_of<X>, element_of<X>>& acts, const X& x, DY&& dy, bool accumulate = false,
                  const graph::gradient_hook* ready = nullptr) {
        static_assert(model_is_frozen_and_cannot_be_trained<model>::value);
        static_assert(copy_needs_equal_shapes<output_shape<Arch, shape_of<X>>, shape_of<DY>>::value);
        if (accumulate && grads_in_)
            throw error("model::backward: accumulate after a backward_step, whose gradients live in the activations' "
                        "dout (overwritten by the next loss): accumulate over backward(..., accumulate) passes only");
        grads_in_ = nullptr;
        run_backward(acts, x, dy.data(), own_gradients(), accumulate, ready);
    }

    /// The backward pass of an optimizer step from one batch (train_step, and train::run
    /// without gradient accumulation): dy = dL/dy is acts.dout, where the loss wrote it, and
    /// the gradients replace the last ones. When acts is the model's own storage
    /// (activations_for) and its type allows (activations::gradients_in_dout: under LoRA,
    /// or whenever the output layer is frozen), the gradients are written into acts.dout
    /// itself, dead by then, and the model needs no gradient buffer of its own:
    /// gradients() points there until the next loss writes acts.dout.
    template <tensor_like X>
    void backward_step(activations<shape_of<X>, element_of<X>>& acts, const X& x,
                       const graph::gradient_hook* ready = nullptr) {
        static_assert(model_is_frozen_and_cannot_be_trained<model>::value);
        if constexpr (gradient_count > 0) {
            T* g = gradient_target(acts, true);
            grads_in_ = g == acts.dout.data() ? g : nullptr;
            run_backward(acts, x, acts.dout.data(), g, false, ready);
        }
    }

    /// Where the next backward writes the gradients (what gradients() gives after it): for
    /// a backward_step(acts, ...) (step), or a backward.
    template <class A>
    T* gradient_target(A& acts, bool step) requires(gradient_count > 0) {
        if constexpr (A::gradients_in_dout)
            if (step && owns(acts)) return acts.dout.data();
        return own_gradients();
    }

private:
    template <class X, class A>
    void run_backward(A& acts, const X& x, T* dy, T* grads, bool accumulate, const graph::gradient_hook* ready) {
        using out_shape = output_shape<Arch, shape_of<X>>;
        auto transform = acts.root.dout_transform(x.data(), acts.out.data());
        if constexpr (!std::same_as<decltype(transform), epilogue::none>)
            Exec::map_rows(leading_size<out_shape>, last_extent<out_shape>, dy, identity{}, transform,
                           static_cast<const T*>(dy));
        acts.root.backward(graph::backward_io<T, epilogue::none, element_of<X>>{
            params_.data(), grads, x.data(), acts.out.data(), dy, nullptr, {}, accumulate, ready});
        if (ready) (*ready)(0);
    }

    /// The model's own gradient buffer, made (zeros) on first use.
    T* own_gradients() const {
        if (grads_.size() != gradient_count) grads_ = typename Exec::template buffer<T>(gradient_count);
        return grads_.data();
    }
    /// Whether acts is one of the model's own activation storages (activations_for).
    template <class A>
    bool owns(const A& acts) const noexcept {
        for (const auto& w : workspaces_)
            if (w.ptr.get() == static_cast<const void*>(&acts)) return true;
        return false;
    }
    /// A copy's gradients: the same values, in its own buffer (it has no activations yet).
    void copy_gradients(const model& o) {
        grads_in_ = nullptr;
        if constexpr (gradient_count > 0) {
            if (o.grads_in_) Exec::copy(o.grads_in_, own_gradients(), gradient_count);
            else if (o.grads_.size()) grads_ = o.grads_;
            else grads_ = {};
        }
    }

    /// Where a trainable parameter's gradient starts in the gradient buffer.
    static std::size_t gradient_offset(const parameter_info& p) {
        if (p.trainable)
            for (const segment& s : gradient_segments)
                if (p.offset >= s.param_offset && p.offset + p.size <= s.param_offset + s.size)
                    return s.grad_offset + (p.offset - s.param_offset);
        throw error("model: parameter '" + p.name + "' is frozen and has no gradient");
    }

    /// Nodes keep some frozen weights packed for the kernels that read them (on the cpu
    /// policy: an inference-only model's small-batch linear layers; a trainable model's
    /// frozen layers on a gradient path): packed when an activation storage is first used,
    /// and again after a frozen parameter may have changed (parameters(), not
    /// trainable_parameters()).
    template <class Acts>
    Acts& pack_for(Acts& a) {
        const std::uint64_t want = keep_packed_ ? frozen_version_ : 0;
        if (a.packed_version != want) {
            if (want) graph::pack_nodes(a.root, weights(), a.packs);
            else graph::unpack_nodes(a.root, a.packs);
            a.packed_version = want;
        }
        return a;
    }

    struct identity {
        CTDL_HD T operator()(T v) const { return v; }
    };

    /// What the passes read: the owned buffer, or the borrowed parameters.
    const T* weights() const noexcept { return borrowed_.data ? borrowed_.data : params_.data(); }

    template <class A2, class E2, class T2>
    friend class model;
    template <class A2, class E2, class T2>
    friend model<frozen<A2>, E2, T2> freeze(model<A2, E2, T2>&& m);

    struct adopt_tag {};
    model(adopt_tag, seed s, typename Exec::template buffer<T>&& params)
        : seed_(s), params_(std::move(params)) {}

    struct workspace {
        const std::type_info* id;
        std::shared_ptr<void> ptr;
    };

    seed seed_{0};
    typename Exec::template buffer<T> params_;
    mutable typename Exec::template buffer<T> grads_;  // made on first use (own_gradients)
    T* grads_in_ = nullptr;  // set when the last backward_step kept the gradients in an activations' dout
    detail::borrowed_parameters<T> borrowed_;  // set by over(): then params_ is empty
    std::vector<workspace> workspaces_;
    std::uint64_t version_ = 1;         // bumped by non-const parameters() and trainable_parameters()
    std::uint64_t frozen_version_ = 1;  // bumped by non-const parameters() only
    bool keep_packed_ = true;           // keep_packed_weights(false): no node keeps a packed weight
};

/// The inference form of a trained model, taking over its parameters without a copy.
template <class A, class E, class T>
model<frozen<A>, E, T> freeze(model<A, E, T>&& m) {
    return model<frozen<A>, E, T>(typename model<frozen<A>, E, T>::adopt_tag{}, m.seed_, std::move(m.params_));
}

}  // namespace ctdl
