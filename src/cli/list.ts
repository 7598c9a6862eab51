// qwen-ts list [--hub hf|modelscope] [--json]
import { parseArgs } from 'node:util';
import { listCached } from '../hub/catalog.js';
import { fmtBytes } from '../hub/download.js';
import { parseHub } from '../hub/ids.js';

const HELP = `usage: qwen-ts list [--hub hf|modelscope] [--json]
Lists the models in the Hugging Face cache ($HF_HOME/hub, shared with Python tools) and the
ModelScope cache ($MODELSCOPE_CACHE): revision, size, architecture, quantisation and base model.`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { hub: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return void process.stdout.write(HELP + '\n');
  const models = listCached({ hubs: values.hub ? [parseHub(values.hub)] : undefined });
  if (values.json) return void process.stdout.write(JSON.stringify(models, null, 2) + '\n');
  const rows: string[][] = [['MODEL', 'REVISION', 'SIZE', 'ARCHITECTURE', 'QUANT', 'BASE MODEL']];
  for (const m of models) {
    const id = `${m.hub === 'hf' ? '' : 'ms:'}${m.repo}`;
    if (!m.snapshots.length) rows.push([id, '(no snapshot)', fmtBytes(m.size), '', '', '']);
    for (const s of m.snapshots) {
      const rev = `${s.refs.length ? s.refs.join(',') : '-'} (${s.commit.slice(0, 7)})${s.path ? '' : ' incomplete'}`;
      const base = s.baseModel ? `${s.baseModel.join(', ')}${s.relation ? ` (${s.relation})` : ''}` : '';
      rows.push([id, rev, fmtBytes(s.size), s.architecture ?? '?', s.quantization ?? '?', base]);
    }
  }
  if (rows.length === 1) return void process.stdout.write('no models in the cache\n');
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(w[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n',
  );
}
