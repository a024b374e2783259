// A loaded plan as a plain JS object (ops, values, weight sources): what exporters and
// diagnostics (ONNX export, `fusediff info`) read instead of re-deriving the architecture.
#pragma once
#include <napi.h>

#include "unet/plan.h"

namespace fusediff::binding {

Napi::Object describe_plan(Napi::Env env, const unet::Plan& plan);

}  // namespace fusediff::binding
