// Reading config.json fields, for every config parser: one message shape for a missing or bad field.
import { fail, quote } from '../errors.js';

export type Obj = Record<string, unknown>;

/** `file: field 'name'`, the start of every field error. */
export const at = (src: string, f: string) => `${src}: field ${quote(f)}`;

export function posInt(src: string, o: Obj, f: string, dflt?: number): number {
  const v = o[f] ?? dflt;
  if (v === undefined) fail(`${at(src, f)} is missing`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) fail(`${at(src, f)} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function posNum(src: string, o: Obj, f: string, dflt?: number): number {
  const v = o[f] ?? dflt;
  if (v === undefined) fail(`${at(src, f)} is missing`);
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail(`${at(src, f)} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}
