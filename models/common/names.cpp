#include "models/common/names.h"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "models/common/errors.h"

namespace hdq {
namespace {

template <typename E, std::size_t N>
using Table = std::array<std::pair<E, std::string_view>, N>;

constexpr Table<AccMode, 4> kAccMode{{{AccMode::exact, "exact"},
                                      {AccMode::clamp_tile, "clamp_tile"},
                                      {AccMode::saturate, "saturate"},
                                      {AccMode::wrap, "wrap"}}};
constexpr Table<AccRange, 2> kAccRange{{{AccRange::symmetric, "symmetric"}, {AccRange::full, "full"}}};
constexpr Table<Rounding, 3> kRounding{
    {{Rounding::nearest, "nearest"}, {Rounding::stochastic, "stochastic"}, {Rounding::luq, "luq"}}};
constexpr Table<Signedness, 3> kSignedness{{{Signedness::automatic, "auto"},
                                            {Signedness::is_signed, "signed"},
                                            {Signedness::is_unsigned, "unsigned"}}};
constexpr Table<ScaleMode, 2> kScaleMode{{{ScaleMode::f32, "float"}, {ScaleMode::pow2, "pow2"}}};
constexpr Table<KernelPath, 4> kKernelPath{{{KernelPath::reference, "reference"},
                                            {KernelPath::portable, "portable"},
                                            {KernelPath::avx2, "avx2"},
                                            {KernelPath::avx512, "avx512"}}};

template <typename E, std::size_t N>
std::string_view lookup(const Table<E, N>& t, E v) {
  for (const auto& [e, s] : t)
    if (e == v) return s;
  return "?";
}

template <typename E, std::size_t N>
E parse(const Table<E, N>& t, std::string_view s, std::string_view field) {
  std::string allowed;
  for (const auto& [e, n] : t) {
    if (n == s) return e;
    allowed += allowed.empty() ? std::string(n) : fmt::format(", {}", n);
  }
  throw ConfigError(fmt::format("{} = '{}' is not one of: {}", field, s, allowed));
}

}  // namespace

std::string_view name(AccMode v) { return lookup(kAccMode, v); }
std::string_view name(AccRange v) { return lookup(kAccRange, v); }
std::string_view name(Rounding v) { return lookup(kRounding, v); }
std::string_view name(Signedness v) { return lookup(kSignedness, v); }
std::string_view name(ScaleMode v) { return lookup(kScaleMode, v); }
std::string_view name(KernelPath v) { return lookup(kKernelPath, v); }

AccMode parse_acc_mode(std::string_view s, std::string_view f) { return parse(kAccMode, s, f); }
AccRange parse_acc_range(std::string_view s, std::string_view f) { return parse(kAccRange, s, f); }
Rounding parse_rounding(std::string_view s, std::string_view f) { return parse(kRounding, s, f); }
Signedness parse_signedness(std::string_view s, std::string_view f) { return parse(kSignedness, s, f); }
ScaleMode parse_scale_mode(std::string_view s, std::string_view f) { return parse(kScaleMode, s, f); }
KernelPath parse_kernel_path(std::string_view s, std::string_view f) { return parse(kKernelPath, s, f); }

}  // namespace hdq
