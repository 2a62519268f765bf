//===- plan_json_test.cc - Plan to JSON rendering tests -------------------===//
//
// `fusion-run --dump-plan` output is what serializer tests FileCheck, so its shape matters:
// strict JSON in schema field order, defaults printed, enums by name, and cubin images
// replaced by their byte count so the dump stays readable.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/plan.h"
#include "test/unit/runtime/test_plan_builder.h"

#include <gtest/gtest.h>

using namespace fusion::rt;
using namespace fusion::rt::testing;
using schema::DType;

namespace {

PlanBuilder planWithCubins() {
  PlanBuilder plan;
  plan.mesh.push_back({"dp", 1});
  uint32_t x = plan.addBuffer("x", DType::BF16, {4});
  uint32_t fill = plan.addKernel("fill_x", "fill", {AttrDesc::number("value", 0.5)});
  plan.kernels[fill].entry = "fusion_fill";
  plan.kernels[fill].cubins.push_back({"sm_80", std::vector<uint8_t>(1000, 0xab)});
  plan.kernels[fill].cubins.push_back({"sm_90a", std::vector<uint8_t>(12345, 0xcd)});
  plan.addProgram("main").add(launchOp(fill, {}, {x}, {4}), "model.yaml:1:2");
  return plan;
}

TEST(PlanJsonTest, RendersSchemaFieldsAndSummarizesCubins) {
  auto plan = Plan::loadBytes(planWithCubins().finish(), "p.fplan");
  ASSERT_TRUE(plan.ok()) << plan.status().toString();
  auto json = (*plan)->toJson();
  ASSERT_TRUE(json.ok()) << json.status().toString();
  const std::string &text = *json;
  EXPECT_NE(text.find("\"schema_version\": " + std::to_string(kSchemaVersion)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\"compiler_version\": \"fusion-rt-tests\""), std::string::npos);
  EXPECT_NE(text.find("\"dtype\": \"BF16\""), std::string::npos);
  EXPECT_NE(text.find("\"kind\": \"fill\""), std::string::npos);
  EXPECT_NE(text.find("\"op_type\": \"Launch\""), std::string::npos);
  EXPECT_NE(text.find("\"int_args\": ["), std::string::npos);
  EXPECT_NE(text.find("\"loc\": \"model.yaml:1:2\""), std::string::npos);
  // Defaults are printed even though the builder did not store them.
  EXPECT_NE(text.find("\"shared_mem_bytes\": 0"), std::string::npos);
  // Images are summarized, in kernel/cubin order, and their bytes are gone.
  size_t first = text.find("\"image\": \"<1000 bytes>\"");
  size_t second = text.find("\"image\": \"<12345 bytes>\"");
  EXPECT_NE(first, std::string::npos) << text;
  EXPECT_NE(second, std::string::npos) << text;
  EXPECT_LT(first, second);
  EXPECT_EQ(text.find("171"), std::string::npos) << "raw image bytes (0xab) leaked";
  EXPECT_LT(text.size(), 4000u);
}

TEST(PlanJsonTest, IsDeterministicAndKeepsThePlanIntact) {
  std::vector<uint8_t> bytes = planWithCubins().finish();
  auto plan = Plan::loadBytes(bytes, "p.fplan");
  ASSERT_TRUE(plan.ok());
  auto first = (*plan)->toJson();
  auto second = (*plan)->toJson();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  // Rendering works on a copy: the loaded plan still has its full images.
  EXPECT_EQ((*plan)->bytes(), bytes);
  EXPECT_EQ((*plan)->root().kernels()->Get(0)->cubins()->Get(1)->image()->size(), 12345u);
}

TEST(PlanJsonTest, RejectsStringsThatAreNotUtf8) {
  PlanBuilder builder = planWithCubins();
  builder.buffers[0].name = "bad\xff\xfename";
  auto plan = Plan::loadBytes(builder.finish(), "p.fplan");
  ASSERT_TRUE(plan.ok()) << "names are opaque bytes to the loader";
  auto json = (*plan)->toJson();
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().message(),
            "p.fplan: cannot print the plan as JSON (a string in it is not valid UTF-8)");
}

} // namespace
