// Integer GEMM with narrow tiled accumulation (docs/contract.md §5).
//
// C = A B, A (M x K) and B (K x N) row-major integer operands, C (M x N) the
// Wo-bit outer accumulator values. The accumulation rules are in
// accumulator.h. Every path returns the same C and the same GemmStats, bit for
// bit; `reference` is the obviously-correct triple loop the others are tested
// against.
//
// Readings of the contract chosen here (docs/contract.md, readings R5-R10 of §5):
// - tile = 0 means one tile of length K; a tile longer than K is also one tile.
// - Operands hold two's-complement values of `bits` bits, [-2^(bits-1),
//   2^(bits-1) - 1], or [0, 2^bits - 1] when unsigned; a value outside is a
//   ConfigError. (The quantizer never produces -2^(bits-1); test vectors may.)
// - Wo is W..32, so C fits int32.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "models/accumulator/accumulator.h"
#include "models/common/kernel_path.h"
#include "models/common/thread_pool.h"

namespace hdq {

struct AccumulatorConfig {
  int acc_bits = 8;  // W, 2..32
  int tile = 32;     // t >= 0; 0 means t = K
  AccMode mode = AccMode::saturate;
  AccRange range = AccRange::full;
  int outer_bits = 32;  // Wo, W..32
};

// Throws ConfigError naming the field when a knob is out of range.
void validate(const AccumulatorConfig& cfg);

// The tile length t' of docs/contract.md §5: t, or K when t = 0 or t > K.
constexpr int tile_length(const AccumulatorConfig& cfg, int k) { return (cfg.tile == 0 || cfg.tile > k) ? k : cfg.tile; }

struct GemmStats {
  std::uint64_t products = 0;         // multiply-accumulates performed: M * N * K
  std::uint64_t clamped_tiles = 0;    // clamp_tile: tile results the clamp changed
  std::uint64_t changed_steps = 0;    // saturate/wrap: accumulate steps whose result was narrowed
  std::uint64_t outer_overflows = 0;  // outer additions the Wo-bit clamp changed
  std::int64_t max_abs_tile_sum = 0;  // largest |exact tile sum| seen (headroom)
  std::uint64_t tile_results = 0;     // tile results summed into the outer accumulator: M * N * ceil(K / t)

  // Inner-accumulator events of whichever kind the mode has.
  std::uint64_t inner_events() const { return clamped_tiles + changed_steps; }
  // The denominator of the rate (docs/contract.md §5): tile results when a
  // tile was clamped (clamp_tile), else products (saturate / wrap; exact and
  // clamp_tile without a clamp have no event, so their rate is 0 either way).
  std::uint64_t inner_event_opportunities() const { return clamped_tiles ? tile_results : products; }
  // Inner events per opportunity: clamped tiles per tile result, or changed
  // steps per product (one of the two counters is always 0). 0 when nothing
  // ran. inner_event_rate({this, 1}) below.
  double inner_event_rate() const;
  void merge(const GemmStats& o);
  bool operator==(const GemmStats&) const = default;
};

// Every reported inner-event rate is this one function: the inner events of a
// group of statistics over their opportunities, sum over sum (0 when there is
// no opportunity). For one GEMM, or statistics merged over row blocks or over
// a run of one GEMM role, it is docs/contract.md §5 `inner_event_rate`. A
// group of several roles (the sweep's backward rate) adds each member's
// opportunities as that member's counters give them, so a clamp_tile member
// without any clamp adds its products, not its tile results (the counters do
// not record the mode).
double inner_event_rate(std::span<const GemmStats> group);

struct GemmShape {
  int m = 0, n = 0, k = 0;
};

struct IntOperand {
  std::span<const std::int16_t> values;
  int bits = 4;  // 2..8
  bool is_unsigned = false;
  // B only: 0, or a number the caller gives to exactly these values. A later
  // gemm() on the same GemmContext whose B has the same nonzero content_id
  // (and the same size, bits and signedness) promises the same values, so it
  // may reuse what the context derived from them: their range and the
  // kernels' packed layouts of B (e.g. the NPU's MAC array streaming A's row
  // blocks past one B panel). New values need a new id.
  std::uint64_t content_id = 0;
};

// Largest |value| an operand of this kind can hold (by its bits and signedness).
inline std::int64_t operand_max_abs(const IntOperand& op) {
  return op.is_unsigned ? (std::int64_t{1} << op.bits) - 1 : std::int64_t{1} << (op.bits - 1);
}

namespace detail {

// Actual min / max of the values ({0, 0} when empty).
struct ValueBounds {
  int lo = 0, hi = 0;
};

// What a packed layout of B in a shared workspace was made from: the next
// GEMM reuses it when B's content_id (IntOperand) is nonzero and every field
// is the same (the packing depends on the shape, the tiling and the plan's
// offsets, which come from A's range too).
struct PackKey {
  std::uint64_t id = 0;
  int n = 0, k = 0, tile = 0, amin = 0, shift = 0;
  bool operator==(const PackKey&) const = default;
  bool reusable(const PackKey& packed) const { return id != 0 && *this == packed; }
};

// The kernels' workspaces (packed operands, product tables, tile state),
// kept by a GemmContext between GEMMs: per workspace type W, objects 0, 1,
// ... (one per row block, or one shared by the blocks), created on first use
// and reused by every later GEMM of the context, so that a training step
// whose shapes repeat allocates nothing once they have grown. The types live
// in the ISA translation units (anonymous namespaces), so the store is
// type-erased; the growth itself is done here, in baseline code.
class GemmWorkspaces {
 public:
  template <class W>
  class List {
   public:
    explicit List(void* const* objects) : objects_(objects) {}
    W& operator[](int i) const { return *static_cast<W*>(objects_[i]); }

   private:
    void* const* objects_;
  };

  // Workspaces 0 .. n - 1 of type W, created as needed. Only the thread that
  // called gemm() may call this (before the row blocks start).
  template <class W>
  List<W> get(int n) {
    return List<W>(ensure(&Tag<W>::id, n, [] { return static_cast<void*>(new W()); },
                          [](void* w) { delete static_cast<W*>(w); }));
  }

  GemmWorkspaces() = default;
  GemmWorkspaces(const GemmWorkspaces&) = delete;
  GemmWorkspaces& operator=(const GemmWorkspaces&) = delete;
  ~GemmWorkspaces();

 private:
  template <class W>
  struct Tag {
    static constexpr char id = 0;  // its address names W
  };
  struct Kind {
    const void* tag;
    std::vector<void*> objects;
    void (*destroy)(void*);
  };
  void* const* ensure(const void* tag, int n, void* (*create)(), void (*destroy)(void*));
  std::vector<Kind> kinds_;
};

}  // namespace detail

// What GEMMs compute with, in the manner of ruy::Context: the thread pool
// their row blocks run on (threads() threads: the caller and threads() - 1
// workers), and the kernels' workspaces and per-block statistics, kept from
// call to call (no allocation once a repeated shape has been seen) and freed
// with the context. Nothing of it is static or thread_local: the owner (an
// engine, the NPU's MAC array, a test) passes it down to every gemm() call.
// One calling thread at a time: a thread that runs GEMMs alongside others
// has its own context (a gemm() on a context another thread is using throws
// ConfigError). Results do not depend on threads().
class GemmContext {
 public:
  explicit GemmContext(int threads = 1) : pool_(threads) {}  // threads: 1..256 (ConfigError otherwise)
  int threads() const { return pool_.threads(); }

  // For the GEMM's own use (gemm.cpp and the kernels).
  ThreadPool& pool() { return pool_; }
  detail::GemmWorkspaces& workspaces() { return workspaces_; }
  // n zeroed statistics records, one per row block, reused from call to call.
  GemmStats* block_stats(int n);
  // The range of the last B that had a content_id (IntOperand), checked then.
  struct KnownB {
    std::uint64_t id = 0;
    std::size_t size = 0;
    int bits = 0;
    bool is_unsigned = false;
    detail::ValueBounds bounds;
  };
  KnownB& known_b() { return known_b_; }
  // Marks the context in use by the calling thread until release(); throws
  // ConfigError when another thread is using it.
  void acquire();
  void release() { busy_.store(false, std::memory_order_release); }

 private:
  ThreadPool pool_;
  detail::GemmWorkspaces workspaces_;
  std::vector<GemmStats> block_stats_;
  KnownB known_b_;
  std::atomic<bool> busy_{false};
};

// GEMM paths (models/common/kernel_path.h): reference is the scalar triple
// loop in int64 arithmetic, the definition; portable is plain C++ vectorized
// across output columns; avx2 and avx512 are the SIMD kernels.
// The paths this machine can run, reference first, each faster than the one before.
std::vector<KernelPath> available_gemm_paths();
// The fastest available path (the last of available_gemm_paths()).
KernelPath best_gemm_path();

// C = A B under `cfg` on `ctx`; checks shapes, sizes and operand ranges
// first (ConfigError). Rows of C are split over ctx's threads; results do not
// depend on them.
GemmStats gemm(GemmContext& ctx, GemmShape shape, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
               std::span<std::int32_t> c, KernelPath path = best_gemm_path());

// The contract's GEMM (§5) continued: each output's outer accumulator starts
// from o0 (m x n, Wo-bit values) instead of 0, then the tiles of this K are
// added in order as usual; statistics as gemm(). So a GEMM whose K is cut at
// multiples of the tile length t' into chunks, each continued from the
// previous chunk's C, gives the whole GEMM's C, and the chunks' statistics
// merge (GemmStats::merge) into the whole GEMM's. The scalar reference loop
// only (the NPU's K-chunked commands use it when the outer clamp may fire,
// sim/blocks/mac_array.cpp). Checks as gemm() (ConfigError).
GemmStats gemm_continue_reference(GemmShape shape, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                                  std::span<const std::int32_t> o0, std::span<std::int32_t> c);

// GemmStats::tile_results of a GEMM: M * N * ceil(K / t').
std::uint64_t tile_result_count(GemmShape shape, const AccumulatorConfig& cfg);

namespace detail {
// Path entry points: arguments already validated; compute rows [row_begin, row_end).
// The reference's o0 (empty or m x n): the outer accumulators' initial values (0 when empty).
GemmStats gemm_reference_rows(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                              std::span<std::int32_t> c, int row_begin, int row_end,
                              std::span<const std::int32_t> o0 = {});
GemmStats gemm_portable_rows(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                             std::span<std::int32_t> c, int row_begin, int row_end);
ValueBounds value_bounds_avx2(std::span<const std::int16_t> v);
// The whole GEMM on `threads` (<= ctx.threads()) threads of ctx's pool: B is
// packed once, row blocks run in parallel (tile_results is left to the
// caller). ra / rb: the operands' value_bounds.
GemmStats gemm_avx2(GemmContext& ctx, GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                    std::span<std::int32_t> c, int threads, ValueBounds ra, ValueBounds rb);
// The same with the AVX-512 kernels (the cases they do not cover run gemm_avx2).
GemmStats gemm_avx512(GemmContext& ctx, GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                      std::span<std::int32_t> c, int threads, ValueBounds ra, ValueBounds rb);
}  // namespace detail

}  // namespace hdq
