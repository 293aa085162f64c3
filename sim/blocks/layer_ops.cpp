#include "sim/blocks/layer_ops.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"

namespace hdq::npu {

void LayerDescriptor::set(const ConvGeometry& g) {
  const int v[10] = {g.in_channels, g.in_h,     g.in_w,     g.out_channels, g.kernel_h,
                     g.kernel_w,    g.stride_h, g.stride_w, g.pad_h,        g.pad_w};
  std::copy(v, v + 10, geo);
}

void LayerDescriptor::set(const PoolGeometry& g) {
  const int v[9] = {g.channels, g.in_h, g.in_w, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w};
  std::copy(v, v + 9, geo);
}

void LayerDescriptor::set(const ShortcutGeometry& g) {
  const int v[8] = {g.in_c, g.in_h, g.in_w, g.out_c, g.out_h, g.out_w, g.stride, g.pad_before};
  std::copy(v, v + 8, geo);
}

ShortcutGeometry LayerDescriptor::shortcut() const {
  return {geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7]};
}

ConvGeometry LayerDescriptor::conv() const {
  return {geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8], geo[9]};
}

PoolGeometry LayerDescriptor::pool() const {
  return {geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8]};
}

void LayerDescriptor::accesses(std::uint32_t opcode, Footprint& f) const {
  const std::uint64_t n = samples;
  auto read = [&](std::uint32_t a, std::uint64_t bytes) { f.push_back({Space::sram, false, a, bytes}); };
  auto write = [&](std::uint32_t a, std::uint64_t bytes) { f.push_back({Space::sram, true, a, bytes}); };
  switch (opcode) {
    case kLayerIm2col: {
      const ConvGeometry g = conv();
      read(addr[0], n * packed_pitch(std::uint64_t(g.in_size()), bits));
      write(addr[1], n * std::uint64_t(g.positions()) * packed_pitch(std::uint64_t(g.patch()), bits));
      break;
    }
    case kLayerRowsOf:
    case kLayerNchwOf: {
      const std::uint64_t bytes = 4 * n * std::uint64_t(geo[0]) * std::uint64_t(geo[1]);
      read(addr[0], bytes);
      write(addr[1], bytes);
      break;
    }
    case kLayerCol2im: {
      const ConvGeometry g = conv();
      read(addr[0], 4 * n * std::uint64_t(g.positions()) * std::uint64_t(g.patch()));
      if (flags & kLayerClip) read(addr[2], n * mask_pitch(std::uint64_t(g.in_size())));
      write(addr[1], 4 * n * std::uint64_t(g.in_size()));
      break;
    }
    case kLayerRelu:
      read(addr[0], 4 * n * std::uint64_t(geo[0]));
      write(addr[1], 4 * n * std::uint64_t(geo[0]));
      if (flags & kLayerMask) write(addr[2], n * mask_pitch(std::uint64_t(geo[0])));
      break;
    case kLayerReluGrad:
      read(addr[0], flags & kLayerMask ? n * mask_pitch(std::uint64_t(geo[0])) : 4 * n * std::uint64_t(geo[0]));
      read(addr[1], 4 * n * std::uint64_t(geo[0]));
      write(addr[2], 4 * n * std::uint64_t(geo[0]));
      break;
    case kLayerAdd:
      read(addr[0], 4 * n * std::uint64_t(geo[0]));
      read(addr[1], 4 * n * std::uint64_t(geo[0]));
      write(addr[2], 4 * n * std::uint64_t(geo[0]));
      break;
    case kLayerMaxPool: {
      const PoolGeometry g = pool();
      read(addr[0], 4 * n * std::uint64_t(g.in_size()));
      write(addr[1], 4 * n * std::uint64_t(g.out_size()));
      write(addr[2], 4 * n * std::uint64_t(g.out_size()));
      break;
    }
    case kLayerMaxPoolGrad: {
      const PoolGeometry g = pool();
      read(addr[0], 4 * n * std::uint64_t(g.out_size()));
      read(addr[1], 4 * n * std::uint64_t(g.out_size()));
      write(addr[2], 4 * n * std::uint64_t(g.in_size()));
      break;
    }
    case kLayerAvgPool:
    case kLayerAvgPoolGrad: {
      const PoolGeometry g = pool();
      const bool fwd = opcode == kLayerAvgPool;
      read(addr[0], 4 * n * std::uint64_t(fwd ? g.in_size() : g.out_size()));
      write(addr[1], 4 * n * std::uint64_t(fwd ? g.out_size() : g.in_size()));
      break;
    }
    case kLayerGap:
    case kLayerGapGrad: {
      const std::uint64_t C = std::uint64_t(geo[0]), big = 4 * n * C * std::uint64_t(geo[1]), small = 4 * n * C;
      read(addr[0], opcode == kLayerGap ? big : small);
      write(addr[1], opcode == kLayerGap ? small : big);
      break;
    }
    case kLayerShortcut:
    case kLayerShortcutGrad: {
      const ShortcutGeometry g = shortcut();
      const std::uint64_t in = 4 * n * std::uint64_t(g.in_c) * std::uint64_t(g.in_h) * std::uint64_t(g.in_w),
                          out = 4 * n * std::uint64_t(g.out_c) * std::uint64_t(g.out_h) * std::uint64_t(g.out_w);
      read(addr[0], opcode == kLayerShortcut ? in : out);
      write(addr[1], opcode == kLayerShortcut ? out : in);
      break;
    }
    default: {  // BatchNorm: per-sample tensors x, y, xhat, dy, dx; per-channel vectors
      const std::uint64_t big = 4 * n * std::uint64_t(geo[0]) * std::uint64_t(geo[1]), vec = 4 * std::uint64_t(geo[0]);
      // (inputs, outputs) by address slot: 'b' a per-sample tensor, 'v' a vector.
      struct Io {
        const char* in;
        const char* out;
      };
      Io io{"", ""};
      switch (opcode) {
        case kLayerBnSum: io = {"bv", ".v"}; break;
        case kLayerBnMean: io = {"v", ".v"}; break;
        case kLayerBnSq: io = {"bvv", "..v"}; break;
        case kLayerBnStats: io = {"vvvvv", "..vvv"}; break;
        case kLayerBnNorm: io = {"bvvvv", ".....bb"}; break;
        case kLayerBnEval: io = {"bvvvv", ".....b"}; break;
        case kLayerBnGradSums: io = {"bbvv", "..vv"}; break;
        case kLayerBnGradDx: io = {"bbvvvv", "......b"}; break;
        default: break;
      }
      for (int i = 0; io.in[i]; ++i) read(addr[i], io.in[i] == 'b' ? big : vec);
      for (int i = 0; io.out[i]; ++i)
        if (io.out[i] != '.') write(addr[i], io.out[i] == 'b' ? big : vec);
      break;
    }
  }
}

LayerOpCost LayerCore::run(std::uint32_t opcode, const LayerDescriptor& d, MemoryPort& sram) {
  const std::uint64_t n = d.samples;
  switch (opcode) {
    case kLayerIm2col: {
      const ConvGeometry g = d.conv();
      validate(g);
      const std::uint64_t in = std::uint64_t(g.in_size()), P = std::uint64_t(g.positions()), K = std::uint64_t(g.patch());
      const std::span<std::int16_t> x = scratch(x_, n * in), cols = scratch(cols_, n * P * K);
      // Packed bits round-trip through int16 unchanged (pack keeps the low `bits`), signed or not.
      unpack_rows(sram.in<std::uint8_t>(d.addr[0], n * packed_pitch(in, d.bits)), n, in, d.bits, false, x);
      for (std::uint64_t s = 0; s < n; ++s) im2col(g, x.subspan(s * in, in), cols.subspan(s * P * K, P * K));
      pack_rows(cols, n * P, K, d.bits, sram.out<std::uint8_t>(d.addr[1], n * P * packed_pitch(K, d.bits)));
      return {{}, n * P * K};
    }
    case kLayerRowsOf:
    case kLayerNchwOf: {
      const std::uint64_t O = std::uint64_t(d.geo[0]), P = std::uint64_t(d.geo[1]), per = O * P;
      const std::span<const float> src = sram.in<float>(d.addr[0], n * per);
      const std::span<float> dst = sram.out<float>(d.addr[1], n * per);
      for (std::uint64_t s = 0; s < n; ++s) {
        if (opcode == kLayerRowsOf) transpose(src.data() + s * per, O, P, dst.data() + s * per);  // O x P -> P x O
        else transpose(src.data() + s * per, P, O, dst.data() + s * per);                        // P x O -> O x P
      }
      return {{}, n * per};
    }
    case kLayerCol2im: {
      const ConvGeometry g = d.conv();
      validate(g);
      const std::uint64_t in = std::uint64_t(g.in_size()), PK = std::uint64_t(g.positions()) * std::uint64_t(g.patch());
      const std::span<const float> cols = sram.in<float>(d.addr[0], n * PK);
      const std::span<float> dx = sram.out<float>(d.addr[1], n * in);
      for (std::uint64_t s = 0; s < n; ++s) col2im(g, cols.subspan(s * PK, PK), dx.subspan(s * in, in));
      if (d.flags & kLayerClip) {
        const std::uint64_t pitch = mask_pitch(in);
        const std::span<const std::uint8_t> mask = sram.in<std::uint8_t>(d.addr[2], n * pitch);
        for (std::uint64_t s = 0; s < n; ++s)
          for (std::uint64_t i = 0; i < in; ++i)
            if (mask_bit(mask, pitch, s, i)) dx[s * in + i] = 0.0f;
      }
      return {{n * PK, 0}, 0};
    }
    case kLayerRelu: {
      const std::uint64_t cols = std::uint64_t(d.geo[0]), e = n * cols;
      const std::span<const float> x = sram.in<float>(d.addr[0], e);
      relu_forward<float>(x, sram.out<float>(d.addr[1], e));
      if (d.flags & kLayerMask) {  // bit j of row s: x > 0 (relu_backward's test)
        const std::uint64_t pitch = mask_pitch(cols);
        const std::span<std::uint8_t> mask = sram.out<std::uint8_t>(d.addr[2], n * pitch);
        std::fill(mask.begin(), mask.end(), std::uint8_t(0));
        for (std::uint64_t s = 0; s < n; ++s)
          for (std::uint64_t j = 0; j < cols; ++j)
            if (x[s * cols + j] > 0.0f) mask[s * pitch + j / 8] |= std::uint8_t(1u << (j % 8));
      }
      return {{e, 0}, 0};
    }
    case kLayerReluGrad: {
      const std::uint64_t cols = std::uint64_t(d.geo[0]), e = n * cols;
      const std::span<const float> dy = sram.in<float>(d.addr[1], e);
      const std::span<float> dx = sram.out<float>(d.addr[2], e);
      if (!(d.flags & kLayerMask)) {
        relu_backward<float>(sram.in<float>(d.addr[0], e), dy, dx);
        return {{e, 0}, 0};
      }
      // relu_backward from the mask: dy where the input was > 0, else +0.
      const std::uint64_t pitch = mask_pitch(cols);
      const std::span<const std::uint8_t> mask = sram.in<std::uint8_t>(d.addr[0], n * pitch);
      for (std::uint64_t s = 0; s < n; ++s)
        for (std::uint64_t j = 0; j < cols; ++j) dx[s * cols + j] = mask_bit(mask, pitch, s, j) ? dy[s * cols + j] : 0.0f;
      return {{e, 0}, 0};
    }
    case kLayerAdd: {
      const std::uint64_t e = n * std::uint64_t(d.geo[0]);
      residual_add<float>(sram.in<float>(d.addr[0], e), sram.in<float>(d.addr[1], e), sram.out<float>(d.addr[2], e));
      return {{e, 0}, 0};
    }
    case kLayerMaxPool: {
      const PoolGeometry g = d.pool();
      const std::uint64_t in = n * std::uint64_t(g.in_size()), out = n * std::uint64_t(g.out_size());
      max_pool_forward<float>(g, int(n), sram.in<float>(d.addr[0], in), sram.out<float>(d.addr[1], out),
                              sram.out<std::int32_t>(d.addr[2], out));
      return {{out * std::uint64_t(g.kernel_h) * std::uint64_t(g.kernel_w), 0}, 0};  // a compare per tap
    }
    case kLayerMaxPoolGrad: {
      const PoolGeometry g = d.pool();
      const std::uint64_t in = n * std::uint64_t(g.in_size()), out = n * std::uint64_t(g.out_size());
      max_pool_backward<float>(g, int(n), sram.in<std::int32_t>(d.addr[0], out), sram.in<float>(d.addr[1], out),
                               sram.out<float>(d.addr[2], in));
      return {{out, 0}, 0};
    }
    case kLayerAvgPool:
    case kLayerAvgPoolGrad: {
      const PoolGeometry g = d.pool();
      const std::uint64_t in = n * std::uint64_t(g.in_size()), out = n * std::uint64_t(g.out_size());
      const std::uint64_t taps = out * std::uint64_t(g.kernel_h) * std::uint64_t(g.kernel_w);
      if (opcode == kLayerAvgPool) {
        avg_pool_forward<float>(g, int(n), sram.in<float>(d.addr[0], in), sram.out<float>(d.addr[1], out));
        return {{taps, out}, 0};  // an add per tap, a division per window
      }
      avg_pool_backward<float>(g, int(n), sram.in<float>(d.addr[0], out), sram.out<float>(d.addr[1], in));
      return {{taps, out}, 0};
    }
    case kLayerGap:
    case kLayerGapGrad: {
      const int C = d.geo[0], hw = d.geo[1];
      const std::uint64_t small = n * std::uint64_t(C), big = small * std::uint64_t(hw);
      if (opcode == kLayerGap) {
        global_avg_pool_forward<float>(int(n), C, hw, sram.in<float>(d.addr[0], big), sram.out<float>(d.addr[1], small));
        return {{big, small}, 0};
      }
      global_avg_pool_backward<float>(int(n), C, hw, sram.in<float>(d.addr[0], small), sram.out<float>(d.addr[1], big));
      return {{0, small}, big};  // a division per channel, the value written to every cell
    }
    case kLayerShortcut:
    case kLayerShortcutGrad: {
      const ShortcutGeometry g = d.shortcut();
      const std::uint64_t in = n * std::uint64_t(g.in_c) * std::uint64_t(g.in_h) * std::uint64_t(g.in_w),
                          out = n * std::uint64_t(g.out_c) * std::uint64_t(g.out_h) * std::uint64_t(g.out_w);
      if (opcode == kLayerShortcut) {
        shortcut_forward<float>(g, int(n), sram.in<float>(d.addr[0], in), sram.out<float>(d.addr[1], out));
        return {{}, out};
      }
      shortcut_backward<float>(g, int(n), sram.in<float>(d.addr[0], out), sram.out<float>(d.addr[1], in));
      return {{}, in};
    }
    case kLayerBnMean:
    case kLayerBnStats: {
      const std::size_t C = std::size_t(d.geo[0]);
      const long long m = d.geo[2];
      if (opcode == kLayerBnMean) {
        bn_mean<float>(m, sram.in<float>(d.addr[0], C), sram.out<float>(d.addr[1], C));
        return {{0, C}, 0};
      }
      sram.in<float>(d.addr[3], C);  // the running statistics are read and written
      sram.in<float>(d.addr[4], C);
      bn_stats<float>(d.bn(), m, sram.in<float>(d.addr[0], C), sram.in<float>(d.addr[1], C),
                      sram.out<float>(d.addr[2], C), sram.out<float>(d.addr[3], C), sram.out<float>(d.addr[4], C));
      return {{3 * C + kTranscendentalOps.adds * C, 6 * C + kTranscendentalOps.muls * C}, 0};
    }
    case kLayerBnSum:
    case kLayerBnSq:
    case kLayerBnNorm:
    case kLayerBnEval:
    case kLayerBnGradSums:
    case kLayerBnGradDx: {
      const BatchNormSpec s = d.bn();
      const std::size_t C = std::size_t(s.channels), e = n * C * std::size_t(s.hw);
      auto vec = [&](int i) { return sram.in<float>(d.addr[i], C); };
      auto acc = [&](int i) {  // an accumulator: zeroed by the batch's first chunk
        const std::span<float> a = sram.out<float>(d.addr[i], C);
        if (d.first == 0) std::fill(a.begin(), a.end(), 0.0f);
        else sram.in<float>(d.addr[i], C);
        return a;
      };
      const std::span<const float> x = sram.in<float>(d.addr[0], e);
      switch (opcode) {
        case kLayerBnSum: bn_sum<float>(s, x, acc(1)); return {{e, 0}, 0};
        case kLayerBnSq: bn_sq<float>(s, x, vec(1), acc(2)); return {{2 * e, e}, 0};
        case kLayerBnNorm:
          bn_normalize<float>(s, x, vec(1), vec(2), vec(3), vec(4), sram.out<float>(d.addr[5], e),
                              sram.out<float>(d.addr[6], e));
          return {{2 * e, 2 * e}, 0};
        case kLayerBnEval:
          batchnorm_forward_eval<float>(s, x, vec(1), vec(2), vec(3), vec(4), sram.out<float>(d.addr[5], e));
          return {{2 * e + C + kTranscendentalOps.adds * C, 2 * e + kTranscendentalOps.muls * C}, 0};
        case kLayerBnGradSums: {
          const std::span<const float> xhat = sram.in<float>(d.addr[1], e);
          bn_grad_sums<float>(s, x, xhat, acc(2), acc(3));
          return {{2 * e, e}, 0};
        }
        default: {
          const std::span<const float> xhat = sram.in<float>(d.addr[1], e);
          bn_grad_dx<float>(s, d.geo[2], vec(2), vec(3), vec(4), vec(5), x, xhat, sram.out<float>(d.addr[6], e));
          return {{2 * e, 2 * e + 3 * C}, 0};
        }
      }
    }
    default: break;
  }
  throw ConfigError(fmt::format("vector_unit: unknown layer opcode {}", opcode));
}

}  // namespace hdq::npu
