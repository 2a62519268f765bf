//===- score.cc - Multiple-choice scoring by log-likelihood ---------------===//
//
// See fusion/rt/score.h. Rows of (task, choice) pairs are packed B at a time into the score
// program's [B, T+1] tokens; targets are −1 everywhere except at the choice's tokens, so the
// program's per-token CE is the choice's negative log-likelihood, token by token.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/score.h"

#include "fusion/rt/generate.h"

#include "fusion/rt/tokenizer.h"
#include "fusion/rt/train.h"
#include "json.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace fusion::rt::score {

namespace {

constexpr const char *kScoreProgram = "score";

Status invalid(const std::string &message) {
  return Status(StatusCode::kInvalidArgument, message);
}

StatusOr<std::string> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status(StatusCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// One row to score: the task and choice it belongs to, its tokens and where the choice
/// starts.
struct Row {
  size_t task = 0, choice = 0;
  std::vector<int32_t> tokens;
  size_t choiceBegin = 0;
};

} // namespace

StatusOr<std::vector<Task>> parseTasks(std::string_view text, const std::string &name) {
  std::vector<Task> tasks;
  size_t line = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos)
      end = text.size();
    std::string_view content = text.substr(start, end - start);
    start = end + 1;
    ++line;
    if (content.find_first_not_of(" \t\r") == std::string_view::npos)
      continue;
    std::string where = name + ":" + std::to_string(line) + ": ";
    StatusOr<json::Value> parsed = json::parse(content);
    if (!parsed.ok())
      return invalid(where + parsed.status().message());
    const json::Value &object = *parsed;
    if (!object.isObject())
      return invalid(where + "expected an object {\"context\", \"choices\", \"answer\"}, got " +
                     object.kindName());
    const json::Value *context = object.find("context");
    const json::Value *choices = object.find("choices");
    const json::Value *answer = object.find("answer");
    if (!context || !context->isString())
      return invalid(where + "\"context\" must be a string");
    if (!choices || !choices->isArray() || choices->items.size() < 2)
      return invalid(where + "\"choices\" must be an array of at least 2 strings");
    Task task;
    task.context = context->text;
    for (const json::Value &choice : choices->items) {
      if (!choice.isString() || choice.text.empty())
        return invalid(where + "every choice must be a non-empty string");
      task.choices.push_back(choice.text);
    }
    std::optional<uint64_t> index = answer ? answer->asUnsigned() : std::nullopt;
    if (!index || *index >= task.choices.size())
      return invalid(where + "\"answer\" must be the index of a choice (0.." +
                     std::to_string(task.choices.size() - 1) + ")");
    task.answer = *index;
    tasks.push_back(std::move(task));
  }
  if (tasks.empty())
    return invalid(name + ": no tasks");
  return tasks;
}

StatusOr<int> runScoring(std::shared_ptr<const Plan> plan, const ScoreOptions &options,
                         std::FILE *out, std::FILE *err) {
  const std::string planName = plan->displayName();
  std::optional<uint32_t> program = plan->findProgram(kScoreProgram);
  if (!program)
    return invalid(planName + ": no 'score' program; compile the training plan (fusionc "
                              "CONFIG.yaml, --mode=train) to score choices");
  const BindingInfo *tokensIn = plan->findInput(*program, "tokens");
  const BindingInfo *targetsIn = plan->findInput(*program, "targets");
  const BindingInfo *ceOut = plan->findOutput(*program, "ce");
  if (!tokensIn || !targetsIn || !ceOut)
    return invalid(planName + ": program 'score' must bind inputs 'tokens', 'targets' and "
                              "output 'ce'");
  const BufferInfo &tokensBuf = plan->buffers()[tokensIn->buffer];
  const BufferInfo &ceBuf = plan->buffers()[ceOut->buffer];
  if (tokensBuf.shape.size() != 2 || tokensBuf.dtype != schema::DType::I32 ||
      ceBuf.shape.size() != 2 || ceBuf.shape[0] != tokensBuf.shape[0] ||
      ceBuf.shape[1] + 1 != tokensBuf.shape[1] || ceBuf.dtype != schema::DType::F32)
    return invalid(planName + ": program 'score' must map tokens [B, T+1] i32 to ce [B, T] f32");
  const int64_t rows = tokensBuf.shape[0], width = tokensBuf.shape[1];

  // The tokenizer, cut to the plan's vocabulary.
  FUSION_ASSIGN_OR_RETURN(std::unique_ptr<data::BpeTokenizer> loadedTokenizer,
                          generate::loadPlanTokenizer(*plan, options.tokenizerDir, options.merges));
  data::BpeTokenizer &tokenizer = *loadedTokenizer;

  FUSION_ASSIGN_OR_RETURN(std::string text, readFile(options.tasksPath));
  FUSION_ASSIGN_OR_RETURN(std::vector<Task> tasks, parseTasks(text, options.tasksPath));

  // The model.
  FUSION_ASSIGN_OR_RETURN(std::unique_ptr<Executor> executor,
                          createExecutor(plan, options.backend));
  FUSION_RETURN_IF_ERROR(executor->run("init"));
  if (options.checkpoint)
    FUSION_RETURN_IF_ERROR(
        generate::loadCheckpointWeights(*executor, *options.checkpoint, "scoring", err));

  // Rows: context ++ choice, keeping the last T+1 tokens.
  std::vector<Row> allRows;
  uint64_t truncated = 0;
  for (size_t t = 0; t < tasks.size(); ++t) {
    std::vector<int32_t> context = tokenizer.encode(tasks[t].context);
    for (size_t c = 0; c < tasks[t].choices.size(); ++c) {
      std::vector<int32_t> choice = tokenizer.encode(tasks[t].choices[c]);
      if (choice.empty() || static_cast<int64_t>(choice.size()) >= width)
        return invalid(options.tasksPath + ": task " + std::to_string(t + 1) + " choice " +
                       std::to_string(c) + " has " + std::to_string(choice.size()) +
                       " tokens; a choice needs 1.." + std::to_string(width - 1));
      Row row{t, c, context, context.size()};
      row.tokens.insert(row.tokens.end(), choice.begin(), choice.end());
      if (row.choiceBegin == 0) {
        // Nothing predicts the first token of a row: start with end-of-text, as GPT-2 does.
        row.tokens.insert(row.tokens.begin(), tokenizer.eotId());
        row.choiceBegin = 1;
      }
      if (static_cast<int64_t>(row.tokens.size()) > width) {
        size_t drop = row.tokens.size() - static_cast<size_t>(width);
        row.tokens.erase(row.tokens.begin(), row.tokens.begin() + drop);
        row.choiceBegin -= drop;
        ++truncated;
      }
      allRows.push_back(std::move(row));
    }
  }

  // Score B rows at a time.
  std::vector<std::vector<double>> logLikelihood(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t)
    logLikelihood[t].assign(tasks[t].choices.size(), 0.0);
  std::vector<int32_t> tokens(static_cast<size_t>(rows * width)), targets(tokens.size());
  std::vector<uint8_t> ceBytes;
  for (size_t first = 0; first < allRows.size(); first += static_cast<size_t>(rows)) {
    size_t count = std::min<size_t>(static_cast<size_t>(rows), allRows.size() - first);
    std::fill(tokens.begin(), tokens.end(), tokenizer.eotId());
    std::fill(targets.begin(), targets.end(), -1);
    for (size_t r = 0; r < count; ++r) {
      const Row &row = allRows[first + r];
      for (size_t j = 0; j < row.tokens.size(); ++j) {
        tokens[r * width + j] = row.tokens[j];
        if (j >= row.choiceBegin)
          targets[r * width + j] = row.tokens[j];
      }
    }
    std::vector<int64_t> shape = {rows, width};
    FUSION_RETURN_IF_ERROR(executor->setInput(kScoreProgram, "tokens", schema::DType::I32, shape,
                                              tokens.data(), tokens.size() * 4));
    FUSION_RETURN_IF_ERROR(executor->setInput(kScoreProgram, "targets", schema::DType::I32,
                                              shape, targets.data(), targets.size() * 4));
    FUSION_RETURN_IF_ERROR(executor->run(kScoreProgram));
    FUSION_RETURN_IF_ERROR(executor->readOutput(kScoreProgram, "ce", ceBytes));
    const float *ce = reinterpret_cast<const float *>(ceBytes.data());
    for (size_t r = 0; r < count; ++r) {
      const Row &row = allRows[first + r];
      double sum = 0;
      // ce[r, i] is the loss of predicting token i+1 from tokens 0..i.
      for (size_t j = row.choiceBegin; j < row.tokens.size(); ++j)
        sum += ce[r * (width - 1) + (j - 1)];
      logLikelihood[row.task][row.choice] = -sum;
    }
  }

  // Accuracy.
  uint64_t correct = 0, correctNorm = 0;
  for (size_t t = 0; t < tasks.size(); ++t) {
    size_t best = 0, bestNorm = 0;
    auto perByte = [&](size_t c) {
      return logLikelihood[t][c] / static_cast<double>(tasks[t].choices[c].size());
    };
    for (size_t c = 1; c < tasks[t].choices.size(); ++c) {
      if (logLikelihood[t][c] > logLikelihood[t][best])
        best = c;
      if (perByte(c) > perByte(bestNorm))
        bestNorm = c;
    }
    correct += best == tasks[t].answer;
    correctNorm += bestNorm == tasks[t].answer;
    if (options.verbose) {
      std::fprintf(out, "task %zu:", t + 1);
      for (double ll : logLikelihood[t])
        std::fprintf(out, " %.4f", ll);
      std::fprintf(out, " | pred %zu pred_norm %zu answer %" PRIu64 "\n", best, bestNorm,
                   tasks[t].answer);
    }
  }
  double n = static_cast<double>(tasks.size());
  std::fprintf(out, "tasks = %zu\n", tasks.size());
  std::fprintf(out, "acc = %.4f\n", static_cast<double>(correct) / n);
  std::fprintf(out, "acc_norm = %.4f\n", static_cast<double>(correctNorm) / n);
  if (truncated)
    std::fprintf(out, "truncated_rows = %" PRIu64 "\n", truncated);
  std::fflush(out);
  return 0;
}

} // namespace fusion::rt::score
