#!/usr/bin/env python3
"""Compare two fusion-run checkpoints tensor by tensor (standard library only).

    scripts/compare_checkpoints.py CKPT_A CKPT_B [--max-rel-l2 TOL] [--files model,optim]

Reads model.safetensors and optim.safetensors of both checkpoint directories (f32, bf16 or
f16 tensors), checks that they hold the same tensors with the same dtypes and shapes, and
prints per file: the number of tensors, how many are bit-identical, the largest absolute
difference (and its tensor) and the relative L2 distance ||A - B|| / ||A|| over the whole
file. Exits 1 when a file's relative L2 distance exceeds TOL (default 0: bit-identical
required), 2 on unreadable or mismatched checkpoints. Used by the data-parallel
equivalence test (test/integration/train_dp.test) to compare a dp=N run with its
single-rank reference.
"""
import argparse
import array
import json
import math
import os
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        chunk = data[begin:end]
        dtype = info["dtype"]
        if dtype == "F32":
            values = array.array("f")
            values.frombytes(chunk)
        elif dtype in ("BF16", "F16"):
            halves = array.array("H")
            halves.frombytes(chunk)
            if dtype == "BF16":
                values = array.array("f")
                values.frombytes(b"".join(struct.pack("<I", h << 16) for h in halves))
            else:
                values = array.array("f", (struct.unpack("<e", struct.pack("<H", h))[0] for h in halves))
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        tensors[name] = (dtype, info["shape"], values, chunk)
    return tensors


def compare(path_a, path_b):
    a, b = read_safetensors(path_a), read_safetensors(path_b)
    if sorted(a) != sorted(b):
        only_a = sorted(set(a) - set(b))[:3]
        only_b = sorted(set(b) - set(a))[:3]
        raise ValueError(f"{path_a} and {path_b} hold different tensors "
                         f"(only in A: {only_a}, only in B: {only_b})")
    identical = 0
    diff2 = norm2 = 0.0
    worst = (0.0, "")
    for name in sorted(a):
        da, sa, va, ra = a[name]
        db, sb, vb, rb = b[name]
        if (da, sa) != (db, sb):
            raise ValueError(f"tensor {name}: {da}{sa} in A, {db}{sb} in B")
        if ra == rb:
            identical += 1
            norm2 += sum(x * x for x in va)
            continue
        for x, y in zip(va, vb):
            d = abs(x - y)
            diff2 += d * d
            norm2 += x * x
            if d > worst[0] or math.isnan(d):
                worst = (d, name)
    rel = math.sqrt(diff2 / norm2) if norm2 > 0 else (0.0 if diff2 == 0 else math.inf)
    return len(a), identical, worst, rel


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--max-rel-l2", type=float, default=0.0)
    parser.add_argument("--files", default="model,optim")
    args = parser.parse_args()
    failed = False
    for stem in args.files.split(","):
        pa = os.path.join(args.a, stem + ".safetensors")
        pb = os.path.join(args.b, stem + ".safetensors")
        try:
            count, identical, (worst, where), rel = compare(pa, pb)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
            print(f"compare_checkpoints: error: {error}", file=sys.stderr)
            return 2
        verdict = "ok" if rel <= args.max_rel_l2 else "DIFFERENT"
        print(f"{stem}: {count} tensors, {identical} bit-identical, max |diff| {worst:.3g}"
              f"{' (' + where + ')' if where else ''}, rel L2 {rel:.3g}: {verdict}")
        failed = failed or rel > args.max_rel_l2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
