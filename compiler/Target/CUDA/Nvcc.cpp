//===- Nvcc.cpp - compiling CUDA C++ to cubins ----------------------------===//
//
// Part of the FusionLLM compiler.
//
// The cache key is the SHA-256 of (nvcc path, arch, flags, source); a hit reads the cubin
// from <cacheDir>/<key>.cubin. Writes go through a uniquely named temporary file and a
// rename, so a killed fusionc never leaves a truncated cubin in the cache, and concurrent
// compiles (PlanWriter runs one nvcc per core) never share a temporary.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target/CUDA/Nvcc.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace mlir::fusion::cuda;

/// Resolves the nvcc binary.
static Expected<std::string> findNvcc(const NvccOptions &options) {
  if (!options.nvccPath.empty()) {
    if (!sys::fs::can_execute(options.nvccPath))
      return createStringError("nvcc '" + options.nvccPath + "' is not an executable");
    return options.nvccPath;
  }
  if (ErrorOr<std::string> found = sys::findProgramByName("nvcc"))
    return *found;
  if (sys::fs::can_execute("/usr/local/cuda/bin/nvcc"))
    return std::string("/usr/local/cuda/bin/nvcc");
  return createStringError("nvcc not found on PATH nor at /usr/local/cuda/bin/nvcc; "
                           "pass --nvcc=PATH or compile with --target=cpu");
}

static std::string readFileOrEmpty(const Twine &path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer = MemoryBuffer::getFile(path);
  return buffer ? (*buffer)->getBuffer().str() : std::string();
}

Expected<std::string> mlir::fusion::cuda::compileToCubin(StringRef source, StringRef arch,
                                                         const NvccOptions &options,
                                                         NvccStats &stats) {
  Expected<std::string> nvcc = findNvcc(options);
  if (!nvcc)
    return nvcc.takeError();
  SmallVector<std::string> flags = {"-cubin", "-O3", "-std=c++17", ("-arch=" + arch).str()};

  SHA256 hasher;
  hasher.update(*nvcc);
  for (const std::string &flag : flags)
    hasher.update(flag);
  hasher.update(source);
  std::string key = toHex(hasher.final(), /*LowerCase=*/true);
  SmallString<256> cached;
  if (!options.cacheDir.empty()) {
    cached = options.cacheDir;
    sys::path::append(cached, key + ".cubin");
    std::string image = readFileOrEmpty(cached);
    if (!image.empty()) {
      ++stats.cacheHits;
      return image;
    }
  }

  SmallString<128> srcPath, outPath, errPath;
  if (std::error_code ec = sys::fs::createTemporaryFile("fusion-kernel", "cu", srcPath))
    return createStringError("cannot create a temporary file: " + ec.message());
  FileRemover srcRemover(srcPath);
  sys::fs::createTemporaryFile("fusion-kernel", "cubin", outPath);
  FileRemover outRemover(outPath);
  sys::fs::createTemporaryFile("fusion-nvcc", "log", errPath);
  FileRemover errRemover(errPath);
  {
    std::error_code ec;
    raw_fd_ostream os(srcPath, ec);
    if (ec)
      return createStringError("cannot write " + srcPath + ": " + ec.message());
    os << source;
  }
  SmallVector<StringRef> argv = {*nvcc};
  for (const std::string &flag : flags)
    argv.push_back(flag);
  argv.append({"-o", outPath, srcPath});
  std::optional<StringRef> redirects[] = {std::nullopt, errPath.str(), errPath.str()};
  std::string execError;
  int rc = sys::ExecuteAndWait(*nvcc, argv, std::nullopt, redirects, /*SecondsToWait=*/0,
                               /*MemoryLimit=*/0, &execError);
  if (rc != 0) {
    std::string log = readFileOrEmpty(errPath);
    return createStringError("nvcc failed (exit " + std::to_string(rc) + ") for " + arch +
                             (execError.empty() ? "" : ": " + execError) + "\n" + log);
  }
  std::string image = readFileOrEmpty(outPath);
  if (image.empty())
    return createStringError("nvcc produced no cubin for " + arch);
  ++stats.compiled;

  if (!cached.empty() && !sys::fs::create_directories(options.cacheDir)) {
    // A unique temporary name: several fusionc processes and threads share the cache.
    SmallString<256> tmp;
    int fd = -1;
    std::error_code ec = sys::fs::createUniqueFile(cached + "-%%%%%%%%.tmp", fd, tmp);
    if (!ec) {
      raw_fd_ostream os(fd, /*shouldClose=*/true);
      os << image;
      os.close();
      ec = os.error();
      os.clear_error();
    }
    // A failed cache write only costs the next compile its hit.
    if (!ec && sys::fs::rename(tmp, cached))
      sys::fs::remove(tmp);
    else if (ec && !tmp.empty())
      sys::fs::remove(tmp);
  }
  return image;
}
