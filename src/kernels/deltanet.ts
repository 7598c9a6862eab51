// The gated delta rule of Qwen3.5's linear-attention layers (see src/backend/backend.ts deltaNet and
// ../shared/design/QWEN35.md §5-6). Work items are (sequence, value head) pairs; each item runs
// its sequence's rows in order on its own state matrix S [dk][dv], so items are independent and a
// sequence's result does not depend on the batch around it. Few rows: the recurrent form, one row
// at a time (deltanet_rec.ts); many rows: the chunked form, 64 rows at a time (deltanet_chunk.ts).
import { delta_chunked, chunk_scratch_floats } from './deltanet_chunk';
import { delta_step } from './deltanet_rec';

// params (i32): nk, nv, dk, dv, tiled, nspans, scratch stride (bytes), chunkMin
// desc: per sequence three i32: its row list (i32 row indices, increasing), row count, state [nv, dk, dv]

/** Scratch floats one part needs for heads of size dk, dv (the chunked form's buffers). */
export function delta_scratch_floats(dk: i32, dv: i32): i32 {
  return 2 * dk + chunk_scratch_floats(dk, dv);
}

/**
 * This part's share of the (sequence, head) items, dealt in order by cost (rows) so that a long
 * prefill's heads are spread over the parts as evenly as many short sequences are.
 */
export function delta_net(part: i32, parts: i32, out: usize, qkv: usize, a: usize, b: usize, A: usize, dtBias: usize, desc: usize, params: usize, eps: f32, scratch: usize): void {
  const nk = load<i32>(params), nv = load<i32>(params, 4), dk = load<i32>(params, 8), dv = load<i32>(params, 12);
  const tiled = load<i32>(params, 16), nspans = load<i32>(params, 20), sstride = load<i32>(params, 24), chunkMin = load<i32>(params, 28);
  scratch += <usize>part * sstride;
  let total: i64 = 0;
  for (let s = 0; s < nspans; s++) total += <i64>nv * (load<i32>(desc + <usize>s * 12, 4) + 2);
  if (total == 0) return;
  let pre: i64 = 0;
  for (let s = 0; s < nspans; s++) {
    const d = desc + <usize>s * 12;
    const rows = <usize>load<i32>(d), n = load<i32>(d, 4), state = <usize>load<i32>(d, 8);
    const cost = <i64>(n + 2);
    for (let j = 0; j < nv; j++, pre += cost) {
      if (<i32>(((2 * pre + cost) * parts) / (2 * total)) != part) continue;
      const kh = tiled ? j % nk : j / (nv / nk);
      const S = state + ((<usize>j * dk * dv) << 2);
      if (n >= chunkMin) delta_chunked(out, qkv, a, b, A, dtBias, rows, n, S, nk, nv, dk, dv, j, kh, eps, scratch);
      else {
        for (let r = 0; r < n; r++) {
          const t = load<i32>(rows + (<usize>r << 2));
          delta_step(out, qkv, a, b, A, dtBias, t, S, nk, nv, dk, dv, j, kh, eps, scratch);
        }
      }
    }
  }
}
