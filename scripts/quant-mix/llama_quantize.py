#!/usr/bin/env python3
"""llama.cpp's own quantiser (llama_model_quantize from the libllama node-llama-cpp 3.22.1 ships, via
ctypes; no importance matrix), as shared/peer/quantize.py, plus --pure and --dry-run.

  python3 llama_quantize.py IN.gguf OUT.gguf q4_k_m [--pure] [--dry-run] [--allow-requantize] [--threads 2] [--peer DIR]

--dry-run sets llama_model_quantize_params.dry_run (llama-quantize --dry-run): nothing is written and
llama.cpp logs each tensor's chosen type on stderr; this script then prints `name TYPE` lines (ggml type
names upper-cased as qwen.ts spells them) on stdout, in llama.cpp's order. --peer: a folder holding
node_modules/@node-llama-cpp/linux-x64 (default: the current folder).
"""
import ctypes, os, re, sys, argparse, tempfile

FTYPES = {  # llama_ftype (llama.h)
    "f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k_s": 11,
    "q3_k_m": 12, "q3_k_l": 13, "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16, "q5_k_m": 17, "q6_k": 18,
    "iq4_nl": 25, "iq4_xs": 30, "bf16": 32,
}


class Params(ctypes.Structure):
    # llama.h (commit de3ff815): int32 nthread, enum ftype, enum output_tensor_type, enum token_embedding_type,
    # then bools allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, dry_run, then pointers;
    # the rest stays as llama_model_quantize_default_params wrote it into this oversized buffer
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int32), ("output_tensor_type", ctypes.c_int32),
                ("token_embedding_type", ctypes.c_int32), ("allow_requantize", ctypes.c_bool),
                ("quantize_output_tensor", ctypes.c_bool), ("only_copy", ctypes.c_bool), ("pure", ctypes.c_bool),
                ("keep_split", ctypes.c_bool), ("dry_run", ctypes.c_bool), ("_rest", ctypes.c_uint8 * 1024)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp"); ap.add_argument("out"); ap.add_argument("type", choices=sorted(FTYPES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pure", action="store_true")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--allow-requantize", action="store_true",
                    help="quantise from a quantised file (llama-quantize --allow-requantize; e.g. a random-weight Q8_0 benchmark file)")
    ap.add_argument("--peer", default=os.getcwd())
    a = ap.parse_args()
    lib = ctypes.CDLL(os.path.join(a.peer, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so"))
    lib.llama_backend_init.restype = None
    lib.llama_backend_init()
    lib.llama_model_quantize_default_params.restype = Params
    p = lib.llama_model_quantize_default_params()
    p.nthread, p.ftype, p.pure, p.dry_run = a.threads, FTYPES[a.type], a.pure, a.dry_run
    p.allow_requantize = a.allow_requantize
    lib.llama_model_quantize.restype = ctypes.c_uint32
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
    if not a.dry_run:
        if lib.llama_model_quantize(a.inp.encode(), a.out.encode(), ctypes.byref(p)) != 0:
            sys.exit("llama_model_quantize failed")
        return
    # llama.cpp's default logger writes to stderr (fd 2): catch it in a file, then parse its per-tensor lines
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush(); saved = os.dup(2); os.dup2(log.fileno(), 2)
        try:
            rc = lib.llama_model_quantize(a.inp.encode(), a.out.encode(), ctypes.byref(p))
        finally:
            os.dup2(saved, 2); os.close(saved)
        log.seek(0); text = log.read().decode("utf8", "replace")
    if rc != 0:
        sys.stderr.write(text); sys.exit("llama_model_quantize failed")
    # "[  12/ 290] blk.0.attn_v.weight - [ 896, 128, 1, 1], type = f16, size = 0.22 MiB -> 0.12 MiB (q8_0)"
    # or, kept as stored, "... type = f32, size = 0.003 MiB"
    line = re.compile(r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s+(\S+), size =\s+[\d.]+ MiB(?: ->\s+[\d.]+ MiB \((\S+)\))?", re.M)
    for m in line.finditer(text):
        print(m.group(1), (m.group(3) or m.group(2)).upper())


if __name__ == "__main__":
    main()
