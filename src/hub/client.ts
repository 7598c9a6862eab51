// What pull needs from a hub: the file list at a revision, where and how to fetch and verify one
// file, and a readable message for each HTTP refusal.
import type { HubName } from './ids.js';
import type { RemoteFile } from './select.js';
import { printable } from '../errors.js';
import type { HttpStatusError, Opened } from './http.js';
import type { HashKind } from './download.js';

export interface Listing {
  /** the revision asked for, and the snapshot (commit) it resolved to */
  revision: string;
  commit: string;
  files: RemoteFile[];
}

export interface FilePlan {
  url: string;
  size: number;
  /** blob name (the expected digest); undefined when the hub gives no hash */
  blobName?: string;
  hash?: { kind: HashKind; hex: string };
  check?: (o: Opened) => void;
}

export interface HubClient {
  readonly hub: HubName;
  /** the hub's base URL, for messages */
  readonly base: string;
  readonly authHeaders: Record<string, string>;
  list(repo: string, revision: string): Promise<Listing>;
  plan(repo: string, listing: Listing, f: RemoteFile): Promise<FilePlan>;
  explain(e: HttpStatusError, ctx: { repo: string; revision: string; file?: string }): Error;
}

/** `error` / `Message` from a JSON error body, if there is one. */
export function bodyMessage(body: string): string | undefined {
  try {
    const j = JSON.parse(body) as { error?: unknown; Message?: unknown; message?: unknown };
    const m = j.error ?? j.Message ?? j.message;
    return typeof m === 'string' && m ? printable(m, 500) : undefined;
  } catch {
    return body.trim() ? printable(body.trim(), 200) : undefined;
  }
}

export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}
