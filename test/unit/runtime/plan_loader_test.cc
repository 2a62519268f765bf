//===- plan_loader_test.cc - Plan loading and verification tests ----------===//
//
// The loader is the runtime's trust boundary: every test here feeds it a plan that is valid,
// damaged at the byte level (empty, truncated, bit flips, wrong identifier or version) or
// well formed but semantically wrong, and checks that it either accepts the plan or rejects it
// with one line naming the file and the offending item. The byte-flip sweep also runs every
// plan that survives loading, because "loads" must imply "runs or fails cleanly".
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"
#include "test/unit/runtime/test_plan_builder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <unistd.h>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

/// fill x, fill y, z = x + y: the base of most corruption tests.
PlanBuilder smallPlan() {
  PlanBuilder plan;
  uint32_t x = plan.addBuffer("x", DType::F32, {2, 3});
  uint32_t y = plan.addBuffer("y", DType::F32, {2, 3});
  uint32_t z = plan.addBuffer("z", DType::F32, {2, 3});
  uint32_t fillX =
      plan.addKernel("fill_x", "fill", {AttrDesc::number("value", 1), AttrDesc::number("step", 1)});
  uint32_t fillY = plan.addKernel("fill_y", "fill", {AttrDesc::number("value", 10)});
  uint32_t add = plan.addKernel("add_0", "add");
  plan.addProgram("main")
      .add(launchOp(fillX, {}, {x}), "model.yaml:1:1")
      .add(launchOp(fillY, {}, {y}), "model.yaml:2:1")
      .add(launchOp(add, {x, y}, {z}), "model.yaml:3:1");
  return plan;
}

StatusOr<std::shared_ptr<const Plan>> load(const std::vector<uint8_t> &bytes) {
  return Plan::loadBytes(bytes, "plan.fplan");
}

/// Checks that `bytes` is rejected with exactly one line that starts with the file name and
/// contains `expected`.
::testing::AssertionResult rejectedWith(const std::vector<uint8_t> &bytes,
                                        const std::string &expected) {
  auto result = load(bytes);
  if (result.ok())
    return ::testing::AssertionFailure() << "plan was accepted, expected: " << expected;
  const std::string &message = result.status().message();
  if (message.find('\n') != std::string::npos)
    return ::testing::AssertionFailure() << "message is not one line: " << message;
  if (message.rfind("plan.fplan: ", 0) != 0)
    return ::testing::AssertionFailure() << "message does not name the file: " << message;
  if (message.find(expected) == std::string::npos)
    return ::testing::AssertionFailure()
           << "message '" << message << "' does not contain '" << expected << "'";
  return ::testing::AssertionSuccess();
}

TEST(PlanLoaderTest, AcceptsValidPlanAndExposesIt) {
  auto plan = load(smallPlan().finish());
  ASSERT_TRUE(plan.ok()) << plan.status().toString();
  const Plan &p = **plan;
  EXPECT_EQ(p.root().schema_version(), kSchemaVersion);
  ASSERT_EQ(p.buffers().size(), 3u);
  EXPECT_EQ(p.buffers()[2].name, "z");
  EXPECT_EQ(p.buffers()[2].numElements, 6u);
  EXPECT_EQ(p.buffers()[2].byteSize, 24u);
  EXPECT_EQ(p.buffers()[2].offset, 128u);
  EXPECT_EQ(p.findProgram("main"), 0u);
  EXPECT_FALSE(p.findProgram("train_step").has_value());
  EXPECT_EQ(p.programNames(), std::vector<std::string>{"main"});
  EXPECT_EQ(p.findBuffers("y"), std::vector<uint32_t>{1});
  EXPECT_EQ(p.numStreams(0), 1u);
  EXPECT_EQ(p.describeInstruction(0, 2), "program 'main' instruction 2 (loc: model.yaml:3:1)");
}

TEST(PlanLoaderTest, RejectsEmptyAndTooShortInput) {
  EXPECT_TRUE(rejectedWith({}, "empty file, not a FusionLLM plan"));
  EXPECT_TRUE(rejectedWith({1, 2, 3, 4, 5}, "too short to be a FusionLLM plan (5 bytes"));
}

TEST(PlanLoaderTest, RejectsTruncatedPlansAtSeveralCutPoints) {
  std::vector<uint8_t> bytes = smallPlan().finish();
  ASSERT_GT(bytes.size(), 64u);
  for (size_t cut : {size_t(8), size_t(12), size_t(24), bytes.size() / 4, bytes.size() / 2,
                     bytes.size() * 3 / 4, bytes.size() - 16}) {
    std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + cut);
    EXPECT_TRUE(rejectedWith(truncated,
                             "corrupt or truncated plan (FlatBuffers verification failed)"))
        << "cut at " << cut << " of " << bytes.size();
  }
}

TEST(PlanLoaderTest, RejectsWrongIdentifier) {
  std::vector<uint8_t> bytes = smallPlan().finish();
  std::memcpy(bytes.data() + 4, "ABCD", 4);
  EXPECT_TRUE(rejectedWith(bytes, "not a FusionLLM plan (identifier 'ABCD', expected 'FPLN')"));
  // Unprintable identifier bytes are escaped, keeping the message on one line.
  bytes[5] = '\n';
  EXPECT_TRUE(rejectedWith(bytes, "identifier 'A\\x0aCD'"));
}

TEST(PlanLoaderTest, RejectsOtherSchemaVersions) {
  PlanBuilder plan = smallPlan();
  plan.schemaVersion = 7;
  auto result = load(plan.finish());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            "plan.fplan: schema version 7, this fusion-run reads version " +
                std::to_string(kSchemaVersion));
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
}

/// Flips bits in every byte of a small plan. Each variant must either be rejected with a
/// one-line message naming the file, or load and then run (or fail to run) cleanly on the CPU
/// backend. The test passing at all is the "never crashes" guarantee.
TEST(PlanLoaderTest, EveryByteFlipIsRejectedOrRunsCleanly) {
  PlanBuilder builder = smallPlan();
  builder.mesh.push_back({"dp", 1});
  uint32_t copy = builder.addBuffer("copy", DType::F32, {2, 3});
  uint32_t c = builder.addBuffer("c", DType::F32, {2, 2});
  builder.programs[0]
      .add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", 2, copy))
      .add(gemmOp(0, 1, c, 2, 2, 3, 1, /*transA=*/false, /*transB=*/true));
  std::vector<uint8_t> original = builder.finish();
  ASSERT_TRUE(load(original).ok());

  size_t rejected = 0, ran = 0, failedToRun = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    for (uint8_t mask : {uint8_t(0x01), uint8_t(0x10), uint8_t(0x80), uint8_t(0xff)}) {
      std::vector<uint8_t> bytes = original;
      bytes[i] ^= mask;
      auto plan = load(bytes);
      if (!plan.ok()) {
        const std::string &message = plan.status().message();
        ASSERT_EQ(message.rfind("plan.fplan: ", 0), 0u) << message;
        ASSERT_EQ(message.find('\n'), std::string::npos) << message;
        ++rejected;
        continue;
      }
      auto executor = createExecutor(*plan, BackendKind::kCpu);
      if (!executor.ok()) {
        ++failedToRun;
        continue;
      }
      Status status = Status::okStatus();
      for (const std::string &program : (*plan)->programNames())
        if (status.ok())
          status = (*executor)->run(program);
      std::vector<uint8_t> contents;
      for (uint32_t id = 0; id < (*plan)->buffers().size(); ++id)
        ASSERT_TRUE((*executor)->readBuffer(id, contents).ok());
      if (status.ok()) {
        ++ran;
      } else {
        ASSERT_EQ(status.message().find('\n'), std::string::npos) << status.message();
        ++failedToRun;
      }
    }
  }
  // Both outcomes must occur: most flips hit offsets and sizes (rejected), some hit values
  // that do not matter to validity (names, attribute values, padding).
  EXPECT_GT(rejected, original.size());
  EXPECT_GT(ran, 0u);
  std::printf("byte flips: %zu rejected, %zu ran, %zu loaded but failed to run\n", rejected, ran,
              failedToRun);
}

//===----------------------------------------------------------------------===//
// Semantic rules: one corruption per case, on top of smallPlan().
//===----------------------------------------------------------------------===//

struct SemanticCase {
  const char *name;
  std::function<void(PlanBuilder &)> corrupt;
  const char *expected;
};

class SemanticRuleTest : public ::testing::TestWithParam<SemanticCase> {};

TEST_P(SemanticRuleTest, RejectsWithOneLineNamingTheItem) {
  PlanBuilder plan = smallPlan();
  ASSERT_TRUE(load(plan.finish()).ok());
  GetParam().corrupt(plan);
  EXPECT_TRUE(rejectedWith(plan.finish(), GetParam().expected));
}

/// Adds `instr` to program main.
std::function<void(PlanBuilder &)> withInstruction(InstrDesc instr) {
  return [instr](PlanBuilder &plan) { plan.programs[0].add(instr, "model.yaml:7:3"); };
}

const SemanticCase kSemanticCases[] = {
    {"BufferPastArena",
     [](PlanBuilder &p) {
       p.arenas[0].sizeBytes = 4096;
       p.buffers.push_back({"x", DType::F32, {16}, 0, 4096});
     },
     "buffer 3 'x' ends at byte 4160, past arena 'transient' (4096 bytes)"},
    {"BufferOffsetOverflows",
     [](PlanBuilder &p) { p.buffers[1].offset = std::numeric_limits<uint64_t>::max() - 3; },
     "buffer 1 'y' ends past 2^64 bytes"},
    {"BufferShapeOverflows",
     [](PlanBuilder &p) { p.buffers[0].shape = {int64_t(1) << 40, int64_t(1) << 40}; },
     "buffer 0 'x' shape [1099511627776,1099511627776] overflows 64 bits"},
    {"BufferBytesOverflow",
     [](PlanBuilder &p) { p.buffers[0].shape = {int64_t(1) << 62}; },
     "buffer 0 'x' shape [4611686018427387904] of f32 overflows 64-bit byte sizes"},
    {"BufferArenaOutOfRange", [](PlanBuilder &p) { p.buffers[2].arena = 3; },
     "buffer 2 'z' is in arena 3, but the plan has 1 arenas"},
    {"BufferInvalidDType", [](PlanBuilder &p) { p.buffers[0].dtype = static_cast<DType>(9); },
     "buffer 0 'x' has invalid dtype 9"},
    {"BufferNegativeDimension", [](PlanBuilder &p) { p.buffers[1].shape = {2, -3}; },
     "buffer 1 'y' has a negative dimension in shape [2,-3]"},
    {"BufferMisaligned", [](PlanBuilder &p) { p.buffers[1].offset = 66; },
     "buffer 1 'y' offset 66 is not a multiple of its element size (4 bytes)"},
    {"MeshAxisOfSizeZero", [](PlanBuilder &p) { p.mesh.push_back({"dp", 0}); },
     "mesh axis 0 'dp' has size 0 (must be at least 1)"},
    {"DuplicateMeshAxis",
     [](PlanBuilder &p) {
       p.mesh.push_back({"dp", 2});
       p.mesh.push_back({"dp", 4});
     },
     "mesh axis 1 'dp' has the same name as mesh axis 0"},
    {"DuplicateAttribute",
     [](PlanBuilder &p) { p.kernels[1].attrs.push_back(AttrDesc::number("value", 3)); },
     "kernel 1 'fill_y' has two attributes named 'value'"},
    {"InvalidAttributeType",
     [](PlanBuilder &p) { p.kernels[1].attrs[0].type = static_cast<schema::AttrType>(42); },
     "kernel 1 'fill_y' attribute 'value' has invalid type 42"},
    {"EmptyCubinImage", [](PlanBuilder &p) { p.kernels[2].cubins.push_back({"sm_90a", {}}); },
     "kernel 2 'add_0' cubin 0 ('sm_90a') has an empty image"},
    {"DuplicateProgramName", [](PlanBuilder &p) { p.addProgram("main"); },
     "program name 'main' is used twice (programs 0 and 1)"},
    {"LaunchKernelOutOfRange", withInstruction(launchOp(9, {}, {0})),
     "program 'main' instruction 3 (loc: model.yaml:7:3): launch of kernel 9, but the plan has "
     "3 kernels"},
    {"LaunchArgumentOutOfRange", withInstruction(launchOp(2, {0, 77}, {2})),
     "launch argument 1 is buffer 77, but the plan has 3 buffers"},
    {"LaunchNumInputsExceedsArgs",
     [](PlanBuilder &p) { p.programs[0].instructions[2].numInputs = 4; },
     "program 'main' instruction 2 (loc: model.yaml:3:1): launch num_inputs 4 exceeds its 3 "
     "arguments"},
    {"LaunchGridTooManyDims",
     [](PlanBuilder &p) { p.programs[0].instructions[0].grid = {1, 1, 1, 1}; },
     "launch grid has 4 dimensions (at most 3)"},
    {"LaunchBlockDimZero",
     [](PlanBuilder &p) { p.programs[0].instructions[0].block = {128, 0}; },
     "launch block dimension 1 is 0"},
    {"StreamOutOfRange", [](PlanBuilder &p) { p.programs[0].instructions[1].stream = 2; },
     "program 'main' instruction 1 (loc: model.yaml:2:1): stream 2 out of range (program "
     "'main' has 1 streams)"},
    {"RecordEventOutOfRange", withInstruction(recordOp(0)),
     "record of event 0 out of range (program 'main' has 0 events)"},
    {"WaitEventOutOfRange",
     [](PlanBuilder &p) {
       p.programs[0].numEvents = 2;
       p.programs[0].add(waitOp(5));
     },
     "wait of event 5 out of range (program 'main' has 2 events)"},
    {"GemmOperandOutOfRange", withInstruction(gemmOp(0, 1, 40, 2, 2, 3)),
     "gemm operand c is buffer 40, but the plan has 3 buffers"},
    {"GemmNonPositiveSize", withInstruction(gemmOp(0, 1, 2, 2, 0, 3)),
     "gemm sizes must be positive (m=2, n=0, k=3, batch=1)"},
    {"GemmElementCountMismatch", withInstruction(gemmOp(0, 1, 2, 2, 2, 4)),
     "gemm operand a (buffer 0 'x') has 6 elements, expected batch*m*k = 8"},
    {"GemmOutputCountMismatch", withInstruction(gemmOp(0, 1, 2, 2, 2, 3, 1, false, true)),
     "gemm operand c (buffer 2 'z') has 6 elements, expected batch*m*n = 4"},
    {"GemmBatchedBCountMismatch",
     [](PlanBuilder &p) {
       uint32_t a = p.addBuffer("ba", DType::F32, {2, 2, 3});
       uint32_t b = p.addBuffer("bb", DType::F32, {5, 3});
       uint32_t c = p.addBuffer("bc", DType::F32, {2, 2, 2});
       p.programs[0].add(gemmOp(a, b, c, 2, 2, 3, 2));
     },
     "gemm operand b (buffer 4 'bb') has 15 elements, expected k*n = 6 or batch*k*n = 12"},
    {"GemmDtypeMismatch",
     [](PlanBuilder &p) {
       uint32_t b = p.addBuffer("wb", DType::BF16, {3, 3});
       uint32_t c = p.addBuffer("wc", DType::F32, {2, 3});
       p.programs[0].add(gemmOp(0, b, c, 2, 3, 3));
     },
     "gemm operands a and b must share one float dtype and c must have it or be f32 (a f32, b "
     "bf16, c f32)"},
    {"GemmNarrowerResult",
     [](PlanBuilder &p) {
       uint32_t b = p.addBuffer("wb", DType::F32, {3, 3});
       uint32_t c = p.addBuffer("wc", DType::BF16, {2, 3});
       p.programs[0].add(gemmOp(0, b, c, 2, 3, 3));
     },
     "gemm operands a and b must share one float dtype and c must have it or be f32 (a f32, b "
     "f32, c bf16)"},
    {"GemmOutputOverlapsInput",
     [](PlanBuilder &p) {
       uint32_t b = p.addBuffer("sq", DType::F32, {3, 3});
       p.buffers.push_back({"alias", DType::F32, {2, 3}, 0, p.buffers[0].offset + 4});
       p.programs[0].add(gemmOp(0, b, static_cast<uint32_t>(p.buffers.size() - 1), 2, 3, 3));
     },
     "gemm output c (buffer 4 'alias') overlaps input a (buffer 0 'x')"},
    {"CollectiveUnknownAxis",
     [](PlanBuilder &p) {
       p.mesh.push_back({"dp", 1});
       p.mesh.push_back({"ep", 4});
       p.programs[0].add(collectiveOp(schema::CollectiveKind::AllReduce, "tp", 0, 1));
     },
     "collective on mesh axis 'tp', which the mesh does not have (mesh axes: 'dp', 'ep')"},
    {"CollectiveWithoutMesh",
     withInstruction(collectiveOp(schema::CollectiveKind::AllReduce, "dp", 0, 1)),
     "collective on mesh axis 'dp', which the mesh does not have (the plan has no mesh)"},
    {"CollectiveBufferOutOfRange",
     [](PlanBuilder &p) {
       p.mesh.push_back({"dp", 1});
       p.programs[0].add(collectiveOp(schema::CollectiveKind::AllReduce, "dp", 0, 12));
     },
     "collective recv is buffer 12, but the plan has 3 buffers"},
    {"CollectiveAllGatherSizes",
     [](PlanBuilder &p) {
       p.mesh.push_back({"dp", 2});
       p.programs[0].add(collectiveOp(schema::CollectiveKind::AllGather, "dp", 0, 1));
     },
     "AllGather over axis 'dp' of size 2 needs recv elements == 2 * send elements (send "
     "buffer 0 'x' has 6, recv buffer 1 'y' has 6)"},
    {"CollectiveInvalidKind",
     [](PlanBuilder &p) {
       p.mesh.push_back({"dp", 1});
       p.programs[0].add(
           collectiveOp(static_cast<schema::CollectiveKind>(9), "dp", 0, 1));
     },
     "collective has invalid kind 9"},
    {"UnknownOperationType",
     [](PlanBuilder &p) {
       InstrDesc instr = recordOp(0);
       instr.rawOpType = 9;
       p.programs[0].add(instr, "model.yaml:9:9");
     },
     "program 'main' instruction 3 (loc: model.yaml:9:9): unknown operation type 9"},
    {"MissingOperation",
     [](PlanBuilder &p) {
       InstrDesc instr = recordOp(0);
       instr.rawOpType = 0; // NONE
       p.programs[0].add(instr);
     },
     "program 'main' instruction 3: instruction has no operation"},
};

INSTANTIATE_TEST_SUITE_P(Rules, SemanticRuleTest, ::testing::ValuesIn(kSemanticCases),
                         [](const ::testing::TestParamInfo<SemanticCase> &info) {
                           return std::string(info.param.name);
                         });

TEST(PlanLoaderTest, AcceptsKernelsWithoutCubinsAndUnusedEvents) {
  // Cubins are the CUDA backend's business; the loader only needs a kind. Declared events and
  // streams need not all be used.
  PlanBuilder plan = smallPlan();
  plan.programs[0].numEvents = 4;
  plan.programs[0].numStreams = 3;
  plan.programs[0].add(recordOp(3, 2)).add(waitOp(3, 0));
  auto result = load(plan.finish());
  ASSERT_TRUE(result.ok()) << result.status().toString();
  EXPECT_EQ((*result)->numStreams(0), 3u);
}

//===----------------------------------------------------------------------===//
// Files on disk
//===----------------------------------------------------------------------===//

class PlanFileTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("fusion_rt_plan_file_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string &name, const std::vector<uint8_t> &bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(PlanFileTest, LoadsPlanFromDisk) {
  std::string path = write("ok.fplan", smallPlan().finish());
  auto plan = Plan::loadFile(path);
  ASSERT_TRUE(plan.ok()) << plan.status().toString();
  EXPECT_EQ((*plan)->displayName(), path);
}

TEST_F(PlanFileTest, MissingFileIsOneLineNamingThePath) {
  std::string path = (dir_ / "missing.fplan").string();
  auto plan = Plan::loadFile(path);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), path + ": cannot open plan: No such file or directory");
  EXPECT_EQ(plan.status().code(), StatusCode::kNotFound);
}

TEST_F(PlanFileTest, EmptyFileAndDirectoryAreRejected) {
  std::string empty = write("empty.fplan", {});
  auto plan = Plan::loadFile(empty);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(), empty + ": empty file, not a FusionLLM plan");

  auto directory = Plan::loadFile(dir_.string());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().message(), dir_.string() + ": is a directory, not a plan file");
}

} // namespace
