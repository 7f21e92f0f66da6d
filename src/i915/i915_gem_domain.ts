import { ERRNO } from '../base/errno.js';
import { PAGE_SIZE } from '../base/page.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/i915_drm.js';
import { to_i915 } from './i915_drv.js';
import {
  __wait_seqno,
  i915_gem_check_wedge,
  i915_gem_object_wait_rendering,
  i915_gem_release_mmap,
} from './i915_gem.js';
import { i915_gem_object_ggtt_unpin, i915_gem_object_pin } from './i915_gem_gtt.js';
import { type DrmI915GemObject, i915_gem_obj_bound } from './i915_gem_object.js';

/**
 * Memory domains and cache levels of an object (Linux 3.16 i915_gem.c): which agent may have
 * the latest bytes (CPU cache, GTT aperture, GPU caches), the waits that make a change of domain
 * coherent, and the cache level the GTT maps the pages with.
 *
 * On an LLC machine (both modelled generations) CPU caches and the GPU are coherent, so the
 * clflushes 3.16 issues are no-ops; what remains observable is the domain bookkeeping and the
 * waits for the GPU.
 */

/** I915_GEM_GPU_DOMAINS: every domain that lives in the GPU. */
export const I915_GEM_GPU_DOMAINS =
  uapi.I915_GEM_DOMAIN_RENDER |
  uapi.I915_GEM_DOMAIN_SAMPLER |
  uapi.I915_GEM_DOMAIN_COMMAND |
  uapi.I915_GEM_DOMAIN_INSTRUCTION |
  uapi.I915_GEM_DOMAIN_VERTEX;

/** enum i915_cache_level (the value stored in obj.cache_level and the GTT node's colour). */
export const I915_CACHE_NONE = 0;
export const I915_CACHE_LLC = 1;
export const I915_CACHE_L3_LLC = 2;
export const I915_CACHE_WT = 3;

/** cpu_cache_is_coherent(): LLC parts snoop every cache level. */
export function cpu_cache_is_coherent(obj: DrmI915GemObject, level: number): boolean {
  return to_i915(obj.dev).info.has_llc || level !== I915_CACHE_NONE;
}

/** cpu_write_needs_clflush(): uncached pages, or a scanout buffer (the display does not snoop). */
export function cpu_write_needs_clflush(obj: DrmI915GemObject): boolean {
  if (!cpu_cache_is_coherent(obj, obj.cache_level)) return true;
  return obj.pin_display;
}

/** i915_gem_obj_is_pinned(): a GTT binding holds a pin. */
export function i915_gem_obj_is_pinned(obj: DrmI915GemObject): boolean {
  return (obj.vma?.pin_count ?? 0) > 0;
}

/**
 * i915_gem_object_wait_rendering__nonblocking(): wait for the GPU's last write (readonly) or any
 * use WITHOUT holding struct_mutex, so that others (retirement, faults) progress meanwhile. The
 * caller holds struct_mutex; it is dropped around the sleep and taken back (uninterruptibly).
 * Callers repeat the blocking wait afterwards to catch a use that slipped in.
 */
export function* i915_gem_object_wait_rendering__nonblocking(
  obj: DrmI915GemObject,
  readonly: boolean,
): KGen<number> {
  const dp = to_i915(obj.dev);
  const dev = obj.dev;
  const seqno = readonly ? obj.last_write_seqno : obj.last_read_seqno;
  const ring = obj.ring;
  if (!seqno || !ring) return 0;
  const ret = i915_gem_check_wedge(dp, true);
  if (ret) return ret;
  const reset_counter = dp.gpu_error.reset_counter;
  dev.struct_mutex.unlock();
  const wret = yield* __wait_seqno(ring, seqno, reset_counter, true, null);
  yield* dev.struct_mutex.lock();
  // A hung request is over as far as the CPU is concerned: retirement reports its error later.
  if (wret && wret !== -ERRNO.EIO) return wret;
  return 0;
}

/** i915_gem_object_flush_gtt_write_domain(): writes through the aperture are posted (wmb). */
function i915_gem_object_flush_gtt_write_domain(obj: DrmI915GemObject): void {
  if (obj.write_domain !== uapi.I915_GEM_DOMAIN_GTT) return;
  obj.write_domain = 0;
}

/** i915_gem_object_flush_cpu_write_domain(): clflush (nothing to do on LLC) and leave the domain. */
export function i915_gem_object_flush_cpu_write_domain(obj: DrmI915GemObject): void {
  if (obj.write_domain !== uapi.I915_GEM_DOMAIN_CPU) return;
  obj.write_domain = 0;
}

/** BUG_ON() of the domain functions, as a finding that leaves the object usable. */
function check_write_domain(obj: DrmI915GemObject, allowed: number, where: string): void {
  const s = obj.dev.sched;
  if (
    s.WARN_ON(
      (obj.write_domain & ~allowed) !== 0,
      `${where}: ${obj.toString()} still in write domain 0x${obj.write_domain.toString(16)}`,
    )
  ) {
    obj.write_domain &= allowed;
  }
}

/**
 * i915_gem_object_set_to_gtt_domain(): the CPU accesses the object through the aperture. -EINVAL
 * when unbound; waits for the GPU's writes (any use when `write`). struct_mutex held.
 */
export function* i915_gem_object_set_to_gtt_domain(obj: DrmI915GemObject, write: boolean): KGen<number> {
  if (!i915_gem_obj_bound(obj)) return -ERRNO.EINVAL;
  if (obj.write_domain === uapi.I915_GEM_DOMAIN_GTT) return 0;
  const ret = yield* i915_gem_object_wait_rendering(obj, !write);
  if (ret) return ret;
  i915_gem_object_flush_cpu_write_domain(obj);
  check_write_domain(obj, uapi.I915_GEM_DOMAIN_GTT, 'i915_gem_object_set_to_gtt_domain');
  obj.read_domains |= uapi.I915_GEM_DOMAIN_GTT;
  if (write) {
    obj.read_domains = uapi.I915_GEM_DOMAIN_GTT;
    obj.write_domain = uapi.I915_GEM_DOMAIN_GTT;
    obj.dirty = true;
  }
  // And bump the LRU for this access.
  const dp = to_i915(obj.dev);
  if (obj.vma?.bound && !obj.active) {
    dp.inactive_list.delete(obj.vma);
    dp.inactive_list.add(obj.vma);
  }
  return 0;
}

/**
 * i915_gem_object_set_to_cpu_domain(): the CPU accesses the pages directly. Waits for the GPU's
 * writes (any use when `write`). Pages are not acquired. struct_mutex held.
 */
export function* i915_gem_object_set_to_cpu_domain(obj: DrmI915GemObject, write: boolean): KGen<number> {
  if (obj.write_domain === uapi.I915_GEM_DOMAIN_CPU) return 0;
  const ret = yield* i915_gem_object_wait_rendering(obj, !write);
  if (ret) return ret;
  i915_gem_object_flush_gtt_write_domain(obj);
  if ((obj.read_domains & uapi.I915_GEM_DOMAIN_CPU) === 0) obj.read_domains |= uapi.I915_GEM_DOMAIN_CPU;
  check_write_domain(obj, uapi.I915_GEM_DOMAIN_CPU, 'i915_gem_object_set_to_cpu_domain');
  if (write) {
    obj.read_domains = uapi.I915_GEM_DOMAIN_CPU;
    obj.write_domain = uapi.I915_GEM_DOMAIN_CPU;
  }
  return 0;
}

/** i915_gem_object_finish_gtt(): CPU mappings through the aperture go; the GTT domain is left. */
export function* i915_gem_object_finish_gtt(obj: DrmI915GemObject): KGen {
  yield* i915_gem_release_mmap(obj);
  obj.read_domains &= ~uapi.I915_GEM_DOMAIN_GTT;
  obj.write_domain &= ~uapi.I915_GEM_DOMAIN_GTT;
}

/**
 * i915_gem_object_set_cache_level(): -EBUSY when pinned; otherwise wait for the GPU, zap GTT
 * mmaps and rewrite the object's PTEs with the new level (LLC parts need no guard pages between
 * colours, so nothing is unbound). struct_mutex held.
 */
export function* i915_gem_object_set_cache_level(obj: DrmI915GemObject, cache_level: number): KGen<number> {
  if (obj.cache_level === cache_level) return 0;
  if (i915_gem_obj_is_pinned(obj)) return -ERRNO.EBUSY;
  const dp = to_i915(obj.dev);
  // i915_gem_valid_gtt_space() is always true with an LLC: no vma needs unbinding first.
  const vma = obj.vma;
  if (vma?.bound) {
    const ret = yield* i915_gem_object_wait_rendering(obj, false);
    if (ret) return ret;
    obj.read_domains &= ~I915_GEM_GPU_DOMAINS;
    yield* i915_gem_object_finish_gtt(obj);
    // Waiting may have let the object move; bind_vma only rewrites what is still bound.
    if (vma.bound && obj.vma === vma && obj.pages) {
      yield {
        op: 'gtt_bind',
        resource: obj.toString(),
        detail: `0x${vma.start.toString(16)} cache level ${cache_level}`,
        cost: obj.size / PAGE_SIZE,
      };
      dp.gtt.insert_entries(vma.start / PAGE_SIZE, obj.pages);
    }
  }
  if (obj.vma) obj.vma.node.color = cache_level;
  obj.cache_level = cache_level;
  if (cpu_write_needs_clflush(obj)) {
    // Coming from LLC cached, the CPU cache state was never tracked: assume it holds the data.
    check_write_domain(obj, uapi.I915_GEM_DOMAIN_CPU, 'i915_gem_object_set_cache_level');
    obj.read_domains = uapi.I915_GEM_DOMAIN_CPU;
    obj.write_domain = uapi.I915_GEM_DOMAIN_CPU;
  }
  return 0;
}

/**
 * is_pin_display(): whether a pin of the binding is the display's. Execbuffer's reservations are
 * not held outside struct_mutex and there are no user pins (I915_GEM_PIN refuses gen ≥ 6), so
 * any pin left is a display plane's.
 */
function is_pin_display(obj: DrmI915GemObject): boolean {
  return (obj.vma?.pin_count ?? 0) > 0;
}

/**
 * i915_gem_object_pin_to_display_plane() (Linux 3.16 i915_gem.c): make the object scanout-ready
 * and pin it: wait for the GPU (no pipelined flip here), switch the PTEs to uncached (HAS_WT is
 * false on both modelled parts) — which refuses an object already pinned at another level — then
 * pin it into the CPU-visible aperture and move it to the GTT domain. Marked pin_display first so
 * the cache-level change accounts for the display's incoherence. struct_mutex held.
 */
export function* i915_gem_object_pin_to_display_plane(
  obj: DrmI915GemObject,
  alignment: number,
): KGen<number> {
  if (obj.ring) {
    // i915_gem_object_sync(obj, NULL): no ring to pipeline on, so wait.
    const ret = yield* i915_gem_object_wait_rendering(obj, false);
    if (ret) return ret;
  }
  obj.pin_display = true;
  let ret = yield* i915_gem_object_set_cache_level(obj, I915_CACHE_NONE);
  if (ret === 0) ret = yield* i915_gem_object_pin(obj, alignment, { mappable: true });
  if (ret) {
    obj.pin_display = is_pin_display(obj);
    return ret;
  }
  i915_gem_object_flush_cpu_write_domain(obj);
  obj.write_domain = 0;
  obj.read_domains |= uapi.I915_GEM_DOMAIN_GTT;
  return 0;
}

/** i915_gem_object_unpin_from_display_plane(). struct_mutex held. */
export function i915_gem_object_unpin_from_display_plane(obj: DrmI915GemObject): void {
  i915_gem_object_ggtt_unpin(obj);
  obj.pin_display = is_pin_display(obj);
}
