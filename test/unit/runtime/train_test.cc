//===- train_test.cc - safetensors, checkpoints, buffer roles and config --===//
//
// The library side of fusion-run --train: the safetensors writer against the reference
// implementation's own byte-exact test vectors and the reader against damaged files; the
// checkpoint directory protocol (atomic rename, `latest`, keep_last, leftovers) and its
// verified load (every tensor, dtype, shape, the config hash, trainer.json); and the plan
// loader's rules for buffer roles and Plan.config.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"
#include "fusion/rt/safetensors.h"
#include "fusion/rt/train.h"
#include "test/unit/runtime/test_plan_builder.h"
#include "test/unit/runtime/train_test_plans.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::BufferRole;
using schema::DType;
namespace fs = std::filesystem;
namespace st = fusion::rt::safetensors;

namespace {

std::vector<uint8_t> floatBytes(std::vector<float> values) {
  std::vector<uint8_t> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string readText(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeBytes(const fs::path &path, const std::vector<uint8_t> &bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

void writeText(const fs::path &path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// A file of a raw header (padded to 8) followed by `dataBytes` zero bytes.
std::vector<uint8_t> rawFile(std::string header, size_t dataBytes) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + header.size() + dataBytes, 0);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("fusion_train_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Opens `bytes` written as a file; the error message when it fails ("" when it opens).
  std::string openError(const std::vector<uint8_t> &bytes) {
    fs::path path = dir_ / "t.safetensors";
    writeBytes(path, bytes);
    auto file = st::File::open(path.string());
    return file.ok() ? "" : file.status().message();
  }

  fs::path dir_;
};

//===----------------------------------------------------------------------===//
// safetensors
//===----------------------------------------------------------------------===//

TEST(SafetensorsTest, MatchesTheReferenceWritersBytes) {
  // huggingface/safetensors tensor.rs test_serialization: "attn.0" F32 [1,2,3] = 0..5.
  std::vector<uint8_t> expected = {
      64, 0,  0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48,
      34, 58, 123, 34,  100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,
      44, 34, 115, 104, 97,  112, 101, 34,  58,  91,  49,  44,  50,  44,  51,  93,
      44, 34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115, 34,  58,
      91, 48, 44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
      0,  0,  0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64};
  auto bytes = st::encode({{"attn.0", "F32", {1, 2, 3}, floatBytes({0, 1, 2, 3, 4, 5})}});
  ASSERT_TRUE(bytes.ok()) << bytes.status().toString();
  EXPECT_EQ(*bytes, expected);

  // test_serialization_forced_alignement: a shorter name, padded with spaces to 8 bytes.
  std::vector<uint8_t> aligned = {
      72,  0,   0,   0,   0,   0,   0,   0,   123, 34, 97, 116, 116, 110, 48,  34,  58,  123,
      34,  100, 116, 121, 112, 101, 34,  58,  34,  70, 51, 50,  34,  44,  34,  115, 104, 97,
      112, 101, 34,  58,  91,  49,  44,  49,  44,  50, 44, 51,  93,  44,  34,  100, 97,  116,
      97,  95,  111, 102, 102, 115, 101, 116, 115, 34, 58, 91,  48,  44,  50,  52,  93,  125,
      125, 32,  32,  32,  32,  32,  32,  32,  0,   0,  0,  0,   0,   0,   128, 63,  0,   0,
      0,   64,  0,   0,   64,  64,  0,   0,   128, 64, 0,  0,   160, 64};
  bytes = st::encode({{"attn0", "F32", {1, 1, 2, 3}, floatBytes({0, 1, 2, 3, 4, 5})}});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, aligned);

  // test_empty: no tensors, then only metadata.
  bytes = st::encode({});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes,
            (std::vector<uint8_t>{8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}));
  bytes = st::encode({}, {{"framework", "pt"}});
  ASSERT_TRUE(bytes.ok());
  std::vector<uint8_t> metadataOnly = {40,  0,   0,   0,   0,   0,   0,   0,   123, 34,  95,  95,
                                       109, 101, 116, 97,  100, 97,  116, 97,  95,  95,  34,  58,
                                       123, 34,  102, 114, 97,  109, 101, 119, 111, 114, 107, 34,
                                       58,  34,  112, 116, 34,  125, 125, 32,  32,  32,  32,  32};
  EXPECT_EQ(*bytes, metadataOnly);
}

TEST_F(TempDirTest, SafetensorsRoundTrip) {
  std::vector<uint8_t> i64(2 * 8);
  int64_t values[2] = {-5, int64_t(1) << 40};
  std::memcpy(i64.data(), values, sizeof(values));
  std::vector<st::Tensor> tensors = {
      {"z.last", "F32", {2, 2}, floatBytes({1.5f, -2, 3, 4})},
      {"m.bf16", "BF16", {3}, {1, 2, 3, 4, 5, 6}},
      {"a.scalar", "F32", {}, floatBytes({7})},
      {"counts", "I64", {2}, i64},
      {"empty", "F32", {0, 3}, {}},
      {"name with \"quotes\" and \\ and \xc3\xa9", "I32", {1}, {9, 0, 0, 0}},
  };
  auto bytes = st::encode(tensors, {{"format", "pt"}, {"step", "12"}});
  ASSERT_TRUE(bytes.ok()) << bytes.status().toString();
  uint64_t headerLength;
  std::memcpy(&headerLength, bytes->data(), 8);
  EXPECT_EQ((8 + headerLength) % 8, 0u) << "data starts 8-byte aligned";

  fs::path path = dir_ / "round.safetensors";
  writeBytes(path, *bytes);
  auto file = st::File::open(path.string());
  ASSERT_TRUE(file.ok()) << file.status().toString();
  EXPECT_EQ((*file)->metadata().at("step"), "12");
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  // Header and data in the reference order: element size descending, then bytewise name;
  // every tensor aligned to its element size.
  std::vector<std::string> order;
  for (const st::TensorInfo &info : (*file)->tensors()) {
    order.push_back(info.name);
    EXPECT_EQ((8 + headerLength + info.begin) % st::dtypeSize(info.dtype), 0u) << info.name;
  }
  EXPECT_EQ(order, (std::vector<std::string>{"counts", "a.scalar", "empty",
                                             "name with \"quotes\" and \\ and \xc3\xa9", "z.last",
                                             "m.bf16"}));
  for (size_t i = 1; i < (*file)->tensors().size(); ++i)
    EXPECT_EQ((*file)->tensors()[i - 1].end, (*file)->tensors()[i].begin);
  for (const st::Tensor &tensor : tensors) {
    const st::TensorInfo *info = (*file)->find(tensor.name);
    ASSERT_NE(info, nullptr) << tensor.name;
    EXPECT_EQ(info->dtype, tensor.dtype);
    EXPECT_EQ(info->shape, tensor.shape);
    std::vector<uint8_t> data;
    ASSERT_TRUE((*file)->read(*info, data).ok());
    EXPECT_EQ(data, tensor.data) << tensor.name;
  }
}

TEST_F(TempDirTest, SafetensorsWriterRejectsBadTensors) {
  EXPECT_FALSE(st::encode({{"x", "F32", {2}, floatBytes({1})}}).ok()) << "wrong byte count";
  EXPECT_FALSE(st::encode({{"x", "Q7", {1}, {0}}}).ok()) << "unknown dtype";
  EXPECT_FALSE(st::encode({{"x", "F32", {-1}, {}}}).ok()) << "negative dim";
  EXPECT_FALSE(st::encode({{"__metadata__", "F32", {}, floatBytes({1})}}).ok());
  EXPECT_FALSE(
      st::encode({{"x", "F32", {}, floatBytes({1})}, {"x", "F32", {}, floatBytes({1})}}).ok());
}

TEST_F(TempDirTest, SafetensorsReaderRejectsCorruptFiles) {
  auto good =
      st::encode({{"a", "F32", {2}, floatBytes({1, 2})}, {"b", "F32", {1}, floatBytes({3})}});
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(openError(*good), "");

  struct Case {
    const char *what;
    std::vector<uint8_t> bytes;
    std::string expected;
  };
  std::vector<uint8_t> truncated(good->begin(), good->end() - 3);
  std::vector<uint8_t> trailing = *good;
  trailing.push_back(0);
  std::vector<uint8_t> hugeHeader = *good;
  hugeHeader[4] = 0x10; // N = 2^36 + ...
  std::vector<uint8_t> headerPastEnd = *good;
  headerPastEnd[0] = 0xff;
  Case cases[] = {
      {"empty file", {}, "truncated safetensors file (0 bytes"},
      {"short file", {1, 0, 0}, "truncated safetensors file (3 bytes"},
      {"truncated data", truncated,
       "tensor \"b\": data_offsets [8, 12] run past the data (9 bytes"},
      {"trailing bytes", trailing, "the tensors cover 12 bytes of data, but the file has 13"},
      {"header length over the limit", hugeHeader, "exceeds the 100 MB limit"},
      {"header past the end", headerPastEnd, "the header claims 255 bytes"},
      {"bad header JSON", rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],}", 8),
       "bad safetensors header: invalid JSON at byte"},
      {"header not an object", rawFile("[1]", 0), "does not start with '{'"},
      {"offsets out of range",
       rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8),
       "tensor \"a\": data_offsets [0, 800] run past the data (8 bytes"},
      {"offsets reversed",
       rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8),
       "end before they begin"},
      {"size mismatch",
       rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
       "tensor \"a\": F32[3] needs 12 bytes, but data_offsets [0, 8] hold 8"},
      {"hole", rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
       "leave a hole after byte 0"},
      {"overlap",
       rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8),
       "overlap another tensor"},
      {"unknown dtype",
       rawFile("{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
       "unknown dtype \"F31\""},
      {"missing dtype", rawFile("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
       "missing or non-string 'dtype'"},
      {"negative dim",
       rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
       "shape entries must be non-negative integers"},
      {"duplicate name",
       rawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8),
       "duplicate member \"a\""},
      {"metadata not strings", rawFile("{\"__metadata__\":{\"step\":3}}", 0),
       "'__metadata__' entry \"step\" is a number"},
  };
  for (const Case &c : cases) {
    std::string error = openError(c.bytes);
    EXPECT_NE(error.find(c.expected), std::string::npos)
        << c.what << ": got '" << error << "', expected '" << c.expected << "'";
    EXPECT_EQ(error.find('\n'), std::string::npos) << c.what;
  }
  EXPECT_NE(st::File::open((dir_ / "missing.safetensors").string())
                .status()
                .message()
                .find("cannot open"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Plan: roles and config
//===----------------------------------------------------------------------===//

TEST(PlanRolesTest, RolesAndConfigAreVerifiedAndExposed) {
  TrainPlanOptions options;
  auto plan = Plan::loadBytes(tinyTrainingPlan(options), "tiny.fplan");
  ASSERT_TRUE(plan.ok()) << plan.status().toString();
  auto id = findUniqueBuffer(**plan, "w.momentum");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ((*plan)->buffers()[*id].role, BufferRole::OptimizerState);
  EXPECT_EQ((*plan)->buffers()[*findUniqueBuffer(**plan, "w")].role, BufferRole::Weight);
  EXPECT_EQ((*plan)->buffers()[*findUniqueBuffer(**plan, "tokens")].role, BufferRole::Activation);
  EXPECT_EQ(bufferRoleName(BufferRole::ModelBuffer), "model_buffer");
  const ConfigEntry *steps = (*plan)->findConfig("total_steps");
  ASSERT_NE(steps, nullptr);
  EXPECT_EQ(steps->type, schema::AttrType::Int);
  EXPECT_EQ(steps->i, 20);
  EXPECT_EQ((*plan)->findConfig("data_format")->s, "synthetic");
  EXPECT_EQ((*plan)->findConfig("nope"), nullptr);
  EXPECT_EQ((*plan)->config().size(), tinyTrainingConfig(options).size());
  auto json = (*plan)->toJson();
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find("\"role\": \"OptimizerState\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"config\": ["), std::string::npos);
}

TEST(PlanRolesTest, LoaderRejectsBadRolesAndConfig) {
  auto expectRejected = [](const PlanBuilder &builder, const std::string &expected) {
    auto plan = Plan::loadBytes(builder.finish(), "p.fplan");
    ASSERT_FALSE(plan.ok()) << expected;
    EXPECT_NE(plan.status().message().find(expected), std::string::npos) << plan.status().message();
    EXPECT_EQ(plan.status().message().rfind("p.fplan: ", 0), 0u);
  };
  {
    PlanBuilder builder;
    builder.addBuffer("w", DType::F32, {2}, 0, BufferRole::Weight); // arena 0: transient
    expectRejected(builder, "buffer 0 'w' has role weight but is in arena 'transient', which is "
                            "not persistent");
  }
  {
    PlanBuilder builder;
    uint32_t arena = builder.addArena("persistent", schema::ArenaClass::Persistent);
    builder.addBuffer("w", DType::F32, {2}, arena, BufferRole::Weight);
    builder.addBuffer("w", DType::F32, {2}, arena, BufferRole::ModelBuffer);
    expectRejected(builder, "buffer 1 'w' (role model_buffer) has the same name as buffer 0");
    // The same name in the other file is fine.
    builder.buffers[1].role = BufferRole::OptimizerState;
    EXPECT_TRUE(Plan::loadBytes(builder.finish(), "p.fplan").ok());
    builder.buffers[1].role = static_cast<BufferRole>(9);
    expectRejected(builder, "buffer 1 'w' has invalid role 9");
    builder.buffers[1].role = BufferRole::Weight;
    builder.buffers[1].name = "__metadata__";
    expectRejected(builder, "uses the name reserved by safetensors");
  }
  {
    PlanBuilder builder;
    builder.config = {AttrDesc::integer("seed", 1), AttrDesc::number("seed", 2)};
    expectRejected(builder, "config entry 1 'seed' has the same name as config entry 0");
    builder.config = {AttrDesc::integer("", 1)};
    expectRejected(builder, "config entry 0 '' has an empty name");
    builder.config = {AttrDesc::floatList("lrs", {1.5, 2.5}), AttrDesc::intList("dims", {3})};
    auto plan = Plan::loadBytes(builder.finish(), "p.fplan");
    ASSERT_TRUE(plan.ok()) << plan.status().toString();
    EXPECT_EQ((*plan)->findConfig("lrs")->floats, (std::vector<double>{1.5, 2.5}));
    EXPECT_EQ((*plan)->findConfig("dims")->ints, (std::vector<int64_t>{3}));
  }
}

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

class CheckpointTest : public TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    auto plan = Plan::loadBytes(tinyTrainingPlan(TrainPlanOptions()), "tiny.fplan");
    ASSERT_TRUE(plan.ok()) << plan.status().toString();
    plan_ = *plan;
    executor_ = newExecutor();
  }

  std::unique_ptr<Executor> newExecutor() {
    auto executor = createExecutor(plan_, BackendKind::kCpu);
    EXPECT_TRUE(executor.ok());
    EXPECT_TRUE((*executor)->run("init").ok());
    return std::move(*executor);
  }

  train::TrainerState state(uint64_t step) {
    train::TrainerState s;
    s.step = step;
    s.tokensSeen = step * 12;
    s.skippedSteps = 1;
    s.data = {"synthetic", "mixture", 7, std::nullopt};
    s.seed = 7;
    s.bestValLoss = 0.25;
    s.configSha256 = sha();
    s.configText = "model:\n  name: \"tiny\"\n";
    return s;
  }

  std::string sha() const { return plan_->findConfig("config_sha256")->s; }

  std::vector<uint8_t> buffer(Executor &executor, const char *name) {
    std::vector<uint8_t> bytes;
    EXPECT_TRUE(executor.readBufferByName(name, bytes).ok());
    return bytes;
  }

  void setBuffer(const char *name, std::vector<float> values) {
    auto id = findUniqueBuffer(*plan_, name);
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(executor_->writeBuffer(*id, values.data(), values.size() * 4).ok());
  }

  std::shared_ptr<const Plan> plan_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(CheckpointTest, TrainerJsonRoundTripAndErrors) {
  train::TrainerState s = state(12);
  s.data = {"fusion_shards", "sequential", 1234, data::SequentialPosition{3, 4096}};
  std::string text = train::encodeTrainerJson(s);
  auto parsed = train::parseTrainerJson(text, "t.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().toString();
  EXPECT_EQ(train::encodeTrainerJson(*parsed), text);
  EXPECT_EQ(parsed->data.position->pos, 4096u);
  EXPECT_EQ(parsed->configText, s.configText);

  auto replace = [&](const std::string &from, const std::string &to) {
    std::string copy = text;
    size_t at = copy.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return copy.replace(at, from.size(), to);
  };
  struct Case {
    std::string text, expected;
  } cases[] = {
      {replace("\"format_version\": 1", "\"format_version\": 2"),
       "t.json: format_version 2, this fusion-run reads format_version 1"},
      {replace("\"step\": 12,", ""), "t.json: missing member 'step'"},
      {replace("\"tokens_seen\": 144", "\"tokens_seen\": -1"),
       "member 'tokens_seen' must be a non-negative integer, got -1"},
      {replace("\"config_sha256\": ", "\"config_sha256\": 5, \"x\": "),
       "member 'config_sha256' must be a string, got number"},
      {text.substr(0, text.size() / 2), "t.json: invalid JSON at byte"},
      {replace("\"skipped_steps\": 1", "\"skipped_steps\": 13"), "inconsistent step counts"},
  };
  for (const Case &c : cases) {
    auto result = train::parseTrainerJson(c.text, "t.json");
    ASSERT_FALSE(result.ok()) << c.expected;
    EXPECT_NE(result.status().message().find(c.expected), std::string::npos)
        << result.status().message();
  }
}

TEST_F(CheckpointTest, SaveLoadRoundTrip) {
  int64_t N = 2 * 2 * 4;
  std::vector<float> w(N), m(N);
  for (int64_t i = 0; i < N; ++i) {
    w[i] = 0.1f * i - 0.7f;
    m[i] = -0.03f * i;
  }
  setBuffer("w", w);
  setBuffer("w.momentum", m);
  setBuffer("applied_steps", {3});
  std::string saveDir = (dir_ / "ckpt").string();
  auto saved = train::saveCheckpoint(*executor_, state(3), saveDir, 5);
  ASSERT_TRUE(saved.ok()) << saved.status().toString();
  EXPECT_EQ(*saved, (dir_ / "ckpt" / "step_00000003").string());
  EXPECT_EQ(readText(dir_ / "ckpt" / "latest"), "step_00000003\n");
  EXPECT_FALSE(fs::exists(dir_ / "ckpt" / "step_00000003.tmp"));

  // What is in which file: weights + model buffers, optimizer state; no activations.
  auto model = st::File::open((fs::path(*saved) / "model.safetensors").string());
  auto optim = st::File::open((fs::path(*saved) / "optim.safetensors").string());
  ASSERT_TRUE(model.ok() && optim.ok());
  ASSERT_EQ((*model)->tensors().size(), 2u);
  EXPECT_EQ((*model)->tensors()[0].name, "applied_steps");
  EXPECT_EQ((*model)->tensors()[1].name, "w");
  EXPECT_EQ((*model)->tensors()[1].dtype, "F32");
  EXPECT_EQ((*model)->tensors()[1].shape, (std::vector<int64_t>{N}));
  ASSERT_EQ((*optim)->tensors().size(), 1u);
  EXPECT_EQ((*optim)->tensors()[0].name, "w.momentum");
  EXPECT_EQ((*model)->metadata().at("format"), "pt");
  std::vector<uint8_t> bytes;
  ASSERT_TRUE((*model)->read((*model)->tensors()[1], bytes).ok());
  EXPECT_EQ(bytes, floatBytes(w));

  auto fresh = newExecutor();
  EXPECT_NE(buffer(*fresh, "w"), floatBytes(w));
  train::LoadOptions load;
  load.configSha256 = sha();
  auto loaded = train::loadCheckpoint(*fresh, *saved, load);
  ASSERT_TRUE(loaded.ok()) << loaded.status().toString();
  EXPECT_EQ(loaded->step, 3u);
  EXPECT_EQ(loaded->tokensSeen, 36u);
  EXPECT_EQ(loaded->bestValLoss, 0.25);
  EXPECT_EQ(buffer(*fresh, "w"), floatBytes(w));
  EXPECT_EQ(buffer(*fresh, "w.momentum"), floatBytes(m));
  EXPECT_EQ(buffer(*fresh, "applied_steps"), floatBytes({3}));
}

TEST_F(CheckpointTest, KeepLastLatestAndLeftovers) {
  std::string saveDir = (dir_ / "ckpt").string();
  fs::create_directories(dir_ / "ckpt" / "step_00000002.tmp");
  writeText(dir_ / "ckpt" / "step_00000002.tmp" / "model.safetensors", "torn");
  fs::create_directories(dir_ / "ckpt" / "unrelated");
  for (uint64_t step = 1; step <= 5; ++step) {
    auto saved = train::saveCheckpoint(*executor_, state(step), saveDir, 3);
    ASSERT_TRUE(saved.ok()) << saved.status().toString();
    EXPECT_EQ(readText(dir_ / "ckpt" / "latest"), train::checkpointName(step) + "\n");
  }
  auto all = train::listCheckpoints(saveDir);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].first, 3u);
  EXPECT_EQ(all[2].first, 5u);
  EXPECT_FALSE(fs::exists(dir_ / "ckpt" / "step_00000002.tmp")) << "leftover removed";
  EXPECT_FALSE(fs::exists(dir_ / "ckpt" / "latest.tmp"));
  EXPECT_TRUE(fs::exists(dir_ / "ckpt" / "unrelated")) << "other files are left alone";

  // Re-saving an existing step replaces it; keep_last 0 keeps everything.
  auto again = train::saveCheckpoint(*executor_, state(4), saveDir, 0);
  ASSERT_TRUE(again.ok()) << again.status().toString();
  EXPECT_EQ(train::listCheckpoints(saveDir).size(), 3u);
  EXPECT_EQ(readText(dir_ / "ckpt" / "latest"), "step_00000004\n");
  EXPECT_FALSE(fs::exists(dir_ / "ckpt" / "step_00000004.old"));

  auto resolved = train::resolveCheckpoint("latest", saveDir);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, (dir_ / "ckpt" / "step_00000004").string());
  resolved = train::resolveCheckpoint(saveDir, "elsewhere");
  ASSERT_TRUE(resolved.ok()) << "a save dir is followed through its latest file";
  EXPECT_EQ(*resolved, (dir_ / "ckpt" / "step_00000004").string());
  auto missing = train::resolveCheckpoint("latest", (dir_ / "none").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no checkpoint has been completed"), std::string::npos);
}

TEST_F(CheckpointTest, LoadVerifiesEverythingBeforeWriting) {
  std::string saveDir = (dir_ / "ckpt").string();
  auto saved = train::saveCheckpoint(*executor_, state(2), saveDir, 0);
  ASSERT_TRUE(saved.ok());
  fs::path good = *saved;
  int64_t N = 16;

  // Each case: a copy of the good checkpoint with one file replaced.
  struct Case {
    const char *what;
    const char *file;
    std::vector<uint8_t> bytes;
    std::string expected;
  };
  auto encode = [](std::vector<st::Tensor> tensors) { return *st::encode(tensors); };
  std::vector<float> zeros(N, 0.0f);
  std::vector<uint8_t> truncated;
  {
    std::ifstream in(good / "model.safetensors", std::ios::binary);
    truncated.assign(std::istreambuf_iterator<char>(in), {});
    truncated.resize(truncated.size() - 5);
  }
  Case cases[] = {
      {"missing tensor", "model.safetensors",
       encode({{"applied_steps", "F32", {1}, floatBytes({0})}}),
       "model.safetensors: missing tensor 'w' (buffer 0, weight f32[16])"},
      {"wrong shape", "model.safetensors",
       encode({{"applied_steps", "F32", {1}, floatBytes({0})},
               {"w", "F32", {4, 4}, floatBytes(zeros)}}),
       "model.safetensors: tensor 'w' (buffer 0, weight f32[16]) has shape [4,4], expected [16]"},
      {"wrong dtype", "optim.safetensors",
       encode({{"w.momentum", "I32", {N}, std::vector<uint8_t>(N * 4)}}),
       "optim.safetensors: tensor 'w.momentum' (buffer 1, optimizer_state f32[16]) is stored as "
       "I32, expected F32"},
      {"extra tensor", "optim.safetensors",
       encode(
           {{"w.momentum", "F32", {N}, floatBytes(zeros)}, {"w.v", "F32", {1}, floatBytes({0})}}),
       "optim.safetensors: tensor 'w.v' is not an optimizer-state buffer of the plan"},
      {"truncated file", "model.safetensors", truncated, "run past the data"},
      {"bad header", "model.safetensors", rawFile("{\"w\":", 0), "bad safetensors header"},
  };
  auto fresh = newExecutor();
  std::vector<uint8_t> before = buffer(*fresh, "w");
  train::LoadOptions load;
  load.configSha256 = sha();
  for (const Case &c : cases) {
    fs::path copy = dir_ / "copy";
    fs::remove_all(copy);
    fs::copy(good, copy);
    writeBytes(copy / c.file, c.bytes);
    auto loaded = train::loadCheckpoint(*fresh, copy.string(), load);
    ASSERT_FALSE(loaded.ok()) << c.what;
    EXPECT_NE(loaded.status().message().find(c.expected), std::string::npos)
        << c.what << ": " << loaded.status().message();
    EXPECT_EQ(buffer(*fresh, "w"), before) << c.what << ": nothing written on failure";
  }

  // Config hash: an error unless forced; missing trainer.json; world size.
  train::LoadOptions other = load;
  other.configSha256 = "0000";
  auto mismatch = train::loadCheckpoint(*fresh, good.string(), other);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("config_sha256"), std::string::npos);
  EXPECT_NE(mismatch.status().message().find("--force-resume"), std::string::npos);
  other.force = true;
  std::vector<std::string> warnings;
  EXPECT_TRUE(train::loadCheckpoint(*fresh, good.string(), other, &warnings).ok());
  EXPECT_EQ(warnings.size(), 1u);

  fs::path copy = dir_ / "copy2";
  fs::copy(good, copy);
  fs::remove(copy / "trainer.json");
  auto noTrainer = train::loadCheckpoint(*fresh, copy.string(), load);
  ASSERT_FALSE(noTrainer.ok());
  EXPECT_NE(noTrainer.status().message().find("trainer.json: no such file"), std::string::npos);
  train::TrainerState twoRanks = state(2);
  twoRanks.worldSize = 2;
  writeText(copy / "trainer.json", train::encodeTrainerJson(twoRanks));
  // A resume (worldSize given) must run on the checkpoint's rank count; loading the
  // weights alone (no worldSize) takes any.
  train::LoadOptions resume = load;
  resume.worldSize = 1;
  auto ranks = train::loadCheckpoint(*fresh, copy.string(), resume);
  ASSERT_FALSE(ranks.ok());
  EXPECT_NE(ranks.status().message().find(
                "the checkpoint was trained on 2 rank(s), this run has 1, so the data stream "
                "differs; run with --nproc 2"),
            std::string::npos);
  EXPECT_TRUE(train::loadCheckpoint(*fresh, copy.string(), load).ok());
}

} // namespace
