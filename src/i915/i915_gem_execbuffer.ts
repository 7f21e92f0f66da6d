/**
 * DRM_IOCTL_I915_GEM_EXECBUFFER2 (Linux 3.16 drivers/gpu/drm/i915/i915_gem_execbuffer.c).
 *
 * What a call does, in 3.16's order (each step's errno in brackets):
 *
 * 1. i915_gem_execbuffer2: buffer_count 0 or above UINT_MAX / 56 [EINVAL]; the exec_object2
 *    array is copied in from `buffers_ptr` [EFAULT].
 * 2. i915_gem_do_execbuffer, before struct_mutex: unknown exec flags or a batch_start_offset /
 *    batch_len that is not 8-byte aligned [EINVAL]; validate_exec_list: unknown EXEC_OBJECT_*
 *    flags [EINVAL], too many relocations in total [EINVAL], a relocation array that is not
 *    writable user space or cannot be faulted in for reading [EFAULT]; I915_EXEC_SECURE without
 *    being master and root [EPERM]; ring selection (DEFAULT/RENDER: render ring, BLT: blitter
 *    ring; BSD, VEBOX and anything else are not present on this machine) [EINVAL]; the constants
 *    mode (REL_SURFACE on the render ring of gen6+, or the undefined mode 3) [EINVAL]; cliprects
 *    (gen5+) [EINVAL].
 * 3. i915_mutex_lock_interruptible [EIO wedged, EAGAIN during a reset, EINTR on a signal];
 *    i915_gem_validate_context: a non-zero context id on a ring other than render [EINVAL], an id
 *    the file does not have (never created, or destroyed) [ENOENT], a context banned for hanging
 *    the GPU twice within 12 s [EIO]. Id 0 is the file's default context, on every ring.
 * 4. eb_lookup_vmas, in list order: an unknown handle [ENOENT], a handle seen earlier in the
 *    list [EINVAL]. The batch is the last object.
 * 5. i915_gem_execbuffer_reserve: pin every object in the GTT (alignment from the entry),
 *    unbinding misplaced ones first; when the objects do not fit, evict everything once and try
 *    again [ENOSPC]; an object larger than the GTT [E2BIG]; pages the object cannot get [EFAULT,
 *    ENOMEM...]. An object whose offset moved (or any object, without I915_EXEC_NO_RELOC) makes
 *    the relocations necessary; exec_object2.offset takes the object's GTT offset.
 * 6. i915_gem_execbuffer_relocate, the fast path, struct_mutex held and page faults disabled:
 *    each relocation list is read 16 entries at a time with __copy_from_user_inatomic; per entry:
 *    target lookup [ENOENT], several write domains [EINVAL], a domain outside the GPU's (CPU,
 *    GTT) [EINVAL]; then, unless presumed_offset already equals the target's offset (the entry
 *    is skipped without further checks), the offset must leave room for 4 bytes (8 on gen8)
 *    [EINVAL] and be 4-aligned [EINVAL]; the target address is written into the object's pages
 *    (LLC: always the CPU path) and presumed_offset back to the user's entry. A page that is not
 *    present (or not writable, for the write-back), or an object still active on the GPU, gives
 *    -EFAULT, which sends the call down the slow path: drop every object and struct_mutex, copy
 *    all relocation lists with faults allowed [EFAULT], set every user presumed_offset to ~0
 *    (3.16 never writes the real values back on this path), retake the lock, look the objects up
 *    and reserve them again, and relocate from the kernel copy, waiting for the GPU if needed.
 * 7. A batch that relocations (or EXEC_OBJECT_WRITE) would write to [EINVAL: self-modifying].
 * 8. i915_gem_execbuffer_move_to_gpu: objects last used by the other ring are waited for (no
 *    semaphores on this machine); I915_EXEC_GEN7_SOL_RESET outside gen7's render ring [EINVAL];
 *    the batch is dispatched; every object moves to the ring's active list (reading or writing,
 *    by its pending domains) and i915_add_request hands the request to the command streamer.
 * 9. Every object is unpinned (the active list keeps them referenced); then, back in
 *    i915_gem_execbuffer2 and only on success, each exec_object2.offset is written back to the
 *    user's array [EFAULT].
 *
 * Deviations from 3.16, all deliberate:
 * - gen6+ dispatch (MI_BATCH_BUFFER_START) has no length: the engine runs until
 *   MI_BATCH_BUFFER_END whatever batch_len says. The model executes at most up to the end of the
 *   batch object (batch_len is ignored, 0 or not); running off its end hangs the GPU
 *   ('batch-overrun') where the hardware would run into whatever the GTT maps next.
 * - gen8 relocations: 3.16 adds the u32 delta to the target offset in 32 bits and writes 0 as
 *   the upper dword (its GGTT never exceeds 4 GiB). So does the model, unless the target lies
 *   above 4 GiB (only possible with a configured GTT larger than 3.16's hardware), where the
 *   full 64-bit sum is written.
 * - The command parser (off on 3.16 with aliasing PPGTT), fences (no fenced GPU access on gen4+),
 *   hardware context state (no MI_SET_CONTEXT: a context is an id and its hang statistics, see
 *   i915_gem_context.ts) and intel_runtime_pm are not modelled. With a single (global) address space, 3.16's
 *   i915_gem_evict_vm(vm, true) is i915_gem_evict_everything.
 * - After the slow path 3.16 keeps using the batch object it noted before dropping the lock; the
 *   model takes the last object of the second lookup, which is the same object unless the
 *   handle was closed and reused meanwhile (a use-after-free in 3.16).
 * - A wait for the GPU that ends with the request failed by a hang (-EIO in this model, a plain
 *   completion in 3.16) counts as done, unless the GPU is wedged.
 * - EXECBUFFER2_WR is the same table entry (3.16 dispatches by nr and the table's request is
 *   _IOW): the struct is never copied back, so rsvd2 (the later out-fence) is left untouched,
 *   and rsvd2 is not checked (the "dirty rsvd2" EINVAL came after 3.16).
 * - The exec list is limited to the machine's RAM (drm_malloc_ab fails beyond it) [ENOMEM].
 */
import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import { scratch_give, scratch_take } from '../base/scratch.js';
import type { DrmDevice } from '../drm/drm_device.js';
import type { DrmFile } from '../drm/drm_file.js';
import { drm_gem_object_reference, drm_gem_object_unreference } from '../drm/drm_gem.js';
import {
  DRM_AUTH,
  DRM_IOCTL_DEF,
  DRM_RENDER_ALLOW,
  DRM_UNLOCKED,
  type DrmIoctlDesc,
} from '../drm/drm_ioctl.js';
import { CAP_SYS_ADMIN, current } from '../mm/current.js';
import { pte_allows } from '../mm/memory.js';
import { type MmStruct, pte_pfn } from '../mm/mm_types.js';
import {
  access_ok,
  copy_from_user,
  copy_to_user,
  fault_in_multipages_readable,
  user_pages_readable,
} from '../mm/uaccess.js';
import type { KGen, Point } from '../sched/task.js';
import * as uapi from '../uapi/i915_drm.js';
import { type DrmI915Private, to_i915, to_i915_file } from './i915_drv.js';
import { DEFAULT_CONTEXT_ID, type I915HwContext, i915_gem_context_get } from './i915_gem_context.js';
import {
  i915_add_request,
  i915_gem_object_move_to_active,
  i915_gem_object_wait_rendering,
  i915_mutex_lock_interruptible,
} from './i915_gem.js';
import { I915_GEM_GPU_DOMAINS } from './i915_gem_domain.js';
import { i915_gem_evict_everything } from './i915_gem_evict.js';
import { i915_gem_object_ggtt_unpin, i915_gem_object_pin, i915_vma_unbind } from './i915_gem_gtt.js';
import { type DrmI915GemObject, to_intel_bo } from './i915_gem_object.js';
import type { IntelRing } from './intel_ringbuffer.js';

/** I915_NUM_RINGS in 3.16: RCS, VCS, BCS, VECS, VCS2 (ring = dev_priv->ring[selector - 1]). */
const I915_NUM_RINGS = 5;
/** The ring ids in 3.16's order; only render and blitter exist on this machine. */
const RING_IDS: readonly ('rcs' | 'bcs' | null)[] = ['rcs', null, 'bcs', null, null];

const EXEC_OBJECT_SIZE = uapi.drm_i915_gem_exec_object2.size;
const RELOC_SIZE = uapi.drm_i915_gem_relocation_entry.size;
/** Relocations read per fast-path chunk: 3.16 uses a 512-byte array on the stack. */
const N_RELOC = 512 / RELOC_SIZE;
const OFFSET_OF_EXEC_OFFSET = uapi.drm_i915_gem_exec_object2.offsetOf('offset');
const OFFSET_OF_PRESUMED = uapi.drm_i915_gem_relocation_entry.offsetOf('presumed_offset');
const U32_MAX = 0xffffffff;
const TWO_32 = 2 ** 32;

// The flag bits as bigints, converted once (args.flags and exec flags are __u64).
const EXEC_SECURE = BigInt(uapi.I915_EXEC_SECURE);
const EXEC_RING_MASK = BigInt(uapi.I915_EXEC_RING_MASK_3_16);
const EXEC_CONSTANTS_MASK = BigInt(uapi.I915_EXEC_CONSTANTS_MASK);
const EXEC_HANDLE_LUT = BigInt(uapi.I915_EXEC_HANDLE_LUT);
const EXEC_NO_RELOC = BigInt(uapi.I915_EXEC_NO_RELOC);
const EXEC_GEN7_SOL_RESET = BigInt(uapi.I915_EXEC_GEN7_SOL_RESET);
const OBJECT_WRITE = BigInt(uapi.EXEC_OBJECT_WRITE);

/** The kernel's copy of one drm_i915_gem_exec_object2, plus __EXEC_OBJECT_HAS_PIN. */
interface ExecEntry {
  readonly handle: number;
  readonly relocation_count: number;
  /** User address of the relocation array (a u64; anything beyond 2^53 fails access_ok). */
  readonly relocs_ptr: number;
  readonly alignment: bigint;
  /** In: the presumed offset; out: the object's GTT offset. */
  offset: bigint;
  readonly flags: bigint;
  has_pin: boolean;
}

/** Little-endian reads of the exec list (x86_64), straight into ExecEntry: no decoded struct. */
function u32_at(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
function u64_at(b: Uint8Array, o: number): bigint {
  const lo = u32_at(b, o);
  const hi = u32_at(b, o + 4);
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/** The kernel's copy of the drm_i915_gem_exec_object2 at `o` in `raw`. */
function exec_entry(raw: Uint8Array, o: number): ExecEntry {
  const lo = u32_at(raw, o + 8);
  const hi = u32_at(raw, o + 12);
  return {
    handle: u32_at(raw, o),
    relocation_count: u32_at(raw, o + 4),
    // Number(bigint) rounds once to nearest; so does hi * 2^32 + lo (hi * 2^32 is exact).
    relocs_ptr: hi * TWO_32 + lo,
    alignment: u64_at(raw, o + 16),
    offset: u64_at(raw, o + 24),
    flags: u64_at(raw, o + 32),
    has_pin: false,
  };
}

/** One object of the exec list (3.16's i915_vma on eb->vmas; our vma appears at binding). */
interface EbVma {
  readonly obj: DrmI915GemObject;
  readonly entry: ExecEntry;
  /** Position in the user's list (HANDLE_LUT index; the slow path's relocation copy). */
  readonly index: number;
}

/** Lists up to this long are searched in place; longer ones get a hash (3.16's eb->buckets). */
const EB_LINEAR = 16;

/** struct eb_vmas: the exec list and the lookup relocations use for their targets. */
class EbVmas {
  /** In list order (reserve would move objects needing the aperture first: none on LLC). */
  vmas: EbVma[] = [];
  /** By handle, for long lists without HANDLE_LUT; made at the first lookup. */
  private lookup: Map<number, EbVma> | null = null;

  constructor(readonly handle_lut: boolean) {}

  add(vma: EbVma): void {
    this.vmas.push(vma);
    this.lookup = null;
  }

  /** eb_get_vma(). HANDLE_LUT: by index (objects are added in list order); otherwise by handle. */
  get(handle: number): EbVma | undefined {
    const vmas = this.vmas;
    if (this.handle_lut) return vmas[handle];
    if (vmas.length <= EB_LINEAR) {
      // Handles are unique: eb_lookup_vmas refused a list naming an object twice.
      for (let i = 0; i < vmas.length; i++) if (vmas[i]!.entry.handle === handle) return vmas[i];
      return undefined;
    }
    let m = this.lookup;
    if (m === null) {
      m = new Map();
      for (const v of vmas) m.set(v.entry.handle, v);
      this.lookup = m;
    }
    return m.get(handle);
  }

  reset(): void {
    this.vmas = [];
    this.lookup = null;
  }
}

// --- user memory with page faults disabled ----------------------------------------------------

/**
 * __copy_from_user_inatomic / __copy_to_user_inatomic under pagefault_disable(): only pages
 * whose PTE already permits the access are used; the first one that would fault ends the copy.
 * Returns the number of bytes not copied.
 */
function copy_user_inatomic(
  mm: MmStruct,
  addr: number,
  len: number,
  write: boolean,
  fn: (frame: Uint8Array, done: number) => void,
): number {
  if (!access_ok(addr, len)) return len;
  const ram = mm.k.ram;
  let done = 0;
  while (done < len) {
    if (mm.freed) return len - done;
    const a = addr + done;
    const off = a % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - off, len - done);
    const pte = mm.pgd.get(Math.floor(a / PAGE_SIZE));
    if (!pte_allows(pte, write)) return len - done;
    fn(ram.frame(pte_pfn(pte)).subarray(off, off + n), done);
    done += n;
  }
  return 0;
}

function copy_from_user_inatomic(mm: MmStruct, dst: Uint8Array, src: number): number {
  return copy_user_inatomic(mm, src, dst.length, false, (frame, done) => dst.set(frame, done));
}

function copy_to_user_inatomic(mm: MmStruct, dst: number, src: Uint8Array): number {
  return copy_user_inatomic(mm, dst, src.length, true, (frame, done) =>
    frame.set(src.subarray(done, done + frame.length)),
  );
}

/** Conversion scratch of u64_bytes (used and copied out within one call: nothing yields there). */
const u64View = new DataView(new ArrayBuffer(8));
const u64Bytes = new Uint8Array(u64View.buffer);

function u64_bytes(v: bigint): Uint8Array {
  u64View.setBigUint64(0, BigInt.asUintN(64, v), true);
  return u64Bytes.slice();
}

// --- argument checks ----------------------------------------------------------------------------

/** i915_gem_check_execbuffer(). */
function i915_gem_check_execbuffer(args: uapi.drm_i915_gem_execbuffer2): boolean {
  if (args.flags & uapi.__I915_EXEC_UNKNOWN_FLAGS_3_16) return false;
  return ((args.batch_start_offset | args.batch_len) & 0x7) === 0;
}

/** validate_exec_list(). */
function* validate_exec_list(mm: MmStruct, exec: readonly ExecEntry[]): KGen<number> {
  const relocs_max = Math.floor(U32_MAX / RELOC_SIZE);
  let relocs_total = 0;
  for (const e of exec) {
    if (e.flags & uapi.__EXEC_OBJECT_UNKNOWN_FLAGS_3_16) return -ERRNO.EINVAL;
    // The worst case allocates every relocation as one array: refuse counts that overflow it.
    if (e.relocation_count > relocs_max - relocs_total) return -ERRNO.EINVAL;
    relocs_total += e.relocation_count;
    // `int length`: beyond 2 GiB it is negative, which access_ok refuses.
    const length = (e.relocation_count * RELOC_SIZE) | 0;
    // Presumed offsets are written back: the whole array must be writable user space.
    if (!access_ok(e.relocs_ptr, length)) return -ERRNO.EFAULT;
    if (
      !user_pages_readable(mm, e.relocs_ptr, length) &&
      (yield* fault_in_multipages_readable(mm, e.relocs_ptr, length))
    ) {
      return -ERRNO.EFAULT;
    }
  }
  return 0;
}

// --- object lookup --------------------------------------------------------------------------------

/**
 * eb_lookup_vmas(): every handle, in list order, to its object (with a reference the exec list
 * holds). -ENOENT for an unknown handle, -EINVAL for one that appears twice; on failure no
 * reference is kept.
 */
function* eb_lookup_vmas(eb: EbVmas, exec: readonly ExecEntry[], file: DrmFile): KGen<number> {
  const objects: DrmI915GemObject[] = [];
  // Short lists are searched in place; a Set only for long ones.
  const seen = exec.length > EB_LINEAR ? new Set<DrmI915GemObject>() : null;
  let ret = 0;
  for (const e of exec) {
    const gem = file.object_idr.find(e.handle);
    if (!gem) {
      ret = -ERRNO.ENOENT;
      break;
    }
    const obj = to_intel_bo(gem);
    if (seen ? seen.has(obj) : objects.includes(obj)) {
      ret = -ERRNO.EINVAL;
      break;
    }
    seen?.add(obj);
    drm_gem_object_reference(obj);
    objects.push(obj);
  }
  if (ret) {
    for (const obj of objects) yield* drm_gem_object_unreference(obj);
    return ret;
  }
  objects.forEach((obj, index) => {
    eb.add({ obj, entry: exec[index]!, index });
  });
  return 0;
}

/** i915_gem_execbuffer_unreserve_vma(). */
function i915_gem_execbuffer_unreserve_vma(vma: EbVma): void {
  if (!vma.obj.vma?.bound) return;
  if (vma.entry.has_pin) i915_gem_object_ggtt_unpin(vma.obj);
  vma.entry.has_pin = false;
}

/** eb_destroy() (without the kfree): unpin and drop every object of the list. */
function* eb_release(eb: EbVmas): KGen {
  const vmas = eb.vmas;
  eb.reset();
  for (const vma of vmas) {
    i915_gem_execbuffer_unreserve_vma(vma);
    yield* drm_gem_object_unreference(vma.obj);
  }
}

// --- reservation ----------------------------------------------------------------------------------

/** The GTT alignment a pin gets: 3.16's i915_gem_object_pin takes it as a u32. */
function entry_alignment(entry: ExecEntry): number {
  return Number(BigInt.asUintN(32, entry.alignment));
}

/** eb_vma_misplaced(): bound at an offset the entry's alignment refuses (LLC: nothing else). */
function eb_vma_misplaced(vma: EbVma): boolean {
  const a = vma.entry.alignment;
  return a !== 0n && (BigInt(vma.obj.vma!.start) & (a - 1n)) !== 0n;
}

/** i915_gem_execbuffer_reserve_vma(): pin it; note where it is and whether it moved. */
function* i915_gem_execbuffer_reserve_vma(vma: EbVma, need_relocs: { v: boolean }): KGen<number> {
  const { obj, entry } = vma;
  // No fenced GPU access on gen4+, and on LLC relocations never go through the aperture, so no
  // object needs to be mappable.
  const ret = yield* i915_gem_object_pin(obj, entry_alignment(entry), {});
  if (ret) return ret;
  entry.has_pin = true;
  const start = BigInt(obj.vma!.start);
  if (entry.offset !== start) {
    entry.offset = start;
    need_relocs.v = true;
  }
  if (entry.flags & OBJECT_WRITE) {
    obj.pending_read_domains = uapi.I915_GEM_DOMAIN_RENDER;
    obj.pending_write_domain = uapi.I915_GEM_DOMAIN_RENDER;
  }
  return 0;
}

/**
 * i915_gem_execbuffer_reserve(): pin every object: first those already bound (unbinding the
 * misplaced ones), then the rest, so that earlier objects are not evicted to make room for later
 * ones unless the GTT must be defragmented: on -ENOSPC everything is unpinned, the whole GTT is
 * evicted, and the pinning is tried once more.
 */
function* i915_gem_execbuffer_reserve(
  dp: DrmI915Private,
  eb: EbVmas,
  need_relocs: { v: boolean },
): KGen<number> {
  for (const { obj } of eb.vmas) {
    obj.pending_read_domains = I915_GEM_GPU_DOMAINS & ~uapi.I915_GEM_DOMAIN_COMMAND;
    obj.pending_write_domain = 0;
  }
  for (let retry = 0; ;) {
    let ret = 0;
    for (const vma of eb.vmas) {
      if (!vma.obj.vma?.bound) continue;
      if (eb_vma_misplaced(vma)) ret = yield* i915_vma_unbind(vma.obj.vma);
      else ret = yield* i915_gem_execbuffer_reserve_vma(vma, need_relocs);
      if (ret) break;
    }
    if (!ret) {
      for (const vma of eb.vmas) {
        if (vma.obj.vma?.bound) continue;
        ret = yield* i915_gem_execbuffer_reserve_vma(vma, need_relocs);
        if (ret) break;
      }
    }
    if (ret !== -ERRNO.ENOSPC || retry++) return ret;
    for (const vma of eb.vmas) i915_gem_execbuffer_unreserve_vma(vma);
    ret = yield* i915_gem_evict_everything(dp);
    if (ret) return ret;
  }
}

// --- relocations ----------------------------------------------------------------------------------

/** A wait that ended because the awaited request hung is over (3.16: it completed). */
function wait_done(dp: DrmI915Private, ret: number): number {
  return ret === -ERRNO.EIO && !dp.gpu_error.wedged ? 0 : ret;
}

/**
 * i915_gem_object_set_to_cpu_domain(obj, write) as the relocation path uses it: wait for the GPU,
 * leave the GTT write domain, and (writing) make the CPU the only domain. LLC: no clflush.
 */
function* set_to_cpu_domain(obj: DrmI915GemObject, write: boolean): KGen<number> {
  if (obj.write_domain === uapi.I915_GEM_DOMAIN_CPU) return 0;
  const ret = wait_done(to_i915(obj.dev), yield* i915_gem_object_wait_rendering(obj, !write));
  if (ret) return ret;
  // i915_gem_object_flush_gtt_write_domain(): a wmb() and the GTT domain is left.
  if (obj.write_domain === uapi.I915_GEM_DOMAIN_GTT) obj.write_domain = 0;
  obj.read_domains |= uapi.I915_GEM_DOMAIN_CPU;
  if (write) {
    obj.read_domains = uapi.I915_GEM_DOMAIN_CPU;
    obj.write_domain = uapi.I915_GEM_DOMAIN_CPU;
  }
  return 0;
}

/** Writes a little-endian dword into the (pinned) pages of obj at a 4-aligned offset. */
function write_obj_dword(obj: DrmI915GemObject, offset: number, value: number): void {
  const pfn = obj.pages![Math.floor(offset / PAGE_SIZE)]!;
  const frame = obj.dev.k.ram.frame(pfn);
  const o = offset % PAGE_SIZE;
  frame[o] = value & 0xff;
  frame[o + 1] = (value >>> 8) & 0xff;
  frame[o + 2] = (value >>> 16) & 0xff;
  frame[o + 3] = (value >>> 24) & 0xff;
}

/** relocate_entry_cpu(): through the CPU, into the object's pages (kmap_atomic of each page). */
function* relocate_entry_cpu(
  obj: DrmI915GemObject,
  reloc: uapi.drm_i915_gem_relocation_entry,
  target_offset: number,
): KGen<number> {
  const ret = yield* set_to_cpu_domain(obj, true);
  if (ret) return ret;
  const offset = Number(reloc.offset);
  const sum = target_offset + reloc.delta;
  write_obj_dword(obj, offset, sum % TWO_32);
  if (to_i915(obj.dev).info.gen >= 8) {
    write_obj_dword(obj, offset + 4, target_offset < TWO_32 ? 0 : Math.floor(sum / TWO_32));
  }
  return 0;
}

/**
 * i915_gem_execbuffer_relocate_entry(). `atomic`: the fast path (page faults disabled), where an
 * object the GPU still uses cannot be waited for: -EFAULT sends the caller down the slow path.
 */
function* i915_gem_execbuffer_relocate_entry(
  obj: DrmI915GemObject,
  eb: EbVmas,
  reloc: uapi.drm_i915_gem_relocation_entry,
  atomic: boolean,
): KGen<number> {
  const target = eb.get(reloc.target_handle);
  if (!target) return -ERRNO.ENOENT;
  const target_obj = target.obj;
  const target_offset = target_obj.vma!.start;
  const write = reloc.write_domain >>> 0;
  const read = reloc.read_domains >>> 0;
  // The target must be in one GPU write domain at most, and in GPU domains only.
  if ((write & (write - 1)) !== 0) return -ERRNO.EINVAL;
  if (((write | read) & ~I915_GEM_GPU_DOMAINS) !== 0) return -ERRNO.EINVAL;
  target_obj.pending_read_domains |= read;
  target_obj.pending_write_domain |= write;
  // The relocation already holds the right value: nothing more to do (nor to check).
  if (BigInt(target_offset) === reloc.presumed_offset) return 0;
  const gen = to_i915(obj.dev).info.gen;
  if (reloc.offset > BigInt(obj.size - (gen >= 8 ? 8 : 4))) return -ERRNO.EINVAL;
  if (reloc.offset & 3n) return -ERRNO.EINVAL;
  // We can't wait for rendering with page faults disabled.
  if (obj.active && atomic) return -ERRNO.EFAULT;
  const ret = yield* relocate_entry_cpu(obj, reloc, target_offset);
  if (ret) return ret;
  reloc.presumed_offset = BigInt(target_offset);
  return 0;
}

/** i915_gem_execbuffer_relocate_vma(): one object's list, straight from user memory. */
function* i915_gem_execbuffer_relocate_vma(vma: EbVma, eb: EbVmas, mm: MmStruct): KGen<number> {
  const codec = uapi.drm_i915_gem_relocation_entry;
  const stack_reloc = scratch_take(N_RELOC * RELOC_SIZE);
  let user_relocs = vma.entry.relocs_ptr;
  let remain = vma.entry.relocation_count;
  try {
    while (remain) {
      const count = Math.min(remain, N_RELOC);
      remain -= count;
      const r = stack_reloc.subarray(0, count * RELOC_SIZE);
      if (copy_from_user_inatomic(mm, r, user_relocs)) return -ERRNO.EFAULT;
      for (let k = 0; k < count; k++) {
        const reloc = codec.decode(r, k * RELOC_SIZE);
        const offset = reloc.presumed_offset;
        const ret = yield* i915_gem_execbuffer_relocate_entry(vma.obj, eb, reloc, true);
        if (ret) return ret;
        if (
          reloc.presumed_offset !== offset &&
          copy_to_user_inatomic(mm, user_relocs + OFFSET_OF_PRESUMED, u64_bytes(reloc.presumed_offset))
        ) {
          return -ERRNO.EFAULT;
        }
        user_relocs += RELOC_SIZE;
      }
    }
    return 0;
  } finally {
    scratch_give(stack_reloc);
  }
}

/** i915_gem_execbuffer_relocate(): the fast path over every object (pagefault_disable()d). */
function* i915_gem_execbuffer_relocate(eb: EbVmas, mm: MmStruct): KGen<number> {
  for (const vma of eb.vmas) {
    const ret = yield* i915_gem_execbuffer_relocate_vma(vma, eb, mm);
    if (ret) return ret;
  }
  return 0;
}

/**
 * i915_gem_execbuffer_relocate_slow(): entered and left with struct_mutex held, but drops it
 * (and every object) to copy the relocations with page faults allowed. The user's presumed
 * offsets are all set to ~0 so that the next call relocates everything again.
 */
function* i915_gem_execbuffer_relocate_slow(
  dev: DrmDevice,
  args: uapi.drm_i915_gem_execbuffer2,
  file: DrmFile,
  eb: EbVmas,
  exec: readonly ExecEntry[],
  mm: MmStruct,
): KGen<number> {
  const dp = to_i915(dev);
  const codec = uapi.drm_i915_gem_relocation_entry;
  // We may process another execbuffer during the unlock...
  yield* eb_release(eb);
  dev.struct_mutex.unlock();
  let total = 0;
  for (const e of exec) total += e.relocation_count;
  if (total * RELOC_SIZE > dp.k.ram.totalPages * PAGE_SIZE) {
    yield* dev.struct_mutex.lock();
    return -ERRNO.ENOMEM;
  }
  const reloc = new Uint8Array(total * RELOC_SIZE);
  const reloc_offset: number[] = [];
  const invalid_offset = u64_bytes(-1n);
  total = 0;
  for (const e of exec) {
    const bytes = e.relocation_count * RELOC_SIZE;
    if (
      yield* copy_from_user(mm, reloc.subarray(total * RELOC_SIZE, total * RELOC_SIZE + bytes), e.relocs_ptr)
    ) {
      yield* dev.struct_mutex.lock();
      return -ERRNO.EFAULT;
    }
    // The offsets are not written back on this path: make the next call relocate again, in case
    // a target is evicted and rebound at its old offset meanwhile.
    for (let j = 0; j < e.relocation_count; j++) {
      if (yield* copy_to_user(mm, e.relocs_ptr + j * RELOC_SIZE + OFFSET_OF_PRESUMED, invalid_offset)) {
        yield* dev.struct_mutex.lock();
        return -ERRNO.EFAULT;
      }
    }
    reloc_offset.push(total);
    total += e.relocation_count;
  }
  let ret = yield* i915_mutex_lock_interruptible(dev);
  if (ret) {
    yield* dev.struct_mutex.lock();
    return ret;
  }
  // Reacquire the objects.
  ret = yield* eb_lookup_vmas(eb, exec, file);
  if (ret) return ret;
  const need_relocs = { v: (args.flags & EXEC_NO_RELOC) === 0n };
  ret = yield* i915_gem_execbuffer_reserve(dp, eb, need_relocs);
  if (ret) return ret;
  for (const vma of eb.vmas) {
    const first = reloc_offset[vma.index]!;
    for (let j = 0; j < vma.entry.relocation_count; j++) {
      const r = codec.decode(reloc, (first + j) * RELOC_SIZE);
      ret = yield* i915_gem_execbuffer_relocate_entry(vma.obj, eb, r, false);
      if (ret) return ret;
    }
  }
  // The user's relocations are left as they are: this is the painfully slow path.
  return 0;
}

// --- submission -----------------------------------------------------------------------------------

/**
 * i915_gem_execbuffer_move_to_gpu(): i915_gem_object_sync() of every object (without semaphores,
 * a wait for the other ring's last use); caches need no flushing on LLC.
 */
function* i915_gem_execbuffer_move_to_gpu(dp: DrmI915Private, ring: IntelRing, eb: EbVmas): KGen<number> {
  for (const { obj } of eb.vmas) {
    if (!obj.ring || obj.ring === ring) continue;
    const ret = wait_done(dp, yield* i915_gem_object_wait_rendering(obj, false));
    if (ret) return ret;
  }
  return 0;
}

/** i915_gem_execbuffer_move_to_active(): the pending domains become the object's domains. */
function i915_gem_execbuffer_move_to_active(eb: EbVmas, ring: IntelRing): void {
  for (const { obj } of eb.vmas) {
    obj.write_domain = obj.pending_write_domain;
    if (obj.write_domain === 0) obj.pending_read_domains |= obj.read_domains;
    obj.read_domains = obj.pending_read_domains;
    i915_gem_object_move_to_active(obj, ring, obj.write_domain !== 0);
    // The implicit flush after a batch leaves the GPU write domains.
    if (obj.write_domain) obj.write_domain &= ~I915_GEM_GPU_DOMAINS;
  }
}

/**
 * i915_gem_validate_context(): the context the batch runs in. Only the render ring switches
 * contexts, so another ring takes only the default one [EINVAL]; an unknown id [ENOENT]; a
 * banned context [EIO].
 */
function i915_gem_validate_context(file: DrmFile, ring: IntelRing, ctx_id: number): I915HwContext | number {
  if (ring.id !== 'rcs' && ctx_id !== DEFAULT_CONTEXT_ID) return -ERRNO.EINVAL;
  const ctx = i915_gem_context_get(to_i915_file(file), ctx_id);
  if (typeof ctx === 'number') return ctx;
  if (ctx.hang_stats.banned) return -ERRNO.EIO;
  return ctx;
}

/** i915_gem_do_execbuffer(). */
function* i915_gem_do_execbuffer(
  dev: DrmDevice,
  file: DrmFile,
  args: uapi.drm_i915_gem_execbuffer2,
  exec: readonly ExecEntry[],
  mm: MmStruct,
): KGen<number> {
  const dp = to_i915(dev);
  const flags = args.flags;
  const ctx_id = uapi.i915_execbuffer2_get_context_id(args);
  if (!i915_gem_check_execbuffer(args)) return -ERRNO.EINVAL;
  let ret = yield* validate_exec_list(mm, exec);
  if (ret) return ret;
  if (flags & EXEC_SECURE) {
    if (!file.is_master || !current(dp.k).capable(CAP_SYS_ADMIN)) return -ERRNO.EPERM;
  }
  const selector = Number(flags & EXEC_RING_MASK);
  if (selector > I915_NUM_RINGS) return -ERRNO.EINVAL;
  const id = RING_IDS[selector === 0 ? 0 : selector - 1];
  // !intel_ring_initialized(ring): the rings this machine lacks.
  if (!id) return -ERRNO.EINVAL;
  const ring = dp.ring(id);
  const rcs = ring.id === 'rcs';
  const mode = Number(flags & EXEC_CONSTANTS_MASK);
  switch (mode) {
    case uapi.I915_EXEC_CONSTANTS_REL_GENERAL:
    case uapi.I915_EXEC_CONSTANTS_ABSOLUTE:
    case uapi.I915_EXEC_CONSTANTS_REL_SURFACE:
      // gen6+ changed the meaning of the REL_SURFACE bit: refused on the render ring.
      if (rcs && mode !== dp.relative_constants_mode) {
        if (mode === uapi.I915_EXEC_CONSTANTS_REL_SURFACE) return -ERRNO.EINVAL;
      }
      break;
    default:
      return -ERRNO.EINVAL;
  }
  if (args.buffer_count < 1) return -ERRNO.EINVAL;
  if (args.num_cliprects !== 0) {
    // Clip rectangles belong to the render ring of gen2-4.
    return -ERRNO.EINVAL;
  }
  ret = yield* i915_mutex_lock_interruptible(dev);
  if (ret) return ret;
  const ctx = i915_gem_validate_context(file, ring, ctx_id);
  if (typeof ctx === 'number') {
    dev.struct_mutex.unlock();
    return ctx;
  }
  const eb = new EbVmas((flags & EXEC_HANDLE_LUT) !== 0n);
  ret = yield* eb_lookup_vmas(eb, exec, file);
  if (!ret) ret = yield* i915_gem_execbuffer_dispatch(dp, file, args, exec, mm, ring, mode, eb, ctx);
  yield* eb_release(eb);
  dev.struct_mutex.unlock();
  return ret;
}

/**
 * The part of i915_gem_do_execbuffer() between the lookup and `err:`: reserve, relocate (fast,
 * then slow on -EFAULT), check the batch, sync, dispatch, move to active, add the request.
 */
function* i915_gem_execbuffer_dispatch(
  dp: DrmI915Private,
  file: DrmFile,
  args: uapi.drm_i915_gem_execbuffer2,
  exec: readonly ExecEntry[],
  mm: MmStruct,
  ring: IntelRing,
  mode: number,
  eb: EbVmas,
  ctx: I915HwContext,
): KGen<number> {
  const need_relocs = { v: (args.flags & EXEC_NO_RELOC) === 0n };
  let ret = yield* i915_gem_execbuffer_reserve(dp, eb, need_relocs);
  if (ret) return ret;
  if (need_relocs.v) ret = yield* i915_gem_execbuffer_relocate(eb, mm);
  if (ret === -ERRNO.EFAULT) {
    ret = yield* i915_gem_execbuffer_relocate_slow(dp.dev, args, file, eb, exec, mm);
    if (!dp.dev.struct_mutex.is_locked()) dp.k.sched.BUG('execbuffer slow path returned unlocked');
  }
  if (ret) return ret;
  // Take note of the batch: the last object.
  const batch_obj = eb.vmas[eb.vmas.length - 1]!.obj;
  if (batch_obj.pending_write_domain) {
    // Attempting to use a self-modifying batch buffer.
    return -ERRNO.EINVAL;
  }
  batch_obj.pending_read_domains |= uapi.I915_GEM_DOMAIN_COMMAND;
  const exec_start = batch_obj.vma!.start + args.batch_start_offset;
  ret = yield* i915_gem_execbuffer_move_to_gpu(dp, ring, eb);
  if (ret) return ret;
  if (ring.id === 'rcs' && mode !== dp.relative_constants_mode) {
    // MI_LOAD_REGISTER_IMM of INSTPM (nothing the engines model).
    dp.relative_constants_mode = mode;
  }
  if (args.flags & EXEC_GEN7_SOL_RESET) {
    // i915_reset_gen7_sol_offsets(): gen7 render ring only.
    if (dp.info.gen !== 7 || ring.id !== 'rcs') return -ERRNO.EINVAL;
  }
  // gen6+ MI_BATCH_BUFFER_START carries no length: see the file comment.
  const exec_len = Math.max(0, batch_obj.size - args.batch_start_offset);
  yield new DispatchPoint(ring.name, exec_start);
  i915_gem_execbuffer_move_to_active(eb, ring);
  i915_add_request(
    dp,
    ring,
    exec_start,
    exec_len,
    batch_obj,
    eb.vmas.map((v) => v.obj),
    current(dp.k).pid,
    to_i915_file(file),
    ctx,
  );
  return 0;
}

/** DRM_IOCTL_I915_GEM_EXECBUFFER2 (and _WR, the same table entry). */
export function* i915_gem_execbuffer2(dev: DrmDevice, data: Uint8Array, file: DrmFile): KGen<number> {
  const args = uapi.drm_i915_gem_execbuffer2.decode(data);
  const count = args.buffer_count;
  if (count < 1 || count > Math.floor(U32_MAX / EXEC_OBJECT_SIZE)) return -ERRNO.EINVAL;
  const mm = current(dev.k).mm;
  if (!mm) return -ERRNO.EFAULT;
  if (count * EXEC_OBJECT_SIZE > dev.k.ram.totalPages * PAGE_SIZE) return -ERRNO.ENOMEM;
  const buffers_ptr = Number(args.buffers_ptr);
  const raw = scratch_take(count * EXEC_OBJECT_SIZE);
  if (yield* copy_from_user(mm, raw, buffers_ptr)) {
    scratch_give(raw);
    return -ERRNO.EFAULT;
  }
  const exec: ExecEntry[] = [];
  for (let i = 0; i < count; i++) exec.push(exec_entry(raw, i * EXEC_OBJECT_SIZE));
  scratch_give(raw);
  const ret = yield* i915_gem_do_execbuffer(dev, file, args, exec, mm);
  if (ret) return ret;
  // Copy the new buffer offsets back to the user's exec list.
  for (let i = 0; i < count; i++) {
    const at = buffers_ptr + i * EXEC_OBJECT_SIZE + OFFSET_OF_EXEC_OFFSET;
    if (yield* copy_to_user(mm, at, u64_bytes(exec[i]!.offset))) return -ERRNO.EFAULT;
  }
  return 0;
}

/**
 * The table entry. 3.16 has one (the _IOW request); EXECBUFFER2_WR shares its nr and therefore
 * this entry, and behaves identically (nothing is copied back).
 */
export const execbuffer_ioctls: DrmIoctlDesc[] = [
  DRM_IOCTL_DEF(
    uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2,
    i915_gem_execbuffer2,
    DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
    'I915_GEM_EXECBUFFER2',
  ),
];

/** The dispatch's scheduling point; the batch address is only formatted when traced. */
class DispatchPoint implements Point {
  readonly op = 'execbuffer_dispatch';
  constructor(
    readonly resource: string,
    private readonly exec_start: number,
  ) {}
  get detail(): string {
    return `0x${this.exec_start.toString(16)}`;
  }
}
