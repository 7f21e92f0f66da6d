import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../kernel/errors.js';
import { Machine } from '../kernel/machine.js';
import { Process, ThreadStruct } from '../kernel/process.js';
import { fdget, install_file } from '../kernel/syscalls.js';
import { current } from '../mm/current.js';
import { File } from '../mm/file.js';
import { vm_insert_pfn } from '../mm/memory.js';
import {
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_FAULT_NOPAGE,
  VM_FAULT_SIGBUS,
  VM_IO,
  VM_PFNMAP,
  type VmAreaStruct,
} from '../mm/mm_types.js';
import type { ShmemObject } from '../mm/shmem.js';
import type { KGen } from '../sched/task.js';
import * as uapi from '../uapi/index.js';
import {
  DRIVER_GEM,
  DRIVER_PRIME,
  DRIVER_RENDER,
  type DrmDevice,
  type DrmDriver,
  drm_dev_alloc,
  drm_dev_register,
} from './drm_device.js';
import { DrmFile } from './drm_file.js';
import {
  DRM_FILE_PAGE_OFFSET,
  DrmGemObject,
  drm_gem_create_mmap_offset,
  drm_gem_free_mmap_offset,
  drm_gem_handle_create,
  drm_gem_object_init,
  drm_gem_object_lookup,
  drm_gem_object_release,
  drm_gem_object_unreference_unlocked,
  drm_gem_vm_close,
  drm_gem_vm_open,
} from './drm_gem.js';
import {
  DRM_AUTH,
  DRM_IOCTL_DEF,
  DRM_RENDER_ALLOW,
  DRM_ROOT_ONLY,
  DRM_UNLOCKED,
  drm_ioctl_table,
} from './drm_ioctl.js';
import {
  drm_gem_prime_export,
  drm_gem_prime_fd_to_handle,
  drm_gem_prime_handle_to_fd,
  drm_gem_prime_import,
} from './drm_prime.js';
import { drm_vma_node_offset_addr, drm_vma_node_unmap } from './drm_vma_manager.js';

const SEED = Number(process.env.SEED ?? 5);
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const PAGE = 4096;

// --- a minimal driver: shmem-backed objects, CREATE and MMAP_OFFSET, a few probes ------------------

const fake_create = uapi.defineStruct('fake_create', 16, [
  { name: 'size', offset: 0, type: 'u64' },
  { name: 'handle', offset: 8, type: 'u32' },
  { name: 'pad', offset: 12, type: 'u32' },
]);
const fake_mmap_offset = uapi.defineStruct('fake_mmap_offset', 16, [
  { name: 'handle', offset: 0, type: 'u32' },
  { name: 'pad', offset: 4, type: 'u32' },
  { name: 'offset', offset: 8, type: 'u64' },
]);
const fake_probe = uapi.defineStruct('fake_probe', 8, [
  { name: 'in', offset: 0, type: 'u32' },
  { name: 'out', offset: 4, type: 'u32' },
]);

const FAKE_CREATE = uapi.DRM_IOWR(0x40, fake_create);
const FAKE_MMAP_OFFSET = uapi.DRM_IOWR(0x41, fake_mmap_offset);
/** Not DRM_UNLOCKED (runs under drm_global_mutex), not render-allowed. */
const FAKE_LOCKED = uapi.DRM_IOWR(0x42, fake_probe);
/** The kernel's request is _IOW: what the handler writes never reaches the caller. */
const FAKE_IOW = uapi.DRM_IOW(0x43, fake_probe);
const FAKE_ROOT = uapi.DRM_IOWR(0x44, fake_probe);

class FakeObject extends DrmGemObject {
  freeCalls = 0;
}

interface Rig {
  m: Machine;
  dev: DrmDevice;
  freed: FakeObject[];
  /** What FAKE_LOCKED saw: drm_global_mutex held by the caller. */
  lockedSawGlobal: boolean[];
}

function boot(seed = SEED): Rig {
  const m = Machine.boot({ seed });
  const freed: FakeObject[] = [];
  const lockedSawGlobal: boolean[] = [];
  const gem_vm_ops = {
    name: 'fake_gem',
    open: drm_gem_vm_open,
    close: drm_gem_vm_close,
    *fault(vma: VmAreaStruct, vaddr: number, _flags: number): KGen<number> {
      const obj = vma.vm_private_data;
      if (!(obj instanceof FakeObject)) return VM_FAULT_SIGBUS;
      const shmem = obj.filp!.private_data as ShmemObject;
      const pfn = shmem.shmem_getpage((vaddr - vma.start) / PAGE);
      if (pfn < 0) return VM_FAULT_SIGBUS;
      vm_insert_pfn(vma, vaddr, pfn);
      return VM_FAULT_NOPAGE;
    },
  };
  const driver: DrmDriver = {
    name: 'fake',
    desc: 'Fake GEM driver',
    date: '20140101',
    major: 1,
    minor: 6,
    patchlevel: 0,
    driver_features: DRIVER_GEM | DRIVER_PRIME | DRIVER_RENDER,
    gem_vm_ops,
    prime_handle_to_fd: drm_gem_prime_handle_to_fd,
    prime_fd_to_handle: drm_gem_prime_fd_to_handle,
    gem_prime_export: drm_gem_prime_export,
    gem_prime_import: drm_gem_prime_import,
    *gem_free_object(obj: DrmGemObject): KGen {
      if (!(obj instanceof FakeObject)) throw new Error('not a FakeObject');
      const o = obj;
      o.freeCalls++;
      freed.push(o);
      drm_gem_free_mmap_offset(o);
      yield* drm_gem_object_release(o);
    },
    ioctls: drm_ioctl_table([
      DRM_IOCTL_DEF(
        FAKE_CREATE,
        function* (dev, data, file): KGen<number> {
          const args = fake_create.decode(data);
          const size = Number(args.size);
          if (size === 0 || size % PAGE) return -22;
          const obj = new FakeObject();
          drm_gem_object_init(dev, obj, size);
          const handle = yield* drm_gem_handle_create(file, obj);
          yield* drm_gem_object_unreference_unlocked(obj);
          if (handle < 0) return handle;
          fake_create.encode({ ...args, handle }, data);
          return 0;
        },
        DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
        'FAKE_CREATE',
      ),
      DRM_IOCTL_DEF(
        FAKE_MMAP_OFFSET,
        function* (dev, data, file): KGen<number> {
          const args = fake_mmap_offset.decode(data);
          const obj = drm_gem_object_lookup(dev, file, args.handle);
          if (!obj) return -2;
          yield* dev.struct_mutex.lock();
          const ret = drm_gem_create_mmap_offset(obj);
          dev.struct_mutex.unlock();
          if (ret === 0)
            fake_mmap_offset.encode({ ...args, offset: drm_vma_node_offset_addr(obj.vma_node) }, data);
          yield* drm_gem_object_unreference_unlocked(obj);
          return ret;
        },
        DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
        'FAKE_MMAP_OFFSET',
      ),
      DRM_IOCTL_DEF(
        FAKE_LOCKED,
        function* (dev, data): KGen<number> {
          lockedSawGlobal.push(dev.drm_global_mutex.owner === dev.sched.current);
          fake_probe.encode({ in: fake_probe.decode(data).in, out: 0x1234 }, data);
          return 0;
        },
        DRM_AUTH,
        'FAKE_LOCKED',
      ),
      DRM_IOCTL_DEF(
        FAKE_IOW,
        function* (_dev, data): KGen<number> {
          data.fill(0xaa);
          return 0;
        },
        DRM_UNLOCKED | DRM_RENDER_ALLOW,
        'FAKE_IOW',
      ),
      DRM_IOCTL_DEF(
        FAKE_ROOT,
        function* (_dev, data): KGen<number> {
          fake_probe.encode({ in: 0, out: 1 }, data);
          return 0;
        },
        DRM_ROOT_ONLY | DRM_UNLOCKED | DRM_RENDER_ALLOW,
        'FAKE_ROOT',
      ),
    ]),
  };
  const dev = drm_dev_alloc(m.k, driver);
  // What the machine does: dma-buf fds go into (and come from) the calling process's table.
  const caller = (): Process => {
    const c = current(m.k);
    const p = c instanceof ThreadStruct ? c.proc : c;
    if (!(p instanceof Process)) throw new Error('not in a process');
    return p;
  };
  dev.fdInstall = (file) => install_file(caller(), file);
  dev.fdLookup = (fd) => fdget(caller(), fd);
  drm_dev_register(dev, m.devices);
  return { m, dev, freed, lockedSawGlobal };
}

// --- user-side helpers (byte structs, real request numbers) ----------------------------------------

function errno(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
}

function create(p: Process, fd: number, size = PAGE): number {
  const b = fake_create.encode({ size });
  p.ioctl(fd, FAKE_CREATE, b);
  return fake_create.decode(b).handle;
}
function gemClose(p: Process, fd: number, handle: number): void {
  p.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle }));
}
function flink(p: Process, fd: number, handle: number): number {
  const b = uapi.drm_gem_flink.encode({ handle });
  p.ioctl(fd, uapi.DRM_IOCTL_GEM_FLINK, b);
  return uapi.drm_gem_flink.decode(b).name;
}
function gemOpen(p: Process, fd: number, name: number): { handle: number; size: number } {
  const b = uapi.drm_gem_open.encode({ name });
  p.ioctl(fd, uapi.DRM_IOCTL_GEM_OPEN, b);
  const r = uapi.drm_gem_open.decode(b);
  return { handle: r.handle, size: Number(r.size) };
}
function handleToFd(p: Process, fd: number, handle: number, flags = uapi.DRM_CLOEXEC): number {
  const b = uapi.drm_prime_handle.encode({ handle, flags, fd: -1 });
  p.ioctl(fd, uapi.DRM_IOCTL_PRIME_HANDLE_TO_FD, b);
  return uapi.drm_prime_handle.decode(b).fd;
}
function fdToHandle(p: Process, fd: number, primeFd: number): number {
  const b = uapi.drm_prime_handle.encode({ fd: primeFd });
  p.ioctl(fd, uapi.DRM_IOCTL_PRIME_FD_TO_HANDLE, b);
  return uapi.drm_prime_handle.decode(b).handle;
}
function mmapOffset(p: Process, fd: number, handle: number): number {
  const b = fake_mmap_offset.encode({ handle });
  p.ioctl(fd, FAKE_MMAP_OFFSET, b);
  return Number(fake_mmap_offset.decode(b).offset);
}
function drmFile(p: Process, fd: number): DrmFile {
  const f = p.files[fd]!.private_data;
  if (!(f instanceof DrmFile)) throw new Error(`fd ${fd} is not a DRM file`);
  return f;
}
function objOf(p: Process, fd: number, handle: number): FakeObject {
  const o = drmFile(p, fd).object_idr.find(handle);
  if (!(o instanceof FakeObject)) throw new Error(`no handle ${handle}`);
  return o;
}

describe(`DRM core (seed ${SEED})`, () => {
  it('handles are per file, start at 1 and reuse the lowest free number', () => {
    const { m, dev, freed } = boot();
    const p = m.spawn();
    const a = p.open('/dev/dri/card0');
    const b = p.open('/dev/dri/card0');
    expect([create(p, a), create(p, a), create(p, a)]).toEqual([1, 2, 3]);
    expect(create(p, b)).toBe(1);
    expect(objOf(p, b, 1)).not.toBe(objOf(p, a, 1));
    // A handle of one file is unknown in another.
    expect(errno(() => gemClose(p, b, 2))).toBe('EINVAL');
    gemClose(p, a, 2);
    expect(freed).toHaveLength(1);
    expect(create(p, a)).toBe(2);
    expect(create(p, a)).toBe(4);
    expect(errno(() => gemClose(p, a, 0))).toBe('EINVAL');
    expect(errno(() => gemClose(p, a, 99))).toBe('EINVAL');
    gemClose(p, a, 4);
    expect(errno(() => gemClose(p, a, 4))).toBe('EINVAL');
    expect(dev.objects.size).toBe(4);
    p.close(a);
    p.close(b);
    expect(dev.objects.size).toBe(0);
    expect(freed.every((o) => o.freeCalls === 1 && o.refcount === 0 && o.handle_count === 0)).toBe(true);
    expect(freed).toHaveLength(6);
    expect(m.shutdown()).toEqual([]);
  });

  it('flink names cross processes; GEM_OPEN gives a new handle each time; names die with the last handle', () => {
    const { m, dev, freed } = boot();
    const pa = m.spawn();
    const pb = m.spawn();
    const fa = pa.open('/dev/dri/card0');
    const fb = pb.open('/dev/dri/card0');
    const ha = create(pa, fa, 3 * PAGE);
    expect(flink(pa, fa, ha)).toBe(1);
    expect(flink(pa, fa, ha)).toBe(1);
    expect(errno(() => flink(pa, fa, 7))).toBe('ENOENT');
    const o1 = gemOpen(pb, fb, 1);
    expect(o1).toEqual({ handle: 1, size: 3 * PAGE });
    expect(objOf(pb, fb, 1)).toBe(objOf(pa, fa, ha));
    // 3.16 does not deduplicate: a second GEM_OPEN is a second handle to the same object.
    expect(gemOpen(pb, fb, 1).handle).toBe(2);
    const obj = objOf(pa, fa, ha);
    expect(obj.handle_count).toBe(3);
    expect(errno(() => gemOpen(pb, fb, 2))).toBe('ENOENT');
    expect(errno(() => gemOpen(pb, fb, 0x80000001))).toBe('ENOENT');
    gemClose(pa, fa, ha);
    expect(gemOpen(pb, fb, 1).handle).toBe(3);
    for (const h of [1, 2, 3]) gemClose(pb, fb, h);
    expect(freed).toEqual([obj]);
    expect(obj.name).toBe(0);
    expect(errno(() => gemOpen(pb, fb, 1))).toBe('ENOENT');
    expect(flink(pa, fa, create(pa, fa))).toBe(1);
    expect(dev.object_name_idr.size).toBe(1);
    expect(m.shutdown()).toEqual([]);
    expect(dev.objects.size).toBe(0);
  });

  it('PRIME: export caches one dma-buf; import elsewhere gives the same object; import back gives the original handle', () => {
    const { m, dev, freed } = boot();
    const pa = m.spawn();
    const fa = pa.open('/dev/dri/card0');
    create(pa, fa);
    const h = create(pa, fa, 2 * PAGE);
    const obj = objOf(pa, fa, h);
    const x = handleToFd(pa, fa, h);
    const y = handleToFd(pa, fa, h);
    expect(y).not.toBe(x);
    expect(pa.files[y]).toBe(pa.files[x]);
    const dmabufFile = pa.files[x]!;
    expect(obj.dma_buf?.file).toBe(dmabufFile);
    // 3.16's anon_inode_getfile keeps only the access mode: the dma-buf is O_RDONLY.
    expect(dmabufFile.f_flags).toBe(uapi.O_RDONLY);

    // The child shares fa, x and y; it opens its own DRM file and imports there.
    const pc = pa.fork();
    const fc = pc.open('/dev/dri/card0');
    const hc = fdToHandle(pc, fc, x);
    expect(hc).toBe(1);
    expect(objOf(pc, fc, hc)).toBe(obj);
    expect(fdToHandle(pc, fc, y)).toBe(hc);
    // Export from the importer: a new fd to the very same dma-buf.
    const z = handleToFd(pc, fc, hc);
    expect(pc.files[z]).toBe(dmabufFile);
    // Back in the exporting file, any fd of the dma-buf names the original handle.
    expect(fdToHandle(pa, fa, x)).toBe(h);
    expect(fdToHandle(pa, fa, y)).toBe(h);
    expect(obj.handle_count).toBe(2);

    // Errors, in 3.16's order.
    expect(errno(() => fdToHandle(pa, fa, 999))).toBe('EBADF');
    expect(errno(() => fdToHandle(pa, fa, fa))).toBe('EINVAL');
    expect(errno(() => handleToFd(pa, fa, 42))).toBe('ENOENT');
    expect(errno(() => handleToFd(pa, fa, h, uapi.DRM_RDWR))).toBe('EINVAL');
    expect(errno(() => handleToFd(pa, fa, h, uapi.DRM_CLOEXEC | uapi.DRM_RDWR))).toBe('EINVAL');
    expect(handleToFd(pa, fa, h, 0)).toBeGreaterThan(0);

    // Lifetimes: the object outlives every handle while a dma-buf fd exists.
    pc.exit();
    gemClose(pa, fa, h);
    expect(obj.handle_count).toBe(0);
    expect(obj.dma_buf).toBeNull();
    expect(freed).not.toContain(obj);
    // Importing again creates a handle afresh (lowest free) to the same object.
    expect(fdToHandle(pa, fa, x)).toBe(h);
    expect(objOf(pa, fa, h)).toBe(obj);
    gemClose(pa, fa, h);
    for (let fd = 0; fd < pa.files.length; fd++) if (pa.files[fd] === dmabufFile) pa.close(fd);
    expect(freed).toContain(obj);
    expect(obj.refcount).toBe(0);
    expect(obj.freeCalls).toBe(1);
    expect(m.shutdown()).toEqual([]);
    expect(dev.objects.size).toBe(0);
  });

  it('PRIME between unrelated processes (fd passed as SCM_RIGHTS would)', () => {
    const { m, freed } = boot();
    const pa = m.spawn();
    const pb = m.spawn();
    const fa = pa.open('/dev/dri/renderD128');
    const fb = pb.open('/dev/dri/renderD128');
    const h = create(pa, fa, PAGE);
    const x = handleToFd(pa, fa, h);
    // Hand the open file to B.
    const file = pa.files[x]!;
    file.f_count++;
    const xb = m.syscall(
      pb,
      'sendmsg',
      (function* (): KGen<number> {
        return install_file(pb, file);
      })(),
    );
    pa.exit();
    const hb = fdToHandle(pb, fb, xb);
    expect(hb).toBe(1);
    expect(freed).toHaveLength(0);
    pb.close(xb);
    gemClose(pb, fb, hb);
    expect(freed).toHaveLength(1);
    expect(m.shutdown()).toEqual([]);
  });

  it('dispatch: by nr only; unknown numbers -EINVAL; permissions; copy in/out as 3.16 does', () => {
    const rig = boot();
    const { m, lockedSawGlobal } = rig;
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const h = create(p, fd);

    // Unknown: an empty core slot, past the core table, an empty driver slot.
    expect(errno(() => p.ioctl(fd, uapi.DRM_IO(0x3f), 0))).toBe('EINVAL');
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOWR(0xc0, 8), new Uint8Array(8)))).toBe('EINVAL');
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOWR(0x50, 8), new Uint8Array(8)))).toBe('EINVAL');
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOWR(0x9f, 8), new Uint8Array(8)))).toBe('EINVAL');
    // The KMS ioctls are in the core table, but this driver has no DRIVER_MODESET.
    expect(
      errno(() => p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETRESOURCES, uapi.drm_mode_card_res.encode({}))),
    ).toBe('EINVAL');
    const fb = uapi.drm_mode_fb_cmd2.encode({ width: 64, height: 64, handles: [h], pitches: [256] });
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_MODE_ADDFB2, fb))).toBe('EINVAL');
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_MODE_SETCRTC, uapi.drm_mode_crtc.encode({})))).toBe(
      'EINVAL',
    );
    // The type byte is not checked: GEM_FLINK with type 'X' is GEM_FLINK.
    const b = uapi.drm_gem_flink.encode({ handle: h });
    p.ioctl(fd, uapi._IOWR(0x58, 0x0a, 8), b);
    expect(uapi.drm_gem_flink.decode(b).name).toBe(1);

    // Short array: a fault before anything runs.
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, new Uint8Array(4)))).toBe('EFAULT');
    expect(objOf(p, fd, h).handle_count).toBe(1);
    // A bad user pointer; then the same struct in the process's memory works.
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_GEM_FLINK, 0x1000))).toBe('EFAULT');
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_GEM_FLINK, -8))).toBe('EFAULT');
    const addr = p.mmap(0, PAGE, RW, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
    p.write(addr + 100, uapi.drm_gem_flink.encode({ handle: h }));
    p.ioctl(fd, uapi.DRM_IOCTL_GEM_FLINK, addr + 100);
    expect(uapi.drm_gem_flink.decode(p.read(addr + 100, 8)).name).toBe(1);
    // Output to a read-only page: the handler ran, the copy back faults.
    p.mprotect(addr, PAGE, uapi.PROT_READ);
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_GEM_FLINK, addr + 100))).toBe('EFAULT');

    // Direction is the kernel's: an _IOW-encoded FLINK still gets its name back...
    const c = uapi.drm_gem_flink.encode({ handle: h });
    p.ioctl(fd, uapi.DRM_IOW(0x0a, 8), c);
    expect(uapi.drm_gem_flink.decode(c).name).toBe(1);
    // ...and an _IOW kernel ioctl never writes back, whatever the caller's encoding.
    for (const req of [FAKE_IOW, uapi.DRM_IOWR(0x43, 8)]) {
      const d = fake_probe.encode({ in: 7, out: 9 });
      p.ioctl(fd, req, d);
      expect(fake_probe.decode(d)).toEqual({ in: 7, out: 9 });
    }
    // Size is the caller's: a larger struct passes its tail through, a smaller one gets less back.
    const big = new Uint8Array(16).fill(0x55);
    uapi.drm_gem_flink.encode({ handle: h }, big);
    p.ioctl(fd, uapi.DRM_IOWR(0x0a, 16), big);
    expect(uapi.drm_gem_flink.decode(big).name).toBe(1);
    expect([...big.subarray(8)]).toEqual(new Array<number>(8).fill(0x55));
    const small = new Uint8Array(4);
    new DataView(small.buffer).setUint32(0, 1, true);
    p.ioctl(fd, uapi.DRM_IOWR(0x0b, 4), small);
    expect(drmFile(p, fd).object_idr.size).toBe(2);

    // Copy back happens even when the handler fails (3.16): VERSION with a bad name buffer.
    const v = uapi.drm_version.encode({ name_len: 4, name: 0x1000, version_major: -1 });
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_VERSION, v))).toBe('EFAULT');
    expect(uapi.drm_version.decode(v)).toMatchObject({ version_major: 1, version_minor: 6, name_len: 4n });

    // Locking: non-DRM_UNLOCKED ioctls run under drm_global_mutex.
    const lp = fake_probe.encode({ in: 3 });
    p.ioctl(fd, FAKE_LOCKED, lp);
    expect(fake_probe.decode(lp)).toEqual({ in: 3, out: 0x1234 });
    expect(lockedSawGlobal).toEqual([true]);

    // DRM_ROOT_ONLY.
    expect(errno(() => p.ioctl(fd, FAKE_ROOT, new Uint8Array(8)))).toBe('EACCES');
    const root = m.spawn({ uid: 0 });
    const rfd = root.open('/dev/dri/card0');
    expect(root.ioctl(rfd, FAKE_ROOT, new Uint8Array(8))).toBe(0);
    expect(m.shutdown()).toEqual([]);
  });

  it('render node: only DRM_RENDER_ALLOW ioctls; flink/open are not', () => {
    const { m } = boot();
    const p = m.spawn();
    const card = p.open('/dev/dri/card0');
    const fd = p.open('/dev/dri/renderD128');
    expect(drmFile(p, fd).minor.index).toBe(128);
    const h = create(p, fd);
    expect(h).toBe(1);
    expect(errno(() => flink(p, fd, h))).toBe('EACCES');
    const name = flink(p, card, create(p, card));
    expect(errno(() => gemOpen(p, fd, name))).toBe('EACCES');
    expect(errno(() => p.ioctl(fd, FAKE_LOCKED, new Uint8Array(8)))).toBe('EACCES');
    expect(errno(() => p.ioctl(fd, uapi.DRM_IOCTL_SET_CLIENT_CAP, new Uint8Array(16)))).toBe('EACCES');
    // Render-allowed: GET_CAP, VERSION, PRIME, GEM_CLOSE.
    const cap = uapi.drm_get_cap.encode({ capability: uapi.DRM_CAP_PRIME });
    p.ioctl(fd, uapi.DRM_IOCTL_GET_CAP, cap);
    expect(uapi.drm_get_cap.decode(cap).value).toBe(3n);
    const x = handleToFd(p, fd, h);
    expect(fdToHandle(p, card, x)).toBe(2);
    gemClose(p, fd, h);
    // The primary node's first opener is master; render clients never are.
    expect(drmFile(p, card).is_master).toBe(true);
    expect(drmFile(p, fd).is_master).toBe(false);
    expect(m.shutdown()).toEqual([]);
  });

  it('VERSION, GET_CAP and SET_CLIENT_CAP', () => {
    const { m } = boot();
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const buf = p.mmap(0, PAGE, RW, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
    const v = uapi.drm_version.encode({
      name_len: 2,
      name: buf,
      date_len: 64,
      date: buf + 64,
      desc_len: 0,
      desc: 0,
    });
    p.ioctl(fd, uapi.DRM_IOCTL_VERSION, v);
    const d = uapi.drm_version.decode(v);
    expect(d).toMatchObject({ version_major: 1, version_minor: 6, version_patchlevel: 0 });
    expect([d.name_len, d.date_len, d.desc_len]).toEqual([4n, 8n, 15n]);
    const text = new TextDecoder().decode(p.read(buf, 80));
    expect(text.slice(0, 3)).toBe('fa\0');
    expect(text.slice(64, 72)).toBe('20140101');

    const cap = (c: number): bigint | string => {
      const b = uapi.drm_get_cap.encode({ capability: c, value: 77 });
      const e = errno(() => p.ioctl(fd, uapi.DRM_IOCTL_GET_CAP, b));
      return e ?? uapi.drm_get_cap.decode(b).value;
    };
    expect(cap(uapi.DRM_CAP_PRIME)).toBe(3n);
    expect(cap(uapi.DRM_CAP_DUMB_BUFFER)).toBe(0n);
    expect(cap(uapi.DRM_CAP_TIMESTAMP_MONOTONIC)).toBe(1n);
    expect(cap(uapi.DRM_CAP_CURSOR_WIDTH)).toBe(64n);
    expect(cap(0x99)).toBe('EINVAL');

    const setcap = (c: number, value: number): string | null =>
      errno(() =>
        p.ioctl(fd, uapi.DRM_IOCTL_SET_CLIENT_CAP, uapi.drm_set_client_cap.encode({ capability: c, value })),
      );
    expect(setcap(uapi.DRM_CLIENT_CAP_STEREO_3D, 1)).toBeNull();
    expect(drmFile(p, fd).stereo_allowed).toBe(true);
    expect(setcap(uapi.DRM_CLIENT_CAP_STEREO_3D, 2)).toBe('EINVAL');
    expect(setcap(uapi.DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1)).toBe('EINVAL');
    expect(setcap(42, 1)).toBe('EINVAL');
    expect(m.shutdown()).toEqual([]);
  });

  it('fork shares the DRM file: same handles; the last close releases everything once', () => {
    const { m, dev, freed } = boot();
    const pa = m.spawn();
    const fd = pa.open('/dev/dri/card0');
    const h1 = create(pa, fd);
    const pc = pa.fork();
    expect(pc.files[fd]).toBe(pa.files[fd]);
    expect(drmFile(pc, fd)).toBe(drmFile(pa, fd));
    gemClose(pc, fd, h1);
    expect(errno(() => gemClose(pa, fd, h1))).toBe('EINVAL');
    const h2 = create(pc, fd);
    expect(h2).toBe(1);
    expect(objOf(pa, fd, h2).handle_count).toBe(1);
    pa.close(fd);
    expect(dev.open_count).toBe(1);
    expect(freed).toHaveLength(1);
    create(pc, fd);
    pc.exit();
    expect(dev.open_count).toBe(0);
    expect(dev.filelist.size).toBe(0);
    expect(freed).toHaveLength(3);
    expect(freed.every((o) => o.freeCalls === 1)).toBe(true);
    expect(m.shutdown()).toEqual([]);
  });

  it('closing the last fd releases handles, names and export caches; dma-bufs keep their object', () => {
    const { m, dev, freed } = boot();
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const plain = create(p, fd);
    const named = create(p, fd);
    const shared = create(p, fd);
    const objs = [plain, named, shared].map((h) => objOf(p, fd, h));
    flink(p, fd, named);
    const x = handleToFd(p, fd, shared);
    const framesBefore = m.meminfo().freePages;
    p.close(fd);
    expect(freed).toEqual([objs[0], objs[1]]);
    expect(dev.object_name_idr.size).toBe(0);
    const kept = objs[2]!;
    expect(kept.refcount).toBe(1);
    expect(kept.handle_count).toBe(0);
    expect(kept.dma_buf).toBeNull();
    p.close(x);
    expect(freed).toEqual(objs);
    expect(objs.map((o) => [o.refcount, o.freeCalls])).toEqual([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
    expect(m.meminfo().freePages).toBeGreaterThanOrEqual(framesBefore);
    expect(m.findings()).toEqual([]);
    expect(m.shutdown()).toEqual([]);
  });

  it('mmap of a fake offset: a VM_PFNMAP mapping referencing the object until munmap', () => {
    const { m, dev, freed } = boot();
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const h = create(p, fd, 2 * PAGE);
    const h2 = create(p, fd, PAGE);
    const off = mmapOffset(p, fd, h);
    expect(off).toBe(DRM_FILE_PAGE_OFFSET * PAGE);
    expect(off).toBe(0x100000000);
    expect(mmapOffset(p, fd, h)).toBe(off);
    expect(mmapOffset(p, fd, h2)).toBe(off + 2 * PAGE);
    const obj = objOf(p, fd, h);

    const addr = p.mmap(0, 2 * PAGE, RW, uapi.MAP_SHARED, fd, off);
    const vma = p.mm!.find_vma(addr)!;
    const want = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
    expect(vma.vm_flags & want).toBe(want);
    expect(vma.vm_private_data).toBe(obj);
    expect(obj.refcount).toBe(2);
    expect(dev.dev_mapping.i_mmap.has(vma)).toBe(true);
    p.write(addr + PAGE + 5, [1, 2, 3]);
    expect([...p.read(addr + PAGE + 5, 3)]).toEqual([1, 2, 3]);

    // Bad offsets and sizes, and a file without a handle to the object.
    expect(errno(() => p.mmap(0, PAGE, RW, uapi.MAP_SHARED, fd, 0))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, PAGE, RW, uapi.MAP_SHARED, fd, off + PAGE))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, 3 * PAGE, RW, uapi.MAP_SHARED, fd, off))).toBe('EINVAL');
    const other = p.open('/dev/dri/card0');
    expect(errno(() => p.mmap(0, PAGE, RW, uapi.MAP_SHARED, other, off))).toBe('EACCES');
    const render = p.open('/dev/dri/renderD128');
    expect(errno(() => p.mmap(0, PAGE, RW, uapi.MAP_SHARED, render, 0))).toBe('EACCES');

    // Zapping the object's mappings (what i915 does on unbind): the next access faults back in.
    m.syscall(p, 'unmap', drm_vma_node_unmap(obj.vma_node, dev.dev_mapping));
    expect(p.mm!.pgd.has((addr + PAGE) / PAGE)).toBe(false);
    expect([...p.read(addr + PAGE + 5, 3)]).toEqual([1, 2, 3]);

    // A fork duplicates the mapping and its reference.
    const child = p.fork();
    expect(obj.refcount).toBe(3);
    expect([...child.read(addr + PAGE + 5, 3)]).toEqual([1, 2, 3]);
    child.exit();
    expect(obj.refcount).toBe(2);

    // The handle goes, the mapping keeps the object; munmap frees it.
    gemClose(p, fd, h);
    expect(obj.refcount).toBe(1);
    expect([...p.read(addr + PAGE + 5, 3)]).toEqual([1, 2, 3]);
    p.munmap(addr, 2 * PAGE);
    expect(obj.refcount).toBe(0);
    expect(freed).toContain(obj);
    expect(dev.dev_mapping.i_mmap.size).toBe(0);
    // Its offset is free again: the next object gets it back.
    expect(mmapOffset(p, fd, create(p, fd, 2 * PAGE))).toBe(off);
    expect(m.shutdown()).toEqual([]);
    expect(dev.objects.size).toBe(0);
  });

  it('a process exiting with a GEM mapping drops the reference in exit_mmap', () => {
    const { m, freed } = boot();
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const h = create(p, fd);
    const obj = objOf(p, fd, h);
    p.mmap(0, PAGE, RW, uapi.MAP_SHARED, fd, mmapOffset(p, fd, h));
    p.exit();
    expect(freed).toEqual([obj]);
    expect(m.shutdown()).toEqual([]);
  });

  it('unreference_unlocked under struct_mutex: lockdep sees the recursion (3.16 kref_put_mutex)', () => {
    const { m, dev } = boot();
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const obj = objOf(p, fd, create(p, fd));
    const file = drmFile(p, fd);
    m.syscall(
      p,
      'probe',
      (function* (): KGen<number> {
        const o = drm_gem_object_lookup(dev, file, 1)!;
        yield* dev.struct_mutex.lock();
        yield* drm_gem_object_unreference_unlocked(o);
        dev.struct_mutex.unlock();
        return 0;
      })(),
    );
    expect(obj.refcount).toBe(1);
    const f = m.findings();
    expect(f.map((x) => x.kind)).toEqual(['lockdep']);
    expect(f[0]!.message).toContain('recursive');
  });

  it('racing GEM_CLOSE, FLINK and PRIME export on one file: every schedule ends clean', () => {
    const outcomes = new Set<string>();
    for (let seed = SEED; seed < SEED + 60; seed++) {
      const { m, dev, freed } = boot(seed);
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const h = create(p, fd);
      const obj = objOf(p, fd, h);
      const r: Record<string, number> = {};
      p.thread('close', function* (api) {
        r.close = yield* api.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle: h }));
      });
      p.thread('flink', function* (api) {
        r.flink = yield* api.ioctl(fd, uapi.DRM_IOCTL_GEM_FLINK, uapi.drm_gem_flink.encode({ handle: h }));
      });
      p.thread('export', function* (api) {
        const b = uapi.drm_prime_handle.encode({ handle: h, flags: uapi.DRM_CLOEXEC });
        r.export = yield* api.ioctl(fd, uapi.DRM_IOCTL_PRIME_HANDLE_TO_FD, b);
        if (r.export === 0) yield* api.close(uapi.drm_prime_handle.decode(b).fd);
      });
      m.run();
      expect(r.close, `seed ${seed}`).toBe(0);
      expect([0, -2], `seed ${seed}`).toContain(r.flink);
      expect([0, -2], `seed ${seed}`).toContain(r.export);
      outcomes.add(`${r.flink}/${r.export}`);
      expect(freed, `seed ${seed}`).toEqual([obj]);
      expect(dev.object_name_idr.size).toBe(0);
      expect(m.findings(), `seed ${seed}`).toEqual([]);
      expect(m.shutdown()).toEqual([]);
    }
    // The seeds reach more than one interleaving.
    expect(outcomes.size).toBeGreaterThan(1);
  });

  it('open(O_EXCL) is refused; the device counts opens', () => {
    const { m, dev } = boot();
    const p = m.spawn();
    expect(errno(() => p.open('/dev/dri/card0', uapi.O_RDWR | uapi.O_EXCL))).toBe('EBUSY');
    expect(dev.open_count).toBe(0);
    const fd = p.open('/dev/dri/card0');
    expect(dev.open_count).toBe(1);
    p.close(fd);
    expect(dev.open_count).toBe(0);
    expect(new File(dev.fops, 2, 'x', m.sched).f_count).toBe(1);
    expect(m.shutdown()).toEqual([]);
  });
});
