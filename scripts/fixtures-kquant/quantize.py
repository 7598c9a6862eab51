#!/usr/bin/env python3
"""shared/peer/quantize.py plus --pure: llama.cpp's own quantiser (llama_model_quantize from the libllama
node-llama-cpp 3.22.1 ships, via ctypes), no importance matrix.

  python3 quantize.py IN.gguf OUT.gguf q5_k_s [--pure] [--threads 2]

--pure sets llama_model_quantize_params.pure (llama-quantize --pure): every 2-D tensor gets the type, no
mix rules (tensors whose rows are not a multiple of the block size still fall back).
Run from a folder holding node_modules/@node-llama-cpp/linux-x64 (a copy of shared/peer after npm install).
"""
import ctypes, os, sys, argparse

FTYPES = {"q2_k": 10, "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13, "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16,
          "q5_k_m": 17, "q6_k": 18, "q2_k_s": 21, "iq4_nl": 25, "iq4_xs": 30}
LIB = os.path.join(os.getcwd(), "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so")


class Params(ctypes.Structure):
    # llama.h (commit de3ff815): int32 nthread, enum ftype, enum output_tensor_type, enum token_embedding_type,
    # then bools allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, dry_run, ...
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int32), ("output_tensor_type", ctypes.c_int32),
                ("token_embedding_type", ctypes.c_int32), ("allow_requantize", ctypes.c_bool),
                ("quantize_output_tensor", ctypes.c_bool), ("only_copy", ctypes.c_bool), ("pure", ctypes.c_bool),
                ("_rest", ctypes.c_uint8 * 1024)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp"); ap.add_argument("out"); ap.add_argument("type", choices=sorted(FTYPES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pure", action="store_true")
    a = ap.parse_args()
    lib = ctypes.CDLL(LIB)
    lib.llama_backend_init.restype = None
    lib.llama_backend_init()
    lib.llama_model_quantize_default_params.restype = Params
    p = lib.llama_model_quantize_default_params()
    p.nthread, p.ftype, p.pure = a.threads, FTYPES[a.type], a.pure
    lib.llama_model_quantize.restype = ctypes.c_uint32
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
    if lib.llama_model_quantize(a.inp.encode(), a.out.encode(), ctypes.byref(p)) != 0:
        sys.exit("llama_model_quantize failed")


if __name__ == "__main__":
    main()
