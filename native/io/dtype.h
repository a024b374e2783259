// Element types of stored tensors, spelled as safetensors spells them, and their exact
// conversions to float32. Shared by every weight-file reader (safetensors, PyTorch .bin).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fusediff::io {

enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E4M3, F8_E5M2 };

const char* dtype_name(DType dtype);  // the header spelling: "F32", "BF16", ...
size_t dtype_size(DType dtype);       // bytes per element
bool dtype_from_name(std::string_view name, DType& dtype);  // false for an unknown spelling

// F32, F64, F16 and BF16: the dtypes weights may have.
bool converts_to_float32(DType dtype);
// `count` little-endian elements at `src` (any alignment) as float32: F16/BF16 exactly, F64
// rounded to nearest. Other dtypes throw Error(Unsupported); callers name the tensor.
void convert_to_float32(DType dtype, const uint8_t* src, size_t count, float* out);

float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);

}  // namespace fusediff::io
