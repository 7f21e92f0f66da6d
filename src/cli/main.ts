#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  type Io,
  UsageError,
  exploreCommand,
  listCommand,
  replayCommandRun,
  traceCommand,
  zooCommand,
} from './commands.js';
import { demo } from './demo.js';
import { story } from './story.js';

function intArg(what: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${what} is an integer in [${min}, ${max}]`);
    return n;
  };
}
const seedArg = intArg('a seed', 0, 0xffffffff);
function secondsArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('seconds is a positive number');
  return n;
}
function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

/** What nodeIo writes to: stdout, or a stand-in in tests. */
export interface OutStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * The process's Io: live status only on a terminal, one line rewritten in place. The line is cut
 * to the terminal's width: a wrapped line would leave a row behind at every rewrite.
 */
export function nodeIo(stdout: OutStream = process.stdout, stderr: OutStream = process.stderr): Io {
  const io: Io = {
    out: (l) => stdout.write(l + '\n'),
    err: (l) => stderr.write(l + '\n'),
    now: () => performance.now(),
  };
  if (stdout.isTTY) {
    let shown = false;
    io.out = (l) => {
      if (shown) stdout.write('\r\x1b[K');
      shown = false;
      stdout.write(l + '\n');
    };
    io.status = (l) => {
      const width = Math.max(1, (stdout.columns ?? 80) - 1);
      stdout.write(`\r\x1b[K${l.length > width ? l.slice(0, width) : l}`);
      shown = l !== '';
    };
  }
  return io;
}

/**
 * The `userptr` program. Every command sets `result.code`; bad arguments throw a CommanderError
 * with exit code 2 after printing a one-line error and the usage.
 */
export function makeProgram(io: Io, result: { code: number; pending?: Promise<number> }): Command {
  const program = new Command()
    .name('userptr')
    .description(
      'A deterministic, executable model of the Linux 3.16 i915 userptr ioctl and the machine around it',
    )
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError()
    .exitOverride();
  const run = (fn: () => number | Promise<number>, cmd: Command): void => {
    try {
      const r = fn();
      if (typeof r === 'number') result.code = r;
      else result.pending = r;
    } catch (e) {
      if (e instanceof UsageError) cmd.error(`error: ${e.message}`, { exitCode: 2, code: 'userptr.usage' });
      throw e;
    }
  };

  program
    .command('demo')
    .description(
      'the zero-copy story: memory, a userptr object, a GPU blit, the CPU reads, munmap invalidates; then a short zoo',
    )
    .option('--seed <n>', 'seed of every nondeterministic choice', seedArg, 1)
    .option('--budget <n>', 'schedules per exploration of the short zoo', intArg('the budget', 1, 1e9), 100)
    .action(function (this: Command, o: { seed: number; budget: number }) {
      run(() => demo(io, { seed: o.seed, zooBudget: o.budget }), this);
    });
  program
    .command('story')
    .description('tell the scripted story of the machine: mmap, fork, copy-on-write, MMU notifiers')
    .option('--seed <n>', 'seed of every nondeterministic choice', seedArg, 1)
    .action(function (this: Command, o: { seed: number }) {
      run(() => story(o.seed, io.out), this);
    });
  program
    .command('list')
    .description('list scenarios and bug switches')
    .action(function (this: Command) {
      run(() => listCommand(io), this);
    });
  program
    .command('explore')
    .description('explore a scenario for findings')
    .argument('<scenario>', "a scenario name (see 'userptr list')")
    .option(
      '--bug <id>',
      "turn a bug switch on instead of the scenario's own (repeatable; 'none': every switch off)",
      collect,
    )
    .option('--strategy <s>', 'random, pct[:d], pos, dfs[:b], portfolio, sampling', 'portfolio')
    .addOption(
      new Option('--schedules <n>', 'schedules to run (default 1000)')
        .argParser(intArg('schedules', 1, 1e9))
        .conflicts('seconds'),
    )
    .addOption(new Option('--seconds <s>', 'seconds to explore').argParser(secondsArg))
    .option('--seed <n>', "seed of the strategy's stream", seedArg, 1)
    .option(
      '--jobs <n>',
      'worker threads exploring at once (job i runs seed + i; DFS stays in job 0)',
      intArg('jobs', 1, 256),
      1,
    )
    .option('--json', 'print the result as one JSON document (for batch runners)')
    .action(function (
      this: Command,
      name: string,
      o: {
        bug?: string[];
        strategy: string;
        schedules?: number;
        seconds?: number;
        seed: number;
        jobs: number;
        json?: boolean;
      },
    ) {
      run(() => exploreCommand(name, o, io), this);
    });
  program
    .command('replay')
    .description('replay schedule strings (prerequisites first) and show the run')
    .argument('<schedule...>', 'schedule strings (up1:...)')
    .option(
      '--bug <id>',
      'the switches the schedule was explored with, as explore printed them (repeatable)',
      collect,
    )
    .action(function (this: Command, schedules: string[], o: { bug?: string[] }) {
      run(() => replayCommandRun(schedules, io, o.bug), this);
    });
  program
    .command('trace')
    .description('replay a schedule and write a Chrome trace (opens in Perfetto)')
    .argument('<schedule>', 'a schedule string (up1:...)')
    .requiredOption('--out <file>', 'the JSON file to write')
    .option('--bug <id>', 'the switches the schedule was explored with (repeatable)', collect)
    .action(function (this: Command, schedule: string, o: { out: string; bug?: string[] }) {
      run(() => traceCommand(schedule, o.out, io, o.bug), this);
    });
  program
    .command('zoo')
    .description('every bug switch found by its scenario; the correct design clean')
    .option('--budget <n>', 'schedules per exploration', intArg('the budget', 1, 1e9), 200)
    .option('--seed <n>', 'seed of the explorations', seedArg, 1)
    .option('--markdown', 'print the table as Markdown')
    .action(function (this: Command, o: { budget: number; seed: number; markdown?: boolean }) {
      run(() => zooCommand(o, io), this);
    });
  return program;
}

/**
 * Runs the program on `argv` (user arguments only); the exit status, or its promise for a
 * command that waits for worker threads (`explore --jobs`).
 */
export function main(argv: string[], io: Io): number | Promise<number> {
  const result: { code: number; pending?: Promise<number> } = { code: 0 };
  const program = makeProgram(io, result);
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      return 2;
    }
    throw e;
  }
  return result.pending ?? result.code;
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) {
  // A reader that goes away early (`userptr list | head`) ends the program quietly, as with any
  // Unix tool, instead of an unhandled EPIPE.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      process.exit(process.exitCode ?? 0);
    });
  }
  process.exitCode = await main(process.argv.slice(2), nodeIo());
}
