// libFuzzer target: the strict JSON parser, with and without Python's non-finite literals.
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "io/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fusediff;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool nonfinite : {false, true}) {
    try {
      io::JsonOptions options;
      options.allow_nonfinite = nonfinite;
      (void)io::parse_json(text, options);
    } catch (const Error&) {
    }
  }
  return 0;
}
