import type { Process } from '../kernel/process.js';
import { scratch_give, scratch_take } from '../base/scratch.js';
import * as uapi from '../uapi/index.js';
import type { Relocation } from './batch.js';
import { drmIoctl } from './ioctl_wrappers.js';

/**
 * execbuffer2 from user space: the exec_object2 array and every relocation array are written in
 * the process's own memory (an anonymous mapping for the duration of the call), exactly as a C
 * client lays them out, and DRM_IOCTL_I915_GEM_EXECBUFFER2 gets their user addresses. After the
 * call the kernel's write-backs (exec_object2.offset, relocation presumed_offset) are read back.
 */

/** One buffer of the execbuffer's object list. */
export interface ExecObject {
  handle: number;
  /** Relocations to apply inside this object (usually only the batch has any). */
  relocs?: readonly Relocation[];
  /** EXEC_OBJECT_* flags. */
  flags?: number | bigint;
  alignment?: number | bigint;
  /** Presumed (in) GTT offset. */
  offset?: bigint;
}

/** The batch: the last object of the list (first with I915_EXEC_BATCH_FIRST). */
export interface ExecBatch extends ExecObject {
  /** Bytes to execute from `start` (0: to the end of the object). */
  len: number;
  start?: number;
}

export type Ring = 'default' | 'render' | 'bsd' | 'blt' | 'vebox';

const RINGS: Readonly<Record<Ring, number>> = {
  default: uapi.I915_EXEC_DEFAULT,
  render: uapi.I915_EXEC_RENDER,
  bsd: uapi.I915_EXEC_BSD,
  blt: uapi.I915_EXEC_BLT,
  vebox: uapi.I915_EXEC_VEBOX,
};

export interface ExecbufOptions {
  /** The buffers other than the batch, in list order. */
  objects: readonly ExecObject[];
  batch: ExecBatch;
  /** Ring selection (default: the default ring) or raw I915_EXEC_* ring bits. */
  ring?: Ring | number;
  /** Further I915_EXEC_* flags (NO_RELOC, HANDLE_LUT, BATCH_FIRST, ...). */
  flags?: number | bigint;
  /** Context id (rsvd1). */
  context?: number;
  /** The request number: DRM_IOCTL_I915_GEM_EXECBUFFER2 (default) or the _WR form. */
  request?: number;
}

/** What the kernel wrote back. */
export interface ExecbufResult {
  /** exec_object2.offset of every object, in list order (the batch included). */
  offsets: bigint[];
  /** presumed_offset of every relocation, per object in list order. */
  presumed: bigint[][];
  /** The execbuffer2 struct as it came back (rsvd2 carries the out-fence with the _WR form). */
  execbuffer: uapi.drm_i915_gem_execbuffer2;
}

/** A laid-out execbuffer2 in the process's memory (see build_execbuf). */
export interface ExecbufLayout {
  /** Start and length of the anonymous mapping holding the arrays. */
  addr: number;
  size: number;
  /** The list in execution-list order (batch last unless BATCH_FIRST). */
  list: ExecObject[];
  /** User address of the exec_object2 array, and of each object's relocation array (0: none). */
  buffers_ptr: number;
  relocs_ptr: number[];
  /** The drm_i915_gem_execbuffer2 bytes to pass to the ioctl. */
  execbuffer: Uint8Array;
}

const OBJ = uapi.drm_i915_gem_exec_object2.size;
const RELOC = uapi.drm_i915_gem_relocation_entry.size;

/**
 * Writes the exec_object2 array and the relocation arrays into fresh anonymous memory of `p` and
 * encodes the execbuffer2 struct pointing at them. The caller unmaps `addr`/`size`.
 */
export function build_execbuf(p: Process, opts: ExecbufOptions): ExecbufLayout {
  const flags = BigInt(opts.flags ?? 0);
  const batchFirst = (flags & BigInt(uapi.I915_EXEC_BATCH_FIRST)) !== 0n;
  const list: ExecObject[] = batchFirst ? [opts.batch, ...opts.objects] : [...opts.objects, opts.batch];
  const relocBytes = list.reduce((n, o) => n + (o.relocs?.length ?? 0) * RELOC, 0);
  const size = Math.max(4096, Math.ceil((list.length * OBJ + relocBytes) / 4096) * 4096);
  const addr = p.mmap(0, size, uapi.PROT_READ | uapi.PROT_WRITE, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
  try {
    const mem = scratch_take(list.length * OBJ + relocBytes);
    const relocs_ptr: number[] = [];
    let at = list.length * OBJ;
    list.forEach((o, i) => {
      const relocs = o.relocs ?? [];
      const ptr = relocs.length ? addr + at : 0;
      relocs_ptr.push(ptr);
      for (const r of relocs) {
        uapi.drm_i915_gem_relocation_entry.encode(r, mem, at);
        at += RELOC;
      }
      uapi.drm_i915_gem_exec_object2.encode(
        {
          handle: o.handle,
          relocation_count: relocs.length,
          relocs_ptr: BigInt(ptr),
          alignment: BigInt(o.alignment ?? 0),
          offset: o.offset ?? 0n,
          flags: BigInt(o.flags ?? 0),
        },
        mem,
        i * OBJ,
      );
    });
    p.write(addr, mem);
    scratch_give(mem);
    const ring = typeof opts.ring === 'number' ? opts.ring : RINGS[opts.ring ?? 'default'];
    const execbuffer = uapi.drm_i915_gem_execbuffer2.encode({
      buffers_ptr: BigInt(addr),
      buffer_count: list.length,
      batch_start_offset: opts.batch.start ?? 0,
      batch_len: opts.batch.len,
      flags: BigInt(ring) | flags,
      rsvd1: BigInt(opts.context ?? 0),
    });
    return { addr, size, list, buffers_ptr: addr, relocs_ptr, execbuffer };
  } catch (e) {
    p.munmap(addr, size);
    throw e;
  }
}

/** Reads back what the kernel wrote into a laid-out execbuffer. */
export function read_execbuf(p: Process, layout: ExecbufLayout): Omit<ExecbufResult, 'execbuffer'> {
  const n = layout.list.length;
  const objs = uapi.drm_i915_gem_exec_object2.decodeArray(p.read(layout.buffers_ptr, n * OBJ), n);
  const presumed = layout.list.map((o, i) => {
    const count = o.relocs?.length ?? 0;
    if (!count) return [];
    const rs = uapi.drm_i915_gem_relocation_entry.decodeArray(
      p.read(layout.relocs_ptr[i]!, count * RELOC),
      count,
    );
    return rs.map((r) => r.presumed_offset);
  });
  return { offsets: objs.map((o) => o.offset), presumed };
}

/**
 * execbuf(): lays the lists out in the process, calls EXECBUFFER2 (retrying EINTR/EAGAIN), reads
 * the write-backs and frees the memory. Errors throw ErrnoError.
 */
export function execbuf(p: Process, fd: number, opts: ExecbufOptions): ExecbufResult {
  const layout = build_execbuf(p, opts);
  try {
    drmIoctl(p, fd, opts.request ?? uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, layout.execbuffer);
    return {
      ...read_execbuf(p, layout),
      execbuffer: uapi.drm_i915_gem_execbuffer2.decode(layout.execbuffer),
    };
  } finally {
    p.munmap(layout.addr, layout.size);
  }
}
