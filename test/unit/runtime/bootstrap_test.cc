//===- bootstrap_test.cc - Rank environment, bootstrap exchange, launcher -===//
//
// The multi-process plumbing that needs no GPU: reading torchrun / Slurm variables, the TCP
// exchange that hands NCCL's unique id from rank 0 to the others (ranks as threads on
// localhost here), and the --nproc launcher (children are /bin/sh commands).
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/comm.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace fusion::rt;

namespace {

std::map<std::string, std::string> gEnv;

const char *fakeGetenv(const char *name) {
  auto it = gEnv.find(name);
  return it == gEnv.end() ? nullptr : it->second.c_str();
}

TEST(RankEnvironmentTest, NoVariablesIsASingleProcess) {
  gEnv = {};
  auto env = readRankEnvironment(fakeGetenv);
  ASSERT_TRUE(env.ok());
  EXPECT_FALSE(env->has_value());
}

TEST(RankEnvironmentTest, TorchrunVariables) {
  gEnv = {{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"},
          {"MASTER_PORT", "29501"}};
  auto env = readRankEnvironment(fakeGetenv);
  ASSERT_TRUE(env.ok()) << env.status().toString();
  ASSERT_TRUE(env->has_value());
  EXPECT_EQ((*env)->rank, 3);
  EXPECT_EQ((*env)->worldSize, 8);
  EXPECT_EQ((*env)->localRank, 1);
  EXPECT_EQ((*env)->masterAddr, "node0");
  // MASTER_PORT is torchrun's store: the bootstrap takes the next port.
  EXPECT_EQ((*env)->masterPort, 29502);
  EXPECT_EQ((*env)->source, "torchrun");
}

TEST(RankEnvironmentTest, SlurmVariables) {
  gEnv = {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "5"},
          {"SLURM_LAUNCH_NODE_IPADDR", "10.0.0.7"}};
  auto env = readRankEnvironment(fakeGetenv);
  ASSERT_TRUE(env.ok()) << env.status().toString();
  ASSERT_TRUE(env->has_value());
  EXPECT_EQ((*env)->rank, 5);
  EXPECT_EQ((*env)->worldSize, 16);
  EXPECT_EQ((*env)->masterAddr, "10.0.0.7");
  EXPECT_EQ((*env)->masterPort, 29500);
  EXPECT_EQ((*env)->source, "slurm");
}

TEST(RankEnvironmentTest, BadSetsNameTheVariable) {
  gEnv = {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}};
  auto missing = readRankEnvironment(fakeGetenv);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("MASTER_PORT is not set"), std::string::npos);
  gEnv = {{"RANK", "two"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}};
  auto garbled = readRankEnvironment(fakeGetenv);
  ASSERT_FALSE(garbled.ok());
  EXPECT_NE(garbled.status().message().find("RANK='two' is not an integer >= 0"),
            std::string::npos)
      << garbled.status().message();
  gEnv = {{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}};
  auto outside = readRankEnvironment(fakeGetenv);
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.status().message().find("rank 2 is not below the world size 2"),
            std::string::npos);
  gEnv = {{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}};
  auto noHost = readRankEnvironment(fakeGetenv);
  ASSERT_FALSE(noHost.ok());
  EXPECT_NE(noHost.status().message().find("set MASTER_ADDR"), std::string::npos);
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr *>(&address), length);
  ::getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

TEST(BootstrapTest, RankZeroHandsItsBlobToEveryRank) {
  int port = freePort();
  constexpr int kRanks = 4;
  std::string received[kRanks];
  Status statuses[kRanks];
  std::vector<std::thread> threads;
  // The other ranks start first: they retry until rank 0 listens.
  for (int r = kRanks - 1; r >= 0; --r)
    threads.emplace_back([&, r] {
      RankEnvironment env;
      env.rank = r;
      env.worldSize = kRanks;
      env.masterAddr = "127.0.0.1";
      env.masterPort = port;
      auto blob = exchangeBootstrapBlob(env, r == 0 ? std::string("nccl-id\0bytes", 13) : "",
                                        std::chrono::seconds(20));
      statuses[r] = blob.status();
      if (blob.ok())
        received[r] = *blob;
    });
  for (std::thread &t : threads)
    t.join();
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_TRUE(statuses[r].ok()) << "rank " << r << ": " << statuses[r].toString();
    EXPECT_EQ(received[r], std::string("nccl-id\0bytes", 13)) << "rank " << r;
  }
}

TEST(BootstrapTest, AMissingRankZeroTimesOutNamingTheAddress) {
  RankEnvironment env;
  env.rank = 1;
  env.worldSize = 2;
  env.masterAddr = "127.0.0.1";
  env.masterPort = freePort();
  auto blob = exchangeBootstrapBlob(env, "", std::chrono::milliseconds(300));
  ASSERT_FALSE(blob.ok());
  EXPECT_NE(blob.status().message().find("bootstrap (rank 1 of 2, 127.0.0.1:"), std::string::npos)
      << blob.status().message();
  EXPECT_NE(blob.status().message().find("could not reach rank 0"), std::string::npos);
}

TEST(LauncherTest, RelaunchCommandDropsTheLaunchersFlag) {
  const char *argv[] = {"fusion-run", "plan.fplan", "--nproc", "4", "--program", "main",
                        "--nproc=2", "--nprocs-like", "x"};
  std::vector<std::string> command =
      relaunchCommand(9, const_cast<char **>(argv), "--nproc");
  ASSERT_EQ(command.size(), 6u);
  EXPECT_NE(command[0].find('/'), std::string::npos) << "the executable's path: " << command[0];
  EXPECT_EQ(std::vector<std::string>(command.begin() + 1, command.end()),
            (std::vector<std::string>{"plan.fplan", "--program", "main", "--nprocs-like", "x"}));
}

TEST(LauncherTest, AllRanksSucceedAndSeeTheirVariables) {
  // Each child checks its own variables; any mismatch exits non-zero.
  std::vector<std::string> argv = {
      "/bin/sh", "-c",
      "test \"$WORLD_SIZE\" = 3 && test \"$LOCAL_RANK\" = \"$RANK\" && "
      "test \"$MASTER_ADDR\" = 127.0.0.1 && test -n \"$MASTER_PORT\" && "
      "test \"$FUSION_BOOTSTRAP_PORT\" = \"$MASTER_PORT\" && test \"$RANK\" -lt 3"};
  auto code = launchLocalRanks(argv, 3, std::chrono::seconds(5), stderr);
  ASSERT_TRUE(code.ok()) << code.status().toString();
  EXPECT_EQ(*code, 0);
}

TEST(LauncherTest, AFailingRankStopsTheOthers) {
  // Rank 1 fails at once; ranks 0 and 2 would sleep for a minute but are stopped.
  std::vector<std::string> argv = {"/bin/sh", "-c",
                                   "if [ \"$RANK\" = 1 ]; then exit 3; fi; exec sleep 60"};
  std::FILE *report = std::tmpfile();
  auto start = std::chrono::steady_clock::now();
  auto code = launchLocalRanks(argv, 3, std::chrono::seconds(5), report);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 3);
  EXPECT_LT(seconds, 30.0);
  std::rewind(report);
  char line[256] = {};
  ASSERT_TRUE(std::fgets(line, sizeof(line), report));
  EXPECT_STREQ(line, "fusion-run: rank 1 exited with status 3; stopping the other ranks\n");
  std::fclose(report);
}

} // namespace
