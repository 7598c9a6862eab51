// Checks a /v1/responses event stream against the order OpenAI documents: response.created,
// response.in_progress, then per output item: output_item.added, for text a content_part.added,
// deltas, the text's done, content_part.done, for a function call its arguments' delta(s) and done,
// then output_item.done; last response.completed (or .incomplete). sequence_number counts from 0.
import assert from 'node:assert/strict';

type Ev = Record<string, any>;

/** The items the stream completed, in order (each checked against its deltas), and the final response. */
export function checkEventOrder(events: readonly Ev[]): { items: Ev[]; response: Ev } {
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => i),
    'sequence_number counts from 0',
  );
  assert.equal(events[0]?.type, 'response.created');
  assert.equal(events[0]?.response.status, 'in_progress');
  assert.equal(events[1]?.type, 'response.in_progress');
  const last = events[events.length - 1]!;
  assert.match(last.type, /^response\.(completed|incomplete)$/);
  const items: Ev[] = [];
  let k = 2;
  const next = (type: string): Ev => {
    const e = events[k++];
    assert.equal(e?.type, type, `event ${k - 1}: expected ${type}, got ${e?.type}`);
    return e!;
  };
  while (k < events.length - 1) {
    const added = next('response.output_item.added');
    const at = { output_index: items.length };
    assert.equal(added.output_index, items.length);
    const id = added.item.id as string;
    assert.equal(typeof id, 'string');
    if (added.item.type === 'function_call') {
      let args = '';
      while (events[k]?.type === 'response.function_call_arguments.delta') args += next('response.function_call_arguments.delta').delta;
      const done = next('response.function_call_arguments.done');
      assert.deepEqual([done.item_id, done.output_index, done.arguments], [id, at.output_index, args]);
      const item = next('response.output_item.done').item;
      assert.deepEqual([item.id, item.type, item.arguments, item.status], [id, 'function_call', args, 'completed']);
      items.push(item);
      continue;
    }
    const reasoning = added.item.type === 'reasoning';
    assert.ok(reasoning || added.item.type === 'message', `unexpected item type ${added.item.type}`);
    const kind = reasoning ? 'reasoning_text' : 'output_text';
    const partAdded = next('response.content_part.added');
    assert.deepEqual([partAdded.item_id, partAdded.output_index, partAdded.content_index, partAdded.part.type, partAdded.part.text], [id, at.output_index, 0, kind, '']);
    let text = '';
    while (events[k]?.type === `response.${kind}.delta`) {
      const d = next(`response.${kind}.delta`);
      assert.deepEqual([d.item_id, d.output_index, d.content_index], [id, at.output_index, 0]);
      text += d.delta;
    }
    assert.equal(next(`response.${kind}.done`).text, text);
    const partDone = next('response.content_part.done');
    assert.deepEqual([partDone.item_id, partDone.part.type, partDone.part.text], [id, kind, text]);
    const item = next('response.output_item.done').item;
    assert.equal(item.id, id);
    assert.equal(item.content[0].text, text);
    items.push(item);
  }
  assert.equal(k, events.length - 1, 'nothing after the last item but the final event');
  assert.deepEqual(last.response.output, items);
  return { items, response: last.response };
}

/** Output items with the per-response ids taken out, to compare two answers. */
export function withoutIds(output: readonly Ev[]): Ev[] {
  return output.map(({ id: _i, call_id: _c, ...rest }) => rest);
}
