// Little-endian loads from untrusted byte buffers: byte-wise, so any alignment is fine and
// the result does not depend on the host's byte order.
#pragma once
#include <cstdint>

namespace fusediff::io {

inline uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint64_t load_le64(const uint8_t* p) { return uint64_t{load_le32(p)} | (uint64_t{load_le32(p + 4)} << 32); }

}  // namespace fusediff::io
