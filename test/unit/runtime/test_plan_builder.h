//===- test_plan_builder.h - Building plans in tests ----------------------===//
//
// The runtime tests need many small plans, valid and deliberately broken. PlanBuilder keeps
// a plan as plain, freely editable descriptions (public vectors of structs) and serializes
// them with the FlatBuffers builder only in finish(), so a test can build a good plan and then
// corrupt exactly one field: an index out of range, a wrong size, a duplicate name. Buffers
// added through addBuffer() are packed 64-byte aligned into their arena, which grows to fit.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/plan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fusion::rt::testing {

/// One kernel attribute.
struct AttrDesc {
  std::string name;
  schema::AttrType type = schema::AttrType::Float;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  static AttrDesc number(std::string name, double value);
  static AttrDesc integer(std::string name, int64_t value);
  static AttrDesc string(std::string name, std::string value);
  /// An Ints attribute (DenseI64ArrayAttr: perm, dims).
  static AttrDesc intList(std::string name, std::vector<int64_t> values);
  /// A Floats attribute.
  static AttrDesc floatList(std::string name, std::vector<double> values);
};

struct CubinDesc {
  std::string arch;
  std::vector<uint8_t> image;
};

struct KernelDesc {
  std::string name;
  std::string kind;
  std::vector<AttrDesc> attrs;
  std::string entry;
  std::vector<CubinDesc> cubins;
};

struct ArenaDesc {
  std::string name;
  schema::ArenaClass arenaClass = schema::ArenaClass::Transient;
  uint64_t sizeBytes = 0;
};

struct BufferDesc {
  std::string name;
  schema::DType dtype = schema::DType::F32;
  std::vector<int64_t> shape;
  uint32_t arena = 0;
  uint64_t offset = 0;
  /// Checkpoint role (schema BufferRole); Weight/ModelBuffer/OptimizerState need a
  /// persistent arena.
  schema::BufferRole role = schema::BufferRole::Activation;
};

/// One instruction; only the fields of `type` are serialized.
struct InstrDesc {
  schema::Op type = schema::Op::NONE;
  uint32_t stream = 0;
  std::string loc;
  // Launch
  uint32_t kernel = 0;
  std::vector<uint32_t> args;
  uint32_t numInputs = 0;
  std::vector<uint32_t> grid, block;
  uint32_t sharedMemBytes = 0;
  std::vector<int64_t> intArgs;
  // Gemm
  uint32_t a = 0, b = 0, c = 0;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  bool transA = false, transB = false;
  float alpha = 1, beta = 0;
  // Collective
  schema::CollectiveKind collectiveKind = schema::CollectiveKind::AllReduce;
  std::string axis;
  uint32_t send = 0, recv = 0;
  schema::ReduceOp reduce = schema::ReduceOp::Sum;
  // Record / Wait
  uint32_t event = 0;
  /// When set, the op_type byte written instead of `type` (for unknown-op tests).
  int rawOpType = -1;
};

/// Kernel launch: inputs first, then outputs.
InstrDesc launchOp(uint32_t kernel, std::vector<uint32_t> inputs, std::vector<uint32_t> outputs,
                   std::vector<int64_t> intArgs = {});
/// c = alpha * op(a) @ op(b) + beta * c.
InstrDesc gemmOp(uint32_t a, uint32_t b, uint32_t c, int64_t m, int64_t n, int64_t k,
                 int64_t batch = 1, bool transA = false, bool transB = false, float alpha = 1,
                 float beta = 0);
InstrDesc collectiveOp(schema::CollectiveKind kind, std::string axis, uint32_t send,
                       uint32_t recv, schema::ReduceOp reduce = schema::ReduceOp::Sum);
InstrDesc recordOp(uint32_t event, uint32_t stream = 0);
InstrDesc waitOp(uint32_t event, uint32_t stream = 0);

/// A program input or output: a caller-visible name for a buffer.
struct BindingDesc {
  std::string name;
  uint32_t buffer = 0;
};

struct ProgramDesc {
  std::string name;
  std::vector<InstrDesc> instructions;
  uint32_t numStreams = 1;
  uint32_t numEvents = 0;
  std::vector<BindingDesc> inputs;
  std::vector<BindingDesc> outputs;

  /// Appends `instruction` (with `loc`, when given) and returns *this for chaining.
  ProgramDesc &add(InstrDesc instruction, std::string loc = "");
  /// Binds buffer `buffer` as input `name`; returns *this for chaining.
  ProgramDesc &input(std::string name, uint32_t buffer);
  /// Binds buffer `buffer` as output `name`; returns *this for chaining.
  ProgramDesc &output(std::string name, uint32_t buffer);
};

struct MeshAxisDesc {
  std::string name;
  int32_t size = 1;
};

/// A plan under construction; every member may be edited directly before finish().
class PlanBuilder {
public:
  uint32_t schemaVersion = kSchemaVersion;
  std::vector<MeshAxisDesc> mesh;
  std::vector<ArenaDesc> arenas;
  std::vector<BufferDesc> buffers;
  std::vector<KernelDesc> kernels;
  std::vector<ProgramDesc> programs;
  /// Plan.config: training settings (AttrDesc::integer / number / string ...).
  std::vector<AttrDesc> config;

  /// Adds an arena (size 0; addBuffer grows it) and returns its index.
  uint32_t addArena(std::string name,
                    schema::ArenaClass arenaClass = schema::ArenaClass::Transient);
  /// Adds a buffer at the next 64-byte aligned offset of `arena` (creating arena 0,
  /// "transient", on first use) and grows the arena to fit; returns the buffer id.
  uint32_t addBuffer(std::string name, schema::DType dtype, std::vector<int64_t> shape,
                     uint32_t arena = 0,
                     schema::BufferRole role = schema::BufferRole::Activation);
  /// Adds a kernel and returns its index.
  uint32_t addKernel(std::string name, std::string kind, std::vector<AttrDesc> attrs = {});
  /// Adds a program and returns it for filling in (reference valid until the next call).
  ProgramDesc &addProgram(std::string name, uint32_t numStreams = 1, uint32_t numEvents = 0);

  /// Serializes the plan (identifier "FPLN").
  std::vector<uint8_t> finish() const;
};

} // namespace fusion::rt::testing
