//===- plan_json.cc - Rendering a verified plan as JSON -------------------===//
//
// `fusion-run --dump-plan` and the serializer tests print plans as JSON through FlatBuffers'
// own text generator, driven by the schema text embedded at build time, so the JSON always
// follows the schema (field names, order, enum names) without a hand-written printer.
// Cubin images would dominate the output (one line per byte), so the generator runs on a
// copy of the plan whose image vectors have their length set to 0, and each resulting empty
// `"image"` array is then replaced by the string "<N bytes>". Only verified plans get here:
// the generator itself does not validate what it prints.
//
//===----------------------------------------------------------------------===//

#include "fusion/rt/plan.h"
#include "runtime/schema/schema_text.h"

#include <flatbuffers/idl.h>

#include <cstring>

namespace fusion::rt {

StatusOr<std::string> Plan::toJson() const {
  flatbuffers::IDLOptions options;
  options.strict_json = true;
  options.indent_step = 2;
  // Print every scalar, defaults included, so dumps do not depend on whether the writer
  // stored default values (force_defaults) and FileCheck lines can rely on them.
  options.output_default_scalars_in_json = true;
  flatbuffers::Parser parser(options);
  if (!parser.Parse(kPlanSchemaText))
    return Status(StatusCode::kInternal,
                  "the embedded plan schema does not parse: " + parser.error_);

  // Truncate every cubin image in a copy (remember the sizes, in the generator's print order:
  // kernels in order, cubins in order). The vector's 32-bit length prefix is what a
  // flatbuffers::Vector pointer points at.
  std::vector<uint8_t> copy = bytes_;
  std::vector<uint32_t> imageSizes;
  if (root_->kernels())
    for (const schema::Kernel *kernel : *root_->kernels()) {
      if (!kernel->cubins())
        continue;
      for (const schema::Cubin *cubin : *kernel->cubins()) {
        const uint8_t *lengthField = reinterpret_cast<const uint8_t *>(cubin->image());
        imageSizes.push_back(cubin->image()->size());
        uint32_t zero = 0;
        std::memcpy(copy.data() + (lengthField - bytes_.data()), &zero, sizeof(zero));
      }
    }

  std::string json;
  if (!GenerateText(parser, copy.data(), &json))
    return Status(StatusCode::kDataLoss,
                  displayName_ + ": cannot print the plan as JSON (a string in it is not "
                                 "valid UTF-8)");

  // Replace the emptied arrays. The key is always at the start of a line (after indentation)
  // in the generator's output, and a raw newline cannot occur inside a JSON string, so
  // matching "\n<spaces>\"image\": [" only finds the cubin fields.
  std::string out;
  out.reserve(json.size());
  size_t pos = 0;
  const std::string key = "\"image\": [";
  for (uint32_t size : imageSizes) {
    size_t found = pos;
    while ((found = json.find(key, found)) != std::string::npos) {
      size_t lineStart = json.rfind('\n', found);
      if (lineStart != std::string::npos &&
          json.find_first_not_of(' ', lineStart + 1) == found)
        break;
      found += key.size();
    }
    size_t close = found == std::string::npos ? found : json.find(']', found + key.size());
    size_t arrayStart = found + key.size();
    if (close == std::string::npos ||
        json.find_first_not_of(" \n", arrayStart) != close)
      return Status(StatusCode::kInternal, "unexpected JSON layout around a cubin image");
    out.append(json, pos, found - pos);
    out += "\"image\": \"<" + std::to_string(size) + " bytes>\"";
    pos = close + 1;
  }
  out.append(json, pos, std::string::npos);
  return out;
}

} // namespace fusion::rt
