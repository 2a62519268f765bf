//===- cuda_executor.cc - The CUDA executor -------------------------------===//
//
// Runs plans on one CUDA device using only the CUDA runtime API (libcudart) and cuBLASLt:
// nothing here links the driver API, so the binary starts on machines without a driver and
// reports "no CUDA device" only when the cuda backend is actually asked for. Kernels come
// from the plan's cubins through the runtime's library-management API (cudaLibraryLoadData,
// cudaLibraryGetKernel) and are launched with cudaLaunchKernel, whose function argument may be
// a cudaKernel_t. Creation does all preparation (device choice, arenas, module loading, cuBLASLt
// algorithm choice, streams, events); a run only enqueues, then waits for its streams.
//
// Kernel parameter ABI (shared with the compiler's code generator): one device pointer per
// Launch `args` entry, in order, then one int64_t per `int_args` entry, in order.
//
//===----------------------------------------------------------------------===//

#include "../backends.h"

#include "fusion/rt/comm.h"
#include "cublaslt_gemm.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <set>

namespace fusion::rt {

namespace {

/// A parsed "sm_XY[a|f]" architecture name.
struct Arch {
  int major = 0;
  int minor = 0;
  /// "" (portable within the major version), "a" (this exact version only) or "f" (family).
  std::string suffix;
};

/// Parses "sm_80", "sm_90a", "sm_100f", ...; nullopt for anything else.
std::optional<Arch> parseArch(std::string_view text) {
  if (text.substr(0, 3) != "sm_")
    return std::nullopt;
  text.remove_prefix(3);
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
    ++digits;
  std::string_view suffix = text.substr(digits);
  if (digits < 2 || digits > 3 || !(suffix.empty() || suffix == "a" || suffix == "f"))
    return std::nullopt;
  Arch arch;
  arch.major = std::stoi(std::string(text.substr(0, digits - 1)));
  arch.minor = text[digits - 1] - '0';
  arch.suffix = std::string(suffix);
  return arch;
}

/// Picks the cubin of `kernel` to load on a device of compute capability major.minor. A cubin
/// runs on devices of its own major version and an equal or higher minor version; an "a"
/// (architecture-specific, e.g. sm_90a for wgmma) cubin only on its exact version. Preference:
/// exact "a" cubin, then exact portable, then the newest older minor.
std::optional<uint32_t> pickCubin(const schema::Kernel &kernel, int major, int minor) {
  std::optional<uint32_t> best;
  int bestScore = -1;
  if (!kernel.cubins())
    return std::nullopt;
  for (uint32_t i = 0; i < kernel.cubins()->size(); ++i) {
    std::optional<Arch> arch = parseArch(kernel.cubins()->Get(i)->arch()->string_view());
    if (!arch || arch->major != major || arch->minor > minor)
      continue;
    if (arch->suffix == "a" && arch->minor != minor)
      continue;
    int score = arch->minor * 4 + (arch->minor == minor ? 2 : 0) + (arch->suffix == "a" ? 1 : 0);
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}

dim3 toDim3(const flatbuffers::Vector<uint32_t> *dims) {
  dim3 d(1, 1, 1);
  if (dims) {
    if (dims->size() > 0)
      d.x = dims->Get(0);
    if (dims->size() > 1)
      d.y = dims->Get(1);
    if (dims->size() > 2)
      d.z = dims->Get(2);
  }
  return d;
}

class CudaExecutor final : public Executor {
public:
  CudaExecutor(std::shared_ptr<const Plan> plan, MeshContext mesh)
      : Executor(std::move(plan)), mesh_(std::move(mesh)) {}

  ~CudaExecutor() override {
    // Best effort: errors while tearing down cannot be reported and must not throw.
    for (ProgramGraph &graph : graphs_) {
      if (graph.exec)
        cudaGraphExecDestroy(graph.exec);
      if (graph.graph)
        cudaGraphDestroy(graph.graph);
    }
    for (cudaEvent_t event : graphEvents_)
      cudaEventDestroy(event);
    gemms_.clear();
    cublasLt_.reset();
    for (std::vector<cudaEvent_t> &events : events_)
      for (cudaEvent_t event : events)
        cudaEventDestroy(event);
    for (cudaStream_t stream : streams_)
      cudaStreamDestroy(stream);
    for (cudaLibrary_t library : libraries_)
      cudaLibraryUnload(library);
    for (void *arena : arenas_)
      if (arena)
        cudaFree(arena);
  }

  Status initialize() {
    FUSION_RETURN_IF_ERROR(selectDevice());
    FUSION_RETURN_IF_ERROR(allocateArenas());
    FUSION_RETURN_IF_ERROR(loadKernels());
    FUSION_RETURN_IF_ERROR(createStreamsAndEvents());
    FUSION_RETURN_IF_ERROR(prepareGemms());
    graphs_.resize(plan_->root().programs() ? plan_->root().programs()->size() : 0);
    const char *env = std::getenv("FUSION_CUDA_GRAPHS");
    graphsEnabled_ = !(env && std::string_view(env) == "0");
    return Status::okStatus();
  }

  BackendKind backend() const override { return BackendKind::kCuda; }

  Status run(std::string_view programName) override {
    std::optional<uint32_t> index = plan_->findProgram(programName);
    if (!index)
      return Status(StatusCode::kNotFound, plan_->displayName() + ": no program named " +
                                               quoted(programName));
    const schema::Program &program = *plan_->root().programs()->Get(*index);
    FUSION_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "selecting the CUDA device");
    uint32_t numInstructions = program.instructions() ? program.instructions()->size() : 0;
    // Timing: an event pair around each timed instruction on its stream, and one at the
    // start of the run, whose host time anchors the others (the device is idle between
    // runs: every run ends by synchronising its streams).
    struct Timed {
      uint32_t instruction, stream;
      cudaEvent_t begin, end;
    };
    std::vector<Timed> timed;
    cudaEvent_t runStart = nullptr;
    double runStartUs = 0;
    if (timing_) {
      FUSION_CUDA_RETURN_IF_ERROR(cudaEventCreate(&runStart), "creating a timing event");
      runStartUs = timingClockUs();
      FUSION_CUDA_RETURN_IF_ERROR(cudaEventRecord(runStart, streams_[0]), "recording an event");
    }
    auto releaseEvents = [&] {
      for (Timed &t : timed) {
        cudaEventDestroy(t.begin);
        cudaEventDestroy(t.end);
      }
      if (runStart)
        cudaEventDestroy(runStart);
    };
    // CUDA graphs: a program's second and later untimed runs replay the graph captured on
    // its second run (the first warms up cuBLASLt and NCCL), saving the host the cost of
    // every launch.
    ProgramGraph &graph = graphs_[*index];
    bool replay = graphsEnabled_ && !timing_ && graph.runs >= 1 && numInstructions > 0;
    ++graph.runs;
    if (replay) {
      if (!graph.exec)
        FUSION_RETURN_IF_ERROR(captureGraph(*index, program).withPrefix(
            plan_->displayName() + ": program " + quoted(programName) + ": capturing a CUDA graph"));
      FUSION_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graph.exec, streams_[0]),
                                  plan_->displayName() + ": program " + quoted(programName) +
                                      ": launching its CUDA graph");
      numInstructions = 0; // enqueued by the graph
    }
    for (uint32_t i = 0; i < numInstructions; ++i) {
      const schema::Instruction &instruction = *program.instructions()->Get(i);
      bool timeIt = timing_ && instruction.op_type() != schema::Op::Record &&
                    instruction.op_type() != schema::Op::Wait;
      Timed t{i, instruction.stream(), nullptr, nullptr};
      if (timeIt && (cudaEventCreate(&t.begin) != cudaSuccess ||
                     cudaEventCreate(&t.end) != cudaSuccess ||
                     cudaEventRecord(t.begin, streams_[t.stream]) != cudaSuccess)) {
        releaseEvents();
        return Status(StatusCode::kInternal, "cannot record timing events");
      }
      Status status = runInstruction(*index, i, instruction);
      if (timeIt) {
        cudaEventRecord(t.end, streams_[t.stream]);
        timed.push_back(t);
      }
      if (!status.ok()) {
        releaseEvents();
        return status.withPrefix(plan_->displayName() + ": " +
                                 plan_->describeInstruction(*index, i));
      }
    }
    // Launches are asynchronous: a fault shows up here, not at the instruction that caused it.
    std::string context = plan_->displayName() + ": program " + quoted(programName) +
                          ": device error while the program ran (raised asynchronously by one "
                          "of its instructions)";
    for (uint32_t s = 0; s < plan_->numStreams(*index); ++s) {
      if (streamComm_) {
        // Collectives are in flight on these streams: wait with the communicator's error
        // polling and timeout, so a dead peer is an error, not a hang.
        Status status = streamComm_->waitStream(streams_[s], context);
        if (!status.ok()) {
          releaseEvents();
          return status;
        }
      } else if (cudaError_t error = cudaStreamSynchronize(streams_[s]); error != cudaSuccess) {
        releaseEvents();
        FUSION_CUDA_RETURN_IF_ERROR(error, context);
      }
    }
    if (timing_) {
      for (const Timed &t : timed) {
        float fromStart = 0, duration = 0;
        cudaEventElapsedTime(&fromStart, runStart, t.begin);
        cudaEventElapsedTime(&duration, t.begin, t.end);
        timings_.push_back({*index, t.instruction, t.stream, runStartUs + fromStart * 1e3,
                            duration * 1e3});
      }
      releaseEvents();
    }
    return Status::okStatus();
  }

  Status step(std::string_view programName, uint32_t index) override {
    std::optional<uint32_t> program = plan_->findProgram(programName);
    if (!program)
      return Status(StatusCode::kNotFound, plan_->displayName() + ": no program named " +
                                               quoted(programName));
    const auto *instructions = plan_->root().programs()->Get(*program)->instructions();
    if (!instructions || index >= instructions->size())
      return Status(StatusCode::kInvalidArgument,
                    plan_->displayName() + ": program " + quoted(programName) +
                        " has no instruction " + std::to_string(index));
    FUSION_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "selecting the CUDA device");
    std::string where = plan_->displayName() + ": " + plan_->describeInstruction(*program, index);
    Status status = runInstruction(*program, index, *instructions->Get(index));
    if (!status.ok())
      return status.withPrefix(where);
    // A single instruction: wait for every stream, so a fault names this instruction.
    for (uint32_t s = 0; s < plan_->numStreams(*program); ++s) {
      if (streamComm_) {
        FUSION_RETURN_IF_ERROR(streamComm_->waitStream(streams_[s], where));
      } else {
        FUSION_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(streams_[s]), where);
      }
    }
    return Status::okStatus();
  }

  Status readBuffer(uint32_t id, std::vector<uint8_t> &out) override {
    FUSION_RETURN_IF_ERROR(checkBufferAccess(id, std::nullopt));
    const BufferInfo &buffer = plan_->buffers()[id];
    out.resize(buffer.byteSize);
    if (buffer.byteSize)
      FUSION_CUDA_RETURN_IF_ERROR(cudaMemcpy(out.data(), bufferData(id), buffer.byteSize,
                                             cudaMemcpyDeviceToHost),
                                  "reading buffer " + std::to_string(id) + " " +
                                      quoted(buffer.name));
    return Status::okStatus();
  }

  Status writeBuffer(uint32_t id, const void *data, size_t size) override {
    FUSION_RETURN_IF_ERROR(checkBufferAccess(id, size));
    if (!size)
      return Status::okStatus();
    std::string context = "writing buffer " + std::to_string(id) + " " +
                          quoted(plan_->buffers()[id].name);
    FUSION_CUDA_RETURN_IF_ERROR(cudaMemcpy(bufferData(id), data, size, cudaMemcpyHostToDevice),
                                context);
    // Programs run on non-blocking streams, which do not order against the legacy stream
    // that cudaMemcpy uses: finish the copy before any program can read the buffer.
    FUSION_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize(), context);
    return Status::okStatus();
  }

private:
  char *bufferData(uint32_t id) const {
    const BufferInfo &buffer = plan_->buffers()[id];
    return static_cast<char *>(arenas_[buffer.arena]) + buffer.offset;
  }

  std::string kernelLabel(uint32_t index) const {
    const schema::Kernel &kernel = *plan_->root().kernels()->Get(index);
    return "kernel " + std::to_string(index) + " " + quoted(kernel.name()->string_view()) +
           " (kind " + quoted(kernel.kind()->string_view()) + ")";
  }

  //===--------------------------------------------------------------------===//
  // Preparation
  //===--------------------------------------------------------------------===//

public:
  std::string deviceDescription() const override {
    return "cuda:" + std::to_string(device_) + " (" + deviceName_ + ", sm_" +
           std::to_string(major_) + std::to_string(minor_) + ")";
  }

private:
  Status selectDevice() {
    int count = 0;
    cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess) {
      (void)cudaGetLastError();
      return Status(StatusCode::kUnavailable,
                    std::string("no CUDA device: ") + cudaGetErrorString(error));
    }
    if (count == 0)
      return Status(StatusCode::kUnavailable,
                    "no CUDA device: the CUDA runtime reports 0 devices");
    device_ = mesh_.device;
    if (device_ < 0 || device_ >= count)
      return Status(StatusCode::kUnavailable,
                    "this rank's GPU " + std::to_string(device_) +
                        " (LOCAL_RANK) does not exist: the CUDA runtime reports " +
                        std::to_string(count) + " device(s)");
    std::string label = "CUDA device " + std::to_string(device_);
    FUSION_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_), "selecting " + label);
    cudaDeviceProp properties;
    FUSION_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&properties, device_),
                                "querying " + label);
    major_ = properties.major;
    minor_ = properties.minor;
    deviceName_ = properties.name;
    return Status::okStatus();
  }

  Status allocateArenas() {
    const schema::Plan &root = plan_->root();
    if (!root.arenas())
      return Status::okStatus();
    for (const schema::Arena *arena : *root.arenas()) {
      void *base = nullptr;
      size_t size = arena->size_bytes();
      if (size) {
        std::string context = plan_->displayName() + ": arena " +
                              quoted(arena->name()->string_view()) + " (" +
                              std::to_string(size) + " bytes)";
        FUSION_CUDA_RETURN_IF_ERROR(cudaMalloc(&base, size), context);
        arenas_.push_back(base); // owned from here on, even if the memset fails
        FUSION_CUDA_RETURN_IF_ERROR(cudaMemset(base, 0, size), context);
      } else {
        arenas_.push_back(nullptr);
      }
    }
    return Status::okStatus();
  }

  /// Loads the device code of every kernel some program launches (others need none).
  Status loadKernels() {
    const schema::Plan &root = plan_->root();
    uint32_t numKernels = root.kernels() ? root.kernels()->size() : 0;
    kernels_.assign(numKernels, nullptr);
    // Largest dynamic shared memory each kernel is launched with.
    std::vector<uint32_t> sharedBytes(numKernels, 0);
    std::set<uint32_t> used;
    forEachInstruction([&](uint32_t, uint32_t, const schema::Instruction &instruction) {
      if (const schema::Launch *launch = instruction.op_as_Launch()) {
        used.insert(launch->kernel());
        sharedBytes[launch->kernel()] =
            std::max(sharedBytes[launch->kernel()], launch->shared_mem_bytes());
      }
    });
    for (uint32_t index : used) {
      const schema::Kernel &kernel = *root.kernels()->Get(index);
      std::string label = plan_->displayName() + ": " + kernelLabel(index);
      if (!kernel.cubins() || kernel.cubins()->size() == 0)
        return Status(StatusCode::kFailedPrecondition,
                      label + " has no cubins; the cuda backend needs device code (only the "
                              "cpu backend can run a kernel from its kind alone)");
      if (!kernel.entry() || kernel.entry()->size() == 0)
        return Status(StatusCode::kFailedPrecondition,
                      label + " has no entry symbol; the cuda backend needs one to launch it");
      std::optional<uint32_t> choice = pickCubin(kernel, major_, minor_);
      if (!choice) {
        std::string archs;
        for (const schema::Cubin *cubin : *kernel.cubins())
          archs += (archs.empty() ? "" : ", ") + quoted(cubin->arch()->string_view());
        return Status(StatusCode::kFailedPrecondition,
                      label + ": no cubin runs on this device (" + deviceName_ +
                          ", compute capability " + std::to_string(major_) + "." +
                          std::to_string(minor_) + "); the plan has cubins for " + archs);
      }
      const schema::Cubin &cubin = *kernel.cubins()->Get(*choice);
      std::string context = label + " cubin " + quoted(cubin.arch()->string_view());
      // The loader parses the image as ELF: give it an 8-byte-aligned private copy rather
      // than a pointer into the plan, where vectors are only 4-byte aligned.
      std::vector<uint64_t> image((cubin.image()->size() + 7) / 8, 0);
      std::memcpy(image.data(), cubin.image()->data(), cubin.image()->size());
      cudaLibrary_t library = nullptr;
      FUSION_CUDA_RETURN_IF_ERROR(cudaLibraryLoadData(&library, image.data(), nullptr, nullptr,
                                                      0, nullptr, nullptr, 0),
                                  context);
      libraries_.push_back(library);
      cudaKernel_t handle = nullptr;
      FUSION_CUDA_RETURN_IF_ERROR(
          cudaLibraryGetKernel(&handle, library, kernel.entry()->c_str()),
          context + " entry " + quoted(kernel.entry()->string_view()));
      // Above 48 KiB, dynamic shared memory must be opted into per kernel.
      if (sharedBytes[index] > 48 * 1024)
        FUSION_CUDA_RETURN_IF_ERROR(
            cudaKernelSetAttributeForDevice(handle, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(sharedBytes[index]), device_),
            context + " (allowing " + std::to_string(sharedBytes[index]) +
                " bytes of dynamic shared memory)");
      kernels_[index] = handle;
    }
    return Status::okStatus();
  }

  Status createStreamsAndEvents() {
    const schema::Plan &root = plan_->root();
    uint32_t numPrograms = root.programs() ? root.programs()->size() : 0;
    uint32_t numStreams = 1;
    for (uint32_t p = 0; p < numPrograms; ++p)
      numStreams = std::max(numStreams, plan_->numStreams(p));
    // Stream 0 computes; the others (fplan-schedule-comm's communication stream) get the
    // highest priority, so a collective's few blocks are scheduled ahead of a large
    // compute grid launched at the same time instead of waiting for its tail.
    int lowest = 0, highest = 0;
    FUSION_CUDA_RETURN_IF_ERROR(cudaDeviceGetStreamPriorityRange(&lowest, &highest),
                                "querying stream priorities");
    for (uint32_t s = 0; s < numStreams; ++s) {
      cudaStream_t stream = nullptr;
      FUSION_CUDA_RETURN_IF_ERROR(
          cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, s == 0 ? lowest : highest),
          "creating stream " + std::to_string(s));
      streams_.push_back(stream);
    }
    events_.resize(numPrograms);
    for (uint32_t p = 0; p < numPrograms; ++p)
      for (uint32_t e = 0; e < root.programs()->Get(p)->num_events(); ++e) {
        cudaEvent_t event = nullptr;
        FUSION_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&event, cudaEventDisableTiming),
                                    "creating event " + std::to_string(e) + " of program " +
                                        quoted(root.programs()->Get(p)->name()->string_view()));
        events_[p].push_back(event);
      }
    return Status::okStatus();
  }

  /// Chooses the cuBLASLt algorithm of every gemm instruction up front.
  Status prepareGemms() {
    const schema::Plan &root = plan_->root();
    uint32_t numPrograms = root.programs() ? root.programs()->size() : 0;
    gemms_.resize(numPrograms);
    Status status;
    forEachInstruction([&](uint32_t p, uint32_t i, const schema::Instruction &instruction) {
      const schema::Gemm *gemm = instruction.op_as_Gemm();
      if (!gemm || !status.ok())
        return;
      if (!cublasLt_) {
        // 32 MiB per stream: what cuBLASLt's heuristics want for large Hopper gemms.
        auto context = cuda::CublasLtContext::create(32u << 20, streams_.size());
        if (!context.ok()) {
          status = context.status();
          return;
        }
        cublasLt_ = std::move(context).value();
      }
      if (gemms_[p].empty())
        gemms_[p].resize(root.programs()->Get(p)->instructions()->size());
      const std::vector<BufferInfo> &buffers = plan_->buffers();
      auto prepared = cuda::CublasLtGemm::create(
          *cublasLt_, *gemm, buffers[gemm->a()], bufferData(gemm->a()), buffers[gemm->b()],
          bufferData(gemm->b()), buffers[gemm->c()], bufferData(gemm->c()));
      if (!prepared.ok()) {
        status = prepared.status().withPrefix(plan_->displayName() + ": " +
                                              plan_->describeInstruction(p, i));
        return;
      }
      gemms_[p][i] = std::move(prepared).value();
    });
    return status;
  }

  /// Calls fn(program, index, instruction) for every instruction of every program.
  template <typename Fn> void forEachInstruction(Fn fn) const {
    const schema::Plan &root = plan_->root();
    if (!root.programs())
      return;
    for (uint32_t p = 0; p < root.programs()->size(); ++p) {
      const schema::Program &program = *root.programs()->Get(p);
      if (!program.instructions())
        continue;
      for (uint32_t i = 0; i < program.instructions()->size(); ++i)
        fn(p, i, *program.instructions()->Get(i));
    }
  }

  //===--------------------------------------------------------------------===//
  // Execution
  //===--------------------------------------------------------------------===//

  Status runInstruction(uint32_t program, uint32_t index, const schema::Instruction &instruction) {
    cudaStream_t stream = streams_[instruction.stream()];
    switch (instruction.op_type()) {
    case schema::Op::Launch:
      return launch(*instruction.op_as_Launch(), stream);
    case schema::Op::Gemm: {
      const schema::Gemm &gemm = *instruction.op_as_Gemm();
      return gemms_[program][index]->enqueue(*cublasLt_, instruction.stream(), stream,
                                             bufferData(gemm.a()), bufferData(gemm.b()),
                                             bufferData(gemm.c()));
    }
    case schema::Op::Collective:
      return collective(*instruction.op_as_Collective(), stream);
    case schema::Op::Record:
      FUSION_CUDA_RETURN_IF_ERROR(
          cudaEventRecord(events_[program][instruction.op_as_Record()->event()], stream),
          "record of event " + std::to_string(instruction.op_as_Record()->event()));
      return Status::okStatus();
    case schema::Op::Wait:
      FUSION_CUDA_RETURN_IF_ERROR(
          cudaStreamWaitEvent(stream, events_[program][instruction.op_as_Wait()->event()], 0),
          "wait for event " + std::to_string(instruction.op_as_Wait()->event()));
      return Status::okStatus();
    case schema::Op::NONE:
      break;
    }
    return Status(StatusCode::kInternal, "unverified instruction type reached the executor");
  }

  /// One program's captured graph.
  struct ProgramGraph {
    uint64_t runs = 0;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
  };

  /// Captures program `p`'s instructions into a graph: stream 0 is captured, the program's
  /// other streams fork from it by an event before the first instruction and join it
  /// before the end, so the graph keeps the streams' concurrency and their event order.
  Status captureGraph(uint32_t p, const schema::Program &program) {
    uint32_t numStreams = plan_->numStreams(p);
    while (graphEvents_.size() < numStreams) {
      cudaEvent_t event = nullptr;
      FUSION_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&event, cudaEventDisableTiming),
                                  "creating a graph event");
      graphEvents_.push_back(event);
    }
    FUSION_CUDA_RETURN_IF_ERROR(
        cudaStreamBeginCapture(streams_[0], cudaStreamCaptureModeThreadLocal), "begin capture");
    Status status = Status::okStatus();
    auto check = [&](cudaError_t error, const char *what) {
      if (error != cudaSuccess && status.ok())
        status = Status(StatusCode::kInternal,
                        std::string(what) + ": " + cudaGetErrorString(error));
    };
    if (numStreams > 1) {
      check(cudaEventRecord(graphEvents_[0], streams_[0]), "fork event");
      for (uint32_t s = 1; s < numStreams; ++s)
        check(cudaStreamWaitEvent(streams_[s], graphEvents_[0]), "fork wait");
    }
    for (uint32_t i = 0; status.ok() && i < program.instructions()->size(); ++i) {
      Status run = runInstruction(p, i, *program.instructions()->Get(i));
      if (!run.ok())
        status = run.withPrefix(plan_->describeInstruction(p, i));
    }
    for (uint32_t s = 1; s < numStreams; ++s) {
      check(cudaEventRecord(graphEvents_[s], streams_[s]), "join event");
      check(cudaStreamWaitEvent(streams_[0], graphEvents_[s]), "join wait");
    }
    cudaGraph_t graph = nullptr;
    // Always end the capture, so the stream is usable whatever happened.
    check(cudaStreamEndCapture(streams_[0], &graph), "end capture");
    if (!status.ok()) {
      if (graph)
        cudaGraphDestroy(graph);
      return status;
    }
    cudaGraphExec_t exec = nullptr;
    FUSION_CUDA_RETURN_IF_ERROR(cudaGraphInstantiate(&exec, graph, 0), "instantiating the graph");
    graphs_[p].graph = graph;
    graphs_[p].exec = exec;
    return Status::okStatus();
  }

  Status launch(const schema::Launch &launch, cudaStream_t stream) {
    uint32_t numArgs = launch.args() ? launch.args()->size() : 0;
    uint32_t numInts = launch.int_args() ? launch.int_args()->size() : 0;
    // Parameter storage must stay put while cudaLaunchKernel reads it: size the vectors first.
    std::vector<void *> pointers(numArgs);
    std::vector<int64_t> ints(numInts);
    std::vector<void *> params;
    params.reserve(numArgs + numInts);
    for (uint32_t i = 0; i < numArgs; ++i) {
      pointers[i] = bufferData(launch.args()->Get(i));
      params.push_back(&pointers[i]);
    }
    for (uint32_t i = 0; i < numInts; ++i) {
      ints[i] = launch.int_args()->Get(i);
      params.push_back(&ints[i]);
    }
    FUSION_CUDA_RETURN_IF_ERROR(
        cudaLaunchKernel(reinterpret_cast<const void *>(kernels_[launch.kernel()]),
                         toDim3(launch.grid()), toDim3(launch.block()),
                         params.empty() ? nullptr : params.data(), launch.shared_mem_bytes(),
                         stream),
        "launch of " + kernelLabel(launch.kernel()));
    return Status::okStatus();
  }

  Status collective(const schema::Collective &collective, cudaStream_t stream) {
    std::string_view axis = collective.axis()->string_view();
    int32_t ranks = *plan_->meshAxisSize(axis);
    const BufferInfo &send = plan_->buffers()[collective.send()];
    const BufferInfo &recv = plan_->buffers()[collective.recv()];
    if (ranks == 1) {
      // One rank: every collective is the identity (verified: same size and dtype).
      if (collective.send() != collective.recv() && send.byteSize)
        FUSION_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(bufferData(collective.recv()),
                                                    bufferData(collective.send()), send.byteSize,
                                                    cudaMemcpyDeviceToDevice, stream),
                                    "single-rank collective copy");
      return Status::okStatus();
    }
    FUSION_ASSIGN_OR_RETURN(Communicator * comm, collectiveCommunicator(*plan_, mesh_, collective,
                                                                       BackendKind::kCuda));
    std::string what = std::string(collectiveKindName(collective.kind())) + " " +
                       quoted(send.name) + " -> " + quoted(recv.name);
    if (comm->supportsStreams()) {
      // NCCL runs in stream order on the instruction's stream: the host does not wait, so
      // with fplan-schedule-comm (collectives on their own stream, events around them) the
      // compute streams keep going. Errors and timeouts surface when the run waits for its
      // streams (Communicator::waitStream).
      streamComm_ = comm;
      return dispatchCollective(*comm, *plan_, collective, bufferData(collective.send()),
                                bufferData(collective.recv()), what, stream);
    }
    // A host-synchronous communicator: the work this collective depends on (everything
    // before it on its stream) must be finished first.
    FUSION_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream), "waiting before a collective");
    return dispatchCollective(*comm, *plan_, collective, bufferData(collective.send()),
                              bufferData(collective.recv()), what);
  }

  std::vector<ProgramGraph> graphs_;
  /// Fork (index 0) and join events of graph captures, one per stream.
  std::vector<cudaEvent_t> graphEvents_;
  /// FUSION_CUDA_GRAPHS=0 turns graph replay off (every run enqueues its instructions).
  bool graphsEnabled_ = true;
  MeshContext mesh_;
  /// The stream-ordered communicator a run has enqueued collectives on (null: none yet).
  Communicator *streamComm_ = nullptr;
  int device_ = 0;
  int major_ = 0, minor_ = 0;
  std::string deviceName_;
  std::vector<void *> arenas_;
  std::vector<cudaLibrary_t> libraries_;
  /// Per plan kernel; null for kernels no program launches.
  std::vector<cudaKernel_t> kernels_;
  std::vector<cudaStream_t> streams_;
  /// Per program, its events.
  std::vector<std::vector<cudaEvent_t>> events_;
  std::unique_ptr<cuda::CublasLtContext> cublasLt_;
  /// Per program, per instruction: the prepared gemm (null for other instructions).
  std::vector<std::vector<std::unique_ptr<cuda::CublasLtGemm>>> gemms_;
};

} // namespace

StatusOr<std::unique_ptr<Executor>> createCudaExecutor(std::shared_ptr<const Plan> plan,
                                                       MeshContext mesh) {
  auto executor = std::make_unique<CudaExecutor>(std::move(plan), std::move(mesh));
  FUSION_RETURN_IF_ERROR(executor->initialize());
  return std::unique_ptr<Executor>(std::move(executor));
}

std::optional<std::string> probeCudaDevice() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  cudaDeviceProp properties;
  if (cudaGetDeviceProperties(&properties, 0) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  return std::string(properties.name);
}

} // namespace fusion::rt
