#include "io/pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>

#include "core/error.h"
#include "io/bytes.h"
#include "io/json.h"

namespace fusediff::io {
namespace {

// The opcodes the machine runs (pickletools' names). Everything else is refused.
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BININT = 'J', BININT1 = 'K', BININT2 = 'M',
  NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c',
  DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', BINGET = 'h', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']',
  BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
  PROTO = 0x80, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a,
  LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
};

// Names of every pickle opcode, so that a refusal names what the file asked for.
const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

enum class Kind : uint8_t { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "a bool";
    case Kind::Int: return "an int";
    case Kind::Float: return "a float";
    case Kind::String: return "a string";
    case Kind::Tuple: return "a tuple";
    case Kind::List: return "a list";
    case Kind::Dict: return "a dict";
    case Kind::Global: return "a global";
    case Kind::Storage: return "a storage";
    case Kind::Tensor: return "a tensor";
  }
  return "?";
}

// The globals the machine knows; it evaluates them itself.
enum class Global : uint8_t { OrderedDict, RebuildTensorV2, RebuildParameter, StorageClass };

struct StorageClass {
  const char* name;  // in module torch
  DType dtype;
};

constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", DType::F32}, {"DoubleStorage", DType::F64}, {"HalfStorage", DType::F16},
    {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16}, {"CharStorage", DType::I8}, {"ByteStorage", DType::U8},
    {"BoolStorage", DType::BOOL},
};

constexpr const char* kAllowedGlobals =
    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the "
    "torch.*Storage classes";

// A value on the stack, in the memo or in a container. Strings, containers, storages and
// tensors live in pools and are referred to by index, so a value is small and copying it
// shares the object, as Python shares it.
struct Value {
  Kind kind = Kind::None;
  Global global = Global::OrderedDict;  // Kind::Global
  DType dtype = DType::F32;             // Kind::Global, Global::StorageClass
  int64_t n = 0;                        // Bool and Int: the value; String, containers, Storage, Tensor: pool index
  double f = 0;                         // Float
};

struct Tensor {
  size_t storage;
  int64_t offset;
  std::vector<int64_t> shape, stride;
};

class Machine {
 public:
  Machine(const uint8_t* bytes, size_t size, const std::string& where, const PickleLimits& limits)
      : bytes_(bytes), size_(size), where_(where), limits_(limits) {}

  PickledStateDict run() {
    for (;;) {
      if (pos_ >= size_) bad("the pickle ends without STOP (truncated?)");
      at_ = pos_;
      const uint8_t op = bytes_[pos_++];
      if (op == STOP) {
        const Value root = pop();
        if (pos_ != size_) bad(std::to_string(size_ - pos_) + " bytes follow STOP");
        return state_dict(root);
      }
      step(op);
    }
  }

 private:
  // --- errors, each saying where in the pickle -------------------------------------------
  std::string here() const { return where_ + " byte " + std::to_string(at_) + ": "; }
  [[noreturn]] void bad(const std::string& what) const { fail(ErrorCode::Format, here() + what); }
  [[noreturn]] void unsafe(const std::string& what) const {
    fail(ErrorCode::Unsafe, here() + what + "; nothing from the file was executed");
  }
  [[noreturn]] void too_much(const std::string& what, size_t limit) const {
    fail(ErrorCode::Resource, here() + what + " exceeds the limit of " + std::to_string(limit));
  }

  // --- input ------------------------------------------------------------------------------
  const uint8_t* take(uint64_t n) {
    if (n > size_ - pos_) bad("the pickle is truncated: an operand needs " + std::to_string(n) + " bytes, " +
                              std::to_string(size_ - pos_) + " remain");
    const uint8_t* p = bytes_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  // A GLOBAL operand: text up to a newline.
  std::string line() {
    constexpr size_t kMaxLine = 256;
    const size_t limit = std::min(size_ - pos_, kMaxLine + 1);
    const void* newline = std::memchr(bytes_ + pos_, '\n', limit);
    if (!newline) bad("a GLOBAL operand has no newline within " + std::to_string(kMaxLine) + " bytes");
    const size_t n = static_cast<size_t>(static_cast<const uint8_t*>(newline) - (bytes_ + pos_));
    std::string text(reinterpret_cast<const char*>(take(n + 1)), n);
    return text;
  }

  // --- objects ----------------------------------------------------------------------------
  void count_object() {
    if (++objects_ > limits_.max_objects) too_much("the number of objects", limits_.max_objects);
  }
  void count_items(size_t n) {
    items_ += n;
    if (items_ > limits_.max_items) too_much("the number of container items", limits_.max_items);
  }
  Value make_string(std::string text) {
    if (!is_utf8(text)) bad("a string is not valid UTF-8: " + quote_for_message(text));
    count_object();
    strings_.push_back(std::move(text));
    Value v;
    v.kind = Kind::String;
    v.n = static_cast<int64_t>(strings_.size() - 1);
    return v;
  }
  Value make_container(Kind kind, std::vector<Value> items) {
    count_object();
    count_items(items.size());
    containers_.push_back(std::move(items));
    Value v;
    v.kind = kind;
    v.n = static_cast<int64_t>(containers_.size() - 1);
    return v;
  }
  Value make_int(int64_t n) {
    Value v;
    v.kind = Kind::Int;
    v.n = n;
    return v;
  }
  std::vector<Value>& items(const Value& v) { return containers_[static_cast<size_t>(v.n)]; }
  const std::string& text(const Value& v) const { return strings_[static_cast<size_t>(v.n)]; }

  // --- the stack and its marks ------------------------------------------------------------
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(const Value& v) {
    if (stack_.size() >= limits_.max_stack) too_much("the stack depth", limits_.max_stack);
    stack_.push_back(v);
  }
  Value pop() {
    if (stack_.size() <= floor()) bad("stack underflow");
    Value v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.size() <= floor()) bad("stack underflow");
    return stack_.back();
  }
  std::vector<Value> pop_mark() {
    if (marks_.empty()) bad("an opcode needs a MARK and there is none");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value> out(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return out;
  }

  // --- the memo ---------------------------------------------------------------------------
  void memo_put(uint64_t index) {
    if (index >= limits_.max_memo) too_much("memo index " + std::to_string(index), limits_.max_memo);
    const Value& v = top();
    if (index >= memo_.size()) {
      memo_.resize(static_cast<size_t>(index) + 1);
      memo_set_.resize(static_cast<size_t>(index) + 1, false);
    }
    if (!memo_set_[static_cast<size_t>(index)]) ++memo_count_;
    memo_[static_cast<size_t>(index)] = v;
    memo_set_[static_cast<size_t>(index)] = true;
  }
  Value memo_get(uint64_t index) {
    if (index >= memo_.size() || !memo_set_[static_cast<size_t>(index)])
      bad("memo slot " + std::to_string(index) + " is read before it is written");
    return memo_[static_cast<size_t>(index)];
  }

  // --- one opcode -------------------------------------------------------------------------
  void step(uint8_t op) {
    switch (op) {
      case PROTO: {
        const uint8_t version = *take(1);
        if (version > 5) fail(ErrorCode::Unsupported, here() + "pickle protocol " + std::to_string(version) + " (fusediff reads 2 to 5)");
        return;
      }
      case FRAME: take(8); return;  // protocol 4 framing: a length prefix with no meaning here
      case MARK:
        if (marks_.size() >= limits_.max_marks) too_much("the MARK nesting", limits_.max_marks);
        marks_.push_back(stack_.size());
        return;
      case POP:
        if (stack_.size() > floor()) stack_.pop_back();
        else pop_mark();  // as Python does: POP on an empty frame discards the mark
        return;
      case POP_MARK: pop_mark(); return;
      case DUP: push(top()); return;
      case NONE: push(Value{}); return;
      case NEWTRUE:
      case NEWFALSE: {
        Value v;
        v.kind = Kind::Bool;
        v.n = op == NEWTRUE;
        push(v);
        return;
      }
      case BININT: push(make_int(static_cast<int32_t>(load_le32(take(4))))); return;
      case BININT1: push(make_int(*take(1))); return;
      case BININT2: push(make_int(load_le16(take(2)))); return;
      case LONG1: push(make_int(read_long(*take(1)))); return;
      case LONG4: {
        const int32_t n = static_cast<int32_t>(load_le32(take(4)));
        if (n < 0) bad("LONG4 with a negative length");
        push(make_int(read_long(static_cast<uint64_t>(n))));
        return;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        Value v;
        v.kind = Kind::Float;
        std::memcpy(&v.f, &bits, sizeof v.f);
        push(v);
        return;
      }
      case SHORT_BINUNICODE: push(read_string(*take(1))); return;
      case BINUNICODE: push(read_string(load_le32(take(4)))); return;
      case BINUNICODE8: push(read_string(load_le64(take(8)))); return;
      case EMPTY_TUPLE: push(make_container(Kind::Tuple, {})); return;
      case TUPLE: push(make_container(Kind::Tuple, pop_mark())); return;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        std::vector<Value> t(static_cast<size_t>(op - TUPLE1 + 1));
        for (size_t i = t.size(); i-- > 0;) t[i] = pop();
        push(make_container(Kind::Tuple, std::move(t)));
        return;
      }
      case EMPTY_LIST: push(make_container(Kind::List, {})); return;
      case LIST: push(make_container(Kind::List, pop_mark())); return;
      case EMPTY_DICT: push(make_container(Kind::Dict, {})); return;
      case DICT: {
        std::vector<Value> pairs = pop_mark();
        check_pairs(pairs);
        push(make_container(Kind::Dict, std::move(pairs)));
        return;
      }
      case APPEND: {
        const Value v = pop();
        append(top(), {v});
        return;
      }
      case APPENDS: {
        std::vector<Value> values = pop_mark();
        append(top(), values);
        return;
      }
      case SETITEM: {
        const Value value = pop();
        const Value key = pop();
        set_items(top(), {key, value});
        return;
      }
      case SETITEMS: {
        std::vector<Value> pairs = pop_mark();
        set_items(top(), pairs);
        return;
      }
      case BINPUT: memo_put(*take(1)); return;
      case LONG_BINPUT: memo_put(load_le32(take(4))); return;
      case MEMOIZE: memo_put(memo_count_); return;
      case BINGET: push(memo_get(*take(1))); return;
      case LONG_BINGET: push(memo_get(load_le32(take(4)))); return;
      case GLOBAL: {
        const std::string module = line();
        const std::string name = line();
        push(global(module, name));
        return;
      }
      case STACK_GLOBAL: {
        const Value name = pop();
        const Value module = pop();
        if (name.kind != Kind::String || module.kind != Kind::String) bad("STACK_GLOBAL needs two strings");
        push(global(text(module), text(name)));
        return;
      }
      case REDUCE: {
        const Value args = pop();
        const Value callable = pop();
        push(call(callable, args));
        return;
      }
      case BUILD: {
        const Value state = pop();
        build(top(), state);
        return;
      }
      case BINPERSID: push(persistent_load(pop())); return;
      default: {
        const char* name = opcode_name(op);
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        if (!name) unsafe(std::string("byte ") + hex + " is not a pickle opcode");
        unsafe(std::string("opcode ") + name + " (" + hex + ") is not allowed: a state dict of tensors never needs it");
      }
    }
  }

  int64_t read_long(uint64_t n) {
    if (n > 8) bad("an integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
    const uint8_t* p = take(n);
    uint64_t bits = 0;
    for (uint64_t i = 0; i < n; ++i) bits |= uint64_t{p[i]} << (8 * i);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) bits |= ~uint64_t{0} << (8 * n);  // two's complement sign
    int64_t v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }

  Value read_string(uint64_t n) {
    if (n > limits_.max_string_bytes) too_much("a string of " + std::to_string(n) + " bytes", limits_.max_string_bytes);
    const uint8_t* p = take(n);
    return make_string(std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)));
  }

  // Python calls .append/.extend of whatever is there: only lists are allowed to receive.
  void append(const Value& target, const std::vector<Value>& values) {
    if (target.kind != Kind::List) unsafe(std::string("APPEND to ") + kind_name(target.kind) + " (only lists take items)");
    count_items(values.size());
    std::vector<Value>& list = items(target);
    list.insert(list.end(), values.begin(), values.end());
  }

  void check_pairs(const std::vector<Value>& pairs) const {
    if (pairs.size() % 2 != 0) bad("dict items come in an odd number of values");
    for (size_t i = 0; i < pairs.size(); i += 2) {
      if (pairs[i].kind == Kind::List || pairs[i].kind == Kind::Dict) bad(std::string("a dict key is ") + kind_name(pairs[i].kind));
    }
  }

  // Python calls __setitem__ of whatever is there: only dicts are allowed to receive. Items
  // are kept in order, duplicates included; state_dict() refuses duplicate names.
  void set_items(const Value& target, const std::vector<Value>& pairs) {
    if (target.kind != Kind::Dict) unsafe(std::string("SETITEM on ") + kind_name(target.kind) + " (only dicts take items)");
    check_pairs(pairs);
    count_items(pairs.size());
    std::vector<Value>& dict = items(target);
    dict.insert(dict.end(), pairs.begin(), pairs.end());
  }

  Value global(const std::string& module, const std::string& name) {
    Value v;
    v.kind = Kind::Global;
    if (module == "collections" && name == "OrderedDict") {
      v.global = Global::OrderedDict;
      return v;
    }
    if (module == "torch._utils" && (name == "_rebuild_tensor_v2" || name == "_rebuild_parameter")) {
      v.global = name == "_rebuild_tensor_v2" ? Global::RebuildTensorV2 : Global::RebuildParameter;
      return v;
    }
    if (module == "torch") {
      for (const StorageClass& c : kStorageClasses) {
        if (name == c.name) {
          v.global = Global::StorageClass;
          v.dtype = c.dtype;
          return v;
        }
      }
    }
    unsafe("global " + quote_for_message(module + "." + name) + " is not allowed (a state dict of tensors needs only " +
           kAllowedGlobals + ")");
  }

  static std::string global_name(const Value& g) {
    switch (g.global) {
      case Global::OrderedDict: return "collections.OrderedDict";
      case Global::RebuildTensorV2: return "torch._utils._rebuild_tensor_v2";
      case Global::RebuildParameter: return "torch._utils._rebuild_parameter";
      case Global::StorageClass: {
        for (const StorageClass& c : kStorageClasses) {
          if (c.dtype == g.dtype) return std::string("torch.") + c.name;
        }
      }
    }
    return "?";
  }

  Value call(const Value& callable, const Value& args) {
    if (callable.kind != Kind::Global) unsafe(std::string("REDUCE calls ") + kind_name(callable.kind) + ", not an allowed global");
    if (args.kind != Kind::Tuple) bad(std::string("REDUCE arguments are ") + kind_name(args.kind) + ", not a tuple");
    // A reference, not a copy (a memoised huge tuple must not be copied at every REDUCE):
    // nothing below adds a container before its last use.
    const std::vector<Value>& a = items(args);
    switch (callable.global) {
      case Global::OrderedDict:
        if (!a.empty()) unsafe("collections.OrderedDict is called with arguments (torch.save calls it with none)");
        return make_container(Kind::Dict, {});
      case Global::RebuildTensorV2: return rebuild_tensor(a);
      case Global::RebuildParameter:
        if (a.size() != 3 || a[0].kind != Kind::Tensor || a[1].kind != Kind::Bool || a[2].kind != Kind::Dict)
          bad("torch._utils._rebuild_parameter takes (tensor, requires_grad, backward_hooks)");
        return a[0];
      case Global::StorageClass:
        unsafe(global_name(callable) + " is called (a state dict only names storage classes in persistent ids)");
    }
    bad("unknown global");
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  Value rebuild_tensor(const std::vector<Value>& a) {
    const std::string fn = "torch._utils._rebuild_tensor_v2: ";
    if (a.size() != 6 && a.size() != 7) bad(fn + "takes 6 or 7 arguments, got " + std::to_string(a.size()));
    if (a[0].kind != Kind::Storage) bad(fn + "the storage is " + kind_name(a[0].kind));
    if (a[1].kind != Kind::Int || a[1].n < 0) bad(fn + "the storage offset is not a non-negative int");
    Tensor t;
    t.storage = static_cast<size_t>(a[0].n);
    t.offset = a[1].n;
    t.shape = int_tuple(a[2], fn + "size");
    t.stride = int_tuple(a[3], fn + "stride");
    if (t.shape.size() != t.stride.size())
      bad(fn + "size has " + std::to_string(t.shape.size()) + " dims, stride " + std::to_string(t.stride.size()));
    if (a[4].kind != Kind::Bool) bad(fn + "requires_grad is " + kind_name(a[4].kind));
    // Backward hooks would be functions, and functions are refused as globals already.
    if (a[5].kind != Kind::Dict || !items(a[5]).empty()) bad(fn + "backward_hooks is not an empty dict");
    if (a.size() == 7 && a[6].kind != Kind::None && !(a[6].kind == Kind::Dict && items(a[6]).empty()))
      fail(ErrorCode::Unsupported, here() + fn + "the tensor carries metadata fusediff does not know");
    check_view(t, fn);
    count_object();
    tensors_.push_back(std::move(t));
    Value v;
    v.kind = Kind::Tensor;
    v.n = static_cast<int64_t>(tensors_.size() - 1);
    return v;
  }

  std::vector<int64_t> int_tuple(const Value& v, const std::string& what) {
    if (v.kind != Kind::Tuple) bad(what + " is " + kind_name(v.kind) + ", not a tuple");
    const std::vector<Value>& dims = items(v);
    if (dims.size() > static_cast<size_t>(std::max(limits_.max_rank, 0)))
      too_much(what + " of rank " + std::to_string(dims.size()), static_cast<size_t>(std::max(limits_.max_rank, 0)));
    std::vector<int64_t> out;
    for (const Value& d : dims) {
      if (d.kind != Kind::Int || d.n < 0) bad(what + " holds something other than a non-negative int");
      out.push_back(d.n);
    }
    return out;
  }

  // The elements the view reaches must lie within the storage's numel elements.
  void check_view(const Tensor& t, const std::string& fn) const {
    int64_t numel = 1;
    int64_t last = t.offset;  // the furthest element the view reaches
    for (size_t i = 0; i < t.shape.size(); ++i) {
      int64_t reach;
      if (__builtin_mul_overflow(t.shape[i], numel, &numel) ||
          (t.shape[i] > 0 && (__builtin_mul_overflow(t.shape[i] - 1, t.stride[i], &reach) ||
                              __builtin_add_overflow(last, reach, &last))))
        bad(fn + "size and stride overflow 64 bits");
    }
    const int64_t storage_numel = storages_[t.storage].numel;
    if (numel > 0 && last >= storage_numel)
      bad(fn + "the view reaches element " + std::to_string(last) + " of a storage of " + std::to_string(storage_numel));
  }

  // BUILD sets an object's state. torch.save BUILDs only its OrderedDict, with the
  // `_metadata` attribute (module versions), which fusediff has no use for.
  void build(const Value& target, const Value& state) {
    if (target.kind != Kind::Dict || state.kind != Kind::Dict)
      unsafe(std::string("BUILD of ") + kind_name(target.kind) + " from " + kind_name(state.kind) +
             " (torch.save only sets a dict's attributes)");
  }

  // ('storage', storage class, key, location, numel)
  Value persistent_load(const Value& pid) {
    const std::string what = "a persistent id";
    if (pid.kind != Kind::Tuple) bad(what + " is " + kind_name(pid.kind) + ", not a tuple");
    const std::vector<Value>& p = items(pid);
    if (p.size() != 5 || p[0].kind != Kind::String || text(p[0]) != "storage" || p[1].kind != Kind::Global ||
        p[1].global != Global::StorageClass || p[2].kind != Kind::String || p[3].kind != Kind::String ||
        p[4].kind != Kind::Int || p[4].n < 0)
      bad(what + " is not ('storage', storage class, key, location, numel)");
    const std::string& key = text(p[2]);
    if (key.empty() || key.find('/') != std::string::npos) bad("storage key " + quote_for_message(key) + " is not a record name");
    const auto found = storage_by_key_.find(key);
    size_t index;
    if (found != storage_by_key_.end()) {
      index = found->second;
      const PickledStorage& s = storages_[index];
      if (s.dtype != p[1].dtype || s.numel != p[4].n)
        bad("storage " + quote_for_message(key) + " is named twice with different types or sizes");
    } else {
      index = storages_.size();
      storages_.push_back({p[1].dtype, key, p[4].n});
      storage_by_key_.emplace(key, index);
    }
    Value v;
    v.kind = Kind::Storage;
    v.n = static_cast<int64_t>(index);
    return v;
  }

  PickledStateDict state_dict(const Value& root) {
    if (root.kind != Kind::Dict) bad(std::string("the pickle holds ") + kind_name(root.kind) + ", not a state dict");
    PickledStateDict out;
    const std::vector<Value>& pairs = items(root);
    for (size_t i = 0; i < pairs.size(); i += 2) {
      if (pairs[i].kind != Kind::String) bad(std::string("a state dict key is ") + kind_name(pairs[i].kind) + ", not a string");
      const std::string& name = text(pairs[i]);
      const Value& v = pairs[i + 1];
      if (v.kind != Kind::Tensor)
        bad("state dict entry " + quote_for_message(name) + " is " + kind_name(v.kind) + ", not a tensor");
      const Tensor& t = tensors_[static_cast<size_t>(v.n)];
      out.tensors.push_back({name, t.storage, t.offset, t.shape, t.stride});
    }
    std::vector<const std::string*> names;
    for (const PickledTensor& t : out.tensors) names.push_back(&t.name);
    std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (size_t i = 1; i < names.size(); ++i) {
      if (*names[i] == *names[i - 1]) bad("the state dict names " + quote_for_message(*names[i]) + " twice");
    }
    out.storages = std::move(storages_);
    return out;
  }

  const uint8_t* bytes_;
  size_t size_;
  size_t pos_ = 0;
  size_t at_ = 0;  // offset of the opcode being run
  const std::string& where_;
  const PickleLimits& limits_;

  std::vector<Value> stack_;
  std::vector<size_t> marks_;  // stack heights at each open MARK
  std::vector<Value> memo_;
  std::vector<bool> memo_set_;
  uint64_t memo_count_ = 0;  // slots written: MEMOIZE's next index
  size_t objects_ = 0;
  size_t items_ = 0;

  std::vector<std::string> strings_;
  std::vector<std::vector<Value>> containers_;  // tuples, lists, and dicts (key, value, key, value, ...)
  std::vector<PickledStorage> storages_;
  std::map<std::string, size_t> storage_by_key_;
  std::vector<Tensor> tensors_;
};

}  // namespace

PickledStateDict unpickle_state_dict(const uint8_t* bytes, size_t size, const std::string& where,
                                     const PickleLimits& limits) {
  return Machine(bytes, size, where, limits).run();
}

}  // namespace fusediff::io
