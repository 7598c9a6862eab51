// A model argument is a local folder or file; hub ids (owner/name) are resolved by the hub module.
import * as fs from 'node:fs';
import { fail } from '../errors.js';

export async function resolveModelArg(arg: string): Promise<string> {
  if (fs.existsSync(arg)) return arg;
  fail(`${arg}: no such model folder or file`);
}
