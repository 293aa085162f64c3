#include "models/nn/mlp.h"

#include <bit>
#include <cmath>
#include <fmt/format.h>

#include "models/common/errors.h"
#include "models/quantizer/random_bits.h"

namespace hdq {

MlpParams init_mlp(const MlpSpec& spec, std::uint64_t seed) {
  if (spec.widths.size() < 2) throw ConfigError("network: at least an input and an output width are needed");
  for (std::size_t i = 0; i < spec.widths.size(); ++i)
    require_in_range(fmt::format("network.widths[{}]", i).c_str(), spec.widths[i], 1, 1 << 20);
  MlpParams p;
  for (int l = 0; l < spec.layers(); ++l) {
    const int in = spec.widths[l], out = spec.widths[l + 1];
    Matrix w(out, in);
    std::vector<float> b(static_cast<std::size_t>(out));
    init_uniform(seed, l, 1.0f / std::sqrt(float(in)), w.v, b);
    p.w.push_back(std::move(w));
    p.b.push_back(std::move(b));
  }
  return p;
}

void init_uniform(std::uint64_t seed, int layer, float bound, std::span<float> w, std::span<float> b) {
  const std::uint64_t base = seed ^ mix64(std::uint64_t(layer));
  std::uint64_t i = 0;
  auto draw = [&] {
    const float u = float(mix64(base + (++i) * 0x9e3779b97f4a7c15ULL) >> 40) * 0x1p-24f;
    return (2.0f * u - 1.0f) * bound;
  };
  for (auto& x : w) x = draw();
  for (auto& x : b) x = draw();
}

MlpGrads zeros_like(const MlpParams& p) {
  MlpGrads g;
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    g.w.emplace_back(p.w[l].rows, p.w[l].cols);
    g.b.emplace_back(p.b[l].size(), 0.0f);
  }
  g.running = p.running;
  g.graph = p.graph;
  return g;
}

float softmax_cross_entropy(const Matrix& logits, std::span<const int> labels, std::span<const bool> active,
                            Matrix* dlogits) {
  const int batch = logits.rows, classes = logits.cols;
  if (batch == 0) throw ConfigError("softmax_cross_entropy: empty batch");
  if (int(labels.size()) != batch || int(active.size()) != classes)
    throw ConfigError("softmax_cross_entropy: labels/active sizes do not match the logits");
  if (dlogits) {
    dlogits->reshape(batch, classes);
    std::fill(dlogits->v.begin(), dlogits->v.end(), 0.0f);
  }
  float total = 0.0f;
  for (int r = 0; r < batch; ++r) {
    const auto z = logits.row(r);
    const int y = labels[r];
    if (y < 0 || y >= classes || !active[y])
      throw ConfigError(fmt::format("softmax_cross_entropy: label {} of row {} is not an active class", y, r));
    float mx = -INFINITY;
    for (int c = 0; c < classes; ++c)
      if (active[c]) mx = std::max(mx, z[c]);
    float s = 0.0f;
    for (int c = 0; c < classes; ++c)
      if (active[c]) s += std::exp(z[c] - mx);
    total += std::log(s) - (z[y] - mx);
    if (dlogits)
      for (int c = 0; c < classes; ++c)
        if (active[c]) dlogits->at(r, c) = (std::exp(z[c] - mx) / s - (c == y ? 1.0f : 0.0f)) / float(batch);
  }
  return total / float(batch);
}

float distillation(const Matrix& student, const Matrix& teacher, std::span<const bool> mask, float temperature,
                   float weight, Matrix* dstudent) {
  const int batch = student.rows, classes = student.cols;
  if (batch == 0) throw ConfigError("distillation: empty batch");
  if (teacher.rows != batch || teacher.cols != classes || int(mask.size()) != classes)
    throw ConfigError("distillation: teacher/mask shapes do not match the student logits");
  if (dstudent && (dstudent->rows != batch || dstudent->cols != classes))
    throw ConfigError("distillation: gradient shape does not match the student logits");
  const float T = temperature;
  const auto n = static_cast<std::size_t>(classes);
  std::vector<float> zs(n), zt(n);
  float total = 0.0f;
  for (int r = 0; r < batch; ++r) {
    float ms = -INFINITY, mt = -INFINITY;
    for (int c = 0; c < classes; ++c)
      if (mask[c]) {
        zs[c] = student.at(r, c) / T;
        zt[c] = teacher.at(r, c) / T;
        ms = std::max(ms, zs[c]);
        mt = std::max(mt, zt[c]);
      }
    float ss = 0.0f, st = 0.0f;
    for (int c = 0; c < classes; ++c)
      if (mask[c]) {
        ss += std::exp(zs[c] - ms);
        st += std::exp(zt[c] - mt);
      }
    const float log_ss = std::log(ss);
    float row_loss = 0.0f;
    for (int c = 0; c < classes; ++c) {
      if (!mask[c]) continue;
      const float p = std::exp(zt[c] - mt) / st;
      row_loss -= p * ((zs[c] - ms) - log_ss);
      if (dstudent) {
        const float q = std::exp(zs[c] - ms) / ss;
        dstudent->at(r, c) += weight * ((q - p) / (T * float(batch)));
      }
    }
    total += row_loss;
  }
  return total / float(batch);
}

int predict_class(std::span<const float> logits, std::span<const bool> active) {
  if (active.size() != logits.size())
    throw ConfigError(fmt::format("predict_class: {} active flags for {} logits", active.size(), logits.size()));
  int best = -1;
  for (int c = 0; c < int(logits.size()); ++c)
    if (active[c] && (best < 0 || logits[c] > logits[best])) best = c;
  return best;
}

namespace {
void sgd_update(std::span<float> w, std::span<const float> g, std::vector<float>& buf, bool first, const SgdConfig& c) {
  if (first) buf.assign(w.size(), 0.0f);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float d = g[i] + c.weight_decay * w[i];
    buf[i] = first ? d : c.momentum * buf[i] + d;
    w[i] = w[i] - c.lr * buf[i];
  }
}
}  // namespace

void Sgd::step(MlpParams& p, const MlpGrads& g) {
  if (g.w.size() != p.w.size() || g.b.size() != p.b.size())
    throw ConfigError("Sgd::step: gradients and parameters have different layer counts");
  for (std::size_t l = 0; l < p.w.size(); ++l)
    if (g.w[l].v.size() != p.w[l].v.size() || g.b[l].size() != p.b[l].size())
      throw ConfigError(fmt::format("Sgd::step: layer {} gradient shape differs from the parameters", l));
  const bool first = buf_.w.empty();
  if (first) {
    buf_.w.resize(p.w.size());
    buf_.b.resize(p.b.size());
  }
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    sgd_update(p.w[l].v, g.w[l].v, buf_.w[l].v, first, cfg_);
    sgd_update(p.b[l], g.b[l], buf_.b[l], first, cfg_);
  }
  if (g.running.empty()) return;
  if (g.running.size() != p.running.size())
    throw ConfigError("Sgd::step: gradients and parameters have different running-statistic layers");
  for (std::size_t l = 0; l < p.running.size(); ++l) {
    if (g.running[l].size() != p.running[l].size())
      throw ConfigError(fmt::format("Sgd::step: layer {} running statistics differ in size from the parameters", l));
    p.running[l] = g.running[l];
  }
}

std::uint64_t signature(const MlpParams& p) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto feed = [&](std::span<const float> xs) {
    for (float x : xs) {
      std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
      for (int k = 0; k < 4; ++k, bits >>= 8) h = (h ^ (bits & 0xffu)) * 0x100000001b3ULL;
    }
  };
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    feed(p.w[l].v);
    feed(p.b[l]);
    if (l < p.running.size()) feed(p.running[l]);  // empty for MLPs: their signatures are the w, b bits alone
  }
  return h;
}

}  // namespace hdq
