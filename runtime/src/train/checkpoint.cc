//===- checkpoint.cc - Checkpoint directories: atomic save, verified load -===//
//
// MODEL.md §15. A checkpoint is a directory save_dir/step_{s:08d} holding model.safetensors
// (Weight + ModelBuffer buffers), optim.safetensors (OptimizerState buffers), trainer.json and
// plan.fplan (a copy of the plan, for `fusion-run CHECKPOINT_DIR --generate`).
// Crash safety comes from the order of operations: every file is written into
// step_{s:08d}.tmp/ and fsync'ed, the directory is fsync'ed and renamed to its final name,
// save_dir is fsync'ed, and only then is `latest` replaced (temporary file, fsync, rename,
// fsync). A crash at any point leaves `latest` naming a complete checkpoint; a leftover .tmp
// directory is garbage that the next save removes.
//
// On disk every float buffer is F32 (bf16/f16 buffers are widened exactly and narrowed back
// on load), integer buffers keep their type (I32, I64).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/train.h"

#include "fusion/rt/safetensors.h"
#include "json.h"

#include "../numeric.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fusion::rt::train {

namespace fs = std::filesystem;

namespace {

//===----------------------------------------------------------------------===//
// Durable file writing
//===----------------------------------------------------------------------===//

Status errnoStatus(const std::string &what) {
  return Status(StatusCode::kUnavailable, what + ": " + std::strerror(errno));
}

/// A file written with write(2) and made durable with fsync(2) before close.
class DurableFile {
public:
  ~DurableFile() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  Status open(const std::string &path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0)
      return errnoStatus(path + ": cannot create");
    return Status::okStatus();
  }
  Status write(const void *data, size_t size) {
    const char *bytes = static_cast<const char *>(data);
    while (size > 0) {
      ssize_t done = ::write(fd_, bytes, size);
      if (done < 0 && errno == EINTR)
        continue;
      if (done < 0)
        return errnoStatus(path_ + ": write failed");
      bytes += done;
      size -= static_cast<size_t>(done);
    }
    return Status::okStatus();
  }
  Status finish() {
    if (::fsync(fd_) != 0)
      return errnoStatus(path_ + ": fsync failed");
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      return errnoStatus(path_ + ": close failed");
    return Status::okStatus();
  }

private:
  std::string path_;
  int fd_ = -1;
};

Status fsyncDirectory(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errnoStatus(path + ": cannot open directory");
  int rc = ::fsync(fd);
  int savedErrno = errno;
  ::close(fd);
  errno = savedErrno;
  if (rc != 0)
    return errnoStatus(path + ": fsync of the directory failed");
  return Status::okStatus();
}

Status writeDurably(const std::string &path, const std::string &text) {
  DurableFile file;
  FUSION_RETURN_IF_ERROR(file.open(path));
  FUSION_RETURN_IF_ERROR(file.write(text.data(), text.size()));
  return file.finish();
}

StatusOr<std::string> readSmallFile(const std::string &path, uint64_t limit) {
  std::error_code error;
  if (!fs::exists(path, error))
    return Status(StatusCode::kNotFound, path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status(StatusCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > limit)
      return Status(StatusCode::kDataLoss,
                    path + ": larger than " + std::to_string(limit) + " bytes");
  }
  return text;
}

/// The test hook's checkpoint number (FUSION_TEST_KILL_DURING_CHECKPOINT), 0 when unset.
uint64_t killDuringCheckpoint() {
  const char *value = std::getenv("FUSION_TEST_KILL_DURING_CHECKPOINT");
  if (!value || !*value)
    return 0;
  return std::strtoull(value, nullptr, 10);
}

//===----------------------------------------------------------------------===//
// Buffers <-> tensors
//===----------------------------------------------------------------------===//

/// The on-disk dtype of a buffer: F32 for every float buffer, I32 / I64 for index buffers.
const char *diskDType(schema::DType dtype) {
  switch (dtype) {
  case schema::DType::F32:
  case schema::DType::BF16:
  case schema::DType::F16:
    return "F32";
  case schema::DType::I32:
    return "I32";
  case schema::DType::I64:
    return "I64";
  }
  return "";
}

/// The checkpointed buffers of one file, by name.
std::map<std::string, uint32_t> fileBuffers(const Plan &plan, bool optim) {
  std::map<std::string, uint32_t> out;
  for (uint32_t id = 0; id < plan.buffers().size(); ++id) {
    const BufferInfo &buffer = plan.buffers()[id];
    if (!isCheckpointedRole(buffer.role))
      continue;
    if ((buffer.role == schema::BufferRole::OptimizerState) == optim)
      out.emplace(buffer.name, id);
  }
  return out;
}

/// Buffer bytes as stored on disk (bf16/f16 widened to f32).
std::vector<uint8_t> toDisk(const BufferInfo &buffer, std::vector<uint8_t> bytes) {
  if (buffer.dtype != schema::DType::BF16 && buffer.dtype != schema::DType::F16)
    return bytes;
  std::vector<uint8_t> out(buffer.numElements * 4);
  for (uint64_t i = 0; i < buffer.numElements; ++i) {
    float v = loadAsFloat(bytes.data(), buffer.dtype, i);
    std::memcpy(out.data() + 4 * i, &v, 4);
  }
  return out;
}

/// Disk bytes as the buffer stores them (f32 narrowed to bf16/f16, round to nearest even).
std::vector<uint8_t> fromDisk(const BufferInfo &buffer, std::vector<uint8_t> bytes) {
  if (buffer.dtype != schema::DType::BF16 && buffer.dtype != schema::DType::F16)
    return bytes;
  std::vector<uint8_t> out(buffer.byteSize);
  for (uint64_t i = 0; i < buffer.numElements; ++i) {
    float v;
    std::memcpy(&v, bytes.data() + 4 * i, 4);
    storeFromFloat(out.data(), buffer.dtype, i, v);
  }
  return out;
}

/// Writes one safetensors file of the buffers `ids` (by name) read from `executor`.
/// `killHalfway`: the test hook, raise SIGKILL after half the data bytes.
Status writeTensorFile(Executor &executor, const std::map<std::string, uint32_t> &ids,
                       const std::string &path, uint64_t step, bool killHalfway) {
  const Plan &plan = executor.plan();
  safetensors::Layout layout;
  for (const auto &[name, id] : ids) {
    const BufferInfo &buffer = plan.buffers()[id];
    FUSION_RETURN_IF_ERROR(
        layout.add(name, diskDType(buffer.dtype), buffer.shape).withPrefix(path));
  }
  layout.setMetadata("format", "pt");
  layout.setMetadata("step", std::to_string(step));
  DurableFile file;
  FUSION_RETURN_IF_ERROR(file.open(path));
  std::vector<uint8_t> header = layout.header();
  FUSION_RETURN_IF_ERROR(file.write(header.data(), header.size()));
  uint64_t total = layout.dataBytes(), written = 0;
  std::vector<uint8_t> bytes;
  for (const safetensors::TensorInfo &tensor : layout.layout()) {
    uint32_t id = ids.at(tensor.name);
    FUSION_RETURN_IF_ERROR(executor.readBuffer(id, bytes));
    std::vector<uint8_t> disk = toDisk(plan.buffers()[id], std::move(bytes));
    if (killHalfway && written + disk.size() >= total / 2) {
      // Test hook: leave a torn file behind, as a power cut or kill -9 would.
      FUSION_RETURN_IF_ERROR(file.write(disk.data(), total / 2 - written));
      std::raise(SIGKILL);
    }
    FUSION_RETURN_IF_ERROR(file.write(disk.data(), disk.size()));
    written += disk.size();
    bytes.clear();
  }
  if (killHalfway)
    std::raise(SIGKILL); // an empty file: killed after the header
  return file.finish();
}

//===----------------------------------------------------------------------===//
// trainer.json
//===----------------------------------------------------------------------===//

std::optional<uint64_t> stepOfName(const std::string &name) {
  if (name.size() < 13 || name.rfind("step_", 0) != 0)
    return std::nullopt;
  uint64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    char c = name[i];
    if (c < '0' || c > '9' || step > (UINT64_MAX - 9) / 10)
      return std::nullopt;
    step = step * 10 + static_cast<uint64_t>(c - '0');
  }
  return step;
}

} // namespace

std::string checkpointName(uint64_t step) {
  char name[40];
  std::snprintf(name, sizeof(name), "step_%08llu", static_cast<unsigned long long>(step));
  return name;
}

std::string encodeTrainerJson(const TrainerState &state) {
  std::string data = "{\"format\": " + json::quote(state.data.format) +
                     ", \"sampling\": " + json::quote(state.data.sampling) +
                     ", \"seed\": " + std::to_string(state.data.seed);
  if (state.data.position)
    data += ", \"shard_index\": " + std::to_string(state.data.position->shard) +
            ", \"pos\": " + std::to_string(state.data.position->pos);
  data += "}";
  std::string out = "{\n";
  out += "  \"format_version\": " + std::to_string(state.formatVersion) + ",\n";
  out += "  \"step\": " + std::to_string(state.step) + ",\n";
  out += "  \"tokens_seen\": " + std::to_string(state.tokensSeen) + ",\n";
  out += "  \"skipped_steps\": " + std::to_string(state.skippedSteps) + ",\n";
  out += "  \"consecutive_skips\": " + std::to_string(state.consecutiveSkips) + ",\n";
  out += "  \"data\": " + data + ",\n";
  out += "  \"seed\": " + std::to_string(state.seed) + ",\n";
  out += "  \"world_size\": " + std::to_string(state.worldSize) + ",\n";
  out += "  \"best_val_loss\": " +
         (state.bestValLoss ? json::number(*state.bestValLoss) : std::string("null")) + ",\n";
  out += "  \"config_sha256\": " + json::quote(state.configSha256) + ",\n";
  out += "  \"config_text\": " + json::quote(state.configText) + "\n";
  out += "}\n";
  return out;
}

StatusOr<TrainerState> parseTrainerJson(std::string_view text, const std::string &what) {
  auto fail = [&](const std::string &message) {
    return Status(StatusCode::kDataLoss, what + ": " + message);
  };
  StatusOr<json::Value> parsed = json::parse(text);
  if (!parsed.ok())
    return fail(parsed.status().message());
  if (!parsed->isObject())
    return fail("expected a JSON object");
  const json::Value &root = *parsed;
  auto member = [&](const json::Value &object, const char *name,
                    const std::string &context) -> StatusOr<const json::Value *> {
    const json::Value *value = object.find(name);
    if (!value)
      return fail("missing member " + rt::quoted(context + name));
    return value;
  };
  auto unsignedMember = [&](const json::Value &object, const char *name,
                            const std::string &context) -> StatusOr<uint64_t> {
    FUSION_ASSIGN_OR_RETURN(const json::Value *value, member(object, name, context));
    std::optional<uint64_t> number = value->asUnsigned();
    if (!number)
      return fail("member " + rt::quoted(context + name) + " must be a non-negative integer, got " +
                  (value->isNumber() ? value->text : std::string(value->kindName())));
    return *number;
  };
  auto stringMember = [&](const json::Value &object, const char *name,
                          const std::string &context) -> StatusOr<std::string> {
    FUSION_ASSIGN_OR_RETURN(const json::Value *value, member(object, name, context));
    if (!value->isString())
      return fail("member " + rt::quoted(context + name) + " must be a string, got " +
                  value->kindName());
    return value->text;
  };

  TrainerState state;
  FUSION_ASSIGN_OR_RETURN(const json::Value *version, member(root, "format_version", ""));
  std::optional<uint64_t> versionNumber = version->asUnsigned();
  if (!versionNumber || *versionNumber != static_cast<uint64_t>(kTrainerFormatVersion))
    return fail("format_version " + (version->isNumber() ? version->text : version->kindName()) +
                ", this fusion-run reads format_version " + std::to_string(kTrainerFormatVersion));
  FUSION_ASSIGN_OR_RETURN(state.step, unsignedMember(root, "step", ""));
  FUSION_ASSIGN_OR_RETURN(state.tokensSeen, unsignedMember(root, "tokens_seen", ""));
  FUSION_ASSIGN_OR_RETURN(state.skippedSteps, unsignedMember(root, "skipped_steps", ""));
  FUSION_ASSIGN_OR_RETURN(state.consecutiveSkips, unsignedMember(root, "consecutive_skips", ""));
  if (state.skippedSteps > state.step || state.consecutiveSkips > state.skippedSteps)
    return fail("inconsistent step counts (step " + std::to_string(state.step) + ", skipped " +
                std::to_string(state.skippedSteps) + ", consecutive skips " +
                std::to_string(state.consecutiveSkips) + ")");
  FUSION_ASSIGN_OR_RETURN(const json::Value *data, member(root, "data", ""));
  if (!data->isObject())
    return fail("member 'data' must be an object");
  FUSION_ASSIGN_OR_RETURN(state.data.format, stringMember(*data, "format", "data."));
  FUSION_ASSIGN_OR_RETURN(state.data.sampling, stringMember(*data, "sampling", "data."));
  FUSION_ASSIGN_OR_RETURN(state.data.seed, unsignedMember(*data, "seed", "data."));
  if (data->find("shard_index") || data->find("pos")) {
    data::SequentialPosition position;
    FUSION_ASSIGN_OR_RETURN(position.shard, unsignedMember(*data, "shard_index", "data."));
    FUSION_ASSIGN_OR_RETURN(position.pos, unsignedMember(*data, "pos", "data."));
    state.data.position = position;
  }
  FUSION_ASSIGN_OR_RETURN(state.seed, unsignedMember(root, "seed", ""));
  FUSION_ASSIGN_OR_RETURN(uint64_t worldSize, unsignedMember(root, "world_size", ""));
  if (worldSize < 1 || worldSize > UINT32_MAX)
    return fail("world_size " + std::to_string(worldSize) + " out of range");
  state.worldSize = static_cast<uint32_t>(worldSize);
  FUSION_ASSIGN_OR_RETURN(const json::Value *best, member(root, "best_val_loss", ""));
  if (best->isNumber()) {
    std::optional<double> value = best->asDouble();
    if (!value)
      return fail("member 'best_val_loss' is not a number");
    state.bestValLoss = *value;
  } else if (best->kind != json::Value::Kind::kNull) {
    return fail(std::string("member 'best_val_loss' must be a number or null, got ") +
                best->kindName());
  }
  FUSION_ASSIGN_OR_RETURN(state.configSha256, stringMember(root, "config_sha256", ""));
  FUSION_ASSIGN_OR_RETURN(state.configText, stringMember(root, "config_text", ""));
  return state;
}

std::vector<std::pair<uint64_t, std::string>> listCheckpoints(const std::string &saveDir) {
  std::vector<std::pair<uint64_t, std::string>> out;
  std::error_code error;
  for (fs::directory_iterator it(saveDir, error), end; !error && it != end; it.increment(error)) {
    std::string name = it->path().filename().string();
    std::optional<uint64_t> step = stepOfName(name);
    if (step && it->is_directory(error))
      out.emplace_back(*step, it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

StatusOr<std::string> saveCheckpoint(Executor &executor, const TrainerState &state,
                                     const std::string &saveDir, uint64_t keepLast) {
  static uint64_t saves = 0;
  ++saves;
  bool killHalfway = killDuringCheckpoint() == saves;

  std::error_code error;
  fs::create_directories(saveDir, error);
  if (error)
    return Status(StatusCode::kUnavailable,
                  saveDir + ": cannot create the checkpoint directory: " + error.message());
  // Leftovers of interrupted saves are never complete checkpoints: remove them.
  for (fs::directory_iterator it(saveDir, error), end; !error && it != end; it.increment(error)) {
    std::string name = it->path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
        stepOfName(name.substr(0, name.size() - 4))) {
      std::error_code ignored;
      fs::remove_all(it->path(), ignored);
    }
  }

  std::string name = checkpointName(state.step);
  std::string finalDir = (fs::path(saveDir) / name).string();
  std::string tempDir = finalDir + ".tmp";
  fs::remove_all(tempDir, error);
  if (!fs::create_directory(tempDir, error) || error)
    return Status(StatusCode::kUnavailable,
                  tempDir + ": cannot create: " + (error ? error.message() : "exists"));

  const Plan &plan = executor.plan();
  FUSION_RETURN_IF_ERROR(writeTensorFile(executor, fileBuffers(plan, false),
                                         (fs::path(tempDir) / kModelFile).string(), state.step,
                                         killHalfway));
  FUSION_RETURN_IF_ERROR(writeTensorFile(executor, fileBuffers(plan, true),
                                         (fs::path(tempDir) / kOptimFile).string(), state.step,
                                         false));
  FUSION_RETURN_IF_ERROR(
      writeDurably((fs::path(tempDir) / kTrainerFile).string(), encodeTrainerJson(state)));
  FUSION_RETURN_IF_ERROR(writeDurably((fs::path(tempDir) / kPlanFile).string(),
                                      std::string(plan.bytes().begin(), plan.bytes().end())));
  FUSION_RETURN_IF_ERROR(fsyncDirectory(tempDir));

  // A checkpoint of the same step already exists (a re-save after resume): move it aside
  // first, since rename(2) cannot replace a non-empty directory.
  std::string aside;
  if (fs::exists(finalDir, error)) {
    aside = finalDir + ".old";
    fs::remove_all(aside, error);
    if (::rename(finalDir.c_str(), aside.c_str()) != 0)
      return errnoStatus("cannot move " + finalDir + " aside");
  }
  if (::rename(tempDir.c_str(), finalDir.c_str()) != 0)
    return errnoStatus("cannot rename " + tempDir + " to " + finalDir);
  FUSION_RETURN_IF_ERROR(fsyncDirectory(saveDir));

  std::string latestTemp = (fs::path(saveDir) / (std::string(kLatestFile) + ".tmp")).string();
  std::string latest = (fs::path(saveDir) / kLatestFile).string();
  FUSION_RETURN_IF_ERROR(writeDurably(latestTemp, name + "\n"));
  if (::rename(latestTemp.c_str(), latest.c_str()) != 0)
    return errnoStatus("cannot rename " + latestTemp + " to " + latest);
  FUSION_RETURN_IF_ERROR(fsyncDirectory(saveDir));
  if (!aside.empty())
    fs::remove_all(aside, error);

  if (keepLast > 0) {
    std::vector<std::pair<uint64_t, std::string>> all = listCheckpoints(saveDir);
    size_t excess = all.size() > keepLast ? all.size() - keepLast : 0;
    for (size_t i = 0; i < all.size() && excess > 0; ++i) {
      if (all[i].second == finalDir)
        continue;
      fs::remove_all(all[i].second, error);
      --excess;
    }
  }
  return finalDir;
}

StatusOr<std::string> resolveCheckpoint(const std::string &argument, const std::string &saveDir) {
  auto follow = [](const std::string &dir) -> StatusOr<std::string> {
    std::string latest = (fs::path(dir) / kLatestFile).string();
    StatusOr<std::string> text = readSmallFile(latest, 4096);
    if (!text.ok())
      return Status(StatusCode::kNotFound,
                    latest + ": cannot read (no checkpoint has been completed in " + dir + ")");
    std::string name = *text;
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' '))
      name.pop_back();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      return Status(StatusCode::kDataLoss,
                    latest + ": does not name a checkpoint directory (" + rt::quoted(name) + ")");
    std::string target = (fs::path(dir) / name).string();
    std::error_code error;
    if (!fs::is_directory(target, error))
      return Status(StatusCode::kNotFound,
                    latest + " names " + rt::quoted(name) + ", but " + target + " does not exist");
    return target;
  };
  if (argument == "latest")
    return follow(saveDir);
  std::error_code error;
  if (!fs::is_directory(argument, error))
    return Status(StatusCode::kNotFound, argument + ": no such checkpoint directory");
  if (!fs::exists(fs::path(argument) / kTrainerFile, error) &&
      fs::exists(fs::path(argument) / kLatestFile, error))
    return follow(argument);
  return argument;
}

StatusOr<TrainerState> loadCheckpoint(Executor &executor, const std::string &dir,
                                      const LoadOptions &options,
                                      std::vector<std::string> *warnings) {
  const Plan &plan = executor.plan();
  std::string trainerPath = (fs::path(dir) / kTrainerFile).string();
  FUSION_ASSIGN_OR_RETURN(std::string text, readSmallFile(trainerPath, 1u << 28));
  FUSION_ASSIGN_OR_RETURN(TrainerState state, parseTrainerJson(text, trainerPath));
  auto warn = [&](const std::string &message) {
    if (warnings)
      warnings->push_back(message);
  };

  if (state.configSha256 != options.configSha256) {
    std::string message = trainerPath + ": the checkpoint's config_sha256 " +
                          rt::quoted(state.configSha256) + " differs from the plan's " +
                          rt::quoted(options.configSha256);
    if (!options.force)
      return Status(StatusCode::kFailedPrecondition,
                    message + " (the plan was compiled from another config; pass "
                              "--force-resume to resume anyway)");
    warn(message + " (--force-resume)");
  }
  if (options.worldSize && state.worldSize != *options.worldSize) {
    // The weights are whole (NO_SHARD) whatever the rank count; the data stream is not.
    std::string message = trainerPath + ": the checkpoint was trained on " +
                          std::to_string(state.worldSize) + " rank(s), this run has " +
                          std::to_string(*options.worldSize) + ", so the data stream differs";
    if (!options.force)
      return Status(StatusCode::kFailedPrecondition,
                    message + "; run with --nproc " + std::to_string(state.worldSize) +
                        " (a plan compiled with --mesh dp=" + std::to_string(state.worldSize) +
                        "), or --force-resume");
    warn(message + " (--force-resume)");
  }

  // Verify both files completely before touching the executor.
  struct Load {
    const safetensors::File *file;
    const safetensors::TensorInfo *tensor;
    uint32_t buffer;
  };
  std::vector<Load> loads;
  std::unique_ptr<safetensors::File> files[2];
  for (int optim = 0; optim < 2; ++optim) {
    std::string path = (fs::path(dir) / (optim ? kOptimFile : kModelFile)).string();
    FUSION_ASSIGN_OR_RETURN(files[optim], safetensors::File::open(path));
    const safetensors::File &file = *files[optim];
    std::map<std::string, uint32_t> expected = fileBuffers(plan, optim);
    for (const auto &[name, id] : expected) {
      const BufferInfo &buffer = plan.buffers()[id];
      std::string label = "tensor " + rt::quoted(name) + " (buffer " + std::to_string(id) + ", " +
                          bufferRoleName(buffer.role) + " " + dtypeName(buffer.dtype) +
                          formatShape(buffer.shape) + ")";
      const safetensors::TensorInfo *tensor = file.find(name);
      if (!tensor)
        return Status(StatusCode::kDataLoss, path + ": missing " + label);
      if (tensor->dtype != diskDType(buffer.dtype))
        return Status(StatusCode::kDataLoss, path + ": " + label + " is stored as " +
                                                 tensor->dtype + ", expected " +
                                                 diskDType(buffer.dtype));
      if (tensor->shape != buffer.shape)
        return Status(StatusCode::kDataLoss, path + ": " + label + " has shape " +
                                                 formatShape(tensor->shape) + ", expected " +
                                                 formatShape(buffer.shape));
      loads.push_back({&file, tensor, id});
    }
    for (const safetensors::TensorInfo &tensor : file.tensors())
      if (!expected.count(tensor.name)) {
        std::string message = path + ": tensor " + rt::quoted(tensor.name) + " is not " +
                              (optim ? "an optimizer-state" : "a weight or model") +
                              " buffer of the plan";
        if (!options.force)
          return Status(StatusCode::kDataLoss,
                        message + " (a checkpoint of another model? --force-resume ignores it)");
        warn(message + " (ignored, --force-resume)");
      }
  }

  std::vector<uint8_t> bytes;
  for (const Load &load : loads) {
    FUSION_RETURN_IF_ERROR(load.file->read(*load.tensor, bytes));
    const BufferInfo &buffer = plan.buffers()[load.buffer];
    std::vector<uint8_t> stored = fromDisk(buffer, std::move(bytes));
    FUSION_RETURN_IF_ERROR(executor.writeBuffer(load.buffer, stored.data(), stored.size()));
    bytes.clear();
  }
  return state;
}

} // namespace fusion::rt::train
