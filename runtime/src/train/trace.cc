//===- trace.cc - Chrome trace JSON and a per-kind summary of timings -----===//
//
// The Trace Event Format's complete events ("ph": "X", microsecond ts/dur), plus metadata
// events naming the process (the rank and its device) and the threads (the plan's streams).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/trace.h"

#include "json.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <map>
#include <set>

namespace fusion::rt {

InstructionLabel labelInstruction(const Plan &plan, uint32_t program, uint32_t instruction) {
  const schema::Instruction &inst =
      *plan.root().programs()->Get(program)->instructions()->Get(instruction);
  switch (inst.op_type()) {
  case schema::Op::Launch: {
    const schema::Kernel &kernel = *plan.root().kernels()->Get(inst.op_as_Launch()->kernel());
    return {kernel.name()->str(), kernel.kind()->str()};
  }
  case schema::Op::Gemm: {
    const schema::Gemm &gemm = *inst.op_as_Gemm();
    std::string name = "gemm " + std::to_string(gemm.m()) + "x" + std::to_string(gemm.n()) +
                       "x" + std::to_string(gemm.k());
    if (gemm.batch() > 1)
      name += " x" + std::to_string(gemm.batch());
    return {name, "gemm"};
  }
  case schema::Op::Collective: {
    const char *kind = collectiveKindName(inst.op_as_Collective()->kind());
    return {std::string(kind) + " " + plan.buffers()[inst.op_as_Collective()->send()].name,
            kind};
  }
  case schema::Op::Record:
    return {"record", "record"};
  case schema::Op::Wait:
    return {"wait", "wait"};
  case schema::Op::NONE:
    break;
  }
  return {"?", "?"};
}

std::string chromeTraceJson(const Plan &plan, const std::vector<InstructionTime> &times,
                            int rank, const std::string &device) {
  std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  std::string pid = std::to_string(rank);
  out += "{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": " + pid +
         ", \"args\": {\"name\": " + json::quote("rank " + pid + " (" + device + ")") + "}}";
  std::set<uint32_t> streams;
  for (const InstructionTime &t : times)
    streams.insert(t.stream);
  for (uint32_t stream : streams)
    out += ",\n{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": " + pid +
           ", \"tid\": " + std::to_string(stream) + ", \"args\": {\"name\": " +
           json::quote("stream " + std::to_string(stream)) + "}}";
  for (const InstructionTime &t : times) {
    InstructionLabel label = labelInstruction(plan, t.program, t.instruction);
    const schema::Program &program = *plan.root().programs()->Get(t.program);
    const schema::Instruction &inst = *program.instructions()->Get(t.instruction);
    out += ",\n{\"ph\": \"X\", \"name\": " + json::quote(label.name) +
           ", \"cat\": " + json::quote(label.kind) + ", \"pid\": " + pid +
           ", \"tid\": " + std::to_string(t.stream) + ", \"ts\": " + json::number(t.startUs) +
           ", \"dur\": " + json::number(t.durationUs) + ", \"args\": {\"program\": " +
           json::quote(program.name()->string_view()) +
           ", \"instruction\": " + std::to_string(t.instruction) +
           ", \"kind\": " + json::quote(label.kind) + ", \"loc\": " +
           json::quote(inst.loc() ? inst.loc()->string_view() : std::string_view()) + "}}";
  }
  out += "\n]}\n";
  return out;
}

std::string traceSummary(const Plan &plan, const std::vector<InstructionTime> &times,
                         size_t limit) {
  struct Row {
    std::string kind;
    uint64_t count = 0;
    double us = 0;
  };
  std::map<std::string, Row> byKind;
  double total = 0;
  for (const InstructionTime &t : times) {
    Row &row = byKind[labelInstruction(plan, t.program, t.instruction).kind];
    ++row.count;
    row.us += t.durationUs;
    total += t.durationUs;
  }
  std::vector<Row> rows;
  for (auto &[kind, row] : byKind) {
    row.kind = kind;
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) { return a.us > b.us; });
  char line[160];
  std::snprintf(line, sizeof(line), "%zu instructions, %.3f ms in all; by kind:\n", times.size(),
                total / 1e3);
  std::string out = line;
  Row rest{"(other kinds)"};
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i >= limit) {
      rest.count += rows[i].count;
      rest.us += rows[i].us;
      continue;
    }
    std::snprintf(line, sizeof(line), "  %-24s %7llu x %10.3f ms %6.1f%%\n", rows[i].kind.c_str(),
                  static_cast<unsigned long long>(rows[i].count), rows[i].us / 1e3,
                  total > 0 ? 100.0 * rows[i].us / total : 0.0);
    out += line;
  }
  if (rest.count) {
    std::snprintf(line, sizeof(line), "  %-24s %7llu x %10.3f ms %6.1f%%\n", rest.kind.c_str(),
                  static_cast<unsigned long long>(rest.count), rest.us / 1e3,
                  total > 0 ? 100.0 * rest.us / total : 0.0);
    out += line;
  }
  return out;
}

StatusOr<std::string> writeTraceFile(const std::string &path, int rank, const Plan &plan,
                                     Executor &executor, std::string &summary) {
  std::vector<InstructionTime> times = executor.takeTimings();
  std::string file = path;
  if (rank > 0) {
    std::string stem = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0
                           ? path.substr(0, path.size() - 5)
                           : path;
    file = stem + ".rank" + std::to_string(rank) + ".json";
  }
  std::string json = chromeTraceJson(plan, times, rank, executor.deviceDescription());
  std::FILE *out = std::fopen(file.c_str(), "wb");
  if (!out)
    return Status(StatusCode::kUnavailable,
                  file + ": cannot create: " + std::strerror(errno));
  bool ok = std::fwrite(json.data(), 1, json.size(), out) == json.size();
  ok = std::fclose(out) == 0 && ok;
  if (!ok)
    return Status(StatusCode::kUnavailable, file + ": write failed");
  summary = traceSummary(plan, times);
  return file;
}

} // namespace fusion::rt
