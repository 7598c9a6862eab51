// Stored /v1/responses answers (store: true, OpenAI's default), for previous_response_id, item
// references and GET /v1/responses/{id}: in memory, at most `capacity` of them and about `maxBytes`
// of JSON (input items a template drops, such as old reasoning, are not bounded by the context),
// the least recently used dropped first. Each keeps the whole conversation it continued, so a
// follow-up needs only its own entry however long the chain (entries of one chain share items).
type Obj = Record<string, unknown>;

export interface StoredResponse {
  /** the response object as it was returned */
  response: Obj;
  /** the input items of this turn, earlier turns' items first (instructions not included) */
  input: Obj[];
}

export class ResponseStore {
  private readonly entries = new Map<string, StoredResponse & { bytes: number }>(); // in use order: oldest first
  private readonly items = new Map<string, Obj>(); // output item id -> item
  private bytes = 0;

  constructor(
    readonly capacity = 1000,
    readonly maxBytes = 256 << 20,
  ) {}

  put(entry: StoredResponse): void {
    const id = entry.response.id as string;
    this.delete(id);
    const bytes = JSON.stringify(entry.input).length + JSON.stringify(entry.response).length; // UTF-16 units, near enough
    if (this.capacity <= 0 || bytes > this.maxBytes) return;
    this.entries.set(id, { ...entry, bytes });
    this.bytes += bytes;
    for (const it of outputItems(entry)) this.items.set(it.id as string, it);
    while (this.entries.size > this.capacity || this.bytes > this.maxBytes) this.delete(this.entries.keys().next().value!);
  }

  get(id: string): StoredResponse | undefined {
    const e = this.entries.get(id);
    if (e) {
      this.entries.delete(id);
      this.entries.set(id, e);
    } // most recently used now
    return e;
  }

  /** An output item of a stored response, by its id (the Responses API's item_reference). */
  item(id: string): Obj | undefined {
    return this.items.get(id);
  }

  delete(id: string): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    this.entries.delete(id);
    this.bytes -= e.bytes;
    for (const it of outputItems(e)) this.items.delete(it.id as string);
    return true;
  }

  get size(): number {
    return this.entries.size;
  }

  /** What the store keeps, for messages about a response it no longer has. */
  describe(): string {
    return `this server keeps the last ${this.capacity} stored responses, up to ${Math.round(this.maxBytes / 2 ** 20)} MiB, in memory`;
  }
}

function outputItems(e: StoredResponse): Obj[] {
  return (e.response.output as Obj[]).filter((it) => typeof it.id === 'string');
}
