/**
 * The machine layer's figures (issue 2): demand-zero page faults, fork of a large touched
 * address space, copy_from_user against TypedArray.set, and the cost of booting a machine.
 *
 * Every figure runs a discarded warm-up repetition first, then `reps` timed ones on the same
 * machine (so frames come back from the free list, as in a long run), and reports the median.
 */
import { Buffer } from 'node:buffer';
import { Machine, type Process, uapi } from '../../index.js';
import { PAGE_SIZE } from '../../base/page.js';
import { copy_from_user } from '../../mm/uaccess.js';
import { type Measured, median, medianFigure, timeMs } from './stats.js';

export interface MachineBenchOptions {
  /** Timed repetitions per figure (after one warm-up). */
  reps: number;
}

const MiB = 1 << 20;
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const PRIVATE_ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;

/** A machine with room for every figure's working set. */
function bootBig(): Machine {
  return Machine.boot({ ramBytes: 1 << 30 });
}

/** Shuts the machine down; a finding here means the bench itself broke the machine. */
export function finish(m: Machine, what: string): void {
  const f = m.shutdown();
  if (f.length > 0) {
    throw new Error(
      `${what}: the machine reported ${f.length} finding(s): ${f.map((x) => x.message).join('; ')}`,
    );
  }
}

/** One CPU store of one byte to every page of [addr, addr + len). */
function touchEveryPage(p: Process, addr: number, len: number, value = 1): void {
  const b = new Uint8Array([value]);
  for (let off = 0; off < len; off += PAGE_SIZE) p.write(addr + off, b);
}

function rss(p: Process): number {
  return p.mm!.rss;
}

// -------------------------------------------------------------------------------------------------
// 1. Page faults

/**
 * A process maps 64 MiB of anonymous private memory and writes one byte to every page: each store
 * takes a demand-zero write fault. Also measured: the same stores again once every page is resident
 * (the cost of `p.write` without a fault), and a plain JS model of the same work (allocate a zeroed
 * 4 KiB array, record it in a Map, store a byte) as a yardstick.
 */
export function pageFaults(o: MachineBenchOptions): Measured[] {
  const len = 64 * MiB;
  const pages = len / PAGE_SIZE;
  const m = bootBig();
  const faultMs: number[] = [];
  const residentMs: number[] = [];
  const jsMs: number[] = [];
  for (let rep = -1; rep < o.reps; rep++) {
    const p = m.spawn();
    const addr = p.mmap(0, len, RW, PRIVATE_ANON);
    const before = rss(p);
    const tf = timeMs(() => touchEveryPage(p, addr, len, 1));
    if (rss(p) - before !== pages)
      throw new Error(`page faults: rss grew by ${rss(p) - before}, expected ${pages}`);
    const tr = timeMs(() => touchEveryPage(p, addr, len, 2));
    p.exit(0);
    let made = 0;
    const tj = timeMs(() => (made = jsPageModel(pages)));
    if (made !== pages) throw new Error('page faults: the JS yardstick lost pages');
    if (rep >= 0) {
      faultMs.push(tf);
      residentMs.push(tr);
      jsMs.push(tj);
    }
  }
  finish(m, 'page faults');
  const perSec = (ms: number): number => pages / (ms / 1000);
  return [
    medianFigure(
      'page-faults-per-second',
      'faults/s',
      faultMs.map(perSec),
      '64 MiB anon private, 1 B write/page',
    ),
    medianFigure(
      'page-fault-us',
      'us',
      faultMs.map((ms) => (ms * 1000) / pages),
      'per fault, incl. p.write',
    ),
    medianFigure('resident-write-per-second', 'writes/s', residentMs.map(perSec), 'same stores, no fault'),
    {
      name: 'page-fault-vs-js-page-alloc',
      value: median(faultMs) / median(jsMs),
      unit: 'ratio',
      note: 'sim fault / (new Uint8Array(4096) + Map.set); lower is better',
    },
  ];
}

/** The plain JS yardstick: a zeroed page per slot, recorded in a map, one byte stored. */
function jsPageModel(pages: number): number {
  const table = new Map<number, Uint8Array>();
  for (let v = 0; v < pages; v++) {
    const page = new Uint8Array(PAGE_SIZE);
    page[0] = 1;
    table.set(v, page);
  }
  return table.size;
}

// -------------------------------------------------------------------------------------------------
// 2. Fork

/**
 * fork() of a process with 256 MiB of touched private memory: every PTE is write-protected in
 * both and every page's mapcount raised. Before each repetition the parent writes every page
 * again (untimed) so its PTEs are writable and exclusive once more, as on the first fork; the
 * child's exit is timed too, as a side figure.
 */
export function forkTouched(o: MachineBenchOptions): Measured[] {
  const len = 256 * MiB;
  const pages = len / PAGE_SIZE;
  const m = bootBig();
  const p = m.spawn();
  const addr = p.mmap(0, len, RW, PRIVATE_ANON);
  const forkMs: number[] = [];
  const exitMs: number[] = [];
  for (let rep = -1; rep < o.reps; rep++) {
    touchEveryPage(p, addr, len, rep & 0xff);
    if (rss(p) !== pages) throw new Error(`fork: parent rss ${rss(p)}, expected ${pages}`);
    let child: Process | undefined;
    const tf = timeMs(() => (child = p.fork()));
    if (rss(child!) !== pages) throw new Error(`fork: child rss ${rss(child!)}, expected ${pages}`);
    const te = timeMs(() => child!.exit(0));
    if (rep >= 0) {
      forkMs.push(tf);
      exitMs.push(te);
    }
  }
  p.exit(0);
  finish(m, 'fork');
  return [
    medianFigure('fork-256MiB-touched-ms', 'ms', forkMs, 'time of p.fork()'),
    medianFigure(
      'fork-256MiB-touched-pages-per-second',
      'pages/s',
      forkMs.map((ms) => pages / (ms / 1000)),
    ),
    medianFigure('exit-forked-child-256MiB-ms', 'ms', exitMs, 'child exit: unmaps 65536 COW pages'),
  ];
}

// -------------------------------------------------------------------------------------------------
// 3. copy_from_user vs TypedArray.set

/**
 * copy_from_user() of 64 MiB of resident user memory into a Uint8Array, run as a syscall of the
 * process, against TypedArray.set of 64 MiB between two Uint8Arrays. The two alternate within
 * each repetition (order swapped every time); ratio = median set time / median copy time.
 */
export function copyFromUser(o: MachineBenchOptions): Measured[] {
  const len = 64 * MiB;
  const m = bootBig();
  const p = m.spawn();
  const addr = p.mmap(0, len, RW, PRIVATE_ANON);
  const src = new Uint8Array(len);
  for (let i = 0; i < len; i += 4) src[i] = (i >>> 12) & 0xff;
  p.write(addr, src);
  const dst = new Uint8Array(len);
  const copyMs: number[] = [];
  const setMs: number[] = [];
  const copy = (): number =>
    timeMs(() => {
      const left = m.syscall(p, 'bench', copy_from_user(p.mm!, dst, addr));
      if (left !== 0) throw new Error(`copy_from_user left ${left} bytes`);
    });
  const set = (): number => timeMs(() => dst.set(src));
  // Cheap and noisy (memory bandwidth): twice the repetitions of the other figures.
  const reps = o.reps * 2 + 1;
  for (let rep = -1; rep < reps; rep++) {
    dst.fill(0);
    let tc: number;
    let ts: number;
    if (rep & 1) {
      tc = copy();
      ts = set();
    } else {
      ts = set();
      dst.fill(0);
      tc = copy();
    }
    if (Buffer.compare(dst, src) !== 0) throw new Error('copy_from_user copied the wrong bytes');
    if (rep >= 0) {
      copyMs.push(tc);
      setMs.push(ts);
    }
  }
  p.exit(0);
  finish(m, 'copy_from_user');
  const mibPerSec = (ms: number): number => len / MiB / (ms / 1000);
  return [
    {
      name: 'copy_from_user-64MiB-vs-typedarray-set',
      value: median(setMs) / median(copyMs),
      unit: 'ratio',
      note: 'set time / copy time; higher is better',
    },
    medianFigure('copy_from_user-64MiB-ms', 'ms', copyMs),
    medianFigure('typedarray-set-64MiB-ms', 'ms', setMs),
    medianFigure('copy_from_user-throughput', 'MiB/s', copyMs.map(mibPerSec)),
  ];
}

// -------------------------------------------------------------------------------------------------
// 4. Boot

/**
 * Machine.boot() of a 512 MiB machine (the explorer boots one per schedule). Boots run in
 * batches; each sample is a batch's mean (garbage collection of the dropped machines included,
 * as in the explorer), and the figure is the median sample.
 */
export function bootMachine(o: MachineBenchOptions): Measured[] {
  const batch = 500;
  const samples: number[] = [];
  const samplesWanted = Math.max(o.reps * 2, 15);
  let last: Machine | undefined;
  for (let rep = -3; rep < samplesWanted; rep++) {
    const ms = timeMs(() => {
      for (let i = 0; i < batch; i++) last = Machine.boot({ ramBytes: 512 * MiB });
    });
    if (rep >= 0) samples.push((ms * 1000) / batch);
  }
  if (last?.meminfo().totalPages !== (512 * MiB) / PAGE_SIZE) throw new Error('boot: wrong machine size');
  return [medianFigure('boot-machine-us', 'us', samples, `512 MiB, mean of ${batch} boots per sample`)];
}
