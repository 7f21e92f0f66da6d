#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { story } from './story.js';

function seedArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new InvalidArgumentError('a seed is an integer in [0, 2^32)');
  return n;
}

const program = new Command()
  .name('userptr')
  .description(
    'A deterministic, executable model of the Linux 3.16 i915 userptr ioctl and the machine around it',
  )
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

program
  .command('story')
  .description('tell the scripted story of the machine: mmap, fork, copy-on-write, MMU notifiers')
  .option('--seed <n>', 'seed of every nondeterministic choice', seedArg, 1)
  .action((opts: { seed: number }) => {
    process.exitCode = story(opts.seed, (l) => process.stdout.write(l + '\n'));
  });

program.parse();
