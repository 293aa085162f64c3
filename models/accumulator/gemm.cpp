// GEMM entry point: validation, path dispatch and row-parallel threading on
// the context's pool; the context's workspaces.
#include <fmt/format.h>

#include "models/accumulator/gemm.h"
#include "models/common/errors.h"

namespace hdq {

void validate(const AccumulatorConfig& cfg) {
  require_in_range("acc_bits", cfg.acc_bits, 2, 32);
  require_in_range("tile", cfg.tile, 0, INT32_MAX);
  require_in_range("outer_bits", cfg.outer_bits, cfg.acc_bits, 32);
}

void GemmStats::merge(const GemmStats& o) {
  products += o.products;
  clamped_tiles += o.clamped_tiles;
  changed_steps += o.changed_steps;
  outer_overflows += o.outer_overflows;
  max_abs_tile_sum = std::max(max_abs_tile_sum, o.max_abs_tile_sum);
  tile_results += o.tile_results;
}

double GemmStats::inner_event_rate() const { return hdq::inner_event_rate({this, 1}); }

double inner_event_rate(std::span<const GemmStats> group) {
  std::uint64_t events = 0, opportunities = 0;
  for (const GemmStats& s : group) events += s.inner_events(), opportunities += s.inner_event_opportunities();
  return opportunities ? double(events) / double(opportunities) : 0.0;
}

namespace detail {

void* const* GemmWorkspaces::ensure(const void* tag, int n, void* (*create)(), void (*destroy)(void*)) {
  Kind* kind = nullptr;
  for (Kind& k : kinds_)
    if (k.tag == tag) kind = &k;
  if (!kind) kind = &kinds_.emplace_back(Kind{tag, {}, destroy});
  while (int(kind->objects.size()) < n) kind->objects.push_back(create());
  return kind->objects.data();
}

GemmWorkspaces::~GemmWorkspaces() {
  for (Kind& k : kinds_)
    for (void* w : k.objects) k.destroy(w);
}

}  // namespace detail

GemmStats* GemmContext::block_stats(int n) {
  block_stats_.assign(std::size_t(n), GemmStats{});
  return block_stats_.data();
}

void GemmContext::acquire() {
  if (busy_.exchange(true, std::memory_order_acquire))
    throw ConfigError("gemm: a GemmContext is used by two threads at once (give each calling thread its own)");
}

namespace {

// The context in use by this call (GemmContext::acquire / release).
class ContextUse {
 public:
  explicit ContextUse(GemmContext& ctx) : ctx_(ctx) { ctx_.acquire(); }
  ~ContextUse() { ctx_.release(); }
  ContextUse(const ContextUse&) = delete;
  ContextUse& operator=(const ContextUse&) = delete;

 private:
  GemmContext& ctx_;
};

// Checks the operand's size and value range; returns its actual min / max.
detail::ValueBounds check_operand(const char* name, IntOperand op, std::size_t rows, std::size_t cols) {
  require_in_range(fmt::format("{}.bits", name).c_str(), op.bits, 2, 8);
  if (op.values.size() != rows * cols)
    throw ConfigError(fmt::format("gemm: operand {} has {} values, expected {} x {} = {}", name, op.values.size(),
                                  rows, cols, rows * cols));
  const int lo = op.is_unsigned ? 0 : -(1 << (op.bits - 1));
  const int hi = op.is_unsigned ? (1 << op.bits) - 1 : (1 << (op.bits - 1)) - 1;
  detail::ValueBounds r;
  if (cpu_supports(KernelPath::avx2)) {
    r = detail::value_bounds_avx2(op.values);
  } else if (!op.values.empty()) {
    // A branch-free min/max pass (it vectorizes).
    r = {op.values[0], op.values[0]};
    for (const std::int16_t v : op.values) r.lo = std::min<int>(r.lo, v), r.hi = std::max<int>(r.hi, v);
  }
  if (r.lo >= lo && r.hi <= hi) return r;
  // The offending element is searched for only when the range check fails.
  for (std::size_t i = 0; i < op.values.size(); ++i)
    if (op.values[i] < lo || op.values[i] > hi)
      throw ConfigError(fmt::format("gemm: operand {} element {} = {} does not fit {}-bit {} ({}..{})", name, i,
                                    op.values[i], op.bits, op.is_unsigned ? "unsigned" : "signed", lo, hi));
  return r;
}

}  // namespace

std::uint64_t tile_result_count(GemmShape s, const AccumulatorConfig& cfg) {
  const std::uint64_t tile = std::uint64_t(tile_length(cfg, s.k));
  const std::uint64_t tiles_per_output = tile ? (std::uint64_t(s.k) + tile - 1) / tile : 0;
  return std::uint64_t(s.m) * std::uint64_t(s.n) * tiles_per_output;
}

std::vector<KernelPath> available_gemm_paths() {
  return runnable_paths({KernelPath::reference, KernelPath::portable, KernelPath::avx2, KernelPath::avx512});
}

KernelPath best_gemm_path() {
  static const KernelPath best = available_gemm_paths().back();  // the CPU does not change
  return best;
}

GemmStats gemm(GemmContext& ctx, GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
               std::span<std::int32_t> c, KernelPath path) {
  validate(cfg);
  require_in_range("m", s.m, 0, INT32_MAX);
  require_in_range("n", s.n, 0, INT32_MAX);
  require_in_range("k", s.k, 0, INT32_MAX);
  const detail::ValueBounds ra = check_operand("a", a, s.m, s.k);
  GemmContext::KnownB& known = ctx.known_b();
  const bool known_b = b.content_id != 0 && known.id == b.content_id && known.size == b.values.size() &&
                       known.bits == b.bits && known.is_unsigned == b.is_unsigned &&
                       b.values.size() == std::size_t(s.k) * std::size_t(s.n);
  const detail::ValueBounds rb = known_b ? known.bounds : check_operand("b", b, s.k, s.n);
  if (b.content_id != 0) known = {b.content_id, b.values.size(), b.bits, b.is_unsigned, rb};
  if (c.size() != std::size_t(s.m) * s.n)
    throw ConfigError(fmt::format("gemm: output has {} values, expected {} x {}", c.size(), s.m, s.n));
  if (path == KernelPath::avx2 && !cpu_supports(KernelPath::avx2)) throw ConfigError("gemm: path avx2 requested on a CPU without AVX2");
  if (path == KernelPath::avx512 && !cpu_supports(KernelPath::avx512))
    throw ConfigError("gemm: path avx512 requested on a CPU without AVX-512 F, BW and VL");
  const ContextUse use(ctx);

  const std::uint64_t tile_results = tile_result_count(s, cfg);
  const int threads = std::min(ctx.threads(), std::max(s.m, 1));
  GemmStats total;
  if (path == KernelPath::avx512) {
    total = detail::gemm_avx512(ctx, s, a, b, cfg, c, threads, ra, rb);
  } else if (path == KernelPath::avx2) {
    total = detail::gemm_avx2(ctx, s, a, b, cfg, c, threads, ra, rb);
  } else {
    auto run_rows = [&](int r0, int r1) {
      return path == KernelPath::reference ? detail::gemm_reference_rows(s, a, b, cfg, c, r0, r1)
                                         : detail::gemm_portable_rows(s, a, b, cfg, c, r0, r1);
    };
    // Row blocks on the context's pool; statistics merged in block order.
    GemmStats* parts = ctx.block_stats(threads);
    ctx.pool().run(threads, [&](int t) {
      const int r0 = int(std::int64_t(s.m) * t / threads), r1 = int(std::int64_t(s.m) * (t + 1) / threads);
      parts[t] = run_rows(r0, r1);
    });
    for (int t = 0; t < threads; ++t) total.merge(parts[t]);
  }
  total.tile_results = tile_results;
  return total;
}

GemmStats gemm_continue_reference(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                                  std::span<const std::int32_t> o0, std::span<std::int32_t> c) {
  validate(cfg);
  require_in_range("m", s.m, 0, INT32_MAX);
  require_in_range("n", s.n, 0, INT32_MAX);
  require_in_range("k", s.k, 0, INT32_MAX);
  check_operand("a", a, s.m, s.k);
  check_operand("b", b, s.k, s.n);
  const std::size_t outputs = std::size_t(s.m) * s.n;
  if (c.size() != outputs || o0.size() != outputs)
    throw ConfigError(fmt::format("gemm: output has {} values and initial output {}, expected {} x {}", c.size(),
                                  o0.size(), s.m, s.n));
  const AccLimits outer = acc_limits(cfg.outer_bits, AccRange::full);
  for (std::size_t i = 0; i < outputs; ++i)
    if (o0[i] < outer.lo || o0[i] > outer.hi)
      throw ConfigError(fmt::format("gemm: initial output {} = {} does not fit the {}-bit outer accumulator", i, o0[i],
                                    cfg.outer_bits));
  GemmStats st = detail::gemm_reference_rows(s, a, b, cfg, c, 0, s.m, o0);
  st.tile_results = tile_result_count(s, cfg);
  return st;
}

}  // namespace hdq
