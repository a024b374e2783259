#include "io/dtype.h"

#include <cstring>
#include <limits>
#include <string>

#include "core/error.h"
#include "io/bytes.h"

namespace fusediff::io {

// The conversions reinterpret IEEE-754 bit patterns, and F64 -> F32 relies on IEEE semantics
// (values beyond float range become infinity rather than undefined behaviour).
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "fusediff needs IEEE-754 float and double");

namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2},   {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4},   {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},   {DType::F64, "F64", 8},   {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},   {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeEntry& dtype_entry(DType dtype) {
  for (const DTypeEntry& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  fail(ErrorCode::Argument, "invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

double double_from_bits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

}  // namespace

const char* dtype_name(DType dtype) { return dtype_entry(dtype).name; }
size_t dtype_size(DType dtype) { return dtype_entry(dtype).size; }

bool dtype_from_name(std::string_view name, DType& dtype) {
  for (const DTypeEntry& entry : kDTypes) {
    if (name == entry.name) {
      dtype = entry.dtype;
      return true;
    }
  }
  return false;
}

bool converts_to_float32(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F64 || dtype == DType::F16 || dtype == DType::BF16;
}

void convert_to_float32(DType dtype, const uint8_t* src, size_t count, float* out) {
  switch (dtype) {
    case DType::F32:
      for (size_t i = 0; i < count; ++i) out[i] = float_from_bits(load_le32(src + 4 * i));
      return;
    case DType::F64:
      for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(double_from_bits(load_le64(src + 8 * i)));
      return;
    case DType::F16:
      for (size_t i = 0; i < count; ++i) out[i] = f16_to_f32(load_le16(src + 2 * i));
      return;
    case DType::BF16:
      for (size_t i = 0; i < count; ++i) out[i] = bf16_to_f32(load_le16(src + 2 * i));
      return;
    default:
      fail(ErrorCode::Unsupported, std::string("dtype ") + dtype_name(dtype) +
                                       " does not convert to float32 (F32, F64, F16 and BF16 do)");
  }
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = uint32_t{bits & 0x8000u} << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  const uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa x 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1F) return float_from_bits(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN keeps its payload
  return float_from_bits(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));  // rebias the exponent
}

// bfloat16 is the top half of a float32.
float bf16_to_f32(uint16_t bits) { return float_from_bits(uint32_t{bits} << 16); }

}  // namespace fusediff::io
