/**
 * Reusable byte buffers for the kernel's short-lived copies (a stack array, a kmalloc'd copy of
 * a user array). V8 allocates a typed array above 64 bytes outside its heap, which costs a
 * microsecond or more; the explorer makes such copies on every execbuffer of every schedule.
 *
 * `scratch_take(n)` hands out n zeroed bytes, exactly what `new Uint8Array(n)` gives; the caller
 * gives them back with `scratch_give` once nothing refers to them any more (a buffer never given
 * back, as when a task dies meanwhile, is simply collected). The pool holds plain bytes of no
 * machine, so it may outlive every machine.
 */

/** Buffers above this size are not pooled. */
const MAX_POOLED = 4096;
/** Buffers kept per size. */
const PER_SIZE = 8;

const pool = new Map<number, Uint8Array[]>();

/** `n` zeroed bytes (a pooled buffer when there is one of that size). */
export function scratch_take(n: number): Uint8Array {
  const b = pool.get(n)?.pop();
  if (b === undefined) return new Uint8Array(n);
  b.fill(0);
  return b;
}

/** Gives back a buffer `scratch_take` handed out; the caller no longer uses it. */
export function scratch_give(b: Uint8Array): void {
  const n = b.length;
  if (n > MAX_POOLED) return;
  let list = pool.get(n);
  if (list === undefined) {
    list = [];
    pool.set(n, list);
  }
  if (list.length < PER_SIZE) list.push(b);
}
