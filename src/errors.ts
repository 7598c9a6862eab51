// A user-facing error: the CLI prints its message (no stack) and exits non-zero.
// Messages name the file and the tensor / field / parameter at fault.
export class QwenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QwenError';
  }
}

export function fail(message: string): never {
  throw new QwenError(message);
}
