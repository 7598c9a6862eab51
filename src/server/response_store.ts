// Stored /v1/responses answers (store: true, OpenAI's default), for previous_response_id, item
// references and GET /v1/responses/{id}: in memory, at most `capacity` of them, the least
// recently used dropped first. Each keeps the whole conversation it continued, so a follow-up
// needs only its own entry however long the chain.
type Obj = Record<string, unknown>;

export interface StoredResponse {
  /** the response object as it was returned */
  response: Obj;
  /** the input items of this turn, earlier turns' items first (instructions not included) */
  input: Obj[];
}

export class ResponseStore {
  private readonly entries = new Map<string, StoredResponse>(); // in use order: oldest first
  private readonly items = new Map<string, Obj>(); // output item id -> item

  constructor(readonly capacity = 1000) {}

  put(entry: StoredResponse): void {
    if (this.capacity <= 0) return;
    const id = entry.response.id as string;
    this.delete(id);
    this.entries.set(id, entry);
    for (const it of outputItems(entry)) this.items.set(it.id as string, it);
    while (this.entries.size > this.capacity) this.delete(this.entries.keys().next().value!);
  }

  get(id: string): StoredResponse | undefined {
    const e = this.entries.get(id);
    if (e) { this.entries.delete(id); this.entries.set(id, e); } // most recently used now
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
    for (const it of outputItems(e)) this.items.delete(it.id as string);
    return true;
  }

  get size(): number {
    return this.entries.size;
  }
}

function outputItems(e: StoredResponse): Obj[] {
  return (e.response.output as Obj[]).filter((it) => typeof it.id === 'string');
}
