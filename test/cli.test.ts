import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Io } from '../src/cli/commands.js';
import { main, nodeIo } from '../src/cli/main.js';

/** Runs the `userptr` program in-process; its exit status and what it wrote. */
function run(...argv: string[]): { code: number; out: string; err: string; lines: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  let t = 0;
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), now: () => (t += 1) };
  const code = main(argv, io);
  if (typeof code !== 'number') throw new Error(`${argv.join(' ')} answered asynchronously`);
  return { code, out: out.join('\n'), err: err.join('\n'), lines: out };
}

describe('the userptr command', () => {
  it('list: scenarios and bugs', () => {
    const r = run('list');
    expect(r.code).toBe(0);
    expect(r.out).toContain('bug/v16-worker-race');
    expect(r.out).toContain('workload/zero-copy');
    expect(r.out).toMatch(/\* v16-worker-race +I-NOSTALE/);
  });

  it('bad arguments: one-line error, usage, exit status 2', () => {
    for (const argv of [
      ['explore', 'no-such-scenario'],
      ['explore', 'v16-worker-race', '--bug', 'no-such-bug'],
      ['explore', 'v16-worker-race', '--schedules', '2', '--seconds', '1'],
      ['explore', 'v16-worker-race', '--schedules', 'many'],
      ['explore', 'v16-worker-race', '--strategy', 'nope'],
      ['explore', 'v16-worker-race', '--jobs', '0'],
      ['explore', 'v16-worker-race', '--jobs', '2', '--strategy', 'dfs'],
      ['explore', 'v16-worker-race', '--jobs', '4', '--schedules', '2'],
      ['replay', 'not-a-schedule'],
      ['trace', 'up1:bug/v16-worker-race:a9dd1141:AgICAAAAAAMCAgICAgIE'],
      ['zoo', '--budget', '0'],
      ['frobnicate'],
    ]) {
      const r = run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err.split('\n')[0], argv.join(' ')).toMatch(/^error: /);
      expect(r.err, argv.join(' ')).toContain('Usage: userptr');
    }
  });

  it('explore finds a bug and prints swim lanes, the finding, the schedule and its replay command', () => {
    const r = run('explore', 'v16-worker-race', '--schedules', '80', '--seed', '1');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FOUND after \d+ schedules/);
    expect(r.out).toContain('finding: coherence: I-NOSTALE');
    // Shrinking really removes preemptions here (v16 needs one).
    const [, before, after] = /shrunk: preemptions (\d+) → (\d+)/.exec(r.out)!;
    expect(Number(after)).toBeLessThan(Number(before));
    expect(Number(after)).toBe(1);
    expect(r.out).toContain('pid100/execbuf');
    const schedule = /^schedule: (\S+)$/m.exec(r.out)![1]!;
    expect(r.out).toContain(`replay:   userptr replay '${schedule}'`);

    const again = run('replay', schedule);
    expect(again.code).toBe(1);
    expect(again.out).toContain('finding: coherence: I-NOSTALE');

    const dir = mkdtempSync(join(tmpdir(), 'userptr-cli-'));
    const file = join(dir, 'trace.json');
    const tr = run('trace', schedule, '--out', file);
    expect(tr.code).toBe(0);
    const json = JSON.parse(readFileSync(file, 'utf8')) as {
      traceEvents: {
        name: string;
        ph: string;
        cat?: string;
        pid: number;
        tid: number;
        args?: { name?: string };
      }[];
    };
    expect(json.traceEvents.length).toBeGreaterThan(50);
    // Every track has its own name; the racing threads' system calls are slices on theirs.
    const names = json.traceEvents
      .filter((e) => e.name === 'thread_name')
      .map((e) => [e.tid, e.args!.name!] as const);
    expect(new Set(names.map(([, n]) => n)).size).toBe(names.length);
    const execbuf = names.find(([, n]) => n.endsWith('/execbuf'))![0];
    const calls = json.traceEvents.filter((e) => e.tid === execbuf && e.ph === 'B' && e.cat === 'syscall');
    expect(calls.map((e) => e.name)).toContain('syscall ioctl');
    // A simulated process's tasks are grouped under its pid; the kernel's under pid 1.
    const pidOf = (tid: number): number =>
      json.traceEvents.find((e) => e.tid === tid && e.name === 'thread_name')!.pid;
    expect(pidOf(execbuf)).toBe(100);
    expect(pidOf(names.find(([, n]) => n === 'bcs')![0])).toBe(1);
    const processes = json.traceEvents
      .filter((e) => e.name === 'process_name')
      .map((e) => [e.pid, e.args!.name]);
    expect(processes).toEqual(
      expect.arrayContaining([
        [1, 'userptr'],
        [100, 'pid100'],
      ]),
    );
  });

  it('a schedule found with several switches replays with the --bug flags explore printed', () => {
    const r = run(
      'explore',
      'workload/three-task',
      '--bug',
      'v3-no-invalidate',
      '--bug',
      'v17-no-retire',
      '--schedules',
      '40',
    );
    expect(r.code).toBe(1);
    const cmd = /^replay: {3}userptr replay (.*)$/m.exec(r.out)![1]!;
    expect(cmd).toMatch(/^--bug v3-no-invalidate --bug v17-no-retire '/);
    const schedule = /'([^']+)'$/.exec(cmd)![1]!;
    // Without the switches the hash names no known configuration: the error says what to give.
    const bare = run('replay', schedule);
    expect(bare.code).toBe(2);
    expect(bare.err).toMatch(/give the switches it was explored with \(--bug\)/);
    const again = run('replay', '--bug', 'v3-no-invalidate', '--bug', 'v17-no-retire', schedule);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/^finding: /m);
    // The wrong switches are refused, not replayed into a different run.
    const wrong = run('replay', '--bug', 'v3-no-invalidate', schedule);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toContain('recorded with another configuration');
    // A trace file that cannot be written is one line and status 1.
    const tr = run(
      'trace',
      schedule,
      '--bug',
      'v3-no-invalidate',
      '--bug',
      'v17-no-retire',
      '--out',
      '/nonexistent/t.json',
    );
    expect(tr.code).toBe(1);
    expect(tr.err).toBe('error: cannot write /nonexistent/t.json: ENOENT');
  });

  it('--bug none explores a bug scenario on the correct design; its replay command says so', () => {
    const r = run('explore', 'v16-worker-race', '--bug', 'none', '--schedules', '30');
    expect(r.code).toBe(0);
    expect(r.out).toContain('[correct design]');
    expect(r.out).toContain('no finding in 30 schedules');
    expect(run('explore', 'v16-worker-race', '--bug', 'none', '--bug', 'v3-no-invalidate').code).toBe(2);
  });

  it('the live status is one line cut to the terminal width, rewritten in place', () => {
    const written: string[] = [];
    const tty = { isTTY: true, columns: 40, write: (x: string) => written.push(x) };
    const io = nodeIo(tty, tty);
    io.status!('x'.repeat(100));
    io.status!('short');
    io.out('done');
    expect(written).toEqual([`\r\x1b[K${'x'.repeat(39)}`, '\r\x1b[Kshort', '\r\x1b[K', 'done\n']);
    const plain = nodeIo({ write: (x: string) => written.push(x) });
    expect(plain.status).toBeUndefined();
  });

  it('explore of the correct design finds nothing (plain progress lines off a terminal)', () => {
    const clean = run('explore', 'workload/churn', '--schedules', '20', '--strategy', 'random');
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/^20 schedules/m);
    expect(clean.out).toContain('no finding in 20 schedules');
    expect(clean.out).toContain('goal reached: created');
  });

  it('zoo: a table row per bug, exit 0 when all are found and the correct design is clean', () => {
    const r = run('zoo', '--budget', '100');
    expect(r.code).toBe(0);
    expect(r.lines.some((l) => /^bug +invariant +found/.test(l))).toBe(true);
    expect(r.out).toMatch(/^v16-worker-race +I-NOSTALE +yes +\d+/m);
    expect(r.out).toMatch(/^workload\/zero-copy .* 100 clean$/m);
    expect(r.out).toContain('zoo: every bug found, the correct design clean');
  });

  it('zoo: a bug its budget misses makes the row NO and the exit status 1', () => {
    const r = run('zoo', '--budget', '2');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^v16-worker-race +I-NOSTALE +NO /m);
    expect(r.out).toContain('zoo: FAILED');
  });

  it('story still tells its story', () => {
    const r = run('story');
    expect(r.code).toBe(0);
    expect(r.out).toContain('copy-on-write');
  });
});
