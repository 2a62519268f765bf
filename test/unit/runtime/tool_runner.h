//===- tool_runner.h - run a tool binary from a test ----------------------===//
//
// Part of the FusionLLM runtime tests.
//
// Runs a command line through the shell, capturing stdout, stderr (via a file) and the exit
// status, for the tests that drive fusion-run and fusion-data as users do.
//
//===----------------------------------------------------------------------===//

#ifndef FUSION_TEST_UNIT_RUNTIME_TOOL_RUNNER_H
#define FUSION_TEST_UNIT_RUNTIME_TOOL_RUNNER_H

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>

namespace fusion::rt::testing {

/// What a tool run printed and how it exited (-1: did not start or did not exit normally).
struct RunResult {
  int exitCode = -1;
  std::string out;
  std::string err;
};

/// Runs `binary args` (args already shell-quoted where needed) with stderr redirected to
/// `errPath`, and returns its output and exit status.
inline RunResult runTool(const std::string &binary, const std::string &args,
                         const std::string &errPath) {
  std::string command = "'" + binary + "' " + args + " 2>'" + errPath + "'";
  RunResult result;
  FILE *pipe = ::popen(command.c_str(), "r");
  if (!pipe)
    return result;
  char buffer[4096];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    result.out.append(buffer, got);
  int status = ::pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(errPath);
  std::stringstream text;
  text << err.rdbuf();
  result.err = text.str();
  return result;
}

} // namespace fusion::rt::testing

#endif // FUSION_TEST_UNIT_RUNTIME_TOOL_RUNNER_H
