//===- train_tool_test.cc - fusion-run --train end to end -----------------===//
//
// Runs the real fusion-run binary on the tiny training plan (train_test_plans.h): the
// metrics and progress it writes, the checkpoints, resume that is bitwise identical to an
// uninterrupted run, SIGINT/SIGTERM (finish the step, save, exit 130/143), skipped steps and
// the abort after too many in a row, and a kill -9 in the middle of writing a checkpoint
// (the test hook FUSION_TEST_KILL_DURING_CHECKPOINT), after which `latest` still names a
// loadable checkpoint.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/data.h"
#include "fusion/rt/safetensors.h"
#include "runtime/src/train/json.h"
#include "test/unit/runtime/tool_runner.h"
#include "test/unit/runtime/train_test_plans.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace fusion::rt;
using namespace fusion::rt::testing;
namespace fs = std::filesystem;
namespace json = fusion::rt::json;

namespace {

std::string readText(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The JSON lines of a metrics file.
std::vector<json::Value> readMetrics(const fs::path &path) {
  std::vector<json::Value> lines;
  std::string text = readText(path);
  text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1); // partial line
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto value = json::parse(line);
    EXPECT_TRUE(value.ok()) << line;
    if (value.ok())
      lines.push_back(std::move(*value));
  }
  return lines;
}

std::vector<json::Value> linesOfType(const std::vector<json::Value> &lines, const char *type) {
  std::vector<json::Value> out;
  for (const json::Value &line : lines)
    if (line.find("type") && line.find("type")->text == type)
      out.push_back(line);
  return out;
}

/// A metrics line without its timing members, as text (for exact comparisons).
std::string withoutTimings(const json::Value &line) {
  std::string out;
  for (const auto &[name, value] : line.members) {
    if (name == "tokens_per_s" || name == "elapsed_s")
      continue;
    out += name + "=" + (value.kind == json::Value::Kind::kBool ? value.kindName() : value.text) +
           (value.kind == json::Value::Kind::kNull ? "null" : "") + ";";
  }
  return out;
}

double number(const json::Value &line, const char *name) {
  const json::Value *value = line.find(name);
  if (!value || !value->asDouble())
    return NAN;
  return *value->asDouble();
}

class TrainToolTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("fusion_train_tool_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fusionRun_ = fs::read_symlink("/proc/self/exe").parent_path() / "fusion-run";
    ASSERT_TRUE(fs::exists(fusionRun_)) << fusionRun_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string writePlan(const std::string &name, const std::vector<uint8_t> &bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char *>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  std::string plan(TrainPlanOptions options = {}) {
    return writePlan("tiny" + std::to_string(++plans_) + ".fplan", tinyTrainingPlan(options));
  }

  RunResult run(const std::string &args) {
    return runTool(fusionRun_.string(), args, (dir_ / "stderr.txt").string());
  }

  /// Starts fusion-run in the background with stdout/stderr to files; returns its pid.
  pid_t spawn(const std::vector<std::string> &args) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int out = ::open((dir_ / "bg.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open((dir_ / "bg.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char *> argv;
      std::string binary = fusionRun_.string();
      argv.push_back(binary.data());
      std::vector<std::string> copy = args;
      for (std::string &arg : copy)
        argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    return pid;
  }

  std::string path(const std::string &name) const { return (dir_ / name).string(); }

  fs::path dir_;
  fs::path fusionRun_;
  int plans_ = 0;
};

//===----------------------------------------------------------------------===//

TEST_F(TrainToolTest, HelpDescribesTheTrainingFlags) {
  RunResult result = run("--help");
  EXPECT_EQ(result.exitCode, 0);
  for (const char *flag :
       {"--train", "--steps", "--val-data", "--eval-interval", "--eval-batches", "--save-dir",
        "--save-interval", "--keep-last", "--metrics", "--resume", "--force-resume",
        "--max-consecutive-skips", "--log-interval", "130 / 143"})
    EXPECT_NE(result.out.find(flag), std::string::npos) << flag;
}

TEST_F(TrainToolTest, TrainsWithTheConfigsSettings) {
  std::string p = plan();
  RunResult result =
      run(p + " --train --save-dir " + path("ckpt") + " --metrics " + path("m.jsonl"));
  ASSERT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.out.find("step = 20\n"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("checkpoint = " + path("ckpt/step_00000020") + "\n"), std::string::npos)
      << result.out;
  // stderr is not a terminal: a progress line every log_interval (5) steps.
  EXPECT_NE(result.err.find("step 5/20 | loss "), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("step 20/20 | loss "), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("step 3/20"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find('\r'), std::string::npos);

  std::vector<json::Value> lines = readMetrics(path("m.jsonl"));
  std::vector<json::Value> train = linesOfType(lines, "train");
  std::vector<json::Value> eval = linesOfType(lines, "eval");
  ASSERT_EQ(train.size(), 20u);
  ASSERT_EQ(eval.size(), 4u);
  for (size_t i = 0; i < train.size(); ++i) {
    const json::Value &line = train[i];
    EXPECT_EQ(number(line, "step"), i + 1.0);
    EXPECT_EQ(line.find("skipped")->kindName(), std::string("false"));
    EXPECT_EQ(number(line, "skipped_total"), 0);
    EXPECT_EQ(number(line, "tokens"), 12.0 * (i + 1)) << "n_acc x B x T tokens per step";
    EXPECT_EQ(number(line, "lr_factor"), 1);
    EXPECT_GE(number(line, "tokens_per_s"), 0);
    EXPECT_GE(number(line, "elapsed_s"), 0);
    // inv_counts[0] is 1/N_0 over the whole step: both micro-batches, 2 x 2 x 3 targets.
    double loss = number(line, "loss"), main = number(line, "main_loss");
    EXPECT_NEAR(main, loss / 12, 1e-6 * loss) << line.text;
    EXPECT_EQ(number(line, "grad_norm"), loss);
  }
  // The first loss from the data stream, recomputed here: micro-batch a of step 0 is
  // BatchCoord{0, a, rank 0 of 1, n_acc 2}, stacked a-major.
  data::DataSpec spec;
  spec.seed = 7;
  auto source = data::openSource(spec, 64);
  ASSERT_TRUE(source.ok());
  double expected = 0;
  for (uint64_t a = 0; a < 2; ++a) {
    data::BatchCoord coord;
    coord.micro = a;
    coord.accumulation = 2;
    auto batch = data::makeBatch(**source, spec, {2, 3, 1}, coord);
    ASSERT_TRUE(batch.ok());
    for (size_t j = 0; j < batch->tokens.size(); ++j) {
      size_t i = a * 8 + j;
      float w = static_cast<float>(0.5 + 0.01 * i);
      float x = static_cast<float>(batch->tokens[j] * (1.0 / 64));
      float d = w - x;
      expected += static_cast<double>(d * d);
    }
  }
  EXPECT_NEAR(number(train[0], "loss"), expected, 1e-5 * expected);

  double best = INFINITY;
  for (size_t i = 0; i < eval.size(); ++i) {
    EXPECT_EQ(number(eval[i], "step"), 5.0 * (i + 1));
    double val = number(eval[i], "val_loss");
    EXPECT_TRUE(std::isfinite(val) && val > 0) << val;
    EXPECT_NEAR(number(eval[i], "val_ppl"), std::exp(val), 1e-9 * std::exp(val));
    EXPECT_EQ(number(eval[i], "val_tokens"), 12) << "2 batches x B 2 x T 3";
    best = std::min(best, val);
  }

  // Checkpoints at 10 and 20, `latest`, trainer.json.
  EXPECT_TRUE(fs::exists(dir_ / "ckpt/step_00000010/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "ckpt/step_00000020/optim.safetensors"));
  EXPECT_EQ(readText(dir_ / "ckpt/latest"), "step_00000020\n");
  auto trainer = json::parse(readText(dir_ / "ckpt/step_00000020/trainer.json"));
  ASSERT_TRUE(trainer.ok());
  EXPECT_EQ(number(*trainer, "step"), 20);
  EXPECT_EQ(number(*trainer, "tokens_seen"), 240);
  EXPECT_EQ(number(*trainer, "world_size"), 1);
  EXPECT_EQ(number(*trainer, "best_val_loss"), best);
  EXPECT_EQ(trainer->find("data")->find("format")->text, "synthetic");
  EXPECT_EQ(number(*trainer->find("data"), "seed"), 7);
  EXPECT_EQ(trainer->find("config_text")->text,
            "model:\n  name: tiny\ntraining:\n  total_steps: 20\n");
  auto model = safetensors::File::open(path("ckpt/step_00000020/model.safetensors"));
  ASSERT_TRUE(model.ok()) << model.status().toString();
  std::vector<uint8_t> applied;
  ASSERT_TRUE((*model)->read(*(*model)->find("applied_steps"), applied).ok());
  float appliedSteps;
  std::memcpy(&appliedSteps, applied.data(), 4);
  EXPECT_EQ(appliedSteps, 20.0f);

  // A fresh run refuses a save dir that already holds a run.
  result = run(p + " --train --save-dir " + path("ckpt"));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("already holds checkpoints of a run; continue it with --resume "
                            "latest"),
            std::string::npos)
      << result.err;
}

TEST_F(TrainToolTest, ResumeIsBitIdentical) {
  std::string p = plan();
  RunResult straight =
      run(p + " --train --save-dir " + path("a") + " --metrics " + path("a.jsonl"));
  ASSERT_EQ(straight.exitCode, 0) << straight.err;
  RunResult first =
      run(p + " --train --steps 10 --save-dir " + path("b") + " --metrics " + path("b.jsonl"));
  ASSERT_EQ(first.exitCode, 0) << first.err;
  EXPECT_EQ(readText(dir_ / "b/latest"), "step_00000010\n");
  RunResult second =
      run(p + " --train --resume latest --save-dir " + path("b") + " --metrics " + path("b.jsonl"));
  ASSERT_EQ(second.exitCode, 0) << second.err;
  EXPECT_NE(second.err.find("resumed from " + path("b/step_00000010") + " at step 10"),
            std::string::npos)
      << second.err;

  for (const char *file : {"model.safetensors", "optim.safetensors", "trainer.json"})
    for (const char *step : {"step_00000010", "step_00000020"}) {
      std::string a = readText(dir_ / "a" / step / file), b = readText(dir_ / "b" / step / file);
      EXPECT_FALSE(a.empty()) << step << "/" << file;
      EXPECT_TRUE(a == b) << step << "/" << file << " differs after resume";
    }
  std::vector<json::Value> a = readMetrics(path("a.jsonl")), b = readMetrics(path("b.jsonl"));
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(linesOfType(a, "train").size(), 20u);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(withoutTimings(a[i]), withoutTimings(b[i])) << "metrics line " << i;

  // Resuming at the target trains nothing and leaves the checkpoint alone.
  RunResult again =
      run(p + " --train --resume " + path("b/step_00000020") + " --save-dir " + path("b"));
  EXPECT_EQ(again.exitCode, 0) << again.err;
  EXPECT_NE(again.out.find("step = 20\n"), std::string::npos);

  // Another data stream than the checkpoint's is refused unless forced.
  RunResult otherData = run(p +
                            " --train --steps 25 --data synthetic:seed=9 --resume latest "
                            "--save-dir " +
                            path("b"));
  EXPECT_EQ(otherData.exitCode, 1);
  EXPECT_NE(otherData.err.find("differs from this run's data at step 20"), std::string::npos)
      << otherData.err;
}

TEST_F(TrainToolTest, SignalsFinishTheStepSaveAndExit) {
  TrainPlanOptions options;
  options.maxSteps = 1 << 20;
  options.config = tinyTrainingConfig(options);
  for (AttrDesc &attr : options.config)
    if (attr.name == "total_steps")
      attr.i = 1000000;
  std::string p = plan(options);
  for (int signal : {SIGTERM, SIGINT}) {
    std::string tag = signal == SIGTERM ? "term" : "int";
    std::string saveDir = path("ckpt_" + tag), metrics = path(tag + ".jsonl");
    pid_t pid = spawn({p, "--train", "--save-dir", saveDir, "--metrics", metrics, "--save-interval",
                       "0", "--eval-interval", "0"});
    ASSERT_GT(pid, 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (readMetrics(metrics).size() < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(::kill(pid, signal), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), signal == SIGTERM ? 143 : 130);
    size_t steps = linesOfType(readMetrics(metrics), "train").size();
    ASSERT_GE(steps, 3u);
    char name[32];
    std::snprintf(name, sizeof(name), "step_%08zu", steps);
    std::string err = readText(dir_ / "bg.err");
    EXPECT_NE(err.find(std::string(signal == SIGTERM ? "SIGTERM" : "SIGINT") +
                       " received: stopped after step " + std::to_string(steps) + ", checkpoint " +
                       saveDir + "/" + name),
              std::string::npos)
        << err;
    EXPECT_EQ(readText(fs::path(saveDir) / "latest"), std::string(name) + "\n");
    auto trainer = json::parse(readText(fs::path(saveDir) / name / "trainer.json"));
    ASSERT_TRUE(trainer.ok());
    EXPECT_EQ(number(*trainer, "step"), static_cast<double>(steps));

    // And it continues from there.
    RunResult resumed = run(p + " --train --resume latest --eval-interval 0 --save-dir " + saveDir +
                            " --metrics " + metrics + " --steps " + std::to_string(steps + 3));
    EXPECT_EQ(resumed.exitCode, 0) << resumed.err;
    EXPECT_EQ(linesOfType(readMetrics(metrics), "train").size(), steps + 3);
  }
}

TEST_F(TrainToolTest, SkippedStepsAreCountedAndTooManyAbort) {
  TrainPlanOptions options;
  options.skipSteps = {2, 3};
  options.skipFrom = 8;
  std::string p = plan(options);
  RunResult result = run(p +
                         " --train --max-consecutive-skips 3 --save-interval 5 "
                         "--eval-interval 0 --save-dir " +
                         path("ckpt") + " --metrics " + path("m.jsonl"));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_EQ(result.err.substr(result.err.find("fusion-run: error: ")),
            "fusion-run: error: aborting: 3 consecutive optimizer steps were skipped (steps "
            "8..10: the loss or the gradient norm was not finite; 5 skipped in all; limit "
            "--max-consecutive-skips 3); the last checkpoint is " +
                path("ckpt/step_00000010") + "\n");
  std::vector<json::Value> train = linesOfType(readMetrics(path("m.jsonl")), "train");
  ASSERT_EQ(train.size(), 11u);
  std::vector<int> skippedAt;
  for (const json::Value &line : train)
    if (line.find("skipped")->boolean) {
      skippedAt.push_back(static_cast<int>(number(line, "step")) - 1);
      EXPECT_EQ(line.find("loss")->kind, json::Value::Kind::kNull) << "NaN is written as null";
    }
  EXPECT_EQ(skippedAt, (std::vector<int>{2, 3, 8, 9, 10}));
  EXPECT_EQ(number(train.back(), "skipped_total"), 5);

  // The checkpoint keeps both counts; the skipped steps changed nothing.
  auto trainer = json::parse(readText(dir_ / "ckpt/step_00000010/trainer.json"));
  ASSERT_TRUE(trainer.ok());
  EXPECT_EQ(number(*trainer, "skipped_steps"), 4);
  EXPECT_EQ(number(*trainer, "consecutive_skips"), 2);
  auto model = safetensors::File::open(path("ckpt/step_00000010/model.safetensors"));
  ASSERT_TRUE(model.ok());
  std::vector<uint8_t> applied;
  ASSERT_TRUE((*model)->read(*(*model)->find("applied_steps"), applied).ok());
  float appliedSteps;
  std::memcpy(&appliedSteps, applied.data(), 4);
  EXPECT_EQ(appliedSteps, 6.0f);

  // Resumed, the consecutive count carries on: the next skip is the third.
  result = run(p +
               " --train --resume latest --max-consecutive-skips 3 --eval-interval 0 "
               "--save-dir " +
               path("ckpt"));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("aborting: 3 consecutive optimizer steps were skipped (steps 8..10"),
            std::string::npos)
      << result.err;

  // Every step NaN: the default limit of 10.
  TrainPlanOptions nan;
  nan.skipFrom = 0;
  result = run(plan(nan) + " --train --eval-interval 0 --save-dir " + path("nan"));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("aborting: 10 consecutive optimizer steps were skipped (steps 0..9: "
                            "the loss or the gradient norm was not finite; 10 skipped in all; "
                            "limit --max-consecutive-skips 10); no checkpoint was written"),
            std::string::npos)
      << result.err;
}

TEST_F(TrainToolTest, KillDuringACheckpointLeavesThePreviousOneLoadable) {
  std::string p = plan();
  RunResult straight = run(p + " --train --eval-interval 0 --save-dir " + path("straight"));
  ASSERT_EQ(straight.exitCode, 0) << straight.err;

  std::string args = "--train --save-interval 5 --eval-interval 0 --save-dir " + path("ckpt") +
                     " --metrics " + path("m.jsonl");
  RunResult killed = runTool("/usr/bin/env",
                             "FUSION_TEST_KILL_DURING_CHECKPOINT=2 '" + fusionRun_.string() + "' " +
                                 p + " " + args,
                             path("killed.err"));
  EXPECT_TRUE(killed.exitCode == -1 || killed.exitCode == 128 + SIGKILL) << killed.exitCode;
  EXPECT_EQ(readText(dir_ / "ckpt/latest"), "step_00000005\n");
  EXPECT_FALSE(fs::exists(dir_ / "ckpt/step_00000010"));
  ASSERT_TRUE(fs::exists(dir_ / "ckpt/step_00000010.tmp/model.safetensors"));
  EXPECT_FALSE(safetensors::File::open(path("ckpt/step_00000010.tmp/model.safetensors")).ok())
      << "the interrupted file is torn";
  EXPECT_FALSE(fs::exists(dir_ / "ckpt/step_00000010.tmp/trainer.json"));

  RunResult resumed = run(p + " " + args + " --resume latest");
  ASSERT_EQ(resumed.exitCode, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resumed from " + path("ckpt/step_00000005") + " at step 5"),
            std::string::npos)
      << resumed.err;
  EXPECT_FALSE(fs::exists(dir_ / "ckpt/step_00000010.tmp")) << "the torn leftover is removed";
  EXPECT_EQ(readText(dir_ / "ckpt/latest"), "step_00000020\n");
  for (const char *file : {"model.safetensors", "optim.safetensors"})
    EXPECT_TRUE(readText(dir_ / "ckpt/step_00000020" / file) ==
                readText(dir_ / "straight/step_00000020" / file))
        << file;
  // keep_last 3 of the config: 10, 15, 20.
  EXPECT_FALSE(fs::exists(dir_ / "ckpt/step_00000005"));
  EXPECT_TRUE(fs::exists(dir_ / "ckpt/step_00000010"));
}

TEST_F(TrainToolTest, UsageAndPlanErrors) {
  std::string p = plan();
  struct Case {
    std::string args;
    int exitCode;
    std::string message;
  } cases[] = {
      {p + " --steps 5", 2, "--steps only applies with --train (see --help)"},
      {p + " --resume latest", 2, "--resume only applies with --train (see --help)"},
      {p + " --train --program init", 2, "--program cannot be combined with --train"},
      {p + " --train --steps -1", 2, "--steps needs a non-negative integer, got '-1'"},
      {p + " --train --val-data nope:x", 2, "unknown format 'nope'"},
      {p + " --train --save-dir " + path("x") + " --resume latest", 1,
       path("x") + "/latest: cannot read (no checkpoint has been completed in " + path("x") + ")"},
  };
  for (const Case &c : cases) {
    RunResult result = run(c.args);
    EXPECT_EQ(result.exitCode, c.exitCode) << c.args << ": " << result.err;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << c.args << ": " << result.err;
  }

  // Not a training plan.
  PlanBuilder builder;
  builder.addBuffer("x", schema::DType::F32, {1});
  builder.addProgram("init");
  RunResult result = run(writePlan("plain.fplan", builder.finish()) + " --train");
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("is not a training plan: it has no 'train_step' program"),
            std::string::npos)
      << result.err;

  // A config that disagrees with the program's shapes.
  TrainPlanOptions bad;
  bad.config = tinyTrainingConfig(bad);
  for (AttrDesc &attr : bad.config)
    if (attr.name == "grad_accum_steps")
      attr.i = 4;
  result = run(plan(bad) + " --train --save-dir " + path("bad"));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("config 'grad_accum_steps' = 4 disagrees with program 'train_step'"),
            std::string::npos)
      << result.err;

  // Resuming with a plan compiled from another config: refused unless forced.
  ASSERT_EQ(run(p + " --train --steps 2 --eval-interval 0 --save-dir " + path("c")).exitCode, 0);
  TrainPlanOptions other;
  other.config = tinyTrainingConfig(other);
  for (AttrDesc &attr : other.config)
    if (attr.name == "config_sha256")
      attr.s = "different";
  std::string otherPlan = plan(other);
  result = run(otherPlan + " --train --steps 3 --resume latest --save-dir " + path("c"));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.err.find("config_sha256"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("pass --force-resume to resume anyway"), std::string::npos);
  result = run(otherPlan +
               " --train --steps 3 --eval-interval 0 --resume latest --force-resume "
               "--save-dir " +
               path("c"));
  EXPECT_EQ(result.exitCode, 0) << result.err;
  EXPECT_NE(result.err.find("warning: "), std::string::npos) << result.err;
}

} // namespace
