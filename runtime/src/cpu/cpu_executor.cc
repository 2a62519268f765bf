//===- cpu_executor.cc - The reference CPU executor -----------------------===//
//
// Runs a program instruction by instruction on host memory. There is a single implicit
// stream: instructions execute in program order, which is a valid schedule of any
// multi-stream program, so Record and Wait have nothing to do (their indices were still
// verified at load). Collectives over a mesh axis of one rank are copies; over more ranks
// they go to the axis's Communicator (ranks are threads of this process, ThreadGroup), and
// a rank without one is told to run the plan with fusion-run --nproc N. Arenas are anonymous private mappings: page aligned (more than the 64
// bytes vector code wants), zero filled by the kernel, and committed lazily, so a plan that
// declares a large arena but touches little of it costs little. Each executor owns one
// worker pool (ThreadPool::defaultNumThreads() threads, created once) that the heavy
// kernels split their independent work items over.
//
//===----------------------------------------------------------------------===//

#include "cpu_kernels.h"
#include "thread_pool.h"

#include "../backends.h"

#include "fusion/rt/comm.h"

#include <cerrno>
#include <cstring>

#include <sys/mman.h>

namespace fusion::rt {

namespace {

class CpuExecutor final : public Executor {
public:
  CpuExecutor(std::shared_ptr<const Plan> plan, MeshContext mesh)
      : Executor(std::move(plan)), mesh_(std::move(mesh)),
        pool_(cpu::ThreadPool::defaultNumThreads()) {}

  ~CpuExecutor() override {
    for (const Mapping &arena : arenas_)
      if (arena.base)
        munmap(arena.base, arena.size);
  }

  /// Maps and zeroes every arena.
  Status allocate() {
    const schema::Plan &root = plan_->root();
    if (!root.arenas())
      return Status::okStatus();
    for (const schema::Arena *arena : *root.arenas()) {
      Mapping mapping;
      mapping.size = arena->size_bytes();
      if (mapping.size > 0) {
        void *base =
            mmap(nullptr, mapping.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
          return Status(StatusCode::kUnavailable,
                        plan_->displayName() + ": cannot allocate arena " +
                            quoted(arena->name()->string_view()) + " (" +
                            std::to_string(mapping.size) + " bytes): " + std::strerror(errno));
        mapping.base = static_cast<char *>(base);
      }
      arenas_.push_back(mapping);
    }
    return Status::okStatus();
  }

  BackendKind backend() const override { return BackendKind::kCpu; }

  Status run(std::string_view programName) override {
    std::optional<uint32_t> index = plan_->findProgram(programName);
    if (!index)
      return Status(StatusCode::kNotFound,
                    plan_->displayName() + ": no program named " + quoted(programName));
    const schema::Program &program = *plan_->root().programs()->Get(*index);
    if (!program.instructions())
      return Status::okStatus();
    for (uint32_t i = 0; i < program.instructions()->size(); ++i) {
      programIndex_ = *index;
      instructionIndex_ = i;
      const schema::Instruction &instruction = *program.instructions()->Get(i);
      bool timed = timing_ && instruction.op_type() != schema::Op::Record &&
                   instruction.op_type() != schema::Op::Wait;
      double start = timed ? timingClockUs() : 0;
      Status status = runInstruction(instruction);
      if (timed)
        timings_.push_back({*index, i, instruction.stream(), start, timingClockUs() - start});
      if (!status.ok())
        return status.withPrefix(plan_->displayName() + ": " +
                                 plan_->describeInstruction(*index, i));
    }
    return Status::okStatus();
  }

  Status step(std::string_view programName, uint32_t index) override {
    std::optional<uint32_t> program = plan_->findProgram(programName);
    if (!program)
      return Status(StatusCode::kNotFound,
                    plan_->displayName() + ": no program named " + quoted(programName));
    const auto *instructions = plan_->root().programs()->Get(*program)->instructions();
    if (!instructions || index >= instructions->size())
      return Status(StatusCode::kInvalidArgument,
                    plan_->displayName() + ": program " + quoted(programName) +
                        " has no instruction " + std::to_string(index));
    programIndex_ = *program;
    instructionIndex_ = index;
    Status status = runInstruction(*instructions->Get(index));
    if (!status.ok())
      return status.withPrefix(plan_->displayName() + ": " +
                               plan_->describeInstruction(*program, index));
    return Status::okStatus();
  }

  Status readBuffer(uint32_t id, std::vector<uint8_t> &out) override {
    FUSION_RETURN_IF_ERROR(checkBufferAccess(id, std::nullopt));
    const BufferInfo &buffer = plan_->buffers()[id];
    out.resize(buffer.byteSize);
    if (buffer.byteSize)
      std::memcpy(out.data(), bufferData(id), buffer.byteSize);
    return Status::okStatus();
  }

  Status writeBuffer(uint32_t id, const void *data, size_t size) override {
    FUSION_RETURN_IF_ERROR(checkBufferAccess(id, size));
    if (size)
      std::memcpy(bufferData(id), data, size);
    return Status::okStatus();
  }

private:
  struct Mapping {
    char *base = nullptr;
    size_t size = 0;
  };

  /// Host address of buffer `id` (verified to lie inside its arena).
  char *bufferData(uint32_t id) const {
    const BufferInfo &buffer = plan_->buffers()[id];
    char *base = arenas_[buffer.arena].base;
    return base ? base + buffer.offset : nullptr;
  }

  Status runInstruction(const schema::Instruction &instruction) {
    switch (instruction.op_type()) {
    case schema::Op::Launch:
      return runLaunch(*instruction.op_as_Launch());
    case schema::Op::Gemm: {
      const schema::Gemm &gemm = *instruction.op_as_Gemm();
      const std::vector<BufferInfo> &buffers = plan_->buffers();
      return cpu::runGemm(gemm, buffers[gemm.a()], bufferData(gemm.a()), buffers[gemm.b()],
                          bufferData(gemm.b()), buffers[gemm.c()], bufferData(gemm.c()), &pool_);
    }
    case schema::Op::Collective:
      return runCollective(*instruction.op_as_Collective());
    case schema::Op::Record:
    case schema::Op::Wait:
      return Status::okStatus(); // one stream: program order already satisfies every wait
    case schema::Op::NONE:
      break;
    }
    return Status(StatusCode::kInternal, "unverified instruction type reached the executor");
  }

  Status runLaunch(const schema::Launch &launch) {
    const schema::Kernel &kernel = *plan_->root().kernels()->Get(launch.kernel());
    std::string_view kind = kernel.kind()->string_view();
    std::string kernelLabel =
        "kernel " + std::to_string(launch.kernel()) + " " + quoted(kernel.name()->string_view());
    const cpu::KernelEntry *entry = cpu::findKernel(kind);
    if (!entry)
      return Status(StatusCode::kUnimplemented,
                    "unknown kernel kind " + quoted(kind) + " (" + kernelLabel +
                        "); the cpu backend implements: " + cpu::implementedKinds());
    cpu::KernelContext context{kernel, {}, {}, &pool_};
    uint32_t numArgs = launch.args() ? launch.args()->size() : 0;
    for (uint32_t i = 0; i < numArgs; ++i) {
      uint32_t id = launch.args()->Get(i);
      cpu::Tensor tensor{bufferData(id), &plan_->buffers()[id], id};
      (i < launch.num_inputs() ? context.inputs : context.outputs).push_back(tensor);
    }
    return cpu::runKernel(*entry, std::move(context))
        .withPrefix(kernelLabel + " (kind " + quoted(kind) + ")");
  }

  Status runCollective(const schema::Collective &collective) {
    std::string_view axis = collective.axis()->string_view();
    int32_t ranks = *plan_->meshAxisSize(axis);
    const BufferInfo &send = plan_->buffers()[collective.send()];
    const BufferInfo &recv = plan_->buffers()[collective.recv()];
    if (ranks == 1) {
      // One rank: every collective kind (and every reduce op, Avg included) is the identity.
      // The verifier made send and recv the same size and dtype.
      if (collective.send() != collective.recv() && send.byteSize)
        std::memmove(bufferData(collective.recv()), bufferData(collective.send()),
                     send.byteSize);
      return Status::okStatus();
    }
    FUSION_ASSIGN_OR_RETURN(Communicator * comm, collectiveCommunicator(*plan_, mesh_, collective,
                                                                       BackendKind::kCpu));
    // The label peers quote when the ranks disagree or time out.
    std::string what = std::string(collectiveKindName(collective.kind())) + " " +
                       quoted(send.name) + " -> " + quoted(recv.name) + " at " +
                       plan_->describeInstruction(programIndex_, instructionIndex_);
    return dispatchCollective(*comm, *plan_, collective, bufferData(collective.send()),
                              bufferData(collective.recv()), what);
  }

  MeshContext mesh_;
  uint32_t programIndex_ = 0, instructionIndex_ = 0;
  std::vector<Mapping> arenas_;
  /// Worker threads of the reference kernels, for the executor's lifetime.
  cpu::ThreadPool pool_;

public:
  std::string deviceDescription() const override {
    unsigned n = pool_.numThreads();
    return "cpu (" + std::to_string(n) + (n == 1 ? " thread)" : " threads)");
  }
};

} // namespace

StatusOr<std::unique_ptr<Executor>> createCpuExecutor(std::shared_ptr<const Plan> plan,
                                                      MeshContext mesh) {
  auto executor = std::make_unique<CpuExecutor>(std::move(plan), std::move(mesh));
  FUSION_RETURN_IF_ERROR(executor->allocate());
  return std::unique_ptr<Executor>(std::move(executor));
}

} // namespace fusion::rt
