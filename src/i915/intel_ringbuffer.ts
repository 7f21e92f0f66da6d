import { ERRNO } from '../base/errno.js';
import { Engine, type EngineId, type ExecFault } from '../hw/engine.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { GlobalGtt } from '../hw/gtt.js';
import type { Scheduler } from '../sched/scheduler.js';
import type { KGen, Task } from '../sched/task.js';
import { WaitQueue } from '../sched/waitqueue.js';
import type { DrmI915FilePrivate } from './i915_drv.js';
import type { I915HwContext } from './i915_gem_context.js';
import type { DrmI915GemObject } from './i915_gem_object.js';

/** struct drm_i915_gem_request: one batch submitted to a ring. */
export class DrmI915GemRequest {
  /** The engine finished it (its breadcrumb passed) — successfully or not. */
  completed = false;
  /** 0, or -EIO when the GPU hung on it. */
  error = 0;
  /** The hang, when there was one. */
  fault: ExecFault | null = null;
  /**
   * The submitting file while the request is on its `request_list` (null once retired, or once
   * the file closed: i915_gem_release detaches it).
   */
  file_priv: DrmI915FilePrivate | null = null;
  /** The context it ran in, whose hang statistics a reset charges (null: none recorded). */
  ctx: I915HwContext | null = null;
  /** Virtual time of its submission (3.16: emitted_jiffies), in ns. */
  emitted_ns = 0;

  constructor(
    readonly ring: IntelRing,
    readonly seqno: number,
    /** GTT address and length of the batch (len 0: up to the end of the object). */
    readonly batch_start: number,
    readonly batch_len: number,
    /** The batch object, for error capture. */
    readonly batch_obj: DrmI915GemObject | null,
    /** Model bookkeeping: the objects of the execbuffer, for error capture. */
    readonly objects: readonly DrmI915GemObject[],
    /** Who submitted it (pid), for error capture. */
    readonly pid: number,
  ) {}
}

/**
 * struct intel_ring_buffer (3.16): one engine as the driver sees it. The hardware side is an
 * `Engine`; a task per ring plays the command streamer, taking submitted requests in order,
 * executing their batches, writing the breadcrumb and raising the user interrupt.
 */
export class IntelRing {
  readonly hw: Engine;
  /** Submitted, not yet retired, in seqno order. Protected by struct_mutex. */
  readonly request_list: DrmI915GemRequest[] = [];
  /** Objects active on this ring, in order of their last use. Protected by struct_mutex. */
  readonly active_list = new Set<DrmI915GemObject>();
  /** Requests the command streamer has yet to execute (the ring's contents). */
  readonly queue: DrmI915GemRequest[] = [];
  /** Woken on every user interrupt (a breadcrumb landed) and on resets. */
  readonly irq_queue: WaitQueue;
  /** The command streamer sleeps here for work. */
  readonly doorbell: WaitQueue;
  /** A seqno reserved for the request being built (3.16 outstanding_lazy_seqno). */
  outstanding_lazy_seqno = 0;
  /** Highest seqno handed to the hardware. */
  last_submitted_seqno = 0;
  task: Task | null = null;

  constructor(
    readonly sched: Scheduler,
    readonly id: EngineId,
    gtt: GlobalGtt,
    gen: 7 | 8,
    /** The device the ring belongs to. */
    readonly dev: DrmDevice,
    /** Sanitizers called as a batch starts executing (read-only; shared by the device's rings). */
    readonly observers: readonly ((req: DrmI915GemRequest) => void)[] = [],
  ) {
    this.hw = new Engine(gtt, { id, gen });
    this.irq_queue = new WaitQueue(sched, `${this.hw.name} irq`, () => (this.task ? [this.task] : []));
    this.doorbell = new WaitQueue(sched, `${this.hw.name} doorbell`);
  }

  get name(): string {
    return this.hw.name;
  }

  /** intel_ring_flag(): the ring's bit in GEM_BUSY's upper half. */
  get flag(): number {
    return this.id === 'rcs' ? 1 : 4;
  }

  /** ring->get_seqno(): the last breadcrumb the hardware wrote. */
  get_seqno(): number {
    return this.hw.get_seqno();
  }

  request(seqno: number): DrmI915GemRequest | undefined {
    return this.request_list.find((r) => r.seqno === seqno);
  }

  get idle(): boolean {
    return this.queue.length === 0 && !this.hw.busy;
  }
}

/** i915_seqno_passed(): wrap-safe comparison. */
export function i915_seqno_passed(seq1: number, seq2: number): boolean {
  return ((seq1 - seq2) | 0) >= 0;
}

/** Hook through which the command streamer reports a hang to the driver (i915_handle_error). */
export type HangHandler = (ring: IntelRing, req: DrmI915GemRequest, fault: ExecFault) => void;

/**
 * The command streamer of one ring, as a task: execute queued batches in order; after each,
 * write the breadcrumb and raise the interrupt. On a hang it stops and reports; it resumes when
 * the driver has reset the engine.
 */
export function* ring_task(ring: IntelRing, onHang: HangHandler, onComplete: () => void): KGen {
  for (;;) {
    const req = ring.queue[0];
    if (!req || ring.hw.hung) {
      yield ring.doorbell.sleep();
      ring.doorbell.leave();
      continue;
    }
    for (const o of ring.observers) o(req);
    const res = yield* ring.hw.execute(req.batch_start, req.batch_len);
    if (!res.ok) {
      req.fault = res;
      req.error = -ERRNO.EIO;
      onHang(ring, req, res);
      continue;
    }
    ring.queue.shift();
    req.completed = true;
    ring.hw.completeSeqno(req.seqno);
    yield { op: 'user_interrupt', resource: ring.name, detail: `seqno ${req.seqno}` };
    ring.irq_queue.wake_up_all();
    onComplete();
  }
}
