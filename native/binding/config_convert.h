// JS object (the normalised config produced by lib/unet/config.ts, diffusers' snake_case
// keys) -> unet::UNetConfig. Types are checked again here because the addon is callable
// directly; value ranges are the planner's business.
#pragma once
#include <napi.h>

#include "unet/config.h"

namespace fusediff::binding {

unet::UNetConfig to_unet_config(Napi::Env env, Napi::Object obj);

}  // namespace fusediff::binding
