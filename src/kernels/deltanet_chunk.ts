// The chunked form of the gated delta rule (prefill): TODO
export function chunk_scratch_floats(dk: i32, dv: i32): i32 {
  return 0;
}

export function delta_chunked(out: usize, qkv: usize, a: usize, b: usize, A: usize, dtBias: usize, rows: usize, n: i32, S: usize, nk: i32, nv: i32, dk: i32, dv: i32, j: i32, kh: i32, eps: f32, scratch: usize): void {
  unreachable();
}
