// Acceptance 1 on the default scenario (slow: needs the Fashion-MNIST files):
// the first 50 training steps of scenarios/fmnist-5x2-er.yaml, as the
// class-incremental driver runs them (experience replay from step 1 on), give
// the same weights, logits, gradients, loss and overflow counters on the NPU
// engine as on the functional engine, step by step.
// rtl/CMakeLists.txt builds this test a second time with HDQ_NPU_RTL:
// mac_array.impl=rtl, every GEMM on the verilated 4 x 4 array (ctest name
// rtl.NpuFashionMnist.*).
#include <gtest/gtest.h>

#include "engines/functional_engine.h"
#include "sim/npu_engine.h"
#include "tests/test_npu_recorder.h"
#include "training/continual.h"

#ifndef HDQ_SOURCE_DIR
#error "HDQ_SOURCE_DIR must name the source tree"
#endif

namespace hdq::npu {
namespace {

#ifdef HDQ_NPU_RTL
const std::vector<std::string> kNpuSet{"mac_array.impl=rtl", "mac_array.rows=4", "mac_array.cols=4"};
#else
const std::vector<std::string> kNpuSet;
#endif

void run_steps(const Scenario& s, const datasets::TrainTest& data, Recorder& r) {
  try {
    run_continual(s, data, r);
    FAIL() << "the scenario ended before the step limit";
  } catch (const StepLimit&) {
  }
}

TEST(NpuFashionMnist, First50StepsBitExact) {
  const Scenario s = load_scenario(HDQ_SOURCE_DIR "/scenarios/fmnist-5x2-er.yaml");
  const auto data = load_scenario_data(s);
  FunctionalEngine functional(s.hdqt, s.seed, 1);
  NpuEngine npu(default_npu_config(kNpuSet), s.hdqt, s.seed, s.train.sgd);
  Recorder rf(functional, 50), rn(npu, 50);
  run_steps(s, data, rf);
  run_steps(s, data, rn);
  ASSERT_EQ(rf.steps.size(), 50u);
  expect_same_steps(rf, rn, s.name);
}

}  // namespace
}  // namespace hdq::npu
