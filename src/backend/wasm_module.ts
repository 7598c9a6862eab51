// The compiled kernel module (AssemblyScript, src/kernels/) and what the backend calls in it: the
// serial exports, and the parallel kernels the worker threads look up by index.
import { platform } from './platform.js';

// parallel kernels, by index (the worker looks them up by the same list)
export const PAR = [
  'mm_q8_0',
  'mm_rows',
  'mv_f16',
  'attention',
  'silu_mul',
  'add',
  'sigmoid_mul',
  'ssm_conv',
  'delta_net',
  'mm_kq',
  'mv_bf16',
  'matmul_t',
  'attention_back',
  'silu_mul_back',
  'layer_norm',
  'gelu',
] as const;
export const K_MM_Q8 = 0,
  K_MM_ROWS = 1,
  K_MV_F16 = 2,
  K_ATTN = 3,
  K_SILU = 4,
  K_ADD = 5,
  K_SIGMOID = 6,
  K_CONV = 7,
  K_DELTA = 8,
  K_MM_KQ = 9,
  K_MV_BF16 = 10,
  K_MATMUL_T = 11,
  K_ATTN_BACK = 12,
  K_SILU_BACK = 13,
  K_LAYER_NORM = 14,
  K_GELU = 15;

export interface Exports {
  init_tables(): void;
  quant_q8(x: number, T: number, K: number, xq: number, xd: number, mode: number, xs: number): void;
  q8_scratch_bytes(K: number): number;
  quant_q8k(x: number, T: number, K: number, xq: number, xd: number, xb: number, xw: number): void;
  quant_weights(dtIn: number, src: number, n: number, dtOut: number, dst: number, scratch: number): number;
  kq_scratch_bytes(K: number): number;
  scale_f32(dst: number, src: number, n: number, s: number): void;
  embed_rows(dtype: number, table: number, tokens: number, T: number, K: number, out: number): void;
  rms_norm(out: number, x: number, w: number, R: number, D: number, eps: number): void;
  rope_table(pos: number, T: number, nRot: number, inv: number, mscale: number, tab: number): void;
  rope(x: number, T: number, H: number, Dh: number, nRot: number, tab: number): void;
  delta_scratch_floats(dk: number, dv: number): number;
  add_bias(x: number, bias: number, T: number, N: number): void;
  f16_special(p: number, n: number): number;
  attention_scratch_floats(group: number, Dh: number, kvt: number): number;
  attention_tile(): number;
  kv_store(kvt: number, dst: number, src: number, n: number, width: number, scratch: number): number;
  copy_f32(dst: number, src: number, n: number): void;
  relaxed(): number;
  u8_dot_probe(a: number, b: number, c: number, out: number): void;
  mmt_chunks(dtype: number, K: number): number;
  mmt_scratch_bytes(dtype: number, K: number): number;
  attn_back_scratch_floats(maxLen: number, Dh: number): number;
}

const modules: { simd?: WebAssembly.Module; relaxed?: WebAssembly.Module | null } = {};

function wasmBytes(variant: 'simd' | 'relaxed'): Uint8Array<ArrayBuffer> {
  const b = platform().kernelBytes(variant);
  if (!b) throw new Error(`WasmBackend: kernels-${variant}.wasm not found (run \`npm run build\` to compile src/kernels)`);
  return b;
}

// once, before the first compile (Node: the optimising tier up front; see platform_node.ts)
let tieringSet = false;
function optimiseUpFront(): void {
  if (tieringSet) return;
  tieringSet = true;
  platform().beforeCompile?.();
}

/** The relaxed-SIMD module if this engine can run it (Node 20 needs a V8 flag, set here), else null. */
export function relaxedModule(): WebAssembly.Module | null {
  optimiseUpFront();
  if (modules.relaxed !== undefined) return modules.relaxed;
  const bytes = wasmBytes('relaxed');
  if (!WebAssembly.validate(bytes)) platform().enableRelaxedSimd?.();
  modules.relaxed = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  return modules.relaxed;
}

export function simdModule(): WebAssembly.Module {
  optimiseUpFront();
  return (modules.simd ??= new WebAssembly.Module(wasmBytes('simd')));
}
