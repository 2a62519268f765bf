//===- plan.h - Loading and verifying FusionLLM plans ---------------------===//
//
// A plan (`.fplan`, FlatBuffers, identifier "FPLN") is everything fusion-run needs: arenas,
// typed buffers placed in them, kernels (op kind + attributes + optional cubins) and named
// straight-line programs with named input/output bindings. Plan::loadFile trusts nothing: it checks the identifier, runs the
// FlatBuffers verifier, checks the schema version and then every cross reference and size
// rule, so that the executors can index the plan without further checks. Each rejection is a
// single line naming the file and the offending item.
//
//===----------------------------------------------------------------------===//

#pragma once

#include "fusion/rt/status.h"
#include "runtime/schema/fusion_plan_generated.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusion::rt {

/// The generated FlatBuffers types (fusion::plan::Plan, Buffer, Launch, ...). Aliased so that
/// runtime classes may have members called `plan` without hiding the namespace.
namespace schema = ::fusion::plan;

/// The plan schema version this runtime reads; plans with any other version are refused.
/// Bump with every incompatible change to runtime/schema/*.fbs.
constexpr uint32_t kSchemaVersion = 2;

/// The FlatBuffers file identifier of plans.
constexpr const char *kPlanIdentifier = "FPLN";

/// Bytes per element of `dtype`, or 0 when `dtype` is not a valid DType value.
size_t dtypeSize(schema::DType dtype);

/// Short lower-case dtype name used in messages and buffer dumps: "f32", "bf16", "f16",
/// "i32", "i64"; "dtype(N)" for a value outside the enum.
std::string dtypeName(schema::DType dtype);

/// "all_reduce", "all_gather", "reduce_scatter", "all_to_all": a collective kind as the IR
/// spells it.
const char *collectiveKindName(schema::CollectiveKind kind);

/// True for the floating-point dtypes (f32, bf16, f16).
bool isFloatDType(schema::DType dtype);

/// Quotes `text` for a one-line message: 'text', with quotes, backslashes and non-printable
/// bytes escaped (names come from untrusted files and must not break the line).
std::string quoted(std::string_view text);

/// Formats a shape as "[4,8]" ("[]" for a scalar).
std::string formatShape(const std::vector<int64_t> &shape);

/// "activation", "weight", "optimizer_state", "model_buffer"; "role(N)" outside the enum.
std::string bufferRoleName(schema::BufferRole role);

/// True for the roles that are checkpointed: Weight, ModelBuffer (model.safetensors) and
/// OptimizerState (optim.safetensors).
inline bool isCheckpointedRole(schema::BufferRole role) {
  return role == schema::BufferRole::Weight || role == schema::BufferRole::ModelBuffer ||
         role == schema::BufferRole::OptimizerState;
}

/// Facts about one buffer, computed with overflow checks when the plan was verified.
struct BufferInfo {
  std::string name;
  schema::DType dtype = schema::DType::F32;
  /// Dimensions in elements; empty for a scalar.
  std::vector<int64_t> shape;
  uint64_t numElements = 0;
  uint64_t byteSize = 0;
  uint32_t arena = 0;
  /// Byte offset inside the arena.
  uint64_t offset = 0;
  /// Checkpoint role; anything but Activation only in a Persistent arena (verified).
  schema::BufferRole role = schema::BufferRole::Activation;
};

/// One verified entry of the plan's `config` list (training settings resolved from the YAML
/// config): a unique non-empty name and a value of `type` (the other fields are empty).
struct ConfigEntry {
  std::string name;
  schema::AttrType type = schema::AttrType::Int;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
};

/// One verified binding of a program: the name its caller uses for an input or output and
/// the buffer behind it (in range; names unique among the program's inputs and outputs).
struct BindingInfo {
  std::string name;
  uint32_t buffer = 0;
};

/// A loaded, fully verified plan. Immutable; shared between the tool and executors.
class Plan {
public:
  /// Reads and verifies the plan file at `path`. Errors name `path` as given.
  static StatusOr<std::shared_ptr<const Plan>> loadFile(const std::string &path);

  /// Verifies `bytes` as a plan; `displayName` prefixes every error message.
  static StatusOr<std::shared_ptr<const Plan>> loadBytes(std::vector<uint8_t> bytes,
                                                         std::string displayName);

  /// The FlatBuffers root table (valid for the lifetime of this Plan).
  const schema::Plan &root() const { return *root_; }
  /// The name used in messages (the path the plan was loaded from).
  const std::string &displayName() const { return displayName_; }
  /// The raw plan bytes.
  const std::vector<uint8_t> &bytes() const { return bytes_; }

  /// Verified facts about every buffer, indexed by buffer id.
  const std::vector<BufferInfo> &buffers() const { return buffers_; }
  /// Ids of the buffers called `name` (names are not required to be unique).
  std::vector<uint32_t> findBuffers(std::string_view name) const;

  /// Index of the program called `name` (program names are unique), or nullopt.
  std::optional<uint32_t> findProgram(std::string_view name) const;
  /// Program names in plan order.
  std::vector<std::string> programNames() const;
  /// Number of streams program `program` uses (at least 1: a plan may leave it 0).
  uint32_t numStreams(uint32_t program) const;

  /// The inputs of program `program` (buffers the caller fills before a run), in plan order.
  const std::vector<BindingInfo> &programInputs(uint32_t program) const;
  /// The outputs of program `program` (buffers the caller reads after a run), in plan order.
  const std::vector<BindingInfo> &programOutputs(uint32_t program) const;
  /// The input of program `program` called `name`, or nullptr.
  const BindingInfo *findInput(uint32_t program, std::string_view name) const;
  /// The output of program `program` called `name`, or nullptr.
  const BindingInfo *findOutput(uint32_t program, std::string_view name) const;

  /// The plan's training settings (Plan.config), in plan order; empty when it has none.
  const std::vector<ConfigEntry> &config() const { return config_; }
  /// The config entry called `name`, or nullptr.
  const ConfigEntry *findConfig(std::string_view name) const;

  /// Size of the mesh axis called `axis`, or nullopt when the mesh has no such axis.
  std::optional<int32_t> meshAxisSize(std::string_view axis) const;

  /// "program 'main' instruction 3 (loc: model.yaml:4:2)": how errors name an instruction.
  std::string describeInstruction(uint32_t program, uint32_t index) const;

  /// Renders the plan as JSON (strict JSON, field order of the schema) with every cubin image
  /// replaced by the string "<N bytes>" so that dumps stay small and readable.
  StatusOr<std::string> toJson() const;

private:
  Plan() = default;
  /// Runs the schema-level semantic rules and fills buffers_.
  Status verifySemantics();

  std::string displayName_;
  std::vector<uint8_t> bytes_;
  const schema::Plan *root_ = nullptr;
  std::vector<BufferInfo> buffers_;
  std::vector<ConfigEntry> config_;
  struct ProgramBindings {
    std::vector<BindingInfo> inputs;
    std::vector<BindingInfo> outputs;
  };
  /// Verified bindings, indexed by program.
  std::vector<ProgramBindings> bindings_;
};

} // namespace fusion::rt
