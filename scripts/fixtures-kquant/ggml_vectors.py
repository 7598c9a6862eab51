#!/usr/bin/env python3
"""Known blocks from ggml itself: quantise a few 256-wide f32 rows with ggml_quantize_chunk and decode
them with dequantize_row_* of the libggml-base node-llama-cpp 3.22.1 ships (llama.cpp de3ff815), via ctypes.

  python3 ggml_vectors.py OUT_DIR      (run from a folder holding node_modules/@node-llama-cpp/linux-x64)

Writes input.f32 (ROWS x 256 little-endian f32) and, per type, TYPE.bin (ggml's blocks: what
llama-quantize writes without an importance matrix, i.e. quantize_row_*_ref for the K-quants and
quantize_iq4_nl / quantize_iq4_xs with ntry 7 for IQ4) and TYPE.deq.f32 (ggml's dequantisation of them).
"""
import ctypes, os, sys
import numpy as np

LIB = os.path.join(os.getcwd(), "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so")
TYPES = {"q2_k": (10, 84, 256), "q3_k": (11, 110, 256), "q4_k": (12, 144, 256), "q5_k": (13, 176, 256),
         "q6_k": (14, 210, 256), "iq4_nl": (20, 18, 32), "iq4_xs": (23, 136, 256)}
K = 256


def rows():
    g = np.random.default_rng(20240611)
    r = [g.normal(0, 1, K),                                  # plain
         g.normal(0, 0.02, K),                               # weight-like scale
         g.uniform(-1, 1, K),
         g.standard_t(2, K) * 0.05,                          # heavy tails
         np.zeros(K),                                        # all zero: scale 0 paths
         np.full(K, 0.37),                                   # constant: max == min paths
         g.normal(0, 1e-6, K),                               # f16-subnormal scales
         np.where(np.arange(K) == 77, 40.0, g.normal(0, 0.01, K)),  # one outlier
         g.normal(0.5, 0.1, K),                              # all positive (min > 0)
         -np.abs(g.normal(0, 1, K)),                         # all negative
         np.round(g.normal(0, 3, K)),                        # integers: exact-tie rounding
         np.concatenate([np.zeros(128), g.normal(0, 1, 128)]),  # zero sub-blocks next to live ones
         ]
    return np.stack(r).astype(np.float32)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    lib = ctypes.CDLL(LIB)
    x = np.ascontiguousarray(rows())
    x.tofile(os.path.join(out, "input.f32"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    for name, (t, bb, bs) in TYPES.items():
        lib.ggml_quantize_init(t)
        q = np.zeros(x.shape[0] * (K // bs) * bb, np.uint8)
        n = lib.ggml_quantize_chunk(t, x.ctypes.data, q.ctypes.data, 0, x.shape[0], K, None)
        assert n == q.size, (name, n, q.size)
        y = np.zeros(x.size, np.float32)
        deq = getattr(lib, f"dequantize_row_{name[:-1] + name[-1].upper() if name[1] != 'q' else name}")
        deq.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        deq(q.ctypes.data, y.ctypes.data, x.size)
        q.tofile(os.path.join(out, f"{name}.bin"))
        y.tofile(os.path.join(out, f"{name}.deq.f32"))
        print(name, q.size, "bytes")


if __name__ == "__main__":
    main()
