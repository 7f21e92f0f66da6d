import type { ExecFault } from '../hw/engine.js';
import type { KGen } from '../sched/task.js';
import { queue_work } from '../sched/workqueue.js';
import type { DrmI915Private } from './i915_drv.js';
import { i915_gem_retire_requests } from './i915_gem.js';
import {
  DRM_I915_CTX_BAN_PERIOD,
  type I915HwContext,
  i915_gem_context_is_default,
} from './i915_gem_context.js';
import type { DrmI915GemObject } from './i915_gem_object.js';
import type { DrmI915GemRequest, IntelRing } from './intel_ringbuffer.js';

/** Renders one buffer line of the error state (3.16 print_error_buffers, in our words). */
function buffer_line(obj: DrmI915GemObject): string {
  const vma = obj.vma;
  const flags = [
    vma && vma.pin_count > 0 ? ' P' : '',
    obj.tiling_mode === 1 ? ' X' : obj.tiling_mode === 2 ? ' Y' : '',
    obj.dirty ? ' dirty' : '',
    obj.madv === 1 ? ' purgeable' : '',
    isUserptr(obj) ? ' userptr' : '',
    obj.ring ? ` ${obj.ring.name}` : '',
    obj.cache_level ? ' LLC' : ' uncached',
  ].join('');
  return (
    `    ${hex8(vma?.bound ? vma.start : 0)} ${String(obj.size).padStart(8)} ` +
    `${hex2(obj.read_domains)} ${hex2(obj.write_domain)} ` +
    `[ ${obj.last_read_seqno.toString(16)} ${obj.last_write_seqno.toString(16)} ]${flags}`
  );
}

/** The userptr object kind marks itself; the error state tags it " userptr". */
function isUserptr(obj: DrmI915GemObject): boolean {
  return obj.ops.name === 'userptr';
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
function hex2(n: number): string {
  return (n >>> 0).toString(16).padStart(2, '0');
}

/**
 * i915_capture_error_state(): a snapshot, taken where the hang was noticed (no locks, no
 * sleeping): the hung ring's registers, the failing batch's first dwords, and every active and
 * bound buffer with its flags. Returned as the text /sys/class/drm/card0/error shows.
 */
export function i915_capture_error_state(
  dp: DrmI915Private,
  ring: IntelRing,
  req: DrmI915GemRequest,
  fault: ExecFault,
): string {
  const s = dp.k.sched;
  const lines: string[] = [];
  lines.push(`Time: ${Math.floor(s.now / 1e9)} s ${Math.floor((s.now % 1e9) / 1e3)} us`);
  lines.push(`Kernel: 3.16.0 (userptr model)`);
  lines.push(`PCI ID: 0x${dp.info.device_id.toString(16).padStart(4, '0')}`);
  lines.push(`Hang: ${fault.message}`);
  for (const r of dp.rings) {
    const hung = r === ring;
    lines.push(`${r.name} command stream:`);
    lines.push(`  ACTHD: 0x${hex8(hung ? fault.head : r.hw.acthd)}`);
    lines.push(`  IPEHR: 0x${hex8(hung ? fault.ipehr : 0)}`);
    lines.push(`  INSTDONE: 0x${hex8(hung ? fault.instdone : 0xffffffff)}`);
    lines.push(`  BBADDR: 0x${hex8(hung ? fault.bbaddr : 0)}`);
    lines.push(`  seqno: 0x${hex8(r.get_seqno())}`);
    lines.push(`  last_submitted_seqno: 0x${hex8(r.last_submitted_seqno)}`);
    lines.push(`  hung: ${hung ? 'yes' : 'no'}`);
  }
  const active = dp.rings.flatMap((r) => [...r.active_list]);
  lines.push(`Active [${active.length}]:`);
  for (const o of active) lines.push(buffer_line(o));
  const pinned = [...dp.bound_list].filter((o) => (o.vma?.pin_count ?? 0) > 0);
  lines.push(`Pinned (global) [${pinned.length}]:`);
  for (const o of pinned) lines.push(buffer_line(o));
  lines.push(`${ring.name} --- gtt_offset = 0x${hex8(req.batch_start)} (pid ${req.pid}, seqno ${req.seqno})`);
  const dwords = Math.min(64, Math.max(1, req.batch_len ? req.batch_len / 4 : 16));
  for (let i = 0; i < dwords; i++) {
    const v = dp.gtt.readDword(req.batch_start + i * 4);
    if (v < 0) break;
    lines.push(
      `${hex8(i * 4)} :  ${hex8(v)}${req.batch_start + i * 4 === fault.head ? '  <-- hung here' : ''}`,
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * i915_handle_error(): called by the command streamer that hung. Captures the error state, marks
 * a reset in progress (waiters back off with -EAGAIN), and queues the reset.
 */
export function i915_handle_error(
  dp: DrmI915Private,
  ring: IntelRing,
  req: DrmI915GemRequest,
  fault: ExecFault,
  publish: (text: string) => void,
): void {
  const text = i915_capture_error_state(dp, ring, req, fault);
  dp.gpu_error.hangs++;
  dp.gpu_error.first_error ??= text;
  publish(text);
  dp.hungRings.add(ring);
  if (!(dp.gpu_error.reset_counter & 1)) dp.gpu_error.reset_counter++;
  for (const r of dp.rings) r.irq_queue.wake_up_all();
  queue_work(dp.config.system_wq, dp.error_work);
}

/**
 * i915_context_is_banned() (3.16 i915_gem.c): a context already banned stays so; a non-default
 * context guilty again within DRM_I915_CTX_BAN_PERIOD seconds of its last guilty hang is banned
 * (a default context only with the debugfs stop_rings ban bit, which the model has not).
 */
function i915_context_is_banned(dp: DrmI915Private, ctx: I915HwContext): boolean {
  const hs = ctx.hang_stats;
  if (hs.banned) return true;
  if (hs.guilty_ts === null) return false;
  const elapsed = Math.floor(dp.k.sched.now / 1e9) - hs.guilty_ts;
  return elapsed <= DRM_I915_CTX_BAN_PERIOD && !i915_gem_context_is_default(ctx);
}

/**
 * i915_set_reset_status() (3.16 i915_gem.c): a request lost to the reset is charged to its
 * context — the one the GPU hung on as active (guilty; it may get the context banned), the ones
 * queued behind it as pending.
 */
function i915_set_reset_status(dp: DrmI915Private, ctx: I915HwContext | null, guilty: boolean): void {
  if (dp.k.sched.WARN_ON(!ctx, 'i915_set_reset_status: request without a context')) return;
  const hs = ctx!.hang_stats;
  if (guilty) {
    hs.banned = i915_context_is_banned(dp, ctx!);
    hs.batch_active++;
    hs.guilty_ts = Math.floor(dp.k.sched.now / 1e9);
  } else {
    hs.batch_pending++;
  }
}

/**
 * The reset (3.16 i915_error_work_func → i915_reset): under struct_mutex, reset each hung
 * engine; the hung request and everything queued behind it on that ring are lost and complete
 * with -EIO, each charged to its context's hang statistics (i915_gem_reset_ring_status: the
 * request the engine hung on is the guilty one); retire; end the reset and wake every waiter.
 * Only the hung ring is reset, so only its requests are lost and charged (3.16 resets the whole
 * GPU and charges every ring's unfinished requests, as pending unless that ring was hung).
 */
export function* i915_error_work_func(dp: DrmI915Private): KGen {
  const dev = dp.dev;
  yield* dev.struct_mutex.lock();
  for (const ring of [...dp.hungRings]) {
    ring.hw.reset();
    for (const req of ring.queue.splice(0)) {
      i915_set_reset_status(dp, req.ctx, req.fault !== null);
      if (!req.error) req.error = -5;
      req.completed = true;
    }
    ring.hw.completeSeqno(ring.last_submitted_seqno);
    dp.hungRings.delete(ring);
  }
  yield* i915_gem_retire_requests(dp);
  if (dp.gpu_error.reset_counter & 1) dp.gpu_error.reset_counter++;
  for (const r of dp.rings) {
    r.irq_queue.wake_up_all();
    r.doorbell.wake_up_all();
  }
  dev.struct_mutex.unlock();
  yield { op: 'gpu_reset_done' };
}
