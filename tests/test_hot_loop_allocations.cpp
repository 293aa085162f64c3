// Issue 6: the functional engine's training step allocates nothing once its
// buffers exist. This test binary replaces the global allocation functions
// with counting ones; after two warm-up steps, further steps of the default
// scenario's shapes (784-256-256-10, batch 128) must not allocate.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "engines/engine.h"
#include "engines/functional_engine.h"

namespace {
std::atomic<long> allocations{0};

void* counted(std::size_t n, std::size_t align) {
  ++allocations;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align)
                                              : std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted(n, 0); }
void* operator new[](std::size_t n) { return counted(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted(n, std::size_t(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace hdq {
namespace {

long allocations_of_steps(const HdqtConfig& cfg, int threads, int steps) {
  const MlpSpec spec{{784, 256, 256, 10}};
  MlpParams p = init_mlp(spec, 1);
  MlpGrads g = zeros_like(p);
  Matrix x(128, 784);
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = float((i * 2654435761u) % 1000) / 1000.0f;
  std::vector<int> y(128);
  for (int r = 0; r < 128; ++r) y[std::size_t(r)] = r % 10;
  const auto active = std::make_unique<bool[]>(10);
  std::fill_n(active.get(), 10, true);
  FunctionalEngine e(cfg, 1, threads);
  Sgd sgd({.lr = 0.01f, .momentum = 0.9f, .weight_decay = 0.0f});
  long counted = 0;
  for (int s = 0; s < 2 + steps; ++s) {
    const long before = allocations.load();
    e.gradients(p, x, y, std::span<const bool>(active.get(), 10), std::uint64_t(s), g);
    sgd.step(p, g);
    if (s >= 2) counted += allocations.load() - before;
  }
  return counted;
}

TEST(HotLoop, TrainingStepsAllocateNothingAfterWarmUp) {
  for (const char* preset : {"paper", "npu", "luq"})
    for (int threads : {1, 2}) EXPECT_EQ(allocations_of_steps(hdqt_preset(preset), threads, 3), 0) << preset << " " << threads;
}

}  // namespace
}  // namespace hdq
