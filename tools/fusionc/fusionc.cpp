//===- fusionc.cpp - the FusionLLM compiler driver ------------------------===//
//
// Part of the FusionLLM compiler.
//
// fusionc reads a model (fusion IR, or fplan IR directly), runs the compilation phases in
// order (compiler/Pipeline) up to --compile-to, and writes either the IR of that phase or,
// at the last phase, the plan file that fusion-run executes.
//
//===----------------------------------------------------------------------===//

#include "compiler/Pipeline/Pipeline.h"
#include "compiler/Target/Flatbuffer/PlanWriter.h"
#include "dialects/Fusion/IR/FusionDialect.h"
#include "dialects/Plan/IR/PlanDialect.h"
#include "frontend/Spec/ConfigSpec.h"
#include "frontend/Spec/CostModel.h"
#include "frontend/Spec/Report.h"
#include "models/ModelBuilder.h"
#include "llvm/Support/SHA256.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include <array>

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::fusion;
namespace cl = llvm::cl;
namespace spec = ::fusion::spec;

static cl::OptionCategory fusioncCategory("fusionc options");

static cl::opt<std::string> inputFilename(cl::Positional,
                                          cl::desc("<model config .yaml | input .mlir>"),
                                          cl::Required, cl::cat(fusioncCategory));
static cl::opt<std::string>
    outputFilename("o", cl::desc("Output file: the plan (.fplan) at --compile-to=emit, else "
                                 "the IR of the phase (default: stdout for IR, "
                                 "<input>.fplan for plans)"),
                   cl::value_desc("file"), cl::cat(fusioncCategory));
static cl::opt<std::string>
    compileTo("compile-to",
              cl::desc("Stop after this phase and print its IR: input, train, plan, codegen, or "
                       "emit (the default: write the plan file)"),
              cl::value_desc("phase"), cl::init("emit"), cl::cat(fusioncCategory));
static cl::opt<std::string>
    dumpPhasesTo("dump-phases-to",
                 cl::desc("Write the IR after each phase to DIR/NN-<phase>.mlir"),
                 cl::value_desc("dir"), cl::cat(fusioncCategory));
static cl::opt<std::string>
    targetName("target",
               cl::desc("Backend the plan is for: cpu (portable op descriptions only) or "
                        "cuda (also CUDA kernels compiled by nvcc into cubins)"),
               cl::value_desc("cpu|cuda"), cl::init("cpu"), cl::cat(fusioncCategory));
static cl::opt<std::string> dumpKernelsTo("dump-kernels-to",
                                          cl::desc("Write each generated CUDA kernel to "
                                                   "DIR/<kernel>.cu"),
                                          cl::value_desc("dir"), cl::cat(fusioncCategory));
static cl::opt<std::string> nvccPath("nvcc",
                                     cl::desc("nvcc to use (default: PATH, then "
                                              "/usr/local/cuda/bin/nvcc)"),
                                     cl::value_desc("path"), cl::cat(fusioncCategory));
static cl::opt<std::string>
    kernelCacheDir("kernel-cache-dir",
                   cl::desc("Cache of compiled cubins, keyed by a hash of source and flags "
                            "(default: the user cache directory, fusionc/kernels)"),
                   cl::value_desc("dir"), cl::cat(fusioncCategory));
static cl::opt<bool> noKernelCache("no-kernel-cache", cl::desc("Always run nvcc"),
                                   cl::cat(fusioncCategory));
static cl::list<std::string> cudaArchs("cuda-arch",
                                       cl::desc("GPU architectures to compile for, in the "
                                                "order the runtime prefers them "
                                                "(default: sm_90a,sm_80)"),
                                       cl::CommaSeparated, cl::cat(fusioncCategory));
static cl::opt<int64_t> blockSize("cuda-block-size",
                                  cl::desc("Threads per block of elementwise kernels"),
                                  cl::init(256), cl::cat(fusioncCategory));
static cl::opt<std::string>
    memoryBudget("memory-budget",
                 cl::desc("Fail if the plan's arenas need more than this many bytes "
                          "(suffixes K, M, G, T = powers of 1024; e.g. 80G)"),
                 cl::value_desc("bytes"), cl::cat(fusioncCategory));
static cl::opt<bool> embedMlir("embed-mlir",
                               cl::desc("Store the final fplan IR text inside the plan"),
                               cl::cat(fusioncCategory));
static cl::opt<unsigned> schemaVersionOverride(
    "plan-schema-version-override",
    cl::desc("Write this schema version instead of the real one (tests the runtime's "
             "version check)"),
    cl::init(kPlanSchemaVersion), cl::Hidden, cl::cat(fusioncCategory));
static cl::opt<bool> report("report",
                            cl::desc("Print the model report of a YAML config (parameters, "
                                     "FLOPs per token, memory) and exit"),
                            cl::cat(fusioncCategory));
static cl::opt<std::string>
    meshText("mesh",
             cl::desc("The device mesh. Compiling a training plan: data parallelism over dp "
                      "ranks (fusion-shard-fsdp; run the plan with fusion-run --nproc D). With "
                      "--report: also estimate a distributed step on this mesh, e.g. dp=64,ep=8 "
                      "(dp ranks, FSDP over dp, experts sharded over ep; ep divides dp and "
                      "n_routed_experts): per-rank memory, FLOPs, bytes per collective, "
                      "roofline step time with overlap. Plans support ep=1 only so far"),
             cl::value_desc("dp=D,ep=E"), cl::cat(fusioncCategory));
static cl::opt<std::string>
    fsdpStrategy("fsdp",
                 cl::desc("With --mesh dp=D (D > 1): the sharding strategy, overriding the "
                          "config's distributed.fsdp_shard_strategy: no_shard (replicate + "
                          "all-reduce; built), full_shard or shard_grad_op (not built yet)"),
                 cl::value_desc("strategy"), cl::cat(fusioncCategory));
static cl::opt<bool> scheduleComm(
    "schedule-comm",
    cl::desc("Run collectives on their own stream, waited for where their bytes are next used "
             "(fplan-schedule-comm; default on, =false keeps them in line on stream 0)"),
    cl::init(true), cl::cat(fusioncCategory));
static cl::opt<std::string> gpuName("gpu",
                                    cl::desc("With --mesh: the GPU of the estimate (h100, h200; "
                                             "default h100)"),
                                    cl::value_desc("name"), cl::init("h100"),
                                    cl::cat(fusioncCategory));
static cl::opt<std::string>
    modeName("mode",
             cl::desc("What to compile: train (init, train_step, eval_step: backward pass and "
                      "optimizer; score, logits and decode_step for evaluation and "
                      "generation), forward (init, forward), grad (init, forward, forward_grad "
                      "returning every parameter gradient, for fusion-run --gradcheck; also "
                      "logits and decode_step), or "
                      "auto (the default: train for a YAML config, forward for .mlir)"),
             cl::value_desc("auto|train|forward|grad"), cl::init("auto"), cl::cat(fusioncCategory));
static cl::opt<bool> aliasReshapes(
    "alias-reshapes",
    cl::desc("Turn reshape copies into views of their input's bytes where nothing writes "
             "either afterwards (fplan-alias-reshapes; default on, =false keeps the copies)"),
    cl::init(true), cl::cat(fusioncCategory));
static cl::opt<bool> fuseElementwise(
    "fuse-elementwise",
    cl::desc("Fold chains of elementwise launches (casts, activations, residual adds, gates) "
             "into single fused_elementwise launches (fplan-fuse-elementwise; default on, "
             "=false keeps every launch)"),
    cl::init(true), cl::cat(fusioncCategory));
static cl::opt<bool> fuseSoftcapCe("fuse-softcap-ce",
                                   cl::desc("Fuse softcapped heads with their cross-entropy "
                                            "(train mode; default on)"),
                                   cl::init(true), cl::cat(fusioncCategory));
static cl::opt<bool> verbose("v", cl::desc("Print each phase and the nvcc cache statistics"),
                             cl::cat(fusioncCategory));

namespace {

/// The batch-size / sequence-length ramps (MODEL.md §13): for every shape the ramps visit
/// besides the steady state, builds the model at that shape in a module of its own, runs the
/// train phase there and moves its @train_step into `module` as @train_step_b{B}_t{T}
/// (parameters and optimizer state have the same names in both modules, so the copy updates
/// the same buffers). The runtime switches programs by the config's shape_schedule.
LogicalResult addRampPrograms(ModuleOp module, const spec::ParsedConfig &parsed,
                              const llvm::SourceMgr &sourceMgr, const PipelineOptions &options,
                              bool verbose) {
  std::vector<spec::ShapeSegment> schedule = spec::getShapeSchedule(parsed.config);
  const spec::ShapeSegment &steady = schedule.back();
  llvm::StringSet<> done;
  MLIRContext *context = module.getContext();
  for (const spec::ShapeSegment &segment : schedule) {
    if (segment.rows == steady.rows && segment.seqLen == steady.seqLen)
      continue;
    std::string name =
        llvm::formatv("train_step_b{0}_t{1}", segment.rows, segment.seqLen).str();
    if (!done.insert(name).second)
      continue;
    if (verbose)
      llvm::errs() << "fusionc: ramp shape " << segment.rows << " x " << segment.seqLen
                   << " (from step " << segment.firstStep << ") -> @" << name << "\n";
    models::ModelBuilder builder(context, parsed, sourceMgr);
    builder.setShape(segment.rows, segment.seqLen);
    OwningOpRef<ModuleOp> side = builder.build(/*inference=*/false);
    PassManager pm(context);
    buildPhasePipeline(pm, Phase::Train, options);
    if (failed(pm.run(*side)))
      return failure();
    auto step = side->lookupSymbol<func::FuncOp>("train_step");
    if (!step)
      return module.emitError("fusionc: the ramp shape ")
             << segment.rows << " x " << segment.seqLen << " produced no @train_step";
    step->remove();
    step.setSymName(name);
    module.getBody()->push_back(step);
  }
  return verify(module);
}

/// Writes `module` to `path`, creating directories as needed.
LogicalResult writeIR(ModuleOp module, StringRef path) {
  if (path != "-") {
    StringRef parent = llvm::sys::path::parent_path(path);
    if (std::error_code ec = parent.empty() ? std::error_code()
                                            : llvm::sys::fs::create_directories(parent)) {
      llvm::errs() << "fusionc: error: cannot create directory '" << parent
                   << "': " << ec.message() << "\n";
      return failure();
    }
  }
  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> out = openOutputFile(path, &error);
  if (!out) {
    llvm::errs() << "fusionc: error: " << error << "\n";
    return failure();
  }
  module.print(out->os());
  out->os() << "\n";
  out->keep();
  return success();
}

int run(MLIRContext &context) {
  std::optional<Phase> stopAt = parsePhase(compileTo);
  if (!stopAt) {
    llvm::errs() << "fusionc: error: unknown phase '" << compileTo << "' for --compile-to; "
                 << "phases: input, train, plan, codegen, emit\n";
    return 2;
  }
  PipelineOptions options;
  if (targetName == "cuda")
    options.target = Target::Cuda;
  else if (targetName != "cpu") {
    llvm::errs() << "fusionc: error: unknown --target '" << targetName
                 << "'; targets: cpu, cuda\n";
    return 2;
  }
  if (blockSize <= 0 || blockSize > 1024 || (blockSize & (blockSize - 1)) != 0) {
    llvm::errs() << "fusionc: error: --cuda-block-size must be a power of two in [1, 1024], "
                 << "got " << blockSize << "\n";
    return 2;
  }
  options.cudaBlockSize = blockSize;
  options.fuseSoftcapCe = fuseSoftcapCe;
  if (!memoryBudget.empty()) {
    StringRef text = memoryBudget;
    int64_t scale = 1;
    for (auto [suffix, factor] : {std::pair<char, int64_t>{'K', 1ll << 10}, {'M', 1ll << 20},
                                  {'G', 1ll << 30}, {'T', 1ll << 40}})
      if (text.ends_with_insensitive(StringRef(&suffix, 1)))
        text = text.drop_back(), scale = factor;
    uint64_t value = 0;
    if (text.getAsInteger(10, value) || value == 0 ||
        value > uint64_t(INT64_MAX) / uint64_t(scale)) {
      llvm::errs() << "fusionc: error: --memory-budget must be a positive byte count such as "
                   << "80G or 1048576, got '" << memoryBudget << "'\n";
      return 2;
    }
    options.memoryBudget = int64_t(value) * scale;
  }
  if (modeName != "auto" && modeName != "train" && modeName != "forward" &&
      modeName != "grad") {
    llvm::errs() << "fusionc: error: unknown --mode '" << modeName
                 << "'; modes: auto, train, forward, grad\n";
    return 2;
  }
  std::optional<spec::MeshSpec> planMesh;
  if (!meshText.empty() && !report) {
    if (modeName == "forward" || modeName == "grad") {
      llvm::errs() << "fusionc: error: --mesh applies to training plans (--mode=train), not "
                      "--mode="
                   << modeName << "\n";
      return 2;
    }
    std::string problem;
    planMesh = spec::parseMesh(meshText, problem);
    if (!planMesh) {
      llvm::errs() << "fusionc: error: --mesh: " << problem << "\n";
      return 2;
    }
    if (planMesh->ep != 1) {
      llvm::errs() << "fusionc: error: --mesh " << meshText
                   << ": expert parallelism (ep > 1, fusion-expert-parallel) is not built yet; "
                      "plans support dp only (--report estimates any mesh)\n";
      return 2;
    }
    options.dataParallel = planMesh->dp;
  }
  if (fsdpStrategy.getNumOccurrences()) {
    if (!planMesh) {
      llvm::errs() << "fusionc: error: --fsdp applies with --mesh dp=D when compiling a plan\n";
      return 2;
    }
    if (fsdpStrategy != "no_shard" && fsdpStrategy != "full_shard" &&
        fsdpStrategy != "shard_grad_op") {
      llvm::errs() << "fusionc: error: unknown --fsdp '" << fsdpStrategy
                   << "'; strategies: no_shard, full_shard, shard_grad_op\n";
      return 2;
    }
  }
  if (gpuName.getNumOccurrences() && meshText.empty()) {
    llvm::errs() << "fusionc: error: --gpu only applies with --report --mesh\n";
    return 2;
  }
  options.gradientsOnly = modeName == "grad";
  options.scheduleComm = scheduleComm;
  options.aliasReshapes = aliasReshapes;
  options.fuseElementwise = fuseElementwise;
  // 1. Parse and verify the input: a YAML model config (built into fusion IR by the
  //    model builders) or an .mlir file.
  std::string error;
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);
  OwningOpRef<ModuleOp> module;
  std::optional<spec::ParsedConfig> parsed;
  StringRef extension = llvm::sys::path::extension(inputFilename);
  if (extension == ".yaml" || extension == ".yml") {
    parsed = spec::parseConfigFile(inputFilename, sourceMgr);
    if (!parsed)
      return 1;
    if (report) {
      spec::printReport(parsed->config, llvm::outs());
      if (meshText.empty())
        return 0;
      std::string problem;
      std::optional<spec::MeshSpec> mesh = spec::parseMesh(meshText, problem);
      std::optional<spec::GpuSpec> gpu;
      if (mesh)
        gpu = spec::lookupGpu(gpuName, problem);
      if (!mesh || !gpu) {
        llvm::errs() << "fusionc: error: --" << (mesh ? "gpu" : "mesh") << ": " << problem
                     << "\n";
        return 2;
      }
      std::optional<spec::CostReport> cost =
          spec::estimateCost(parsed->config, *mesh, *gpu, problem);
      if (!cost) {
        llvm::errs() << "fusionc: error: --mesh=" << meshText << ": " << problem << "\n";
        return 1;
      }
      llvm::outs() << "\n";
      spec::printCostReport(parsed->config, *mesh, *gpu, *cost, llvm::outs());
      return 0;
    }
    // A plan runs on the ranks of its mesh, which replaces distributed.n_gpus (W_dp: the
    // balance loss's share of the row mean, MODEL.md §5, divides by it).
    int64_t planRanks = planMesh ? planMesh->dp : 1;
    if (parsed->config.distributed.nGpus != planRanks && !planMesh &&
        parsed->config.distributed.nGpus > 1)
      llvm::errs() << "fusionc: note: compiling a single-rank plan; the config's "
                      "distributed.n_gpus = "
                   << parsed->config.distributed.nGpus << " applies with --mesh dp="
                   << parsed->config.distributed.nGpus << "\n";
    parsed->config.distributed.nGpus = planRanks;
    // Training and gradient plans also carry the inference programs (@logits,
    // @decode_step).
    bool withInference = modeName != "forward";
    module = models::ModelBuilder(&context, *parsed, sourceMgr).build(withInference);
    // The config text and its hash travel into the plan (checkpoints compare the hash).
    StringRef text = sourceMgr.getMemoryBuffer(parsed->bufferId)->getBuffer();
    std::array<uint8_t, 32> digest = llvm::SHA256::hash(
        ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(text.data()), text.size()));
    auto config = (*module)->getAttrOfType<DictionaryAttr>("fusion.config");
    NamedAttrList entries(config);
    entries.set("config_text", StringAttr::get(&context, text));
    entries.set("config_sha256", StringAttr::get(&context, llvm::toHex(digest, true)));
    (*module)->setAttr("fusion.config", entries.getDictionary(&context));
    options.train = modeName != "forward";
    if (planMesh && planMesh->dp > 1) {
      // The strategy: --fsdp, else the config's.
      std::string strategy = fsdpStrategy.getNumOccurrences()
                                 ? fsdpStrategy.getValue()
                                 : StringRef(parsed->config.distributed.fsdpShardStrategy).lower();
      if (strategy != "no_shard") {
        llvm::errs() << "fusionc: error: --mesh " << meshText << ": fsdp_shard_strategy "
                     << (fsdpStrategy.getNumOccurrences()
                             ? strategy + " (--fsdp)"
                             : parsed->config.distributed.fsdpShardStrategy + " (the config's)")
                     << " is not built yet (ZeRO sharding with NorMuon matrix owners); "
                        "--fsdp=no_shard replicates the weights and all-reduces the "
                        "gradients\n";
        return 1;
      }
      options.fsdpStrategy = strategy;
    }
    if (failed(verify(*module)))
      return 1;
  } else {
    if (report) {
      llvm::errs() << "fusionc: error: --report needs a YAML model config, got '"
                   << inputFilename << "'\n";
      return 2;
    }
    std::unique_ptr<llvm::MemoryBuffer> file = openInputFile(inputFilename, &error);
    if (!file) {
      llvm::errs() << "fusionc: error: " << error << "\n";
      return 1;
    }
    sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
    if (!module)
      return 1;
    options.train = modeName == "train" || modeName == "grad";
    if (planMesh && planMesh->dp > 1) {
      if (!options.train) {
        llvm::errs() << "fusionc: error: --mesh applies to training plans: compile the .mlir "
                        "with --mode=train\n";
        return 2;
      }
      options.fsdpStrategy = fsdpStrategy.getNumOccurrences() ? fsdpStrategy.getValue()
                                                              : std::string("no_shard");
    }
  }

  // 2. Run the phases up to --compile-to, dumping each.
  unsigned index = 0;
  for (Phase phase : getAllPhases()) {
    ++index;
    if (verbose)
      llvm::errs() << llvm::formatv("fusionc: [{0}/{1}] {2}\n", index, getAllPhases().size(),
                                    getPhaseName(phase));
    if (failed(checkPhaseInput(*module, phase)))
      return 1;
    if (phase == Phase::Emit)
      break;
    PassManager pm(&context);
    if (failed(applyPassManagerCLOptions(pm)))
      return 1;
    buildPhasePipeline(pm, phase, options);
    if (failed(pm.run(*module)))
      return 1;
    if (phase == Phase::Train && parsed && options.train && !options.gradientsOnly &&
        failed(addRampPrograms(*module, *parsed, sourceMgr, options, verbose)))
      return 1;
    if (!dumpPhasesTo.empty()) {
      SmallString<256> path(dumpPhasesTo);
      llvm::sys::path::append(path, llvm::formatv("{0:02}-{1}.mlir", index, getPhaseName(phase)).str());
      if (failed(writeIR(*module, path)))
        return 1;
    }
    if (phase == *stopAt)
      return failed(writeIR(*module, outputFilename.empty() ? std::string("-") : outputFilename.getValue())) ? 1 : 0;
  }

  // 3. Write the plan.
  PlanWriterOptions writerOptions;
  writerOptions.embedCubins = options.target == Target::Cuda;
  if (!cudaArchs.empty())
    writerOptions.archs.assign(cudaArchs.begin(), cudaArchs.end());
  writerOptions.nvcc.nvccPath = nvccPath;
  if (!noKernelCache) {
    SmallString<256> cache(kernelCacheDir);
    if (cache.empty() && llvm::sys::path::cache_directory(cache))
      llvm::sys::path::append(cache, "fusionc", "kernels");
    writerOptions.nvcc.cacheDir = std::string(cache);
  }
  writerOptions.kernelDumpDir = dumpKernelsTo;
  writerOptions.embedSourceMlir = embedMlir;
  writerOptions.compilerVersion = "fusionc " FUSION_VERSION;
  writerOptions.schemaVersion = schemaVersionOverride;

  std::string outPath = outputFilename;
  if (outPath.empty()) {
    SmallString<256> derived(inputFilename == "-" ? std::string("out") : inputFilename.getValue());
    llvm::sys::path::replace_extension(derived, "fplan");
    outPath = std::string(derived);
  }
  std::unique_ptr<llvm::ToolOutputFile> out = openOutputFile(outPath, &error);
  if (!out) {
    llvm::errs() << "fusionc: error: " << error << "\n";
    return 1;
  }
  cuda::NvccStats stats;
  if (failed(writePlan(*module, writerOptions, out->os(), stats)))
    return 1; // the ToolOutputFile removes the partial output
  out->keep();
  if (verbose)
    llvm::errs() << "fusionc: wrote " << outPath << " (" << stats.compiled
                 << " nvcc compile(s), " << stats.cacheHits << " kernel cache hit(s))\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  cl::SetVersionPrinter([](llvm::raw_ostream &os) { os << "fusionc " FUSION_VERSION "\n"; });
  cl::ParseCommandLineOptions(
      argc, argv,
      "fusionc: the FusionLLM compiler\n\n"
      "  fusionc configs/smoke.yaml -o smoke.fplan     the training plan (init, train_step, eval_step)\n"
      "  fusionc configs/smoke.yaml --compile-to=input  the model's forward + loss as fusion IR\n"
      "  fusionc configs/smoke.yaml --compile-to=train  ... plus backward pass and optimizer\n"
      "  fusionc configs/smoke.yaml --report          parameters, FLOPs/token, memory\n"
      "  fusionc configs/fusionllm-7b.yaml --report --mesh dp=64,ep=8 --gpu h100\n"
      "                                               + per-rank memory, collectives, step time\n"
      "  fusionc model.mlir -o model.fplan            compile to a plan for fusion-run\n"
      "  fusionc model.mlir --compile-to=plan         print the IR after a phase\n"
      "  fusionc model.mlir --dump-phases-to=dumps    write the IR after every phase\n"
      "  fusionc model.mlir --target=cuda             embed nvcc-compiled CUDA kernels\n\n"
      "Phases, in order: input, train, plan, codegen, emit. MLIR's --mlir-print-ir-after-all and\n"
      "related flags also work.\n");

  DialectRegistry registry;
  registry.insert<FusionDialect, plan::FPlanDialect, func::FuncDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  return run(context);
}
