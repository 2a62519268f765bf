//===- executor.cc - Backend selection and buffer formatting --------------===//
//
// The backend-independent part of execution: choosing a backend by name, the shared argument
// checks of buffer access, access to buffers by binding or buffer name, and the renderings
// of buffer contents: the `NAME f32[4,8] = [...]` line that fusion-run prints and the device
// check script compares between backends, the `loss = 6.2383` line of scalar outputs, and
// NumPy .npy files.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/executor.h"

#include "backends.h"
#include "fusion/rt/comm.h"
#include "numeric.h"

#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace fusion::rt {

const char *backendName(BackendKind kind) {
  switch (kind) {
  case BackendKind::kCpu:
    return "cpu";
  case BackendKind::kCuda:
    return "cuda";
  }
  return "unknown";
}

std::optional<BackendKind> parseBackendKind(std::string_view text) {
  if (text == "cpu")
    return BackendKind::kCpu;
  if (text == "cuda")
    return BackendKind::kCuda;
  return std::nullopt;
}

bool isBackendBuilt(BackendKind kind) {
  if (kind == BackendKind::kCpu)
    return true;
#if FUSION_RT_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

StatusOr<Communicator *> collectiveCommunicator(const Plan &plan, const MeshContext &mesh,
                                                const schema::Collective &collective,
                                                BackendKind backend) {
  std::string_view axis = collective.axis()->string_view();
  int32_t ranks = *plan.meshAxisSize(axis);
  Communicator *comm = mesh.find(axis);
  if (comm && comm->size() == ranks)
    return comm;
  // Errors only from here on: the messages are built off the hot path.
  std::string label = std::string(collectiveKindName(collective.kind())) + " over mesh axis " +
                      quoted(axis);
  std::string n = std::to_string(ranks);
  if (!comm)
    return Status(StatusCode::kFailedPrecondition,
                  label + " of " + n + " ranks, but this run has a single rank: " +
                      (backend == BackendKind::kCpu
                           ? "train with fusion-run --train --nproc " + n +
                                 " (ranks as threads), or run programs with --backend cuda "
                                 "--nproc " + n
                           : "run the plan with fusion-run --backend cuda --nproc " + n +
                                 " (or under torchrun / srun)"));
  return Status(StatusCode::kFailedPrecondition,
                label + ": the plan has " + n + " ranks on it, the communicator " +
                    std::to_string(comm->size()));
}

Status dispatchCollective(Communicator &comm, const Plan &plan,
                          const schema::Collective &collective, const void *in, void *out,
                          const std::string &what, void *stream) {
  const BufferInfo &send = plan.buffers()[collective.send()];
  const BufferInfo &recv = plan.buffers()[collective.recv()];
  // The communicator call and its element count (per rank / per peer where the call says so).
  CollectiveCall call = CollectiveCall::kAllReduce;
  size_t count = send.numElements;
  switch (collective.kind()) {
  case schema::CollectiveKind::AllReduce:
    break;
  case schema::CollectiveKind::AllGather:
    call = CollectiveCall::kAllGather;
    break;
  case schema::CollectiveKind::ReduceScatter:
    call = CollectiveCall::kReduceScatter;
    count = recv.numElements;
    break;
  case schema::CollectiveKind::AllToAll:
    call = CollectiveCall::kAllToAllV;
    count = send.numElements / static_cast<size_t>(comm.size());
    break;
  default:
    return Status(StatusCode::kInternal, "unverified collective kind reached the executor");
  }
  if (stream)
    return comm.enqueueOnStream(call, in, out, count, send.dtype, collective.reduce(), stream,
                                what);
  switch (call) {
  case CollectiveCall::kAllReduce:
    return comm.allReduce(in, out, count, send.dtype, collective.reduce(), what);
  case CollectiveCall::kAllGather:
    return comm.allGather(in, out, count, send.dtype, what);
  case CollectiveCall::kReduceScatter:
    return comm.reduceScatter(in, out, count, send.dtype, collective.reduce(), what);
  default: {
    std::vector<size_t> counts(static_cast<size_t>(comm.size()), count);
    return comm.allToAllV(in, counts, out, counts, send.dtype, what);
  }
  }
}

Communicator *MeshContext::find(std::string_view axis) const {
  for (const auto &[name, comm] : axes)
    if (name == axis)
      return comm;
  return nullptr;
}

StatusOr<std::unique_ptr<Executor>> createExecutor(std::shared_ptr<const Plan> plan,
                                                   BackendKind kind, const MeshContext *mesh) {
  if (!plan)
    return Status(StatusCode::kInvalidArgument, "createExecutor: no plan");
  switch (kind) {
  case BackendKind::kCpu:
    return createCpuExecutor(std::move(plan), mesh ? *mesh : MeshContext{});
  case BackendKind::kCuda:
#if FUSION_RT_HAVE_CUDA
    return createCudaExecutor(std::move(plan), mesh ? *mesh : MeshContext{});
#else
    return Status(StatusCode::kUnavailable,
                  "this build has no cuda backend (no CUDA toolkit was found at build time)");
#endif
  }
  return Status(StatusCode::kInvalidArgument, "unknown backend");
}

BackendKind chooseDefaultBackend(const Plan &plan, std::string &note) {
  note.clear();
#if FUSION_RT_HAVE_CUDA
  std::optional<std::string> device = probeCudaDevice();
  if (!device)
    return BackendKind::kCpu;
  size_t total = 0, withoutCode = 0;
  if (const auto *kernels = plan.root().kernels())
    for (const schema::Kernel *kernel : *kernels) {
      ++total;
      if (!kernel->cubins() || kernel->cubins()->size() == 0)
        ++withoutCode;
    }
  if (withoutCode == 0)
    return BackendKind::kCuda;
  note = "a CUDA device (" + *device + ") is present, but " + std::to_string(withoutCode) +
         " of the plan's " + std::to_string(total) +
         " kernels have no CUDA code (compile with fusionc --target=cuda; the model's "
         "attention, GDN, MoE and loss kernels have no CUDA templates yet): running on the CPU";
  return BackendKind::kCpu;
#else
  (void)plan;
  return BackendKind::kCpu;
#endif
}

Status Executor::checkBufferAccess(uint32_t id, std::optional<size_t> size) const {
  if (id >= plan_->buffers().size())
    return Status(StatusCode::kNotFound, "buffer " + std::to_string(id) +
                                             " out of range (the plan has " +
                                             std::to_string(plan_->buffers().size()) +
                                             " buffers)");
  const BufferInfo &buffer = plan_->buffers()[id];
  if (size && *size != buffer.byteSize)
    return Status(StatusCode::kInvalidArgument,
                  "buffer " + std::to_string(id) + " " + quoted(buffer.name) + " holds " +
                      std::to_string(buffer.byteSize) + " bytes, not " + std::to_string(*size));
  return Status::okStatus();
}

/// "'a', 'b'" (or "none") for messages listing binding names.
static std::string bindingNames(const std::vector<BindingInfo> &bindings) {
  std::string out;
  for (const BindingInfo &binding : bindings)
    out += (out.empty() ? "" : ", ") + quoted(binding.name);
  return out.empty() ? "none" : out;
}

Status Executor::setInput(std::string_view program, std::string_view name, schema::DType dtype,
                          const std::vector<int64_t> &shape, const void *data, size_t size) {
  std::optional<uint32_t> index = plan_->findProgram(program);
  if (!index)
    return Status(StatusCode::kNotFound,
                  plan_->displayName() + ": no program named " + quoted(program));
  std::string label = plan_->displayName() + ": program " + quoted(program) + " input " +
                      quoted(name);
  const BindingInfo *input = plan_->findInput(*index, name);
  if (!input)
    return Status(StatusCode::kNotFound, plan_->displayName() + ": program " + quoted(program) +
                                             " has no input named " + quoted(name) +
                                             " (inputs: " +
                                             bindingNames(plan_->programInputs(*index)) + ")");
  const BufferInfo &buffer = plan_->buffers()[input->buffer];
  if (buffer.dtype != dtype || buffer.shape != shape)
    return Status(StatusCode::kInvalidArgument,
                  label + " (buffer " + std::to_string(input->buffer) + ") is " +
                      dtypeName(buffer.dtype) + formatShape(buffer.shape) + ", got " +
                      dtypeName(dtype) + formatShape(shape));
  if (size != buffer.byteSize)
    return Status(StatusCode::kInvalidArgument,
                  label + " holds " + std::to_string(buffer.byteSize) + " bytes, got " +
                      std::to_string(size));
  return writeBuffer(input->buffer, data, size).withPrefix(label);
}

Status Executor::readOutput(std::string_view program, std::string_view name,
                            std::vector<uint8_t> &out) {
  std::optional<uint32_t> index = plan_->findProgram(program);
  if (!index)
    return Status(StatusCode::kNotFound,
                  plan_->displayName() + ": no program named " + quoted(program));
  const BindingInfo *output = plan_->findOutput(*index, name);
  if (!output)
    return Status(StatusCode::kNotFound, plan_->displayName() + ": program " + quoted(program) +
                                             " has no output named " + quoted(name) +
                                             " (outputs: " +
                                             bindingNames(plan_->programOutputs(*index)) + ")");
  return readBuffer(output->buffer, out);
}

StatusOr<uint32_t> findUniqueBuffer(const Plan &plan, std::string_view name) {
  std::vector<uint32_t> ids = plan.findBuffers(name);
  if (ids.empty())
    return Status(StatusCode::kNotFound,
                  plan.displayName() + " has no buffer named " + quoted(name));
  if (ids.size() > 1) {
    std::string list;
    for (uint32_t id : ids)
      list += (list.empty() ? "" : ", ") + std::to_string(id);
    return Status(StatusCode::kInvalidArgument, "buffer name " + quoted(name) +
                                                    " is ambiguous in " + plan.displayName() +
                                                    " (buffers " + list + ")");
  }
  return ids[0];
}

Status Executor::readBufferByName(std::string_view name, std::vector<uint8_t> &out) {
  FUSION_ASSIGN_OR_RETURN(uint32_t id, findUniqueBuffer(*plan_, name));
  return readBuffer(id, out);
}

std::string formatBuffer(const BufferInfo &buffer, const std::vector<uint8_t> &bytes,
                         size_t limit) {
  // Plain names print as they are; anything that could confuse a reader or the device check
  // script's parser (spaces, quotes, control bytes, empty) is quoted and escaped.
  bool plainName = !buffer.name.empty();
  for (char ch : buffer.name)
    plainName = plainName && (std::isalnum(static_cast<unsigned char>(ch)) ||
                              (ch != 0 && std::strchr("_.:/-#@", ch) != nullptr));
  std::string out = (plainName ? buffer.name : quoted(buffer.name)) + " " +
                    dtypeName(buffer.dtype) + formatShape(buffer.shape) + " = [";
  uint64_t count = buffer.numElements;
  if (bytes.size() < buffer.byteSize)
    count = 0; // never read past what we were given
  uint64_t shown = (limit == 0 || limit >= count) ? count : limit;
  char text[64];
  for (uint64_t i = 0; i < shown; ++i) {
    switch (buffer.dtype) {
    case schema::DType::I32: {
      int32_t v;
      std::memcpy(&v, bytes.data() + 4 * i, 4);
      std::snprintf(text, sizeof(text), "%" PRId32, v);
      break;
    }
    case schema::DType::I64: {
      int64_t v;
      std::memcpy(&v, bytes.data() + 8 * i, 8);
      std::snprintf(text, sizeof(text), "%" PRId64, v);
      break;
    }
    default:
      std::snprintf(text, sizeof(text), "%g",
                    static_cast<double>(loadAsFloat(bytes.data(), buffer.dtype, i)));
      break;
    }
    if (i)
      out += ", ";
    out += text;
  }
  if (shown < count)
    out += shown ? ", ..." : "...";
  return out + "]";
}

std::string formatOutput(const std::string &name, const BufferInfo &buffer,
                         const std::vector<uint8_t> &bytes, size_t limit) {
  if (!buffer.shape.empty() || bytes.size() < buffer.byteSize) {
    BufferInfo named = buffer;
    named.name = name;
    return formatBuffer(named, bytes, limit);
  }
  char text[64];
  switch (buffer.dtype) {
  case schema::DType::I32: {
    int32_t v;
    std::memcpy(&v, bytes.data(), 4);
    std::snprintf(text, sizeof(text), "%" PRId32, v);
    break;
  }
  case schema::DType::I64: {
    int64_t v;
    std::memcpy(&v, bytes.data(), 8);
    std::snprintf(text, sizeof(text), "%" PRId64, v);
    break;
  }
  default: {
    double v = loadAsFloat(bytes.data(), buffer.dtype, 0);
    double magnitude = std::fabs(v);
    bool fixed = v == 0 || !std::isfinite(v) || (magnitude >= 1e-3 && magnitude < 1e9);
    std::snprintf(text, sizeof(text), fixed ? "%.4f" : "%.4e", v);
    break;
  }
  }
  return name + " = " + text;
}

StatusOr<std::vector<uint8_t>> encodeNpy(const BufferInfo &buffer,
                                         const std::vector<uint8_t> &bytes) {
  if (bytes.size() < buffer.byteSize)
    return Status(StatusCode::kInvalidArgument,
                  "buffer " + quoted(buffer.name) + ": " + std::to_string(bytes.size()) +
                      " bytes given, it holds " + std::to_string(buffer.byteSize));
  const char *descr = nullptr;
  switch (buffer.dtype) {
  case schema::DType::F32:
  case schema::DType::BF16:
  case schema::DType::F16:
    descr = "<f4";
    break;
  case schema::DType::I32:
    descr = "<i4";
    break;
  case schema::DType::I64:
    descr = "<i8";
    break;
  }
  if (!descr)
    return Status(StatusCode::kInvalidArgument, "buffer " + quoted(buffer.name) +
                                                    " has dtype " + dtypeName(buffer.dtype) +
                                                    ", which .npy output does not support");
  // The header dict: a Python literal; a 1-tuple needs its trailing comma.
  std::string shape = "(";
  for (size_t i = 0; i < buffer.shape.size(); ++i)
    shape += (i ? ", " : "") + std::to_string(buffer.shape[i]);
  shape += buffer.shape.size() == 1 ? ",)" : ")";
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + header length (2) + header, padded with spaces and ended by a
  // newline so that the data starts at a multiple of 64 bytes.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 0xffff)
    return Status(StatusCode::kInvalidArgument,
                  "buffer " + quoted(buffer.name) + ": shape too long for a .npy 1.0 header");

  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                              static_cast<uint8_t>(header.size() & 0xff),
                              static_cast<uint8_t>(header.size() >> 8)};
  out.insert(out.end(), header.begin(), header.end());
  if (buffer.dtype == schema::DType::BF16 || buffer.dtype == schema::DType::F16) {
    size_t start = out.size();
    out.resize(start + 4 * buffer.numElements);
    for (uint64_t i = 0; i < buffer.numElements; ++i) {
      float v = loadAsFloat(bytes.data(), buffer.dtype, i);
      std::memcpy(out.data() + start + 4 * i, &v, 4);
    }
  } else {
    // Plan buffers are little-endian already (the runtime only runs on little-endian hosts).
    out.insert(out.end(), bytes.begin(), bytes.begin() + buffer.byteSize);
  }
  return out;
}

} // namespace fusion::rt
