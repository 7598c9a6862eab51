// A Node module (fs, path, crypto, ...) fetched when first needed, through process.getBuiltinModule
// (Node >= 20.16, Bun, Deno), instead of a static `import 'node:...'`: the files that read models by
// path stay loadable in a browser (qwen-ts/browser), where only these path-based calls fail, with
// an error that says what to use there.
type GetBuiltin = (id: string) => unknown;

/** process.getBuiltinModule, or undefined in a runtime without Node modules (a browser). */
export function builtinGetter(): GetBuiltin | undefined {
  const get = (globalThis as { process?: { getBuiltinModule?: GetBuiltin } }).process?.getBuiltinModule;
  return typeof get === 'function' ? get : undefined;
}

export function nodeBuiltin<T>(id: string): T {
  const get = builtinGetter();
  if (!get) throw new Error(`qwen.ts: reading files by path needs Node (>= 20.16), Bun or Deno (${id} is not available here); in a browser, load a model from a URL, File or hub id (qwen-ts/browser)`);
  return get(id) as T;
}

/** node:fs and node:path, the modules the path-based readers and writers use. */
export const nodeFs = () => nodeBuiltin<typeof import('node:fs')>('node:fs');
export const nodePath = () => nodeBuiltin<typeof import('node:path')>('node:path');
