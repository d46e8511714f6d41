// One program made of two translation units built for different instruction sets
// (isa_native.cpp with -march=native, isa_base.cpp without): both run ctdl's kernels and
// must compute the same model to float rounding; ctdl::cpu is a different type in each
// (exec/isa.hpp), while the thread pool is the process's one. The CTest script beside
// this file also checks that the two objects define no ctdl kernel symbol in common.
#include <cmath>
#include <cstdio>
#include <string>

#include "isa_model.hpp"

isa_result run_native();
isa_result run_base();

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}
bool close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
    if (a.size() != b.size() || a.empty()) return false;
    double scale = 0;
    for (float v : b) scale = std::fmax(scale, std::fabs(v));
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!(std::fabs(double(a[i]) - b[i]) <= tol * (std::fabs(double(b[i])) + scale))) return false;
    return true;
}
}  // namespace

int main(int argc, char** argv) {
    const bool expect_distinct = argc > 1 && std::string(argv[1]) == "distinct";
    ctdl::cpu::set_threads(2);  // this unit's ctdl::cpu: the pool is shared by both units
    const isa_result a = run_native(), b = run_base();
    std::printf("native unit: %s\nbase unit:   %s\n", a.policy_type.c_str(), b.policy_type.c_str());
    if (expect_distinct) check(a.policy_type != b.policy_type, "ctdl::cpu is a distinct type in each unit");
    check(a.threads_seen == 2 && b.threads_seen == 2, "both units see the one process-wide pool");
    check(close(a.output, b.output, 1e-5), "forward outputs agree to float rounding");
    check(std::fabs(a.loss - b.loss) <= 1e-5f * std::fabs(b.loss), "training losses agree");
    check(close(a.after_step, b.after_step, 1e-5), "parameters after one step agree");
    check(close(a.bf16_logits, b.bf16_logits, 1e-5), "bf16 decoding sessions' logits agree to float rounding");
    return failures == 0 ? 0 : 1;
}
