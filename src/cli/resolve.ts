// A model argument is a local folder or file, or a hub id (owner/name[@revision], hf:/ms: prefix,
// owner/name/FILE.gguf) pulled into the cache on first use.
import * as fs from 'node:fs';
import { fail } from '../errors.js';
import { resolveModel } from '../hub/resolve.js';

export async function resolveModelArg(arg: string): Promise<string> {
  const p = await resolveModel(arg);
  if (fs.existsSync(p)) return p;
  fail(`${arg}: no such model folder or file, and not a hub id (owner/name)`);
}
