// Properties of docs/contract.md §3 (counter-based random bits).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "models/quantizer/quantizer.h"
#include "models/quantizer/random_bits.h"
#include "properties/prop_common.h"

namespace {

using hdqprop::uniform;
using namespace rc;

// Section 3: key = mix(seed ^ mix(stream ^ mix(step))) and R_i = mix(key + (i +
// 1) * 0x9e3779b97f4a7c15) >> (64 - r). The library's RandomStream::key and
// element_random_bits must equal the formula typed in from the contract
// (prop_common.h) for any seed/stream/step/index and every r = 1..32 (the
// contract uses 1..23; the header promises more).
RC_GTEST_PROP(RandomBits, KeyAndElementBitsFollowSection3Formula, ()) {
  const std::uint64_t seed = *hdqprop::any_u64();
  const std::uint64_t stream = *gen::weightedOneOf<std::uint64_t>(
      {{3, uniform<std::uint64_t>(0, 8 * 64)}, {1, hdqprop::any_u64()}});
  const std::uint64_t step = *gen::weightedOneOf<std::uint64_t>(
      {{3, uniform<std::uint64_t>(0, 1u << 20)}, {1, hdqprop::any_u64()}});
  const std::uint64_t i = *gen::weightedOneOf<std::uint64_t>(
      {{3, uniform<std::uint64_t>(0, 1u << 24)}, {1, hdqprop::any_u64()}});
  const int r = *uniform(1, 32);
  const hdq::RandomStream rs{seed, stream, step};
  const std::uint64_t key = hdqprop::contract_key(seed, stream, step);
  RC_ASSERT(rs.key() == key);
  RC_ASSERT(hdq::element_random_bits(key, i, r) == hdqprop::contract_random_bits(key, i, r));
  RC_ASSERT(hdq::element_random_bits(key, i, r) < (std::uint64_t{1} << r));
}

// Section 3: "Because R depends only on (seed, layer, role, step, i), any
// tiling, lane count or thread count gives the same bits." A tensor quantized
// whole with hdq::quantize must be bit-identical to the same tensor cut into
// random tiles, each quantized with quantize_span and first_index = its flat
// offset, the tiles processed in shuffled order, sequentially and spread over
// 1..4 std::threads writing disjoint parts of one output. Stochastic rounding
// (every r) is where this matters; nearest is included as a control.
RC_GTEST_PROP(RandomBits, QuantizeIsIndependentOfTilingOrderAndThreads, ()) {
  const int n = *gen::weightedOneOf<int>({{3, uniform(1, 300)}, {1, uniform(301, 4000)}});
  hdq::QuantConfig cfg;
  cfg.rounding = *gen::weightedElement<hdq::Rounding>({{4, hdq::Rounding::stochastic}, {1, hdq::Rounding::nearest}});
  cfg.sr_bits = *uniform(1, 23);
  cfg.bits = *uniform(2, 8);
  const hdq::RandomStream rs{*hdqprop::any_u64(), *uniform<std::uint64_t>(0, 255), *uniform<std::uint64_t>(0, 1u << 20)};
  const std::uint64_t value_seed = *hdqprop::any_u64();
  const int tiles_wanted = *uniform(1, std::min(n, 40));
  const int threads = *uniform(1, 4);

  std::mt19937_64 rng(value_seed);
  std::vector<float> x(n);
  for (float& v : x) v = (float(rng() >> 40) * 0x1p-24f - 0.5f) * 8.0f;

  const hdq::QuantizedTensor whole = hdq::quantize(x, cfg, rs, "x");

  // Random cut points -> tiles [begin, end), then a random order.
  std::vector<int> cuts{0, n};
  for (int c = 1; c < tiles_wanted; ++c) cuts.push_back(int(rng() % std::uint64_t(n)));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::vector<std::pair<int, int>> tiles;
  for (std::size_t c = 0; c + 1 < cuts.size(); ++c) tiles.emplace_back(cuts[c], cuts[c + 1]);
  std::shuffle(tiles.begin(), tiles.end(), rng);

  const std::uint64_t key = rs.key();
  auto run_tile = [&](std::pair<int, int> tile, std::vector<std::int16_t>& out) {
    const auto [b, e] = tile;
    hdq::quantize_span(std::span<const float>(x).subspan(b, e - b), std::uint64_t(b), whole.params, cfg, key,
                       std::span<std::int16_t>(out).subspan(b, e - b));
  };

  std::vector<std::int16_t> sequential(n, std::int16_t{-999});
  for (const auto& tile : tiles) run_tile(tile, sequential);
  RC_ASSERT(sequential == whole.q);

  std::vector<std::int16_t> threaded(n, std::int16_t{-999});
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (std::size_t k = std::size_t(t); k < tiles.size(); k += std::size_t(threads)) run_tile(tiles[k], threaded);
      });
    for (auto& th : pool) th.join();
  }
  RC_ASSERT(threaded == whole.q);

  // One element alone, by its flat index, gives its bits too.
  const int i = int(rng() % std::uint64_t(n));
  RC_ASSERT(hdq::quantize_element(x[i], std::uint64_t(i), whole.params, cfg, key) == whole.q[i]);
}

}  // namespace
