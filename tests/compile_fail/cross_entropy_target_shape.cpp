// expect: cross_entropy_targets_must_match_logits<ctdl::shape<4, 10>, ctdl::shape<5> ?>(.|\n)*without its last axis
#include <ctdl/ctdl.hpp>
int main() {
    ctdl::tensor<float, ctdl::shape<4, 10>> logits;
    ctdl::tensor<int, ctdl::shape<5>> targets;
    return static_cast<int>(ctdl::loss::cross_entropy(logits, targets));
}
