//===- bootstrap.cc - Rank environment, bootstrap exchange, local launcher -===//
//
// What a multi-process job needs before NCCL can start: the rank variables (torchrun's or
// Slurm's), a one-blob TCP exchange from rank 0 to the other ranks (NCCL's unique id), and
// the `--nproc N` launcher that starts N copies of a command as one job on this host.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/comm.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fusion::rt {

namespace {

Status invalid(const std::string &message) {
  return Status(StatusCode::kInvalidArgument, message);
}

/// Parses a non-negative decimal integer variable.
StatusOr<int> parseVariable(const char *name, const char *value, int minimum) {
  char *end = nullptr;
  errno = 0;
  long parsed = std::strtol(value, &end, 10);
  if (!*value || *end || errno || parsed < minimum || parsed > 1 << 24)
    return invalid(std::string("environment variable ") + name + "=" + quoted(value) +
                   " is not an integer >= " + std::to_string(minimum));
  return static_cast<int>(parsed);
}

/// Closes a socket on scope exit.
struct Socket {
  int fd = -1;
  Socket() = default;
  explicit Socket(int f) : fd(f) {}
  Socket(const Socket &) = delete;
  Socket &operator=(const Socket &) = delete;
  ~Socket() {
    if (fd >= 0)
      ::close(fd);
  }
};

std::string systemError(const std::string &what) { return what + ": " + std::strerror(errno); }

/// Writes all of `data`.
bool sendAll(int fd, const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  while (size) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/// Reads exactly `size` bytes before `deadline`.
bool receiveAll(int fd, void *data, size_t size,
                std::chrono::steady_clock::time_point deadline) {
  char *p = static_cast<char *>(data);
  while (size) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      continue;
    ssize_t n = ::recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/// Magic and version of the exchange, so a stray connection is recognised.
constexpr uint32_t kBootstrapMagic = 0x46534231; // "FSB1"

} // namespace

StatusOr<std::optional<RankEnvironment>>
readRankEnvironment(const char *(*getenvFn)(const char *)) {
  auto get = [&](const char *name) -> const char * {
    return getenvFn ? getenvFn(name) : std::getenv(name);
  };
  RankEnvironment env;
  if (get("RANK") || get("WORLD_SIZE")) {
    env.source = "torchrun";
    for (const char *name : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"})
      if (!get(name))
        return invalid(std::string("environment variable ") + name +
                       " is not set, but RANK / WORLD_SIZE are (torchrun-style launch: set "
                       "RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)");
    FUSION_ASSIGN_OR_RETURN(env.rank, parseVariable("RANK", get("RANK"), 0));
    FUSION_ASSIGN_OR_RETURN(env.worldSize, parseVariable("WORLD_SIZE", get("WORLD_SIZE"), 1));
    if (const char *local = get("LOCAL_RANK")) {
      FUSION_ASSIGN_OR_RETURN(env.localRank, parseVariable("LOCAL_RANK", local, 0));
    } else {
      env.localRank = env.rank;
    }
    env.masterAddr = get("MASTER_ADDR");
    FUSION_ASSIGN_OR_RETURN(env.masterPort, parseVariable("MASTER_PORT", get("MASTER_PORT"), 1));
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    env.source = "slurm";
    FUSION_ASSIGN_OR_RETURN(env.rank, parseVariable("SLURM_PROCID", get("SLURM_PROCID"), 0));
    FUSION_ASSIGN_OR_RETURN(env.worldSize,
                            parseVariable("SLURM_NTASKS", get("SLURM_NTASKS"), 1));
    env.localRank = env.rank;
    if (const char *local = get("SLURM_LOCALID")) {
      FUSION_ASSIGN_OR_RETURN(env.localRank, parseVariable("SLURM_LOCALID", local, 0));
    }
    const char *addr = get("MASTER_ADDR") ? get("MASTER_ADDR") : get("SLURM_LAUNCH_NODE_IPADDR");
    if (!addr)
      return invalid("Slurm launch without MASTER_ADDR or SLURM_LAUNCH_NODE_IPADDR: set "
                     "MASTER_ADDR to rank 0's host");
    env.masterAddr = addr;
    env.masterPort = 29500;
    if (const char *port = get("MASTER_PORT")) {
      FUSION_ASSIGN_OR_RETURN(env.masterPort, parseVariable("MASTER_PORT", port, 1));
    }
  } else {
    return std::optional<RankEnvironment>();
  }
  // The bootstrap port: FUSION_BOOTSTRAP_PORT when set (our launcher sets it); under
  // torchrun MASTER_PORT is torchrun's own store, so the next port; under Slurm MASTER_PORT.
  if (const char *port = get("FUSION_BOOTSTRAP_PORT")) {
    FUSION_ASSIGN_OR_RETURN(env.masterPort, parseVariable("FUSION_BOOTSTRAP_PORT", port, 1));
  } else if (env.source == "torchrun") {
    ++env.masterPort;
  }
  if (env.rank >= env.worldSize)
    return invalid("rank " + std::to_string(env.rank) + " is not below the world size " +
                   std::to_string(env.worldSize) + " (" + env.source + " variables)");
  if (env.masterPort > 65535)
    return invalid("MASTER_PORT " + std::to_string(env.masterPort) + " is not a TCP port");
  return std::optional<RankEnvironment>(env);
}

StatusOr<std::string> exchangeBootstrapBlob(const RankEnvironment &env, const std::string &blob,
                                            std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string where = env.masterAddr + ":" + std::to_string(env.masterPort);
  auto fail = [&](const std::string &message) {
    return Status(StatusCode::kUnavailable,
                  "bootstrap (rank " + std::to_string(env.rank) + " of " +
                      std::to_string(env.worldSize) + ", " + where + "): " + message);
  };
  if (env.worldSize == 1)
    return blob;
  if (env.rank == 0) {
    Socket listener(::socket(AF_INET, SOCK_STREAM, 0));
    if (listener.fd < 0)
      return fail(systemError("socket"));
    int one = 1;
    ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons(static_cast<uint16_t>(env.masterPort));
    if (::bind(listener.fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) < 0)
      return fail(systemError("cannot listen on port " + std::to_string(env.masterPort)));
    if (::listen(listener.fd, 128) < 0)
      return fail(systemError("listen"));
    uint32_t header[2] = {kBootstrapMagic, static_cast<uint32_t>(blob.size())};
    for (int served = 1; served < env.worldSize;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return fail("only " + std::to_string(served - 1) + " of " +
                    std::to_string(env.worldSize - 1) + " ranks connected within " +
                    std::to_string(timeout.count() / 1000) + " s");
      pollfd pfd{listener.fd, POLLIN, 0};
      int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (ready <= 0)
        continue;
      Socket peer(::accept(listener.fd, nullptr, nullptr));
      if (peer.fd < 0)
        continue;
      if (sendAll(peer.fd, header, sizeof(header)) && sendAll(peer.fd, blob.data(), blob.size()))
        ++served;
    }
    return blob;
  }
  // Other ranks: resolve, then connect until rank 0 listens.
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *resolved = nullptr;
  if (int error = ::getaddrinfo(env.masterAddr.c_str(), std::to_string(env.masterPort).c_str(),
                                &hints, &resolved))
    return fail(std::string("cannot resolve MASTER_ADDR: ") + ::gai_strerror(error));
  std::string lastError = "no attempt";
  while (std::chrono::steady_clock::now() < deadline) {
    Socket connection(::socket(AF_INET, SOCK_STREAM, 0));
    if (connection.fd >= 0 &&
        ::connect(connection.fd, resolved->ai_addr, resolved->ai_addrlen) == 0) {
      uint32_t header[2] = {0, 0};
      std::string received;
      bool ok = receiveAll(connection.fd, header, sizeof(header), deadline) &&
                header[0] == kBootstrapMagic;
      if (ok) {
        received.resize(header[1]);
        ok = receiveAll(connection.fd, received.data(), received.size(), deadline);
      }
      ::freeaddrinfo(resolved);
      if (!ok)
        return fail("rank 0 accepted the connection but sent no valid bootstrap message");
      return received;
    }
    lastError = std::strerror(errno);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::freeaddrinfo(resolved);
  return fail("could not reach rank 0 within " + std::to_string(timeout.count() / 1000) +
              " s (last error: " + lastError + ")");
}

std::vector<std::string> relaunchCommand(int argc, char **argv, std::string_view flag) {
  std::vector<std::string> args;
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  args.push_back(n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string(argv[0]));
  std::string withValue = std::string(flag) + "=";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == flag) {
      ++i; // and its value
      continue;
    }
    if (arg.substr(0, withValue.size()) == withValue)
      continue;
    args.emplace_back(arg);
  }
  return args;
}

StatusOr<int> launchLocalRanks(const std::vector<std::string> &argv, int nproc,
                               std::chrono::milliseconds grace, std::FILE *report) {
  if (argv.empty())
    return invalid("launchLocalRanks: no command");
  if (nproc < 1)
    return invalid("launchLocalRanks: nproc must be >= 1");
  // A free port for rank 0: bind port 0, read it back, release it.
  int port = 0;
  {
    Socket probe(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (probe.fd < 0 || ::bind(probe.fd, reinterpret_cast<sockaddr *>(&address), length) < 0 ||
        ::getsockname(probe.fd, reinterpret_cast<sockaddr *>(&address), &length) < 0)
      return Status(StatusCode::kUnavailable, systemError("launcher: cannot find a free port"));
    port = ntohs(address.sin_port);
  }
  std::vector<char *> args;
  for (const std::string &arg : argv)
    args.push_back(const_cast<char *>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<pid_t> children;
  auto killAll = [&](int signal) {
    for (pid_t child : children)
      if (child > 0)
        ::kill(child, signal);
  };
  for (int rank = 0; rank < nproc; ++rank) {
    pid_t pid = ::fork();
    if (pid < 0) {
      killAll(SIGTERM);
      return Status(StatusCode::kUnavailable, systemError("launcher: fork"));
    }
    if (pid == 0) {
      std::string r = std::to_string(rank), n = std::to_string(nproc), p = std::to_string(port);
      ::setenv("RANK", r.c_str(), 1);
      ::setenv("LOCAL_RANK", r.c_str(), 1);
      ::setenv("WORLD_SIZE", n.c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", n.c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", p.c_str(), 1);
      ::setenv("FUSION_BOOTSTRAP_PORT", p.c_str(), 1);
      ::execv(args[0], args.data());
      std::fprintf(stderr, "launcher: cannot run %s: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
    children.push_back(pid);
  }
  std::optional<int> firstFailure;
  int remaining = nproc;
  bool stopping = false; // a rank failed: the others were sent SIGTERM
  std::chrono::steady_clock::time_point killDeadline;
  while (remaining > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (pid < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pid == 0) { // WNOHANG (only while stopping) and nobody exited yet
      if (std::chrono::steady_clock::now() > killDeadline) {
        killAll(SIGKILL);
        stopping = false;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      continue;
    }
    auto it = std::find(children.begin(), children.end(), pid);
    if (it == children.end())
      continue;
    int rank = static_cast<int>(it - children.begin());
    *it = -1;
    --remaining;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && !firstFailure) {
      firstFailure = code;
      if (report)
        std::fprintf(report, "fusion-run: rank %d %s; stopping the other ranks\n", rank,
                     WIFEXITED(status)
                         ? ("exited with status " + std::to_string(code)).c_str()
                         : ("was killed by signal " + std::to_string(WTERMSIG(status))).c_str());
      killAll(SIGTERM);
      stopping = true;
      killDeadline = std::chrono::steady_clock::now() + grace;
    }
  }
  return firstFailure.value_or(0);
}

#if !FUSION_RT_HAVE_NCCL
bool isNcclBuilt() { return false; }

StatusOr<std::unique_ptr<Communicator>> createNcclCommunicator(const RankEnvironment &,
                                                               std::chrono::milliseconds) {
  return Status(StatusCode::kUnavailable,
                "this build has no NCCL (no CUDA toolkit with NCCL was found at build time)");
}
#endif

} // namespace fusion::rt
