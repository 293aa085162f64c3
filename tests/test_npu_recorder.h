// Per-step hashes of what an engine produces, to compare two engines step by
// step (tests/test_npu_engine.cpp, tests/test_npu_fmnist.cpp).
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <span>
#include <vector>

#include "engines/engine.h"

namespace hdq::npu {

// FNV-1a over the bits of floats, and of integers.
struct Hash {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  void add(std::uint64_t v) {
    for (int k = 0; k < 8; ++k, v >>= 8) h = (h ^ (v & 0xffu)) * 0x100000001b3ULL;
  }
  void add(std::span<const float> xs) {
    for (float x : xs) add(std::uint64_t(std::bit_cast<std::uint32_t>(x)));
  }
};

inline std::uint64_t hash_overflow(const HdqtOverflow& o) {
  Hash h;
  for (const auto& layer : o.layers)
    for (const GemmStats& s : layer) {
      h.add(s.products);
      h.add(s.clamped_tiles);
      h.add(s.changed_steps);
      h.add(s.outer_overflows);
      h.add(std::uint64_t(s.max_abs_tile_sum));
      h.add(s.tile_results);
    }
  return h.h;
}

// Thrown by a Recorder after its last step, to end a driver's run early.
struct StepLimit {};

// Wraps an engine and records, per training step, hashes of the weights it
// was given, of its logits and of its accumulated overflow counters; and per
// evaluation call a hash of the logits. After `max_steps` steps it throws StepLimit.
class Recorder final : public Engine {
 public:
  explicit Recorder(Engine& inner, std::size_t max_steps = SIZE_MAX) : inner_(inner), max_steps_(max_steps) {}
  std::string name() const override { return inner_.name(); }
  float gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                  std::uint64_t step, MlpGrads& grads) override {
    const float loss = inner_.gradients(p, x, labels, active, step, grads);
    Hash w, z, g;
    for (std::size_t l = 0; l < p.w.size(); ++l) {
      w.add(p.w[l].v);
      w.add(p.b[l]);
      g.add(grads.w[l].v);
      g.add(grads.b[l]);
    }
    z.add(inner_.last_layer_outputs().back().v);
    steps.push_back({w.h, z.h, hash_overflow(*inner_.overflow_stats()), g.h, std::bit_cast<std::uint32_t>(loss)});
    if (steps.size() == max_steps_) throw StepLimit{};
    return loss;
  }
  void logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) override {
    inner_.logits(p, x, step, out);
    Hash z;
    z.add(out.v);
    eval.push_back(z.h);
  }
  const std::vector<Matrix>& last_layer_outputs() const override { return inner_.last_layer_outputs(); }
  const HdqtOverflow* overflow_stats() const override { return inner_.overflow_stats(); }

  struct Step {
    std::uint64_t weights, logits, overflow, grads;
    std::uint32_t loss;
    bool operator==(const Step&) const = default;
  };
  std::vector<Step> steps;
  std::vector<std::uint64_t> eval;

 private:
  Engine& inner_;
  std::size_t max_steps_;
};

inline void expect_same_steps(const Recorder& f, const Recorder& n, const std::string& what) {
  ASSERT_EQ(f.steps.size(), n.steps.size()) << what;
  for (std::size_t i = 0; i < f.steps.size(); ++i) {
    EXPECT_EQ(f.steps[i].weights, n.steps[i].weights) << what << " step " << i;
    EXPECT_EQ(f.steps[i].logits, n.steps[i].logits) << what << " step " << i;
    EXPECT_EQ(f.steps[i].overflow, n.steps[i].overflow) << what << " step " << i;
    EXPECT_EQ(f.steps[i].grads, n.steps[i].grads) << what << " step " << i;
    EXPECT_EQ(f.steps[i].loss, n.steps[i].loss) << what << " step " << i;
  }
  EXPECT_EQ(f.eval, n.eval) << what;
}

}  // namespace hdq::npu
