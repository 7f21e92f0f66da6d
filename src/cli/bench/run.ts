/**
 * `npm run bench`: runs every figure in one process, prints a table and writes bench-results.json
 * at the project root (process.cwd()).
 *
 *   node dist/cli/bench/run.js [--reps N] [--only NAME[,NAME...]] [--no-write]
 */
import { parseArgs } from 'node:util';
import { exploreSuite, parallelSpeedup } from './explore.js';
import * as gpu from './gpu.js';
import * as machine from './machine.js';
import { formatTable, writeResults } from './report.js';
import { type Measured, collectGarbage, meetsTarget, nowMs } from './stats.js';
import * as userptr from './userptr.js';

interface Suite {
  /** Short name for --only. */
  name: string;
  run: (o: { reps: number }) => Measured[] | Promise<Measured[]>;
}

/** Every figure, in the order they run. Later issues add their suites here. */
const SUITES: readonly Suite[] = [
  { name: 'boot', run: machine.bootMachine },
  { name: 'faults', run: machine.pageFaults },
  { name: 'fork', run: machine.forkTouched },
  { name: 'copy_from_user', run: machine.copyFromUser },
  { name: 'blit', run: gpu.blit64MiB },
  { name: 'execbuf', run: gpu.execbufCalls },
  { name: 'userptr-cycle', run: userptr.createBlitClose },
  { name: 'userptr-munmap', run: userptr.munmapManyObjects },
  { name: 'explore', run: exploreSuite },
  { name: 'explore-parallel', run: parallelSpeedup },
];

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      reps: { type: 'string', default: '7' },
      only: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      `usage: run.js [--reps N] [--only ${SUITES.map((s) => s.name).join('|')}[,...]] [--no-write]`,
    );
    return 0;
  }
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 1000) {
    console.error(`--reps must be an integer from 1 to 1000, got ${values.reps}`);
    return 2;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((n) => !SUITES.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const rows: Measured[] = [];
  const t0 = nowMs();
  for (const suite of SUITES) {
    if (only && !only.includes(suite.name)) continue;
    collectGarbage();
    const ts = nowMs();
    process.stderr.write(`bench: ${suite.name} ... `);
    const got = await suite.run({ reps });
    process.stderr.write(`${((nowMs() - ts) / 1000).toFixed(1)} s\n`);
    for (const r of got) rows.push(r.target !== undefined ? { ...r, ok: meetsTarget(r.value, r.target) } : r);
  }
  console.log(formatTable(rows));
  console.log(`\n${rows.length} figures (--reps ${reps}), ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  if (!values['no-write']) console.log(`wrote ${writeResults(rows, process.cwd())}`);
  return rows.some((r) => r.ok === false) ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
