//===- plan_loader.cc - Reading and verifying plan files ------------------===//
//
// Loading is a sequence of gates, each of which must pass before the next one may look at the
// bytes: (1) the file exists and is non-empty; (2) it is at least 8 bytes (root offset +
// identifier) and carries the "FPLN" identifier, so that a wrong file gets a clear message
// instead of "corrupt"; (3) the FlatBuffers verifier proves every offset, vector and string is
// inside the buffer; (4) the schema version matches; (5) the semantic rules below prove every
// cross reference is in range and every size is consistent, using overflow-checked arithmetic
// because sizes come from the file, and every program binding names an existing buffer under a
// unique name. After that the executors index the plan without checks.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/plan.h"
#include "fusion/rt/fused_elementwise.h"

#include "numeric.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include <sys/stat.h>

namespace fusion::rt {

//===----------------------------------------------------------------------===//
// Small helpers shared with the rest of the runtime
//===----------------------------------------------------------------------===//

size_t dtypeSize(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::F32:
  case schema::DType::I32:
    return 4;
  case schema::DType::BF16:
  case schema::DType::F16:
    return 2;
  case schema::DType::I64:
    return 8;
  }
  return 0;
}

const char *collectiveKindName(schema::CollectiveKind kind) {
  switch (kind) {
  case schema::CollectiveKind::AllReduce:
    return "all_reduce";
  case schema::CollectiveKind::AllGather:
    return "all_gather";
  case schema::CollectiveKind::ReduceScatter:
    return "reduce_scatter";
  case schema::CollectiveKind::AllToAll:
    return "all_to_all";
  }
  return "collective";
}

std::string dtypeName(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::F32:
    return "f32";
  case schema::DType::BF16:
    return "bf16";
  case schema::DType::F16:
    return "f16";
  case schema::DType::I32:
    return "i32";
  case schema::DType::I64:
    return "i64";
  }
  return "dtype(" + std::to_string(static_cast<unsigned>(dtype)) + ")";
}

bool isFloatDType(schema::DType dtype) {
  return dtype == schema::DType::F32 || dtype == schema::DType::BF16 ||
         dtype == schema::DType::F16;
}

/// Escapes backslashes and bytes outside printable ASCII (and `quote`, if given) so that text
/// from the file can never break a one-line message.
static std::string escapeText(std::string_view text, char quote) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\\' || (quote && c == static_cast<unsigned char>(quote))) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string quoted(std::string_view text) { return "'" + escapeText(text, '\'') + "'"; }

std::string bufferRoleName(schema::BufferRole role) {
  switch (role) {
  case schema::BufferRole::Activation:
    return "activation";
  case schema::BufferRole::Weight:
    return "weight";
  case schema::BufferRole::OptimizerState:
    return "optimizer_state";
  case schema::BufferRole::ModelBuffer:
    return "model_buffer";
  case schema::BufferRole::InferenceState:
    return "inference_state";
  }
  return "role(" + std::to_string(static_cast<unsigned>(role)) + ")";
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      out += ",";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

/// A FlatBuffers string as std::string ("" when absent).
static std::string str(const flatbuffers::String *s) { return s ? s->str() : std::string(); }

//===----------------------------------------------------------------------===//
// Gates 1-4: file, identifier, FlatBuffers verifier, version
//===----------------------------------------------------------------------===//

StatusOr<std::shared_ptr<const Plan>> Plan::loadFile(const std::string &path) {
  FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return Status(StatusCode::kNotFound, path + ": cannot open plan: " + std::strerror(errno));
  struct stat info;
  if (fstat(fileno(file), &info) == 0 && S_ISDIR(info.st_mode)) {
    std::fclose(file);
    return Status(StatusCode::kInvalidArgument, path + ": is a directory, not a plan file");
  }
  // Read in chunks rather than trusting st_size (pipes, /proc), and stop at the FlatBuffers
  // size limit so a huge file is refused without being read into memory.
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), file)) > 0) {
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (bytes.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
      std::fclose(file);
      return Status(StatusCode::kDataLoss,
                    path + ": too large for a plan (plans are limited to 2 GiB)");
    }
  }
  bool readFailed = std::ferror(file);
  std::fclose(file);
  if (readFailed)
    return Status(StatusCode::kDataLoss, path + ": read error: " + std::strerror(errno));
  return loadBytes(std::move(bytes), path);
}

/// FlatBuffers 2.0.8's verifier checks the alignment of scalar fields but not of the elements
/// of vectors of 8-byte scalars ([long], [double]), and reading a misaligned element is
/// undefined behaviour (found by test/fuzz/plan_loader_fuzzer). The writer always aligns
/// them, so a misaligned one means a corrupt or crafted file.
template <typename T>
static bool isAligned(const flatbuffers::Vector<T> *vector) {
  // An empty vector has no element to read, wherever its (empty) data starts.
  return !vector || vector->size() == 0 ||
         reinterpret_cast<uintptr_t>(vector->Data()) % alignof(T) == 0;
}

static Status verifyWideVectorAlignment(const schema::Plan &root, const std::string &name) {
  auto fail = [&](const std::string &what) {
    return Status(StatusCode::kDataLoss,
                  name + ": corrupt plan (" + what + " is not 8-byte aligned)");
  };
  if (root.buffers())
    for (uint32_t i = 0; i < root.buffers()->size(); ++i)
      if (!isAligned(root.buffers()->Get(i)->shape()))
        return fail("the shape of buffer " + std::to_string(i));
  if (root.config())
    for (uint32_t i = 0; i < root.config()->size(); ++i) {
      const schema::Attribute *attr = root.config()->Get(i);
      if (!isAligned(attr->ints()) || !isAligned(attr->floats()))
        return fail("config entry " + std::to_string(i));
    }
  if (root.kernels())
    for (uint32_t i = 0; i < root.kernels()->size(); ++i) {
      const schema::Kernel &kernel = *root.kernels()->Get(i);
      if (kernel.attrs())
        for (const schema::Attribute *attr : *kernel.attrs())
          if (!isAligned(attr->ints()) || !isAligned(attr->floats()))
            return fail("an attribute list of kernel " + std::to_string(i));
    }
  if (root.programs())
    for (uint32_t p = 0; p < root.programs()->size(); ++p) {
      const schema::Program &program = *root.programs()->Get(p);
      if (program.instructions())
        for (uint32_t i = 0; i < program.instructions()->size(); ++i) {
          const schema::Launch *launch = program.instructions()->Get(i)->op_as_Launch();
          if (launch && !isAligned(launch->int_args()))
            return fail("the int_args of program " + std::to_string(p) + " instruction " +
                        std::to_string(i));
        }
    }
  return Status::okStatus();
}

StatusOr<std::shared_ptr<const Plan>> Plan::loadBytes(std::vector<uint8_t> bytes,
                                                      std::string displayName) {
  std::shared_ptr<Plan> plan(new Plan());
  plan->displayName_ = std::move(displayName);
  plan->bytes_ = std::move(bytes);
  const std::string &name = plan->displayName_;
  const std::vector<uint8_t> &data = plan->bytes_;

  if (data.empty())
    return Status(StatusCode::kDataLoss, name + ": empty file, not a FusionLLM plan");
  if (data.size() < 8)
    return Status(StatusCode::kDataLoss, name + ": too short to be a FusionLLM plan (" +
                                             std::to_string(data.size()) +
                                             " bytes; a plan has at least 8)");
  if (data.size() >= FLATBUFFERS_MAX_BUFFER_SIZE)
    return Status(StatusCode::kDataLoss,
                  name + ": too large for a plan (plans are limited to 2 GiB)");
  if (!flatbuffers::BufferHasIdentifier(data.data(), kPlanIdentifier)) {
    std::string_view identifier(reinterpret_cast<const char *>(data.data()) + 4, 4);
    return Status(StatusCode::kDataLoss, name + ": not a FusionLLM plan (identifier " +
                                             quoted(identifier) + ", expected '" +
                                             kPlanIdentifier + "')");
  }

  flatbuffers::Verifier::Options options;
  // Large training plans have one table per instruction plus one per op: lift the default
  // table limit (1M) well above any real plan; depth stays at the default.
  options.max_tables = 1u << 28;
  flatbuffers::Verifier verifier(data.data(), data.size(), options);
  if (!schema::VerifyPlanBuffer(verifier))
    return Status(StatusCode::kDataLoss,
                  name + ": corrupt or truncated plan (FlatBuffers verification failed)");
  plan->root_ = schema::GetPlan(data.data());
  FUSION_RETURN_IF_ERROR(verifyWideVectorAlignment(*plan->root_, name));

  uint32_t version = plan->root_->schema_version();
  if (version != kSchemaVersion)
    return Status(StatusCode::kFailedPrecondition,
                  name + ": schema version " + std::to_string(version) +
                      ", this fusion-run reads version " + std::to_string(kSchemaVersion));

  FUSION_RETURN_IF_ERROR(plan->verifySemantics());
  return std::shared_ptr<const Plan>(std::move(plan));
}

//===----------------------------------------------------------------------===//
// Gate 5: semantic rules
//===----------------------------------------------------------------------===//

namespace {

constexpr std::string_view kFusedElementwiseKind = "fused_elementwise";

/// Reads a fused_elementwise kernel's `expr` (a String attribute) into `program`.
bool parseFusedExpr(const schema::Kernel &kernel, fused::Program &program, std::string &error) {
  const schema::Attribute *expr = nullptr;
  if (kernel.attrs())
    for (const schema::Attribute *attr : *kernel.attrs())
      if (attr->name()->string_view() == "expr")
        expr = attr;
  if (!expr || expr->type() != schema::AttrType::String || !expr->s()) {
    error = "needs a String attribute 'expr' (its program)";
    return false;
  }
  if (!fused::parse(expr->s()->string_view(), program, error)) {
    error = "invalid expr \"" + expr->s()->str() + "\": " + error;
    return false;
  }
  return true;
}

/// Checks one program's instructions; holds the context the individual rules need.
class ProgramVerifier {
public:
  ProgramVerifier(const Plan &plan, uint32_t programIndex)
      : plan_(plan), root_(plan.root()), programIndex_(programIndex),
        program_(*root_.programs()->Get(programIndex)),
        numBuffers_(root_.buffers() ? root_.buffers()->size() : 0),
        numKernels_(root_.kernels() ? root_.kernels()->size() : 0) {}

  Status verify() {
    if (!program_.instructions())
      return Status::okStatus();
    for (uint32_t i = 0; i < program_.instructions()->size(); ++i) {
      index_ = i;
      FUSION_RETURN_IF_ERROR(verifyInstruction(*program_.instructions()->Get(i)));
    }
    return Status::okStatus();
  }

private:
  Status fail(const std::string &message) const {
    return Status(StatusCode::kDataLoss, plan_.displayName() + ": " +
                                             plan_.describeInstruction(programIndex_, index_) +
                                             ": " + message);
  }

  /// "buffer 3 'x'"
  std::string bufferLabel(uint32_t id) const {
    return "buffer " + std::to_string(id) + " " + quoted(plan_.buffers()[id].name);
  }

  Status checkBuffer(const char *role, uint32_t id) const {
    if (id >= numBuffers_)
      return fail(std::string(role) + " is buffer " + std::to_string(id) +
                  ", but the plan has " + std::to_string(numBuffers_) + " buffers");
    return Status::okStatus();
  }

  Status verifyInstruction(const schema::Instruction &instruction) {
    uint32_t numStreams = plan_.numStreams(programIndex_);
    if (instruction.stream() >= numStreams)
      return fail("stream " + std::to_string(instruction.stream()) + " out of range (program " +
                  quoted(str(program_.name())) + " has " + std::to_string(numStreams) +
                  " streams)");
    switch (instruction.op_type()) {
    case schema::Op::Launch:
      return verifyLaunch(*instruction.op_as_Launch());
    case schema::Op::Gemm:
      return verifyGemm(*instruction.op_as_Gemm());
    case schema::Op::Collective:
      return verifyCollective(*instruction.op_as_Collective());
    case schema::Op::Record:
      return verifyEvent("record", instruction.op_as_Record()->event());
    case schema::Op::Wait:
      return verifyEvent("wait", instruction.op_as_Wait()->event());
    case schema::Op::NONE:
      return fail("instruction has no operation");
    }
    // The verifier accepts unknown union members (forward compatibility); we cannot run them.
    return fail("unknown operation type " +
                std::to_string(static_cast<unsigned>(instruction.op_type())));
  }

  Status verifyLaunch(const schema::Launch &launch) {
    if (launch.kernel() >= numKernels_)
      return fail("launch of kernel " + std::to_string(launch.kernel()) + ", but the plan has " +
                  std::to_string(numKernels_) + " kernels");
    uint32_t numArgs = launch.args() ? launch.args()->size() : 0;
    for (uint32_t i = 0; i < numArgs; ++i) {
      std::string role = "launch argument " + std::to_string(i);
      FUSION_RETURN_IF_ERROR(checkBuffer(role.c_str(), launch.args()->Get(i)));
    }
    if (launch.num_inputs() > numArgs)
      return fail("launch num_inputs " + std::to_string(launch.num_inputs()) + " exceeds its " +
                  std::to_string(numArgs) + " arguments");
    FUSION_RETURN_IF_ERROR(verifyDims("grid", launch.grid()));
    FUSION_RETURN_IF_ERROR(verifyDims("block", launch.block()));
    const schema::Kernel &kernel = *root_.kernels()->Get(launch.kernel());
    if (kernel.kind()->string_view() == kFusedElementwiseKind)
      return verifyFusedLaunch(launch, kernel);
    return Status::okStatus();
  }

  /// A fused_elementwise launch: one float input per %inN of its expr, one float output of
  /// the type of the value stored to out0, every buffer of one element count.
  Status verifyFusedLaunch(const schema::Launch &launch, const schema::Kernel &kernel) {
    std::string label = "kernel " + quoted(str(kernel.name())) + " (kind 'fused_elementwise')";
    std::string error;
    fused::Program program;
    if (!parseFusedExpr(kernel, program, error))
      return fail(label + ": " + error);
    uint32_t numArgs = launch.args()->size();
    if (launch.num_inputs() != program.numInputs || numArgs != launch.num_inputs() + 1)
      return fail(label + " reads " + std::to_string(program.numInputs) +
                  " input(s) and writes 1 output, but the launch has " +
                  std::to_string(launch.num_inputs()) + " and " +
                  std::to_string(numArgs - launch.num_inputs()));
    uint64_t numElements = plan_.buffers()[launch.args()->Get(numArgs - 1)].numElements;
    for (uint32_t i = 0; i < numArgs; ++i) {
      const BufferInfo &buffer = plan_.buffers()[launch.args()->Get(i)];
      std::string role = i < launch.num_inputs() ? "input " + std::to_string(i) : "output 0";
      if (!isFloatDType(buffer.dtype))
        return fail(label + " " + role + " " + bufferLabel(launch.args()->Get(i)) +
                    " has dtype " + dtypeName(buffer.dtype) + "; it takes f32, bf16 and f16");
      if (buffer.numElements != numElements)
        return fail(label + " " + role + " " + bufferLabel(launch.args()->Get(i)) + " has " +
                    std::to_string(buffer.numElements) + " elements, the output " +
                    std::to_string(numElements));
    }
    fused::ElemType outType = program.stmts[program.output].type;
    schema::DType outDType = plan_.buffers()[launch.args()->Get(numArgs - 1)].dtype;
    if (fusedStorageType(outType) != outDType)
      return fail(label + " stores a " + fused::typeName(outType) + " value to out0, but " +
                  bufferLabel(launch.args()->Get(numArgs - 1)) + " is " + dtypeName(outDType));
    return Status::okStatus();
  }

  Status verifyDims(const char *what, const flatbuffers::Vector<uint32_t> *dims) {
    if (!dims)
      return Status::okStatus(); // absent: 1x1x1
    if (dims->size() > 3)
      return fail(std::string("launch ") + what + " has " + std::to_string(dims->size()) +
                  " dimensions (at most 3)");
    for (uint32_t i = 0; i < dims->size(); ++i)
      if (dims->Get(i) == 0)
        return fail(std::string("launch ") + what + " dimension " + std::to_string(i) +
                    " is 0");
    return Status::okStatus();
  }

  Status verifyGemm(const schema::Gemm &gemm) {
    FUSION_RETURN_IF_ERROR(checkBuffer("gemm operand a", gemm.a()));
    FUSION_RETURN_IF_ERROR(checkBuffer("gemm operand b", gemm.b()));
    FUSION_RETURN_IF_ERROR(checkBuffer("gemm operand c", gemm.c()));
    int64_t m = gemm.m(), n = gemm.n(), k = gemm.k(), batch = gemm.batch();
    if (m < 1 || n < 1 || k < 1 || batch < 1)
      return fail("gemm sizes must be positive (m=" + std::to_string(m) + ", n=" +
                  std::to_string(n) + ", k=" + std::to_string(k) +
                  ", batch=" + std::to_string(batch) + ")");
    const BufferInfo &a = plan_.buffers()[gemm.a()];
    const BufferInfo &b = plan_.buffers()[gemm.b()];
    const BufferInfo &c = plan_.buffers()[gemm.c()];
    // a and b share one float dtype; c has it too, or is f32 (bf16/f16 products kept in fp32).
    if (a.dtype != b.dtype || !isFloatDType(a.dtype) ||
        (c.dtype != a.dtype && c.dtype != schema::DType::F32))
      return fail("gemm operands a and b must share one float dtype and c must have it or be "
                  "f32 (a " + dtypeName(a.dtype) + ", b " + dtypeName(b.dtype) + ", c " +
                  dtypeName(c.dtype) + ")");

    auto product = [](std::initializer_list<int64_t> factors) -> std::optional<uint64_t> {
      uint64_t r = 1;
      for (int64_t f : factors) {
        std::optional<uint64_t> next = checkedMul(r, static_cast<uint64_t>(f));
        if (!next)
          return std::nullopt;
        r = *next;
      }
      return r;
    };
    std::optional<uint64_t> aCount = product({batch, m, k}), bCount = product({k, n}),
                            bBatched = product({batch, k, n}), cCount = product({batch, m, n});
    if (!aCount || !bBatched || !cCount)
      return fail("gemm sizes overflow 64 bits (m=" + std::to_string(m) + ", n=" +
                  std::to_string(n) + ", k=" + std::to_string(k) +
                  ", batch=" + std::to_string(batch) + ")");
    if (a.numElements != *aCount)
      return fail("gemm operand a (" + bufferLabel(gemm.a()) + ") has " +
                  std::to_string(a.numElements) + " elements, expected batch*m*k = " +
                  std::to_string(*aCount));
    if (b.numElements != *bCount && b.numElements != *bBatched)
      return fail("gemm operand b (" + bufferLabel(gemm.b()) + ") has " +
                  std::to_string(b.numElements) + " elements, expected k*n = " +
                  std::to_string(*bCount) +
                  (batch > 1 ? " or batch*k*n = " + std::to_string(*bBatched) : ""));
    if (c.numElements != *cCount)
      return fail("gemm operand c (" + bufferLabel(gemm.c()) + ") has " +
                  std::to_string(c.numElements) + " elements, expected batch*m*n = " +
                  std::to_string(*cCount));
    // Writing c while reading an overlapping a or b gives backend-dependent garbage.
    for (auto [role, id] : {std::pair<const char *, uint32_t>{"a", gemm.a()}, {"b", gemm.b()}}) {
      const BufferInfo &input = plan_.buffers()[id];
      bool overlaps = input.arena == c.arena && input.byteSize && c.byteSize &&
                      input.offset < c.offset + c.byteSize &&
                      c.offset < input.offset + input.byteSize;
      if (overlaps)
        return fail(std::string("gemm output c (") + bufferLabel(gemm.c()) +
                    ") overlaps input " + role + " (" + bufferLabel(id) + ")");
    }
    return Status::okStatus();
  }

  Status verifyCollective(const schema::Collective &collective) {
    if (collective.kind() > schema::CollectiveKind::MAX)
      return fail("collective has invalid kind " +
                  std::to_string(static_cast<unsigned>(collective.kind())));
    if (collective.reduce() > schema::ReduceOp::MAX)
      return fail("collective has invalid reduce op " +
                  std::to_string(static_cast<unsigned>(collective.reduce())));
    std::string axis = str(collective.axis());
    std::optional<int32_t> size = plan_.meshAxisSize(axis);
    if (!size) {
      std::string axes;
      if (root_.mesh())
        for (const schema::MeshAxis *meshAxis : *root_.mesh())
          axes += (axes.empty() ? "" : ", ") + quoted(str(meshAxis->name()));
      return fail("collective on mesh axis " + quoted(axis) + ", which the mesh does not have (" +
                  (axes.empty() ? std::string("the plan has no mesh") : "mesh axes: " + axes) +
                  ")");
    }
    FUSION_RETURN_IF_ERROR(checkBuffer("collective send", collective.send()));
    FUSION_RETURN_IF_ERROR(checkBuffer("collective recv", collective.recv()));
    const BufferInfo &send = plan_.buffers()[collective.send()];
    const BufferInfo &recv = plan_.buffers()[collective.recv()];
    if (send.dtype != recv.dtype)
      return fail("collective send and recv dtypes differ (" + dtypeName(send.dtype) + " vs " +
                  dtypeName(recv.dtype) + ")");
    uint64_t ranks = static_cast<uint64_t>(*size);
    std::optional<uint64_t> sendTimesRanks = checkedMul(send.numElements, ranks);
    std::optional<uint64_t> recvTimesRanks = checkedMul(recv.numElements, ranks);
    const char *kindName = schema::EnumNameCollectiveKind(collective.kind());
    bool sizesOk = true;
    std::string rule;
    switch (collective.kind()) {
    case schema::CollectiveKind::AllReduce:
    case schema::CollectiveKind::AllToAll:
      sizesOk = send.numElements == recv.numElements;
      rule = "recv elements == send elements";
      break;
    case schema::CollectiveKind::AllGather:
      sizesOk = sendTimesRanks && *sendTimesRanks == recv.numElements;
      rule = "recv elements == " + std::to_string(ranks) + " * send elements";
      break;
    case schema::CollectiveKind::ReduceScatter:
      sizesOk = recvTimesRanks && *recvTimesRanks == send.numElements;
      rule = "send elements == " + std::to_string(ranks) + " * recv elements";
      break;
    }
    if (!sizesOk)
      return fail(std::string(kindName) + " over axis " + quoted(axis) + " of size " +
                  std::to_string(ranks) + " needs " + rule + " (send " +
                  bufferLabel(collective.send()) + " has " + std::to_string(send.numElements) +
                  ", recv " + bufferLabel(collective.recv()) + " has " +
                  std::to_string(recv.numElements) + ")");
    return Status::okStatus();
  }

  Status verifyEvent(const char *what, uint32_t event) {
    if (event >= program_.num_events())
      return fail(std::string(what) + " of event " + std::to_string(event) +
                  " out of range (program " + quoted(str(program_.name())) + " has " +
                  std::to_string(program_.num_events()) + " events)");
    return Status::okStatus();
  }

  const Plan &plan_;
  const schema::Plan &root_;
  uint32_t programIndex_;
  const schema::Program &program_;
  uint32_t numBuffers_;
  uint32_t numKernels_;
  uint32_t index_ = 0;
};

} // namespace

Status Plan::verifySemantics() {
  const schema::Plan &root = *root_;
  auto fail = [&](const std::string &message) {
    return Status(StatusCode::kDataLoss, displayName_ + ": " + message);
  };

  // Mesh: positive sizes and distinct axis names (collectives look axes up by name).
  if (root.mesh()) {
    std::unordered_map<std::string, uint32_t> seen;
    for (uint32_t i = 0; i < root.mesh()->size(); ++i) {
      const schema::MeshAxis &axis = *root.mesh()->Get(i);
      std::string label = "mesh axis " + std::to_string(i) + " " + quoted(str(axis.name()));
      if (axis.size() < 1)
        return fail(label + " has size " + std::to_string(axis.size()) + " (must be at least 1)");
      auto [it, inserted] = seen.emplace(str(axis.name()), i);
      if (!inserted)
        return fail(label + " has the same name as mesh axis " + std::to_string(it->second));
    }
  }

  // Arenas.
  uint32_t numArenas = root.arenas() ? root.arenas()->size() : 0;
  for (uint32_t i = 0; i < numArenas; ++i) {
    const schema::Arena &arena = *root.arenas()->Get(i);
    if (arena.class_() > schema::ArenaClass::MAX)
      return fail("arena " + std::to_string(i) + " " + quoted(str(arena.name())) +
                  " has invalid class " + std::to_string(static_cast<unsigned>(arena.class_())));
  }

  // Buffers: arena in range, valid dtype, non-negative shape, and [offset, offset + bytes)
  // inside the arena, all sizes computed with overflow checks.
  uint32_t numBuffers = root.buffers() ? root.buffers()->size() : 0;
  buffers_.clear();
  buffers_.reserve(numBuffers);
  for (uint32_t i = 0; i < numBuffers; ++i) {
    const schema::Buffer &buffer = *root.buffers()->Get(i);
    BufferInfo info;
    info.name = str(buffer.name());
    info.dtype = buffer.dtype();
    info.arena = buffer.arena();
    info.offset = buffer.offset();
    info.role = buffer.role();
    if (buffer.shape())
      info.shape.assign(buffer.shape()->begin(), buffer.shape()->end());
    std::string label = "buffer " + std::to_string(i) + " " + quoted(info.name);

    if (info.arena >= numArenas)
      return fail(label + " is in arena " + std::to_string(info.arena) + ", but the plan has " +
                  std::to_string(numArenas) + " arenas");
    size_t elementSize = dtypeSize(info.dtype);
    if (elementSize == 0)
      return fail(label + " has invalid dtype " +
                  std::to_string(static_cast<unsigned>(info.dtype)));
    uint64_t numElements = 1;
    for (int64_t dim : info.shape) {
      if (dim < 0)
        return fail(label + " has a negative dimension in shape " + formatShape(info.shape));
      std::optional<uint64_t> next = checkedMul(numElements, static_cast<uint64_t>(dim));
      if (!next)
        return fail(label + " shape " + formatShape(info.shape) + " overflows 64 bits");
      numElements = *next;
    }
    std::optional<uint64_t> byteSize = checkedMul(numElements, elementSize);
    if (!byteSize)
      return fail(label + " shape " + formatShape(info.shape) + " of " + dtypeName(info.dtype) +
                  " overflows 64-bit byte sizes");
    info.numElements = numElements;
    info.byteSize = *byteSize;
    // Element-aligned placement: the backends access elements through typed pointers.
    if (info.offset % elementSize != 0)
      return fail(label + " offset " + std::to_string(info.offset) +
                  " is not a multiple of its element size (" + std::to_string(elementSize) +
                  " bytes)");
    const schema::Arena &arena = *root.arenas()->Get(info.arena);
    std::optional<uint64_t> end = checkedAdd(info.offset, info.byteSize);
    if (!end)
      return fail(label + " ends past 2^64 bytes (offset " + std::to_string(info.offset) +
                  " + " + std::to_string(info.byteSize) + " bytes)");
    if (*end > arena.size_bytes())
      return fail(label + " ends at byte " + std::to_string(*end) + ", past arena " +
                  quoted(str(arena.name())) + " (" + std::to_string(arena.size_bytes()) +
                  " bytes)");
    // Roles: a valid value, and checkpointed state only in a persistent arena (a transient
    // arena is reused within a program run, so its contents are not state).
    if (info.role > schema::BufferRole::MAX)
      return fail(label + " has invalid role " +
                  std::to_string(static_cast<unsigned>(info.role)));
    if (info.role != schema::BufferRole::Activation &&
        arena.class_() != schema::ArenaClass::Persistent)
      return fail(label + " has role " + bufferRoleName(info.role) + " but is in arena " +
                  quoted(str(arena.name())) +
                  ", which is not persistent (only persistent buffers hold model or optimizer "
                  "state)");
    buffers_.push_back(std::move(info));
  }

  // Checkpointed buffers are tensors of model.safetensors (Weight, ModelBuffer) or
  // optim.safetensors (OptimizerState) under their buffer names: those names must be
  // non-empty and unique within their file, and must not be safetensors' reserved key.
  {
    std::unordered_map<std::string, uint32_t> modelNames, optimNames;
    for (uint32_t i = 0; i < numBuffers; ++i) {
      const BufferInfo &info = buffers_[i];
      if (!isCheckpointedRole(info.role))
        continue;
      std::string label = "buffer " + std::to_string(i) + " " + quoted(info.name) + " (role " +
                          bufferRoleName(info.role) + ")";
      if (info.name.empty())
        return fail(label + " has an empty name; checkpointed buffers are saved by name");
      if (info.name == "__metadata__")
        return fail(label + " uses the name reserved by safetensors");
      bool optim = info.role == schema::BufferRole::OptimizerState;
      auto [it, inserted] = (optim ? optimNames : modelNames).emplace(info.name, i);
      if (!inserted)
        return fail(label + " has the same name as buffer " + std::to_string(it->second) +
                    "; the " + (optim ? "optimizer-state" : "weight and model-buffer") +
                    " buffers are saved by name and must be named uniquely");
    }
  }

  // Config: well-typed entries with unique non-empty names (looked up by name).
  config_.clear();
  if (root.config()) {
    std::unordered_map<std::string, uint32_t> names;
    for (uint32_t i = 0; i < root.config()->size(); ++i) {
      const schema::Attribute &attr = *root.config()->Get(i);
      ConfigEntry entry;
      entry.name = str(attr.name());
      std::string label = "config entry " + std::to_string(i) + " " + quoted(entry.name);
      if (entry.name.empty())
        return fail(label + " has an empty name");
      if (attr.type() > schema::AttrType::MAX)
        return fail(label + " has invalid type " +
                    std::to_string(static_cast<unsigned>(attr.type())));
      auto [it, inserted] = names.emplace(entry.name, i);
      if (!inserted)
        return fail(label + " has the same name as config entry " + std::to_string(it->second));
      entry.type = attr.type();
      switch (attr.type()) {
      case schema::AttrType::Int:
        entry.i = attr.i();
        break;
      case schema::AttrType::Float:
        entry.f = attr.f();
        break;
      case schema::AttrType::String:
        entry.s = str(attr.s());
        break;
      case schema::AttrType::Ints:
        if (attr.ints())
          entry.ints.assign(attr.ints()->begin(), attr.ints()->end());
        break;
      case schema::AttrType::Floats:
        if (attr.floats())
          entry.floats.assign(attr.floats()->begin(), attr.floats()->end());
        break;
      }
      config_.push_back(std::move(entry));
    }
  }

  // Kernels: a kind to dispatch on, well-typed uniquely named attributes, non-empty cubins.
  // Cubins themselves are optional: only the CUDA backend needs them, and it checks.
  uint32_t numKernels = root.kernels() ? root.kernels()->size() : 0;
  for (uint32_t i = 0; i < numKernels; ++i) {
    const schema::Kernel &kernel = *root.kernels()->Get(i);
    std::string label = "kernel " + std::to_string(i) + " " + quoted(str(kernel.name()));
    if (kernel.kind()->size() == 0)
      return fail(label + " has an empty kind");
    if (kernel.attrs()) {
      std::unordered_set<std::string> names;
      for (uint32_t j = 0; j < kernel.attrs()->size(); ++j) {
        const schema::Attribute &attr = *kernel.attrs()->Get(j);
        if (attr.type() > schema::AttrType::MAX)
          return fail(label + " attribute " + quoted(str(attr.name())) + " has invalid type " +
                      std::to_string(static_cast<unsigned>(attr.type())));
        if (!names.insert(str(attr.name())).second)
          return fail(label + " has two attributes named " + quoted(str(attr.name())));
      }
    }
    if (kernel.kind()->string_view() == kFusedElementwiseKind) {
      std::string error;
      fused::Program program;
      if (!parseFusedExpr(kernel, program, error))
        return fail(label + " (kind 'fused_elementwise'): " + error);
    }
    if (kernel.cubins())
      for (uint32_t j = 0; j < kernel.cubins()->size(); ++j) {
        const schema::Cubin &cubin = *kernel.cubins()->Get(j);
        if (cubin.image()->size() == 0)
          return fail(label + " cubin " + std::to_string(j) + " (" + quoted(str(cubin.arch())) +
                      ") has an empty image");
      }
  }

  // Programs: unique names (they are looked up by name), then each instruction.
  uint32_t numPrograms = root.programs() ? root.programs()->size() : 0;
  std::unordered_map<std::string, uint32_t> programNames;
  for (uint32_t i = 0; i < numPrograms; ++i) {
    std::string name = str(root.programs()->Get(i)->name());
    auto [it, inserted] = programNames.emplace(name, i);
    if (!inserted)
      return fail("program name " + quoted(name) + " is used twice (programs " +
                  std::to_string(it->second) + " and " + std::to_string(i) + ")");
  }
  for (uint32_t i = 0; i < numPrograms; ++i)
    FUSION_RETURN_IF_ERROR(ProgramVerifier(*this, i).verify());

  // Bindings: each names an in-range buffer, and a program's input and output names are
  // non-empty and distinct (callers look them up by name, inputs and outputs alike).
  bindings_.assign(numPrograms, {});
  for (uint32_t i = 0; i < numPrograms; ++i) {
    const schema::Program &program = *root.programs()->Get(i);
    std::string programLabel = "program " + quoted(str(program.name()));
    std::unordered_map<std::string, std::string> seen; // name -> "input 2"
    for (bool isInput : {true, false}) {
      const auto *list = isInput ? program.inputs() : program.outputs();
      if (!list)
        continue;
      for (uint32_t j = 0; j < list->size(); ++j) {
        const schema::Binding &binding = *list->Get(j);
        BindingInfo info{str(binding.name()), binding.buffer()};
        std::string role = std::string(isInput ? "input " : "output ") + std::to_string(j);
        if (info.name.empty())
          return fail(programLabel + " " + role + " has an empty name");
        std::string label = programLabel + " " + role + " " + quoted(info.name);
        if (info.buffer >= numBuffers)
          return fail(label + " is buffer " + std::to_string(info.buffer) +
                      ", but the plan has " + std::to_string(numBuffers) + " buffers");
        auto [it, inserted] = seen.emplace(info.name, role);
        if (!inserted)
          return fail(label + " has the same name as " + it->second);
        (isInput ? bindings_[i].inputs : bindings_[i].outputs).push_back(std::move(info));
      }
    }
  }
  return Status::okStatus();
}

//===----------------------------------------------------------------------===//
// Queries
//===----------------------------------------------------------------------===//

std::vector<uint32_t> Plan::findBuffers(std::string_view name) const {
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < buffers_.size(); ++i)
    if (buffers_[i].name == name)
      ids.push_back(i);
  return ids;
}

std::optional<uint32_t> Plan::findProgram(std::string_view name) const {
  if (!root_->programs())
    return std::nullopt;
  for (uint32_t i = 0; i < root_->programs()->size(); ++i)
    if (root_->programs()->Get(i)->name()->string_view() == name)
      return i;
  return std::nullopt;
}

std::vector<std::string> Plan::programNames() const {
  std::vector<std::string> names;
  if (root_->programs())
    for (const schema::Program *program : *root_->programs())
      names.push_back(program->name()->str());
  return names;
}

uint32_t Plan::numStreams(uint32_t program) const {
  uint32_t declared = root_->programs()->Get(program)->num_streams();
  return declared == 0 ? 1 : declared;
}

const std::vector<BindingInfo> &Plan::programInputs(uint32_t program) const {
  return bindings_[program].inputs;
}

const std::vector<BindingInfo> &Plan::programOutputs(uint32_t program) const {
  return bindings_[program].outputs;
}

const BindingInfo *Plan::findInput(uint32_t program, std::string_view name) const {
  for (const BindingInfo &binding : bindings_[program].inputs)
    if (binding.name == name)
      return &binding;
  return nullptr;
}

const BindingInfo *Plan::findOutput(uint32_t program, std::string_view name) const {
  for (const BindingInfo &binding : bindings_[program].outputs)
    if (binding.name == name)
      return &binding;
  return nullptr;
}

const ConfigEntry *Plan::findConfig(std::string_view name) const {
  for (const ConfigEntry &entry : config_)
    if (entry.name == name)
      return &entry;
  return nullptr;
}

std::optional<int32_t> Plan::meshAxisSize(std::string_view axis) const {
  if (!root_->mesh())
    return std::nullopt;
  for (const schema::MeshAxis *meshAxis : *root_->mesh())
    if (meshAxis->name()->string_view() == axis)
      return meshAxis->size();
  return std::nullopt;
}

std::string Plan::describeInstruction(uint32_t program, uint32_t index) const {
  const schema::Program &p = *root_->programs()->Get(program);
  std::string text = "program " + quoted(str(p.name())) + " instruction " + std::to_string(index);
  const schema::Instruction &instruction = *p.instructions()->Get(index);
  if (instruction.loc() && instruction.loc()->size())
    text += " (loc: " + escapeText(instruction.loc()->string_view(), 0) + ")";
  return text;
}

} // namespace fusion::rt
