// Start an HTTP server on host:port for serve and web: a port in use is one line, not a stack.
import type { Server } from 'node:http';
import { fail } from '../errors.js';

/** Listen, and return the base URL it answers at (http://host:port, IPv6 in brackets). */
export async function listenOn(server: Server, port: number, host: string | undefined): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is already in use`) : e));
    server.listen(port, host, resolve);
  }).catch((e: Error) => fail(e.message));
  const addr = server.address();
  return typeof addr === 'object' && addr ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : String(addr);
}

/** The --port option of serve and web: an integer 0..65535 (0: any free port). */
export function parsePort(value: string | undefined): number {
  const port = Number(value);
  if (!value?.trim() || !Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got '${value}'`);
  return port;
}
