// The vector unit's layer operations: the non-GEMM work of layer graphs
// (models/nn/network.h) and the data reshuffles of the HDQT convolution
// (docs/contract.md §9), on a chunk of whole samples in SRAM. Each one calls
// the pure function the functional engine calls (models/nn/conv.h,
// cnn_layers.h), so the bits are the same; samples are independent in all of
// them, so a chunk of samples gives the bits of the whole batch.
//
// Opcodes (Unit::vector, from kLayerFirst; descriptor LayerDescriptor; n =
// `samples`, geometry in `geo` as conv_geo / pool_geo write it):
//   kLayerIm2col     packed X (n x C*H*W, `bits`) at addr0 -> packed columns
//                    (n*P x K) at addr1: im2col per sample (the address
//                    generator's gather; padded taps 0)
//   kLayerRowsOf     f32 NCHW (n x O*P) at addr0 -> rows (n*P x O) at addr1:
//                    Gm[n*P + p][o] = G[n][o][p]; geo = {O, P}
//   kLayerNchwOf     the inverse: rows (n*P x O) at addr0 -> NCHW at addr1
//   kLayerCol2im     f32 D (n*P x K) at addr0 -> dX (n x C*H*W) at addr1, col2im
//                    per sample; with kLayerClip, dX = +0 where the mask at
//                    addr2 (n rows of C*H*W bits) is set (the clipped STE)
//   kLayerRelu       relu_forward of n x geo[0] values, addr0 -> addr1; with
//                    kLayerMask also the mask x > 0 (n rows of geo[0] bits) at addr2
//   kLayerReluGrad   relu_backward: x at addr0, dy at addr1 -> dx at addr2; with
//                    kLayerMask, addr0 is that mask (dx = dy where set, else +0)
//   kLayerMaxPool    max_pool_forward: x at addr0 -> y at addr1, argmax
//                    (int32, index within the sample) at addr2
//   kLayerMaxPoolGrad max_pool_backward: argmax at addr0, dy at addr1 -> dx at addr2
//   kLayerAdd        residual_add of n x geo[0] values: addr0 + addr1 -> addr2
//                    (also the sum of a node's gradient contributions)
//   kLayerAvgPool    avg_pool_forward x at addr0 -> y at addr1; kLayerAvgPoolGrad
//                    avg_pool_backward dy at addr0 -> dx at addr1
//   kLayerGap        global_avg_pool_forward, geo = {C, H*W}: x at addr0 -> y
//                    at addr1; kLayerGapGrad its backward, dy at addr0 -> dx at addr1
//   kLayerShortcut   shortcut_forward, geo = ShortcutGeometry's fields in order:
//                    x at addr0 -> y at addr1; kLayerShortcutGrad shortcut_backward,
//                    dy at addr0 -> dx at addr1
// BatchNorm (cnn_layers.h bn_*), geo = {C, H*W, m = batch * H*W}; the per-channel
// vectors (C f32 each) stay in SRAM across the chunks of a pass; accumulators
// are zeroed by the chunk whose `first` sample is 0:
//   kLayerBnSum      bn_sum: x at addr0, sum at addr1
//   kLayerBnMean     bn_mean: sum at addr0 -> mean at addr1 (one command)
//   kLayerBnSq       bn_sq: x at addr0, mean at addr1, sq at addr2
//   kLayerBnStats    bn_stats: mean addr0, sq addr1 -> invstd addr2; running
//                    mean addr3 and variance addr4 updated (one command)
//   kLayerBnNorm     bn_normalize: x addr0, mean addr1, invstd addr2, gamma
//                    addr3, beta addr4 -> xhat addr5, y addr6
//   kLayerBnEval     batchnorm_forward_eval: x addr0, gamma addr1, beta addr2,
//                    running mean addr3, variance addr4 -> y addr5
//   kLayerBnGradSums bn_grad_sums: dy addr0, xhat addr1, sum_g addr2, sum_gx addr3
//   kLayerBnGradDx   bn_grad_dx: dy addr0, xhat addr1, sum_g addr2, sum_gx
//                    addr3, gamma addr4, invstd addr5 -> dx addr6
// Cost: f32 operations (compares, selects and adds counted as adds) at
// vector_unit.lanes per cycle with the f32 energy table; the reshuffles
// (im2col, RowsOf, NchwOf) move one element per lane and cycle and cost no
// f32 energy (their SRAM traffic is charged by the memory port).
#pragma once

#include <cstdint>
#include <vector>

#include "models/nn/cnn_layers.h"
#include "models/nn/conv.h"
#include "sim/blocks/command.h"
#include "sim/blocks/memory.h"
#include "sim/cost/energy.h"

namespace hdq::npu {

inline constexpr std::uint32_t kLayerFirst = 16;
inline constexpr std::uint32_t kLayerIm2col = 16, kLayerRowsOf = 17, kLayerNchwOf = 18, kLayerCol2im = 19,
                               kLayerRelu = 20, kLayerReluGrad = 21, kLayerMaxPool = 22, kLayerMaxPoolGrad = 23,
                               kLayerAdd = 24, kLayerAvgPool = 25, kLayerAvgPoolGrad = 26, kLayerGap = 27,
                               kLayerGapGrad = 28, kLayerShortcut = 29, kLayerShortcutGrad = 30, kLayerBnSum = 31,
                               kLayerBnMean = 32, kLayerBnSq = 33, kLayerBnStats = 34, kLayerBnNorm = 35,
                               kLayerBnEval = 36, kLayerBnGradSums = 37, kLayerBnGradDx = 38, kLayerLast = 38;
inline constexpr std::uint8_t kLayerClip = 1, kLayerMask = 2;

inline bool is_layer_op(std::uint32_t opcode) { return opcode >= kLayerFirst && opcode <= kLayerLast; }

struct LayerDescriptor {
  std::uint32_t addr[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::uint32_t samples = 0;
  std::uint32_t first = 0;  // the chunk's first sample within the batch
  std::int32_t geo[10] = {};
  std::uint8_t bits = 0;
  std::uint8_t flags = 0;

  void set(const ConvGeometry& g);
  void set(const PoolGeometry& g);
  void set(const ShortcutGeometry& g);
  ShortcutGeometry shortcut() const;
  BatchNormSpec bn() const { return {int(samples), geo[0], geo[1]}; }  // momentum and eps: PyTorch's (graph_passes)
  ConvGeometry conv() const;
  PoolGeometry pool() const;
  void accesses(std::uint32_t opcode, Footprint& f) const;
};

struct LayerOpCost {
  F32Ops ops;
  std::uint64_t moves = 0;  // elements moved by a reshuffle
};

class LayerCore {
 public:
  LayerOpCost run(std::uint32_t opcode, const LayerDescriptor& d, MemoryPort& sram);

 private:
  std::vector<std::int16_t> x_, cols_;
  std::vector<std::uint8_t> flags_;
};

}  // namespace hdq::npu
