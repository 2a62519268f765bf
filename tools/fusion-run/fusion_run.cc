//===- fusion_run.cc - Load a FusionLLM plan and run it -------------------===//
//
// The runtime's command-line driver: verifies a `.fplan`, optionally prints it as JSON, runs
// one or more of its programs on the chosen backend and prints requested buffers. It links only
// the MLIR-free runtime, so its argument parser is a small strict one written here: unknown
// flags, missing values and repeated single-valued flags are usage errors (exit 2), plan and
// runtime failures exit 1, and every error is one line on stderr.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/executor.h"
#include "fusion/rt/plan.h"

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using namespace fusion::rt;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

const char *kHelp = R"(usage: fusion-run PLAN.fplan [options]

Verifies a FusionLLM plan and runs its programs.

options:
  --program NAME        Run the program NAME. Repeat to run several programs in order on the
                        same memory (e.g. --program init --program train_step). Default: the
                        program 'main' if the plan has one, else an error listing the
                        programs; with only --dump-plan, nothing runs.
  --backend cpu|cuda    Where to run (default cpu). cpu is the reference backend; cuda needs
                        a GPU and cubins for its architecture in the plan.
  --dump-plan           Print the verified plan as JSON (cubin images shown as their size).
  --print-buffer NAME   After the run, print buffer NAME as `NAME f32[4,8] = [v0, v1, ...]`.
                        Repeatable.
  --print-all-buffers   After the run, print every buffer of the plan, in plan order.
  --print-limit N       Print at most N values per buffer, then `...` (default 16; 0 = all).
  -h, --help            Show this help and exit.

Flags take their value as the next argument or after '=' (--backend=cuda). '--' ends the
options.

exit status: 0 success, 1 plan or runtime error, 2 usage error.
)";

/// A usage or runtime error: the message and the exit status to leave with.
struct Failure {
  std::string message;
  int exitCode;
};

struct Options {
  std::string planPath;
  std::vector<std::string> programs;
  std::optional<BackendKind> backend;
  bool dumpPlan = false;
  std::vector<std::string> printBuffers;
  bool printAllBuffers = false;
  std::optional<size_t> printLimit;
  bool help = false;
};

Failure usage(const std::string &message) { return {message + " (see --help)", kExitUsage}; }

/// Parses a non-negative decimal integer, rejecting signs, spaces and overflow.
std::optional<size_t> parseCount(const std::string &text) {
  if (text.empty() || text.size() > 18)
    return std::nullopt;
  size_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + static_cast<size_t>(c - '0');
  }
  return value;
}

std::optional<Failure> parseArgs(int argc, char **argv, Options &options) {
  bool optionsEnded = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (optionsEnded || arg.size() < 2 || arg[0] != '-') {
      if (!options.planPath.empty())
        return usage("unexpected argument '" + arg + "': fusion-run takes one plan file");
      options.planPath = arg;
      continue;
    }
    if (arg == "--") {
      optionsEnded = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      continue;
    }
    std::string flag = arg;
    std::optional<std::string> inlineValue;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      flag = arg.substr(0, eq);
      inlineValue = arg.substr(eq + 1);
    }

    bool takesValue = flag == "--program" || flag == "--backend" || flag == "--print-buffer" ||
                      flag == "--print-limit";
    bool isSwitch = flag == "--dump-plan" || flag == "--print-all-buffers";
    if (!takesValue && !isSwitch)
      return usage("unknown flag '" + flag + "'");
    if (isSwitch) {
      if (inlineValue)
        return usage("flag '" + flag + "' takes no value");
      (flag == "--dump-plan" ? options.dumpPlan : options.printAllBuffers) = true;
      continue;
    }
    std::string value;
    if (inlineValue) {
      value = *inlineValue;
    } else {
      if (i + 1 >= argc)
        return usage("flag '" + flag + "' needs a value");
      value = argv[++i];
    }

    if (flag == "--program") {
      if (value.empty())
        return usage("--program needs a non-empty program name");
      options.programs.push_back(value);
    } else if (flag == "--print-buffer") {
      if (value.empty())
        return usage("--print-buffer needs a non-empty buffer name");
      options.printBuffers.push_back(value);
    } else if (flag == "--backend") {
      if (options.backend)
        return usage("--backend given twice");
      options.backend = parseBackendKind(value);
      if (!options.backend)
        return usage("unknown backend '" + value + "' (expected cpu or cuda)");
    } else { // --print-limit
      if (options.printLimit)
        return usage("--print-limit given twice");
      options.printLimit = parseCount(value);
      if (!options.printLimit)
        return usage("--print-limit needs a non-negative integer, got '" + value + "'");
    }
  }
  if (!options.help && options.planPath.empty())
    return usage("missing the plan file (usage: fusion-run PLAN.fplan [options])");
  return std::nullopt;
}

std::string joinNames(const std::vector<std::string> &names) {
  std::string out;
  for (const std::string &name : names)
    out += (out.empty() ? "" : ", ") + quoted(name);
  return out.empty() ? "none" : out;
}

std::optional<Failure> runTool(const Options &options) {
  StatusOr<std::shared_ptr<const Plan>> loaded = Plan::loadFile(options.planPath);
  if (!loaded.ok())
    return Failure{loaded.status().message(), kExitFailure};
  std::shared_ptr<const Plan> plan = *loaded;

  if (options.dumpPlan) {
    StatusOr<std::string> json = plan->toJson();
    if (!json.ok())
      return Failure{json.status().message(), kExitFailure};
    std::fputs(json->c_str(), stdout);
    if (json->empty() || json->back() != '\n')
      std::fputc('\n', stdout);
  }

  // Which programs to run: the named ones; none when only dumping; else 'main'.
  std::vector<std::string> programs = options.programs;
  bool wantsBuffers = options.printAllBuffers || !options.printBuffers.empty();
  if (programs.empty() && !(options.dumpPlan && !wantsBuffers)) {
    if (!plan->findProgram("main"))
      return usage(plan->displayName() +
                   " has no program named 'main'; choose one with --program (programs: " +
                   joinNames(plan->programNames()) + ")");
    programs.push_back("main");
  }
  for (const std::string &program : programs)
    if (!plan->findProgram(program))
      return usage(plan->displayName() + " has no program named " + quoted(program) +
                   " (programs: " + joinNames(plan->programNames()) + ")");

  // Resolve the buffers to print before running, so a typo costs no run.
  std::vector<uint32_t> toPrint;
  if (options.printAllBuffers)
    for (uint32_t id = 0; id < plan->buffers().size(); ++id)
      toPrint.push_back(id);
  for (const std::string &name : options.printBuffers) {
    std::vector<uint32_t> ids = plan->findBuffers(name);
    if (ids.empty())
      return usage(plan->displayName() + " has no buffer named " + quoted(name) +
                   " (--dump-plan lists the buffers)");
    if (ids.size() > 1) {
      std::string list;
      for (uint32_t id : ids)
        list += (list.empty() ? "" : ", ") + std::to_string(id);
      return usage("buffer name " + quoted(name) + " is ambiguous in " + plan->displayName() +
                   " (buffers " + list + ")");
    }
    toPrint.push_back(ids[0]);
  }
  if (programs.empty())
    return std::nullopt;

  BackendKind backend = options.backend.value_or(BackendKind::kCpu);
  StatusOr<std::unique_ptr<Executor>> executor = createExecutor(plan, backend);
  if (!executor.ok())
    return Failure{executor.status().message(), kExitFailure};
  for (const std::string &program : programs) {
    Status status = (*executor)->run(program);
    if (!status.ok())
      return Failure{status.message(), kExitFailure};
  }

  size_t limit = options.printLimit.value_or(16);
  std::vector<uint8_t> bytes;
  for (uint32_t id : toPrint) {
    Status status = (*executor)->readBuffer(id, bytes);
    if (!status.ok())
      return Failure{status.message(), kExitFailure};
    std::string line = formatBuffer(plan->buffers()[id], bytes, limit);
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
  }
  return std::nullopt;
}

} // namespace

int main(int argc, char **argv) {
  Options options;
  std::optional<Failure> failure = parseArgs(argc, argv, options);
  if (!failure && options.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  if (!failure)
    failure = runTool(options);
  std::fflush(stdout);
  if (failure) {
    std::fprintf(stderr, "fusion-run: error: %s\n", failure->message.c_str());
    return failure->exitCode;
  }
  return kExitOk;
}
