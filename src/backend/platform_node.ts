// The platform of Node, Bun and Deno: their modules come from process.getBuiltinModule (Node
// >= 20.16, Bun, Deno) rather than `import 'node:...'`, so that the backend's import graph holds no
// Node module and the same files load in a browser (which never calls this).
import type { Platform, PoolWorker, PoolWorkerData } from './platform.js';
import { WORKER_SOURCE } from './wasm_worker.js';
import { builtinGetter } from '../node_builtin.js';

export function nodePlatform(): Platform | null {
  const get = builtinGetter();
  if (!get) return null;
  const fs = get('node:fs') as typeof import('node:fs');
  const os = get('node:os') as typeof import('node:os');
  const v8 = get('node:v8') as typeof import('node:v8');
  const wt = get('node:worker_threads') as typeof import('node:worker_threads');
  return {
    name: 'node',
    cores: () => os.availableParallelism(),
    kernelBytes(variant) {
      const name = `kernels-${variant}.wasm`;
      const candidates = [new URL(`../kernels/${name}`, import.meta.url), new URL(`../../dist/src/kernels/${name}`, import.meta.url)];
      const dir = process.env.QWEN_TS_KERNELS_DIR; // development: A/B-test another kernel build
      if (dir) candidates.unshift(new URL(`file://${dir}/${name}`));
      for (const u of candidates) {
        if (!fs.existsSync(u)) continue;
        const b = fs.readFileSync(u);
        return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.length);
      }
      return null;
    },
    // The kernels are few and hot: compile them with the optimising tier straight away. With dynamic
    // tiering, long-running calls in worker threads stayed in the baseline tier (3-10x slower).
    beforeCompile: () => v8.setFlagsFromString('--no-liftoff'),
    enableRelaxedSimd: () => v8.setFlagsFromString('--experimental-wasm-relaxed-simd'),
    startPoolWorker(data: PoolWorkerData, onError: (message: string) => void): PoolWorker {
      const { port1, port2 } = new wt.MessageChannel();
      port1.unref();
      const w = new wt.Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [], // not the parent's (--input-type=module would make the source ESM, --import tsx is not needed)
        workerData: { ...data, port: port2 },
        transferList: [port2],
      });
      w.unref();
      w.on('error', (e) => onError(e instanceof Error ? e.message : String(e)));
      return {
        addMemory: (m) => port1.postMessage(m),
        terminate() {
          void w.terminate();
          port1.close();
        },
      };
    },
  };
}
