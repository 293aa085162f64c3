#include "sim/npu_engine.h"

#include <fmt/format.h>

#include "sim/npu.h"
#include "sim/report/vcd.h"

namespace hdq::npu {

NpuEngine::NpuEngine(NpuConfig npu, const HdqtConfig& cfg, std::uint64_t seed, SgdConfig sgd)
    : npu_(std::move(npu)), cfg_(cfg), seed_(seed), sgd_(sgd) {
  validate(cfg_);
  check_supported(npu_, cfg_);
}

NpuEngine::~NpuEngine() = default;

std::optional<StepCost> NpuEngine::cost_per_step() const {
  // Steady-state steps; a run of warm-up steps only reports those.
  const bool steady = steps_ > 0;
  const std::uint64_t n = steady ? steps_ : warmup_steps_;
  if (n == 0) return std::nullopt;
  const CostCell t = (steady ? train_ : warmup_).total();
  return StepCost{double(t.cycles()) / double(n), t.energy() / double(n)};
}

void NpuEngine::trace_vcd(const std::string& path) {
  close_vcd();
  vcd_ = std::make_unique<VcdWriter>(path);
}

void NpuEngine::close_vcd() {
  if (vcd_) vcd_->close();
  vcd_.reset();
}

// Runs the job (with the NPU's lock held) with a ledger of its own, merged
// only when the run succeeds: a failed step leaves no results and no costs.
void NpuEngine::run(Job& job, Ledger& total, bool training) {
  Ledger ledger;
  Npu::instance().run(job, npu_, ledger, vcd_.get(), training ? this : nullptr);
  if (job.failed) {
    const std::string what = fmt::format("npu: command {} failed: {}", job.failed_command, job.error);
    if (job.numeric_error) throw NumericError(what);
    throw ConfigError(what);
  }
  total.merge(ledger);
}

float NpuEngine::gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels,
                           std::span<const bool> active, std::uint64_t step, MlpGrads& grads) {
  const auto lock = Npu::instance().acquire();
  if (!Npu::instance().last_owner_is(this)) first_update_ = true;  // another engine used the device's buffers
  const StepSettings s{&npu_, &cfg_, seed_, sgd_, first_update_, keep_device_params_};
  StepResults& res = results_;
  Job job = build_training_step(s, p, x, labels, active, step, res);
  run(job, first_update_ ? warmup_ : train_, true);
  decode_records(res);
  ++(first_update_ ? warmup_steps_ : steps_);
  first_update_ = false;
  std::swap(grads, res.grads);  // the caller's previous buffers are reused next step
  std::swap(outputs_, res.outputs);
  if (keep_device_params_) device_params_ = std::move(res.device_params);
  const std::size_t L = p.w.size();
  if (overflow_.layers.size() < L) overflow_.layers.resize(L);
  for (std::size_t l = 0; l < L; ++l)
    for (int g = 0; g < kGemmRoles; ++g) overflow_.layers[l][g].merge(res.stats[l * kGemmRoles + std::size_t(g)]);
  return res.loss;
}

void NpuEngine::logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) {
  const auto lock = Npu::instance().acquire();
  const StepSettings s{&npu_, &cfg_, seed_, sgd_, first_update_, false};
  Matrix logits;
  Job job = build_forward(s, p, x, step, logits);
  run(job, eval_, false);
  out = std::move(logits);
}

}  // namespace hdq::npu
