// Lazy, bounds-checked access to a model file: headers are read on open, tensor bytes only
// when asked for, straight into the caller's buffer (so weights are copied once, file -> memory).
import { nodeFs } from '../node_builtin.js';
import { fail, quote } from '../errors.js';
import type { DType } from './dtype.js';

/** One stored tensor: where its bytes are and what they mean. Shape in [rows, cols] order. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** absolute byte offset in `file` */
  offset: number;
  byteLength: number;
  file: string;
}

/** A set of tensors readable on demand (one safetensors file, a sharded set, or a GGUF file). */
export interface TensorSource {
  readonly path: string;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** Read a tensor's raw bytes into `dst` (length must equal byteLength). */
  readInto(name: string, dst: Uint8Array): void;
  /** Read dst.length bytes of a tensor from byte `start` of it (so a big tensor can be converted in pieces). */
  readRange?(name: string, start: number, dst: Uint8Array): void;
  close(): void;
}

/** Bytes at an offset of a file, an HTTP resource or a Blob (the parsers read headers through it). */
export interface ByteReader {
  readonly path: string;
  readonly size: number;
  /** Read exactly dst.length bytes at `offset`, or fail naming what was being read. */
  readAt<T extends Uint8Array>(offset: number, dst: T, what: string): T;
  close(): void;
}

/** A file read by path (Node, Bun, Deno). */
export class FileReader implements ByteReader {
  readonly fd: number;
  readonly size: number;
  private readonly fs = nodeFs();
  constructor(readonly path: string) {
    const fs = this.fs;
    this.fd = fs.openSync(path, 'r');
    this.size = fs.fstatSync(this.fd).size;
  }
  /** Read exactly dst.length bytes at `offset`, or fail naming what was being read. */
  readAt<T extends Uint8Array>(offset: number, dst: T, what: string): T {
    if (offset < 0 || offset + dst.length > this.size) {
      fail(`${this.path}: ${what} lies past the end of the file (needs bytes ${offset}..${offset + dst.length}, file has ${this.size}); the file is truncated or corrupt`);
    }
    let done = 0;
    while (done < dst.length) {
      // readSync takes at most 2 GiB at a time
      const n = this.fs.readSync(this.fd, dst, done, Math.min(dst.length - done, 1 << 30), offset + done);
      if (n <= 0) fail(`${this.path}: unexpected end of file while reading ${what}`);
      done += n;
    }
    return dst;
  }
  close(): void {
    this.fs.closeSync(this.fd);
  }
}

export function readTensorInto(reader: ByteReader, info: TensorInfo, dst: Uint8Array): void {
  if (dst.length !== info.byteLength) {
    throw new Error(`readTensorInto ${info.name}: destination has ${dst.length} bytes, tensor has ${info.byteLength}`);
  }
  reader.readAt(info.offset, dst, `tensor ${quote(info.name)}`);
}

export function readTensorRange(reader: ByteReader, info: TensorInfo, start: number, dst: Uint8Array): void {
  if (start < 0 || start + dst.length > info.byteLength) {
    throw new Error(`readTensorRange ${info.name}: bytes ${start}..${start + dst.length} are outside the tensor's ${info.byteLength}`);
  }
  reader.readAt(info.offset + start, dst, `tensor ${quote(info.name)}`);
}
