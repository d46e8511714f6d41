// The contract's MLP end to end: generate a dataset, train, measure held-out accuracy,
// save a snapshot, reload it as a frozen (inference-only) model and classify with it.
//
//   mlp [--epochs N] [--seed S] [--out FILE]
//
// The data ("noisy prototypes"): ten random 28x28 prototype images; an example of class c
// is 15% prototype c and 85% uniform noise, so no single pixel tells the class and the
// model must pool evidence over the whole image. 5% of the training labels are replaced
// at random, so memorising the training set does not pay.
#include <ctdl/ctdl.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace nn = ctdl::nn;

using mlp = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu, nn::linear<256, 10>>;

constexpr std::size_t batch = 64, train_batches = 64, test_batches = 16;
using features = ctdl::tensor<float, ctdl::shape<batch, 784>>;
using labels = ctdl::tensor<int, ctdl::shape<batch>>;

struct split {
    std::vector<features> x;
    std::vector<labels> y;
};

static split make_split(std::size_t batches, std::uint64_t stream, double label_noise) {
    constexpr float signal = 0.15f;
    static const auto prototypes = [] {
        ctdl::tensor<float, ctdl::shape<10, 784>> p;
        ctdl::init::uniform(p, ctdl::random_stream(ctdl::seed{2026}, 0));
        return p;
    }();
    ctdl::rng g(ctdl::seed{2026}, stream);
    split s;
    s.x.resize(batches);
    s.y.resize(batches);
    for (std::size_t b = 0; b < batches; ++b)
        for (std::size_t i = 0; i < batch; ++i) {
            const auto c = static_cast<std::size_t>(g.next_below(10));
            for (std::size_t j = 0; j < 784; ++j)
                s.x[b](i, j) = signal * prototypes(c, j) + (1 - signal) * g.next_uniform<float>();
            s.y[b](i) = g.next_uniform<double>() < label_noise ? static_cast<int>(g.next_below(10)) : static_cast<int>(c);
        }
    return s;
}

template <class Model>
static double accuracy(Model& net, const split& s) {
    std::size_t right = 0;
    ctdl::tensor<float, ctdl::shape<batch, 10>> logits;
    for (std::size_t b = 0; b < s.x.size(); ++b) {
        net.forward(s.x[b], logits);
        for (std::size_t i = 0; i < batch; ++i) {
            int best = 0;
            for (int c = 1; c < 10; ++c)
                if (logits(i, static_cast<std::size_t>(c)) > logits(i, static_cast<std::size_t>(best))) best = c;
            right += best == s.y[b](i);
        }
    }
    return static_cast<double>(right) / static_cast<double>(s.x.size() * batch);
}

static std::size_t parse_count(std::string_view flag, const char* text) {
    char* end = nullptr;
    const long long v = std::strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v <= 0 || v > 1000000)
        throw ctdl::error(std::string(flag) + " expects a positive whole number, got '" + text + "'");
    return static_cast<std::size_t>(v);
}

int main(int argc, char** argv) try {
    std::size_t epochs = 10, seed = 7;
    std::string out = "mlp.safetensors";
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc && (a == "--epochs" || a == "--seed" || a == "--out"))
            throw ctdl::error(std::string(a) + " needs a value");
        if (a == "--epochs") epochs = parse_count(a, argv[++i]);
        else if (a == "--seed") seed = parse_count(a, argv[++i]);
        else if (a == "--out") out = argv[++i];
        else if (a == "--help" || a == "-h") {
            std::puts("usage: mlp [--epochs N] [--seed S] [--out FILE]");
            return 0;
        } else throw ctdl::error("unknown argument '" + std::string(a) + "' (try --help)");
    }

    std::printf("ctdl mlp: 784-256-256-10, %zu parameters, %zu threads\n", ctdl::parameter_count<mlp>,
                ctdl::cpu::threads());
    const split train = make_split(train_batches, 1, 0.05), test = make_split(test_batches, 2, 0.0);
    std::printf("data: %zu training and %zu held-out examples (generated)\n", train_batches * batch,
                test_batches * batch);

    ctdl::model<mlp> net{ctdl::seed{seed}};
    ctdl::optim::adamw opt{net, {.lr = 2e-3f, .weight_decay = 1e-2f}};
    const ctdl::optim::warmup_cosine schedule{.peak_lr = 2e-3, .warmup_steps = 50,
                                              .total_steps = epochs * train_batches, .min_lr = 1e-4};
    const auto start = std::chrono::steady_clock::now();
    std::size_t step = 0;
    for (std::size_t e = 0; e < epochs; ++e) {
        double total = 0;
        for (std::size_t b = 0; b < train_batches; ++b) {
            opt.set_lr(static_cast<float>(schedule(step++)));
            total += ctdl::train_step(net, opt, ctdl::loss::cross_entropy, train.x[b], train.y[b]);
        }
        std::printf("epoch %2zu  loss %.4f  held-out accuracy %.1f%%\n", e + 1, total / train_batches,
                    100 * accuracy(net, test));
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("trained %zu steps in %.2f s (%.0f examples/s)\n", step, seconds, step * batch / seconds);

    ctdl::save(net, out);
    std::printf("saved %s\n", out.c_str());

    // The deployed form: inference only, no gradients, no caches, no backward.
    auto frozen = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>(out);
    const double acc = accuracy(frozen, test);
    std::printf("reloaded frozen model: held-out accuracy %.1f%%\n", 100 * acc);
    ctdl::tensor<float, ctdl::shape<batch, 10>> a, b;
    net.forward(test.x[0], a);
    frozen.forward(test.x[0], b);
    if (!ctdl::equal(a, b)) throw ctdl::error("the reloaded model computes a different function");
    std::printf("first held-out examples: ");
    for (std::size_t i = 0; i < 8; ++i) {
        int best = 0;
        for (int c = 1; c < 10; ++c)
            if (b(i, static_cast<std::size_t>(c)) > b(i, static_cast<std::size_t>(best))) best = c;
        std::printf("%d(%d) ", best, test.y[0](i));
    }
    std::printf(" [predicted(true)]\n");
    return acc > 0.8 ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "mlp: %s\n", e.what());
    return 2;
}
