// The restricted unpickler for the data.pkl record of a PyTorch checkpoint.
//
// A pickle is a program for a stack machine that may import any Python name and call it:
// loading one with Python's unpickler runs whatever the file asks for. This machine is not
// a general unpickler. It implements the few opcodes torch.save uses for a state dict and
// knows exactly four kinds of global, which it evaluates itself, as data:
//   collections.OrderedDict                 -> an empty dict
//   torch._utils._rebuild_tensor_v2         -> a tensor: storage, offset, size, stride
//   torch._utils._rebuild_parameter         -> the tensor it wraps
//   torch.FloatStorage, torch.HalfStorage, ... (typed storage classes, only inside the
//     persistent ids ('storage', class, key, location, numel) that name storage records)
// Any other global (posix.system, builtins.eval, a model's own class, ...) and any other
// opcode is refused with Error(Unsafe) naming it. Nothing is imported, nothing is called,
// and the machine never recurses, so deep or self-referential structures cannot exhaust
// the native stack; limits on the stack, marks, memo and objects bound its memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace fusediff::io {

// A storage named by a persistent id: the record `<archive>/data/<key>` holds numel
// elements of dtype.
struct PickledStorage {
  DType dtype;
  std::string key;
  int64_t numel;
};

// One entry of the state dict: a strided view of a storage. The view is checked to lie
// inside the storage's numel elements; shapes and strides are non-negative.
struct PickledTensor {
  std::string name;
  size_t storage;  // index into PickledStateDict::storages
  int64_t offset;  // in elements
  std::vector<int64_t> shape, stride;
};

struct PickledStateDict {
  std::vector<PickledStorage> storages;  // each key once
  std::vector<PickledTensor> tensors;    // in the dict's order
};

struct PickleLimits {
  size_t max_stack = size_t{1} << 20;      // values on the stack at once
  size_t max_marks = size_t{1} << 12;      // open MARKs: torch.save nests three deep
  size_t max_memo = size_t{1} << 20;       // memo slots (and the largest memo index)
  size_t max_objects = size_t{1} << 21;    // strings, tuples, lists, dicts and tensors built in all
  size_t max_items = size_t{1} << 22;      // values held by all tuples, lists and dicts together
  size_t max_string_bytes = size_t{1} << 16;
  int max_rank = 8;
};

// Runs `bytes` (a data.pkl) on the restricted machine and returns the state dict it
// describes: a dict (or OrderedDict) from names to tensors. `where` prefixes messages.
// Errors: Unsafe for an opcode or global outside the allowed set, Format for a malformed
// pickle or one that is not a state dict of tensors, Unsupported for a pickle protocol
// above 5 or tensor metadata fusediff does not know, Resource above the limits.
PickledStateDict unpickle_state_dict(const uint8_t* bytes, size_t size, const std::string& where,
                                     const PickleLimits& limits = {});

}  // namespace fusediff::io
