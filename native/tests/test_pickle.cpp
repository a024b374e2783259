// Tests of the restricted unpickler: the state dicts torch.save writes (protocol 2, and the
// protocol 4 forms) are read; hostile pickles (globals that run code, calls of unknown
// classes, objects built by INST/OBJ/NEWOBJ, bombs) are refused with the right code and a
// message naming what was refused.
#include <string>
#include <vector>

#include "io/pickle.h"
#include "tests/archive_builder.h"
#include "tests/check.h"

using fusediff::ErrorCode;
using fusediff::io::DType;
using fusediff::io::PickledStateDict;
using fusediff::io::PickleLimits;
using fusediff::io::unpickle_state_dict;
using fusediff::test::Pickle;

namespace {

PickledStateDict run(const std::vector<uint8_t>& bytes, const PickleLimits& limits = {}) {
  return unpickle_state_dict(bytes.data(), bytes.size(), "test.pkl", limits);
}
PickledStateDict run(const Pickle& p, const PickleLimits& limits = {}) { return run(p.b, limits); }

// What torch.save(OrderedDict(w=2x3 float, b=half[2], wt=w.t(), row=w[1])) writes.
Pickle torch_like() {
  Pickle p;
  p.state_dict([](Pickle& q) {
    q.str("w").tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
    q.str("b").tensor("HalfStorage", "1", 2, 0, {2}, {1});
    q.str("wt").tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
    q.str("row").tensor("FloatStorage", "0", 6, 3, {3}, {1});
  });
  return p;
}

// A state dict whose only entry is the value that `value` writes.
template <typename Value>
Pickle with_value(Value&& value) {
  Pickle p;
  p.state_dict([&](Pickle& q) {
    q.str("x");
    value(q);
  });
  return p;
}

}  // namespace

TEST_CASE("pickle: a state dict as torch.save writes it") {
  const PickledStateDict d = run(torch_like());
  CHECK_EQ(d.storages.size(), 2u);
  CHECK_EQ(d.storages[0].key, std::string("0"));
  CHECK_EQ(d.storages[0].dtype, DType::F32);
  CHECK_EQ(d.storages[0].numel, 6);
  CHECK_EQ(d.storages[1].dtype, DType::F16);
  CHECK_EQ(d.tensors.size(), 4u);
  CHECK_EQ(d.tensors[0].name, std::string("w"));
  CHECK(d.tensors[0].shape == (std::vector<int64_t>{2, 3}));
  CHECK(d.tensors[2].stride == (std::vector<int64_t>{1, 3}));
  CHECK_EQ(d.tensors[2].storage, 0u);  // one storage, shared by views
  CHECK_EQ(d.tensors[3].offset, 3);
  CHECK_EQ(d.tensors[1].storage, 1u);
}

TEST_CASE("pickle: memo, a plain dict, _rebuild_parameter and the _metadata BUILD") {
  Pickle p;
  p.proto(2).op('}').put(0).mark();
  p.str("a").put(1).tensor("DoubleStorage", "7", 4, 0, {4}, {1}).put(2);
  p.str("p").global("torch._utils", "_rebuild_parameter").get(2).boolean(true).ordered_dict().op(0x87).reduce();
  p.op('u');
  // state_dict()._metadata = {'': {'version': 1}}
  p.op('}').str("_metadata").ordered_dict().str("").op('}').str("version").int1(1).op('s').op('s').op('s').op('b');
  p.stop();
  const PickledStateDict d = run(p);
  CHECK_EQ(d.tensors.size(), 2u);
  CHECK_EQ(d.tensors[1].name, std::string("p"));
  CHECK_EQ(d.tensors[1].storage, d.tensors[0].storage);
  CHECK_EQ(d.storages[0].dtype, DType::F64);
}

TEST_CASE("pickle: protocol 4 forms (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL)") {
  Pickle p;
  p.proto(4).op(0x95);
  fusediff::test::put64(p.b, 0);  // frame length: ignored
  auto short_str = [&](const std::string& s) {
    p.op(0x8c).op(static_cast<uint8_t>(s.size()));
    p.b.insert(p.b.end(), s.begin(), s.end());
  };
  short_str("collections");
  short_str("OrderedDict");
  p.op(0x93).op(0x94).empty_tuple().reduce().op(0x94).mark();
  short_str("t");
  p.tensor("BFloat16Storage", "k", 3, 1, {2}, {1});
  p.op('u').stop();
  const PickledStateDict d = run(p);
  CHECK_EQ(d.tensors.size(), 1u);
  CHECK_EQ(d.storages[0].dtype, DType::BF16);
}

TEST_CASE("pickle: globals other than the state-dict ones are refused by name") {
  // os.system('touch pwned') as pickle writes it: posix.system, a tuple, REDUCE.
  Pickle system;
  system.proto(2).global("posix", "system").str("touch pwned").op(0x85).reduce().stop();
  CHECK_THROWS_WITH(run(system), ErrorCode::Unsafe, "\"posix.system\"");
  CHECK_THROWS_WITH(run(system), ErrorCode::Unsafe, "nothing from the file was executed");

  Pickle eval;
  eval.proto(2).global("builtins", "eval").str("__import__('os')").op(0x85).reduce().stop();
  CHECK_THROWS_WITH(run(eval), ErrorCode::Unsafe, "\"builtins.eval\"");

  // A __reduce__ of a class of the model's code.
  Pickle custom = with_value([](Pickle& q) { q.global("__main__", "Evil").empty_tuple().reduce(); });
  CHECK_THROWS_WITH(run(custom), ErrorCode::Unsafe, "\"__main__.Evil\"");

  // Nested data that torch's own _load_from_bytes would unpickle again.
  Pickle nested = with_value([](Pickle& q) { q.global("torch.storage", "_load_from_bytes"); });
  CHECK_THROWS_WITH(run(nested), ErrorCode::Unsafe, "\"torch.storage._load_from_bytes\"");

  // STACK_GLOBAL is checked like GLOBAL.
  Pickle stacked;
  stacked.proto(4).str("os").str("system").op(0x93).stop();
  CHECK_THROWS_WITH(run(stacked), ErrorCode::Unsafe, "\"os.system\"");

  // torch's other rebuild functions are not state-dict tensors.
  Pickle other = with_value([](Pickle& q) { q.global("torch._utils", "_rebuild_qtensor"); });
  CHECK_THROWS_WITH(run(other), ErrorCode::Unsafe, "_rebuild_qtensor");
}

TEST_CASE("pickle: object-building opcodes are refused by name") {
  const struct {
    uint8_t op;
    const char* name;
  } refused[] = {{'i', "INST"}, {'o', "OBJ"}, {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"}, {0x82, "EXT1"},
                 {'P', "PERSID"}, {'S', "STRING"}, {'B', "BINBYTES"}, {0x8f, "EMPTY_SET"}, {0x97, "NEXT_BUFFER"}};
  for (const auto& r : refused) {
    Pickle p;
    p.proto(2).op(r.op).stop();
    CHECK_THROWS_WITH(run(p), ErrorCode::Unsafe, r.name);
  }
  Pickle junk;
  junk.proto(2).op(0xF0).stop();
  CHECK_THROWS_WITH(run(junk), ErrorCode::Unsafe, "not a pickle opcode");
}

TEST_CASE("pickle: allowed globals used in ways torch.save never does") {
  // Calling a storage class.
  Pickle call = with_value([](Pickle& q) { q.global("torch", "FloatStorage").empty_tuple().reduce(); });
  CHECK_THROWS_WITH(run(call), ErrorCode::Unsafe, "torch.FloatStorage is called");
  // OrderedDict with arguments.
  Pickle args = with_value([](Pickle& q) { q.global("collections", "OrderedDict").mark().none().tuple().reduce(); });
  CHECK_THROWS_WITH(run(args), ErrorCode::Unsafe, "with arguments");
  // REDUCE of something that is not a global.
  Pickle not_global = with_value([](Pickle& q) { q.str("posix.system").empty_tuple().reduce(); });
  CHECK_THROWS_WITH(run(not_global), ErrorCode::Unsafe, "REDUCE calls a string");
  // APPEND to a dict, SETITEM on a list, BUILD of a tensor: Python would call their methods.
  Pickle append;
  append.proto(2).op('}').none().op('a').stop();
  CHECK_THROWS_WITH(run(append), ErrorCode::Unsafe, "APPEND to a dict");
  Pickle setitem;
  setitem.proto(2).op(']').str("k").none().op('s').stop();
  CHECK_THROWS_WITH(run(setitem), ErrorCode::Unsafe, "SETITEM on a list");
  Pickle build = with_value([](Pickle& q) { q.tensor("FloatStorage", "0", 1, 0, {1}, {1}).op('}').op('b'); });
  CHECK_THROWS_WITH(run(build), ErrorCode::Unsafe, "BUILD of a tensor");
}

TEST_CASE("pickle: bombs end in limits or format errors, never in a crash") {
  {  // a million nested tuples: no recursion anywhere, so only "not a state dict"
    Pickle deep;
    deep.proto(2).none();
    deep.b.insert(deep.b.end(), 1000000, 0x85);
    deep.stop();
    CHECK_THROWS_WITH(run(deep), ErrorCode::Format, "not a state dict");
  }
  {  // MARKs without end
    Pickle marks;
    marks.proto(2);
    marks.b.insert(marks.b.end(), 100000, '(');
    marks.stop();
    CHECK_THROWS_WITH(run(marks), ErrorCode::Resource, "MARK nesting");
  }
  {  // a list that contains itself, as a tensor's size
    Pickle self = with_value([](Pickle& q) {
      q.global("torch._utils", "_rebuild_tensor_v2").mark();
      q.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int1(1).tuple().op('Q');
      q.int1(0).op(']').put(9).get(9).op('a').get(9).boolean(false).ordered_dict().tuple().reduce();
    });
    CHECK_THROWS_WITH(run(self), ErrorCode::Format, "size is a list");
  }
  {  // doubling a value through the memo builds no copies: limits end it
    Pickle laughs;
    laughs.proto(2).none();
    for (int i = 0; i < 64; ++i) laughs.op('2').op(0x86);
    laughs.stop();
    CHECK_THROWS_WITH(run(laughs), ErrorCode::Format, "not a state dict");
  }
  {  // a huge memo index
    Pickle memo;
    memo.proto(2).none().op('r');
    fusediff::test::put32(memo.b, 0xFFFFFFFFu);
    memo.stop();
    CHECK_THROWS_WITH(run(memo), ErrorCode::Resource, "memo index");
  }
  {  // the stack limit
    PickleLimits limits;
    limits.max_stack = 100;
    Pickle many;
    many.proto(2);
    many.b.insert(many.b.end(), 1000, 'N');
    many.stop();
    CHECK_THROWS_WITH(run(many, limits), ErrorCode::Resource, "stack depth");
  }
  {  // the object limit
    PickleLimits limits;
    limits.max_objects = 50;
    Pickle many;
    many.proto(2);
    many.b.insert(many.b.end(), 1000, ']');
    many.stop();
    CHECK_THROWS_WITH(run(many, limits), ErrorCode::Resource, "number of objects");
  }
}

TEST_CASE("pickle: every truncation of a valid pickle is refused") {
  const std::vector<uint8_t> full = torch_like().b;
  for (size_t n = 0; n < full.size(); ++n) {
    CHECK_THROWS_CODE(run(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))),
                      ErrorCode::Format);
  }
  std::vector<uint8_t> trailing = full;
  trailing.push_back('N');
  CHECK_THROWS_WITH(run(trailing), ErrorCode::Format, "follow STOP");
}

TEST_CASE("pickle: malformed state dicts") {
  // A view beyond its storage.
  Pickle beyond = with_value([](Pickle& q) { q.tensor("FloatStorage", "0", 6, 4, {2, 2}, {2, 1}); });
  CHECK_THROWS_WITH(run(beyond), ErrorCode::Format, "reaches element 7");
  // Negative dims and strides.
  Pickle negative = with_value([](Pickle& q) { q.tensor("FloatStorage", "0", 6, 0, {-1}, {1}); });
  CHECK_THROWS_WITH(run(negative), ErrorCode::Format, "non-negative");
  // Rank above the limit.
  Pickle rank = with_value([](Pickle& q) {
    q.tensor("FloatStorage", "0", 1, 0, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1});
  });
  CHECK_THROWS_WITH(run(rank), ErrorCode::Resource, "rank 9");
  // Size/stride overflow.
  Pickle overflow = with_value([](Pickle& q) {
    q.tensor("FloatStorage", "0", 1, 0, {0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF}, {1, 1, 1});
  });
  CHECK_THROWS_WITH(run(overflow), ErrorCode::Format, "overflow");
  // A value that is not a tensor.
  Pickle value = with_value([](Pickle& q) { q.int1(3); });
  CHECK_THROWS_WITH(run(value), ErrorCode::Format, "\"x\" is an int, not a tensor");
  // A name twice.
  Pickle twice;
  twice.state_dict([](Pickle& q) {
    q.str("a").tensor("FloatStorage", "0", 1, 0, {1}, {1});
    q.str("a").tensor("FloatStorage", "1", 1, 0, {1}, {1});
  });
  CHECK_THROWS_WITH(run(twice), ErrorCode::Format, "twice");
  // One storage key with two sizes.
  Pickle storages;
  storages.state_dict([](Pickle& q) {
    q.str("a").tensor("FloatStorage", "0", 1, 0, {1}, {1});
    q.str("b").tensor("FloatStorage", "0", 2, 0, {1}, {1});
  });
  CHECK_THROWS_WITH(run(storages), ErrorCode::Format, "different types or sizes");
  // A storage key that is a path.
  Pickle path = with_value([](Pickle& q) { q.tensor("FloatStorage", "../x", 1, 0, {1}, {1}); });
  CHECK_THROWS_WITH(run(path), ErrorCode::Format, "not a record name");
  // Names that are not UTF-8.
  Pickle utf8;
  utf8.state_dict([](Pickle& q) { q.str("\xff\xfe").tensor("FloatStorage", "0", 1, 0, {1}, {1}); });
  CHECK_THROWS_WITH(run(utf8), ErrorCode::Format, "UTF-8");
  // An integer wider than 64 bits.
  Pickle wide;
  wide.proto(2).op(0x8a).op(9);
  wide.b.insert(wide.b.end(), 9, 1);
  wide.stop();
  CHECK_THROWS_WITH(run(wide), ErrorCode::Format, "64 bits");
  // A future protocol.
  Pickle future;
  future.proto(6).stop();
  CHECK_THROWS_WITH(run(future), ErrorCode::Unsupported, "protocol 6");
  // Underflow and a missing MARK.
  Pickle underflow;
  underflow.proto(2).op(0x85).stop();
  CHECK_THROWS_WITH(run(underflow), ErrorCode::Format, "underflow");
  Pickle no_mark;
  no_mark.proto(2).none().tuple().stop();
  CHECK_THROWS_WITH(run(no_mark), ErrorCode::Format, "MARK");
  // A memo slot read before it is written.
  Pickle unset;
  unset.proto(2).get(5).stop();
  CHECK_THROWS_WITH(run(unset), ErrorCode::Format, "memo slot 5");
}

TEST_CASE("pickle: negative and wide integers") {
  // LONG1 with a sign bit gives a negative storage offset: refused as such.
  Pickle p = with_value([](Pickle& q) {
    q.global("torch._utils", "_rebuild_tensor_v2").mark();
    q.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int1(4).tuple().op('Q');
    q.op(0x8a).op(1).op(0xFF);  // LONG1 -1
    q.int_tuple({1}).int_tuple({1}).boolean(false).ordered_dict().tuple().reduce();
  });
  CHECK_THROWS_WITH(run(p), ErrorCode::Format, "storage offset");
}
