"""Flips each byte of a plan (xor 0xFF) in turn and runs fusion-run on the result.

Usage: flip_bytes.py PLAN SCRATCH FUSION_RUN. Prints counts of accepted / rejected /
crashed variants; a crash is any exit status other than 0 or 1, or a multi-line error.
"""
import subprocess
import sys

plan, scratch, tool = sys.argv[1], sys.argv[2], sys.argv[3]
data = bytearray(open(plan, "rb").read())
# The header and root table byte by byte, the rest sampled evenly (about 400 runs: the
# runtime's unit test flips every byte of a small plan in-process; this checks the tool).
positions = list(range(0, min(len(data), 256)))
positions += list(range(256, len(data), max(1, (len(data) - 256) // 150)))
accepted = rejected = crashed = 0
for pos in positions:
    flipped = bytearray(data)
    flipped[pos] ^= 0xFF
    with open(scratch, "wb") as f:
        f.write(flipped)
    r = subprocess.run([tool, scratch, "--program", "init", "--program", "main"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    err = r.stderr.decode(errors="replace").strip()
    if r.returncode == 0:
        accepted += 1
    elif r.returncode in (1, 2) and err.startswith("fusion-run: error:") and "\n" not in err:
        rejected += 1
    else:
        crashed += 1
        print(f"byte {pos}: exit {r.returncode}: {err[:200]}", file=sys.stderr)
print(f"variants {len(positions)} accepted {accepted} rejected {rejected} crashed {crashed}")
