#include "sim/npu_engine.h"

#include <fmt/format.h>

#include <algorithm>

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
  return StepCost{double(t.cycles()) / double(n), t.energy() / double(n),
                  t.energy_pj[int(EnergyKind::mac_array)] / double(n), double(t.dram_bytes) / double(n)};
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
  Npu::instance().run(job, npu_, ledger, vcd_.get(), training ? this : nullptr, this);
  if (job.failed) {
    state_ = {};  // what the job left on chip is unknown: the next step starts afresh
    carry_ = false;
    first_update_ = true;
    const std::string what = fmt::format("npu: command {} failed: {}", job.failed_command, job.error);
    if (job.numeric_error) throw NumericError(what);
    throw ConfigError(what);
  }
  total.merge(ledger);
}

float NpuEngine::gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels,
                           std::span<const bool> active, std::uint64_t step, MlpGrads& grads) {
  if (p.graph) return graph_gradients(p, x, labels, active, step, grads);
  const auto lock = Npu::instance().acquire();
  // Another engine's job may have used the device's buffers (SRAM and DRAM).
  if (!Npu::instance().last_owner_is(this) || !Npu::instance().last_runner_is(this)) {
    first_update_ = true;
    state_.on_chip = false;
    carry_ = false;
  }
  // The device's W (and b) after its last update equal the driver's weights.
  bool w_current = (state_.on_chip || carry_) && device_state_.w.size() == p.w.size();
  for (std::size_t l = 0; w_current && l < p.w.size(); ++l) w_current = device_state_.w[l].v == p.w[l].v;
  state_.weights_current = state_.on_chip && w_current;
  for (std::size_t l = 0; state_.weights_current && l < p.w.size(); ++l)
    state_.weights_current = device_state_.b[l] == p.b[l];
  StepSettings s{.npu = &npu_, .hdqt = &cfg_, .seed = seed_, .sgd = sgd_, .first_update = first_update_,
                 .read_device_params = keep_device_params_};
  s.state = state_;
  // max |W| reduced in the last update serves this step's Q(W) only for the
  // same weights and when finite; else Q(W) reduces them itself (and fails on
  // a NaN exactly where the functional engine does).
  s.carried_w_max = carry_ && w_current;
  // Wq rounded by the last step serves only the step after it (its random key).
  if (s.carried_w_max && step == carry_step_) s.carried_wq = carry_wq_;
  StepResults& res = results_;
  Job job = place(kEvalSlot, [&](std::uint64_t base) {  // clear of forward passes kept for their backward
    s.dram_base = base;
    return build_training_step(s, p, x, labels, active, step, res);
  });
  state_ = {};  // until the job has run
  carry_ = false;
  run(job, first_update_ ? warmup_ : train_, true);
  state_.on_chip = job.state_on_chip;
  if (s.carried_wq) ++carried_wq_steps_;
  carry_ = job.carries_w_max && carry_finite(res);
  carry_wq_ = job.carries_wq;
  carry_step_ = step + 1;
  if (keep_device_params_) device_params_ = res.device_params;
  // The read-back weights become the device's (the old buffers take the next step's read-back).
  if (state_.on_chip || carry_) std::swap(device_state_, res.device_params);
  decode_records(res);
  ++(first_update_ ? warmup_steps_ : steps_);
  first_update_ = false;
  std::swap(grads, res.grads);  // the caller's previous buffers are reused next step
  std::swap(outputs_, res.outputs);
  merge_overflow(res.stats, GemmRole::fwd, GemmRole::bwd_dw);
  return res.loss;
}

// A graph's training step: all in DRAM between operations, so nothing of the
// device's state stays on chip or is carried to the next step.
float NpuEngine::graph_gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels,
                                 std::span<const bool> active, std::uint64_t step, MlpGrads& grads) {
  const auto lock = Npu::instance().acquire();
  if (!Npu::instance().last_owner_is(this) || !Npu::instance().last_runner_is(this)) first_update_ = true;
  state_ = {};
  carry_ = false;
  StepSettings s{.npu = &npu_, .hdqt = &cfg_, .seed = seed_, .sgd = sgd_, .first_update = first_update_,
                 .read_device_params = keep_device_params_};
  StepResults& res = results_;
  res.grads = std::move(grads);  // reuse the caller's buffers when they fit
  Job job = place(kEvalSlot, [&](std::uint64_t base) {
    s.dram_base = base;
    return build_graph_step(s, p, x, labels, active, step, res);
  });
  run(job, first_update_ ? warmup_ : train_, true);
  decode_graph_records(p, res);
  ++(first_update_ ? warmup_steps_ : steps_);
  first_update_ = false;
  grads = std::move(res.grads);
  std::swap(outputs_, res.outputs);
  if (keep_device_params_) device_params_ = std::move(res.device_params);
  merge_overflow(res.stats, GemmRole::fwd, GemmRole::bwd_dw);
  return res.loss;
}

const std::vector<Matrix>& NpuEngine::graph_eval(const MlpParams& p, const Matrix& x, const NetCall& call) {
  const auto lock = Npu::instance().acquire();
  if (!Npu::instance().last_runner_is(this)) state_.on_chip = false;
  StepSettings s{.npu = &npu_, .hdqt = &cfg_, .seed = seed_, .sgd = sgd_, .first_update = false};
  s.net = call.net;
  s.state = {state_.on_chip, false};  // a state on chip (an MLP's) goes home first
  StepResults res;
  res.outputs = std::move(eval_outputs_);
  Job job = place(kEvalSlot, [&](std::uint64_t base) {
    s.dram_base = base;
    return build_graph_eval(s, p, x, call.step, res);
  });
  state_ = {};
  run(job, eval_, false);
  eval_outputs_ = std::move(res.outputs);
  return eval_outputs_;
}

void NpuEngine::logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) {
  out = forward(p, x, {step, 0, kEvalSlot}).back();
}

Job NpuEngine::place_pass(int free_slot, StepSettings s, const std::function<Job(const StepSettings&)>& build) {
  if (!Npu::instance().last_runner_is(this)) state_.on_chip = false;
  s.state = {state_.on_chip, false};
  auto at = [&](bool spare) {
    s.spare_state = spare;
    return place(free_slot, [&](std::uint64_t base) {
      s.dram_base = base;
      return build(s);
    });
  };
  Job job;
  if (!state_.on_chip) job = at(false);
  else {
    try {
      job = at(true);
    } catch (const NpuConfigError&) {
      job = at(false);  // the pass needs the state's SRAM
    }
  }
  state_.on_chip = false;  // until the job has run
  return job;
}

Job NpuEngine::place(int free_slot, const std::function<Job(std::uint64_t)>& build) const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live;
  for (std::size_t i = 0; i < slots_.size(); ++i)
    if (int(i) != free_slot && slots_[i].saved) live.emplace_back(saved_lo(*slots_[i].saved), saved_top(*slots_[i].saved));
  std::vector<std::uint64_t> bases{0};
  for (const auto& r : live) bases.push_back(r.second);
  std::sort(bases.begin(), bases.end());
  for (std::size_t i = 0;; ++i) {
    Job job = build(bases[i]);
    const bool clear = std::none_of(live.begin(), live.end(), [&](const auto& r) {
      return job.tensors_addr < r.second && r.first < job.dram_bytes;
    });
    if (clear || i + 1 == bases.size()) return job;  // above every kept pass nothing overlaps
  }
}

const std::vector<Matrix>& NpuEngine::forward(const MlpParams& p, const Matrix& x, const NetCall& call) {
  check_slot(call.slot);
  if (p.graph && call.slot == kEvalSlot) return graph_eval(p, x, call);
  const auto lock = Npu::instance().acquire();
  if (!Npu::instance().last_owner_is(this))
    for (Slot& s : slots_) s.saved.reset();  // another engine's jobs may have used that DRAM
  slots_.resize(kTrainSlots);
  const bool training = call.slot != kEvalSlot;
  StepSettings s{.npu = &npu_, .hdqt = &cfg_, .seed = seed_, .sgd = sgd_, .first_update = false};
  s.net = call.net;
  StepResults res;
  if (!training) {
    res.outputs = std::move(eval_outputs_);  // the last evaluation's buffers, reused when the shapes are the same
    Job job = place_pass(kEvalSlot, s, [&](const StepSettings& t) {
      return build_forward(t, p, x, call.step, false, res, nullptr);
    });
    run(job, eval_, false);
    state_.on_chip = job.state_on_chip;
    eval_outputs_ = std::move(res.outputs);
    return eval_outputs_;
  }
  Slot& slot = slots_[std::size_t(call.slot)];
  slot.saved.reset();
  SavedForwardPtr saved;
  Job job = place_pass(call.slot, s, [&](const StepSettings& t) {
    return p.graph ? build_graph_forward(t, p, x, call.step, !call.frozen, res, &saved)
                   : build_forward(t, p, x, call.step, true, res, &saved);
  });
  run(job, train_, true);
  state_.on_chip = job.state_on_chip;
  if (p.graph) decode_graph_records(p, res);
  else decode_records(res);
  if (!last_pass_step_ || *last_pass_step_ != call.step) ++steps_;
  last_pass_step_ = call.step;
  slot.saved = std::move(saved);
  slot.step = call.step;
  slot.net = call.net;
  slot.outputs = std::move(res.outputs);
  merge_overflow(res.stats, GemmRole::fwd, GemmRole::fwd);
  if (call.slot == 0) outputs_ = slot.outputs;
  return slot.outputs;
}

void NpuEngine::backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) {
  check_slot(call.slot);
  if (call.slot == kEvalSlot) throw ConfigError("engine: backward() needs a training slot");
  const auto lock = Npu::instance().acquire();
  Slot* slot = std::size_t(call.slot) < slots_.size() ? &slots_[std::size_t(call.slot)] : nullptr;
  if (!slot || !slot->saved || slot->step != call.step || slot->net != call.net || !Npu::instance().last_owner_is(this))
    throw ConfigError(fmt::format("npu: backward of step {}, network {}, slot {} has no training forward kept for it",
                                  call.step, call.net, call.slot));
  StepSettings s{.npu = &npu_, .hdqt = &cfg_, .seed = seed_, .sgd = sgd_, .first_update = false};
  s.net = call.net;
  StepResults res;
  res.grads = std::move(grads);  // reuse the caller's buffers when they fit
  Job job = place_pass(kEvalSlot, s, [&](const StepSettings& t) {
    return p.graph ? build_graph_backward(t, p, *slot->saved, dout, call.step, res)
                   : build_backward(t, p, *slot->saved, dout, call.step, res);
  });
  run(job, train_, true);
  state_.on_chip = job.state_on_chip;
  if (p.graph) decode_graph_records(p, res);
  else decode_records(res);
  slot->saved.reset();  // its DRAM is free again
  merge_overflow(res.stats, GemmRole::bwd_dx, GemmRole::bwd_dw);
  grads = std::move(res.grads);
}

void NpuEngine::merge_overflow(const std::vector<GemmStats>& stats, GemmRole first, GemmRole last) {
  const std::size_t L = stats.size() / kGemmRoles;
  if (overflow_.layers.size() < L) overflow_.layers.resize(L);
  for (std::size_t l = 0; l < L; ++l)
    for (int g = int(first); g <= int(last); ++g) overflow_.layers[l][g].merge(stats[l * kGemmRoles + std::size_t(g)]);
}

}  // namespace hdq::npu
