// Shared by the tokenize / detokenize / template commands: stdin and file reading with clear errors.
import * as fs from 'node:fs';
import { fail } from '../errors.js';

/** All of stdin as UTF-8 text, byte for byte (nothing trimmed, a leading BOM kept). */
export async function readStdinText(what = 'stdin'): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return decodeUtf8(Buffer.concat(chunks), what);
}

function decodeUtf8(b: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(b);
  } catch {
    fail(`${what} is not valid UTF-8 text`);
  }
}

/** A JSON file given on the command line ('-' reads stdin). */
export async function readJsonArg(file: string, option: string): Promise<unknown> {
  let text: string;
  if (file === '-') {
    text = await readStdinText(`${option} (stdin)`);
  } else {
    let raw: Buffer;
    try {
      raw = fs.readFileSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      fail(`${option} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a JSON file' : (e as Error).message}`);
    }
    text = decodeUtf8(raw, `${option} ${file}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    fail(`${option} ${file}: not valid JSON (${(e as Error).message})`);
  }
}

export function requireModel(model: string | undefined, usage: string): string {
  if (!model) fail(`--model is required (a model folder with tokenizer.json, a .gguf file, or a hub id owner/name)\n${usage}`);
  return model;
}
