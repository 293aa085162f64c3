// The two families of methods behind make_method (method.h).
#pragma once

#include <memory>

#include "training/methods/method.h"

namespace hdq {

// naive, er, joint, lwf, icarl, bic: one MLP (single_net.cpp).
std::unique_ptr<Method> make_single_net(const RunSetup& run);
// der: an extractor per task (der.cpp).
std::unique_ptr<Method> make_der(const RunSetup& run);

}  // namespace hdq
