/**
 * EXECBUFFER2 through the public ABI: byte structs from `uapi`, real request numbers, user
 * memory for every pointer; batches go in with PWRITE, results come back with PREAD; data is
 * produced by the GPU itself (XY_COLOR_BLT, MI_STORE_DWORD_IMM) and moved by XY_SRC_COPY_BLT.
 */
import { describe, expect, it } from 'vitest';
import { ErrnoError, Machine, type Process, uapi } from '../src/index.js';

type Gen = 7 | 8;

const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;
const RENDER = uapi.I915_GEM_DOMAIN_RENDER;
const BLT = uapi.I915_EXEC_BLT;
const MiB = 1 << 20;
const SURFACE = 512 * 2048; // 512x512 at 32 bpp: the reference's blit

/** The errno code a call fails with ('' if it succeeds). */
function code(fn: () => unknown): string {
  try {
    fn();
    return '';
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
}

interface Reloc {
  /** Byte offset in the object owning the list. */
  offset: number;
  /** Handle, or exec-list index with HANDLE_LUT. */
  target: number;
  delta?: number;
  presumed?: bigint | number;
  read?: number;
  write?: number;
}

interface ExecObj {
  handle: number;
  relocs?: Reloc[];
  flags?: number | bigint;
  alignment?: number | bigint;
  offset?: number | bigint;
  /** relocation_count / relocs_ptr overrides (malformed lists). */
  relocation_count?: number;
  relocs_ptr?: number | bigint;
}

interface ExecOpts {
  flags?: number | bigint;
  batch_start_offset?: number;
  batch_len?: number;
  rsvd1?: number | bigint;
  rsvd2?: number | bigint;
  num_cliprects?: number;
  buffer_count?: number;
  buffers_ptr?: number | bigint;
  request?: number;
  /** Use drmIoctl (retries EINTR/EAGAIN). */
  retry?: boolean;
}

/** Where an execbuf's lists live in user memory, to read the kernel's write-backs. */
interface Submitted {
  execAddr: number;
  relocAddr: number[];
  args: Uint8Array;
}

/** A DRM client: a process, its card0 fd, and a bump allocator over an anonymous mapping. */
class Client {
  private arena: number;
  private next = 0;
  private readonly arenaSize = 8 * MiB;

  constructor(
    readonly m: Machine,
    readonly p: Process,
    readonly fd: number,
    readonly gen: Gen,
  ) {
    this.arena = p.mmap(0, this.arenaSize, RW, ANON);
  }

  static boot(gen: Gen, cfg: Parameters<typeof Machine.boot>[0] = {}): Client {
    const m = Machine.boot({ seed: 1, ...cfg, gpu: { gen, ...cfg.gpu } });
    const p = m.spawn();
    return new Client(m, p, p.open('/dev/dri/card0'), gen);
  }

  /** User memory (zeroed), 64-byte aligned. */
  alloc(bytes: number): number {
    const at = this.arena + this.next;
    this.next += Math.ceil(Math.max(bytes, 1) / 64) * 64;
    if (this.next > this.arenaSize) {
      this.arena = this.p.mmap(0, this.arenaSize, RW, ANON);
      this.next = 0;
      return this.alloc(bytes);
    }
    return at;
  }

  create(size: number): number {
    const arg = uapi.drm_i915_gem_create.encode({ size });
    this.p.ioctl(this.fd, uapi.DRM_IOCTL_I915_GEM_CREATE, arg);
    return uapi.drm_i915_gem_create.decode(arg).handle;
  }

  close(handle: number): void {
    this.p.ioctl(this.fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle }));
  }

  /** Lays the lists out in user memory and calls EXECBUFFER2. Throws ErrnoError on failure. */
  exec(objs: ExecObj[], opts: ExecOpts = {}): Submitted {
    const relocAddr: number[] = [];
    const list = objs.map((o) => {
      const rs = o.relocs ?? [];
      const addr = this.alloc(rs.length * 32);
      relocAddr.push(addr);
      if (rs.length) this.p.write(addr, encodeRelocs(rs));
      return {
        handle: o.handle,
        relocation_count: o.relocation_count ?? rs.length,
        relocs_ptr: o.relocs_ptr ?? addr,
        alignment: o.alignment ?? 0,
        offset: o.offset ?? 0,
        flags: o.flags ?? 0,
      };
    });
    const execAddr = this.alloc(list.length * 56);
    if (list.length) this.p.write(execAddr, uapi.drm_i915_gem_exec_object2.encodeArray(list));
    const args = uapi.drm_i915_gem_execbuffer2.encode({
      buffers_ptr: opts.buffers_ptr ?? execAddr,
      buffer_count: opts.buffer_count ?? list.length,
      batch_start_offset: opts.batch_start_offset ?? 0,
      batch_len: opts.batch_len ?? 0,
      num_cliprects: opts.num_cliprects ?? 0,
      flags: opts.flags ?? 0,
      rsvd1: opts.rsvd1 ?? 0,
      rsvd2: opts.rsvd2 ?? 0,
    });
    const req = opts.request ?? uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2;
    if (opts.retry) this.p.drmIoctl(this.fd, req, args);
    else this.p.ioctl(this.fd, req, args);
    return { execAddr, relocAddr, args };
  }

  /** The errno code of an execbuf ('' on success). */
  execCode(objs: ExecObj[], opts: ExecOpts = {}): string {
    return code(() => this.exec(objs, opts));
  }

  /** exec_object2[i].offset as the kernel wrote it back. */
  execOffset(s: Submitted, i: number): bigint {
    return uapi.drm_i915_gem_exec_object2.decode(this.p.read(s.execAddr + i * 56, 56)).offset;
  }

  /** presumed_offset of relocation j of object i, as the kernel left it. */
  presumed(s: Submitted, i: number, j: number): bigint {
    return uapi.drm_i915_gem_relocation_entry.decode(this.p.read(s.relocAddr[i]! + j * 32, 32))
      .presumed_offset;
  }

  /** GEM_WAIT (libdrm style: EAGAIN/EINTR retried). Throws on EIO/ETIME. */
  wait(handle: number, timeout_ns: bigint = -1n): bigint {
    const arg = uapi.drm_i915_gem_wait.encode({ bo_handle: handle, timeout_ns });
    this.p.drmIoctl(this.fd, uapi.DRM_IOCTL_I915_GEM_WAIT, arg);
    return uapi.drm_i915_gem_wait.decode(arg).timeout_ns;
  }

  busy(handle: number): number {
    const arg = uapi.drm_i915_gem_busy.encode({ handle });
    this.p.drmIoctl(this.fd, uapi.DRM_IOCTL_I915_GEM_BUSY, arg);
    return uapi.drm_i915_gem_busy.decode(arg).busy;
  }

  batch(): Batch {
    return new Batch(this.gen);
  }
}

// --- PREAD / PWRITE ----------------------------------------------------------------------------------

function gemWrite(c: Client, handle: number, offset: number, bytes: Uint8Array): void {
  const data = c.alloc(bytes.length);
  c.p.write(data, bytes);
  const arg = uapi.drm_i915_gem_pwrite.encode({ handle, offset, size: bytes.length, data_ptr: data });
  c.p.ioctl(c.fd, uapi.DRM_IOCTL_I915_GEM_PWRITE, arg);
}

function gemRead(c: Client, handle: number, offset: number, len: number): Uint8Array {
  const data = c.alloc(len);
  const arg = uapi.drm_i915_gem_pread.encode({ handle, offset, size: len, data_ptr: data });
  c.p.ioctl(c.fd, uapi.DRM_IOCTL_I915_GEM_PREAD, arg);
  return c.p.read(data, len);
}

/** -1 when equal, else the first differing byte offset (toEqual on MiB arrays is slow). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function dwords(bytes: Uint8Array): number[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 4 }, (_, i) => v.getUint32(i * 4, true));
}

function le32(values: readonly number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => {
    v.setUint32(i * 4, x >>> 0, true);
  });
  return b;
}

// --- batch building --------------------------------------------------------------------------------

/** A batch with its relocations (offsets in bytes, targets by handle or LUT index). */
class Batch {
  readonly dw: number[] = [];
  readonly relocs: Reloc[] = [];
  constructor(readonly gen: Gen) {}

  /**
   * An address: one dword (gen7) or two (gen8), relocated against `target`. As libdrm does, the
   * batch holds presumed_offset + delta (presumed 0), so a relocation the kernel skips (the
   * target really is at 0) still leaves the right address.
   */
  addr(target: number, delta: number, write: boolean): this {
    this.relocs.push({ offset: this.dw.length * 4, target, delta, read: RENDER, write: write ? RENDER : 0 });
    this.dw.push(delta);
    if (this.gen >= 8) this.dw.push(0);
    return this;
  }

  /** XY_COLOR_BLT of a rectangle [x1,x2) x [y1,y2) at 32 bpp. */
  fill(target: number, pitch: number, x1: number, y1: number, x2: number, y2: number, color: number): this {
    const len = this.gen >= 8 ? 5 : 4;
    this.dw.push((uapi.XY_COLOR_BLT_CMD_NOLEN | uapi.BLT_WRITE_RGBA | len) >>> 0);
    this.dw.push(uapi.BR13_8888 | uapi.BR13_ROP(uapi.BLT_ROP_PAT_COPY) | pitch);
    this.dw.push(((y1 << 16) | x1) >>> 0, ((y2 << 16) | x2) >>> 0);
    this.addr(target, 0, true);
    this.dw.push(color >>> 0);
    return this;
  }

  /** XY_SRC_COPY_BLT of w x h pixels between two linear 32 bpp surfaces. */
  copy(dst: number, dpitch: number, src: number, spitch: number, w: number, h: number): this {
    const len = this.gen >= 8 ? 8 : 6;
    this.dw.push((uapi.XY_SRC_COPY_BLT_CMD | uapi.BLT_WRITE_RGBA | len) >>> 0);
    this.dw.push(uapi.BR13_8888 | uapi.BR13_ROP(uapi.BLT_ROP_SRC_COPY) | dpitch);
    this.dw.push(0, ((h << 16) | w) >>> 0);
    this.addr(dst, 0, true);
    this.dw.push(0, spitch);
    this.addr(src, 0, false);
    return this;
  }

  /** MI_STORE_DWORD_IMM: [cmd, 0, addr, value] before gen8, [cmd, lo, hi, value] from gen8. */
  store(target: number, offset: number, value: number): this {
    this.dw.push(uapi.MI_STORE_DWORD_IMM);
    if (this.gen < 8) this.dw.push(0);
    this.addr(target, offset, true);
    this.dw.push(value >>> 0);
    return this;
  }

  raw(...values: number[]): this {
    this.dw.push(...values.map((v) => v >>> 0));
    return this;
  }

  /** MI_BATCH_BUFFER_END, padded with MI_NOOP to a qword. */
  end(): Uint8Array {
    this.dw.push(uapi.MI_BATCH_BUFFER_END);
    if (this.dw.length % 2) this.dw.push(uapi.MI_NOOP);
    return le32(this.dw);
  }
}

/** The reference's exact blit batch (i915-uapi.md §1), with its two relocations. */
function referenceBlit(gen: Gen, dst: number, src: number): { batch: Uint8Array; relocs: Reloc[] } {
  const garbage = [0xdeadbeef, 0xcafef00d];
  const dw =
    gen < 8
      ? [0x54f00006, 0x03cc0800, 0, 0x02000200, 0, 0, 0x800, 0, 0x05000000, 0, ...garbage]
      : [0x54f00008, 0x03cc0800, 0, 0x02000200, 0, 0, 0, 0x800, 0, 0, 0x05000000, 0];
  const relocs: Reloc[] = [
    { offset: 16, target: dst, read: RENDER, write: RENDER },
    { offset: gen < 8 ? 28 : 32, target: src, read: RENDER, write: 0 },
  ];
  return { batch: le32(dw), relocs };
}

function encodeRelocs(rs: readonly Reloc[]): Uint8Array {
  return uapi.drm_i915_gem_relocation_entry.encodeArray(
    rs.map((r) => ({
      target_handle: r.target,
      delta: r.delta ?? 0,
      offset: r.offset,
      presumed_offset: r.presumed ?? 0,
      read_domains: r.read ?? RENDER,
      write_domain: r.write ?? 0,
    })),
  );
}

/** Uploads a batch into a fresh object of `size` bytes. */
function upload(c: Client, bytes: Uint8Array, size = 4096, at = 0): number {
  const h = c.create(size);
  gemWrite(c, h, at, bytes);
  return h;
}

/** Runs `b` on `ring` with `targets` (which must not include the batch) and waits for it. */
function run(c: Client, b: Batch, targets: number[], flags: number = BLT): { s: Submitted; batch: number } {
  const bytes = b.end();
  const batch = upload(c, bytes, Math.max(4096, Math.ceil(bytes.length / 4096) * 4096));
  const s = c.exec([...targets.map((handle) => ({ handle })), { handle: batch, relocs: b.relocs }], {
    flags,
  });
  c.wait(batch);
  return { s, batch };
}

const GENS: Gen[] = [7, 8];

// --- the tests -------------------------------------------------------------------------------------

describe.each(GENS)('execbuffer2 on gen%i', (gen) => {
  it("copies a 512x512 surface with the reference's exact batch and relocations", () => {
    const c = Client.boot(gen);
    const src = c.create(SURFACE);
    const dst = c.create(SURFACE);
    // Fill the source on the GPU: one colour per row, then scattered dwords (576 relocations,
    // more than one fast-path chunk).
    const expected = new Uint8Array(SURFACE);
    const ev = new DataView(expected.buffer);
    const fill = c.batch();
    for (let y = 0; y < 512; y++) {
      const color = (0x01000193 * (y + 1)) >>> 0;
      fill.fill(src, 2048, 0, y, 512, y + 1, color);
      for (let x = 0; x < 512; x++) ev.setUint32(y * 2048 + x * 4, color, true);
    }
    for (let k = 0; k < 64; k++) {
      const off = ((k * 7919 * 4) % SURFACE) & ~3;
      fill.store(src, off, 0xa5000000 + k);
      ev.setUint32(off, 0xa5000000 + k, true);
    }
    const f = run(c, fill, [src]);
    expect(fill.relocs.length).toBe(576);
    expect(c.busy(src)).toBe(0);

    const { batch, relocs } = referenceBlit(gen, dst, src);
    const bb = upload(c, batch);
    const s = c.exec([{ handle: dst }, { handle: src }, { handle: bb, relocs }], {
      flags: BLT,
      batch_len: 48,
    });
    c.wait(dst);
    expect(firstDiff(gemRead(c, dst, 0, SURFACE), expected)).toBe(-1);
    expect(firstDiff(gemRead(c, src, 0, SURFACE), expected)).toBe(-1);

    // Offsets written back: exec_object2.offset and each relocation's presumed_offset.
    const dstOff = c.execOffset(s, 0);
    const srcOff = c.execOffset(s, 1);
    expect(dstOff).not.toBe(srcOff);
    expect(c.presumed(s, 2, 0)).toBe(dstOff);
    expect(c.presumed(s, 2, 1)).toBe(srcOff);
    expect(c.execOffset(f.s, 0)).toBe(srcOff); // src stayed where the fill put it
    // The batch now holds the addresses (gen8: 64-bit, upper dword 0).
    const d = dwords(gemRead(c, bb, 0, 48));
    if (gen < 8)
      expect([d[4], d[7], d[10], d[11]]).toEqual([Number(dstOff), Number(srcOff), 0xdeadbeef, 0xcafef00d]);
    else expect([d[4], d[5], d[8], d[9]]).toEqual([Number(dstOff), 0, Number(srcOff), 0]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('fills a sub-rectangle with XY_COLOR_BLT and leaves the rest untouched', () => {
    const c = Client.boot(gen);
    const dst = c.create(64 * 1024);
    // 64x32 pixels, pitch 1024 bytes: rectangle [8,40) x [4,20).
    run(c, c.batch().fill(dst, 1024, 8, 4, 40, 20, 0x11223344), [dst]);
    const want = new Uint8Array(64 * 1024);
    const wv = new DataView(want.buffer);
    for (let y = 4; y < 20; y++)
      for (let x = 8; x < 40; x++) wv.setUint32(y * 1024 + x * 4, 0x11223344, true);
    expect(firstDiff(gemRead(c, dst, 0, 64 * 1024), want)).toBe(-1);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('stores dwords on the render ring and on the blitter ring', () => {
    const c = Client.boot(gen);
    const t = c.create(8192);
    run(c, c.batch().store(t, 0, 0x12345678).store(t, 4100, 0x9abcdef0), [t], uapi.I915_EXEC_RENDER);
    run(c, c.batch().store(t, 8, 0x0badf00d), [t], BLT);
    run(c, c.batch().store(t, 12, 0x600df00d), [t], uapi.I915_EXEC_DEFAULT);
    expect(dwords(gemRead(c, t, 0, 16))).toEqual([0x12345678, 0, 0x0badf00d, 0x600df00d]);
    expect(dwords(gemRead(c, t, 4100, 4))).toEqual([0x9abcdef0]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('answers each malformed relocation with its errno, in 3.16 order', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const bb = upload(c, c.batch().end());
    const withReloc = (r: Partial<Reloc>, opts: ExecOpts = {}): string =>
      c.execCode(
        [{ handle: t }, { handle: bb, relocs: [{ offset: 0, target: t, presumed: 0x7fff0000, ...r }] }],
        opts,
      );
    expect(withReloc({ target: 999 })).toBe('ENOENT');
    expect(withReloc({ target: 0 })).toBe('ENOENT');
    expect(withReloc({ target: 2 }, { flags: uapi.I915_EXEC_HANDLE_LUT })).toBe('ENOENT');
    expect(withReloc({ write: RENDER | uapi.I915_GEM_DOMAIN_SAMPLER })).toBe('EINVAL');
    expect(withReloc({ read: uapi.I915_GEM_DOMAIN_CPU })).toBe('EINVAL');
    expect(withReloc({ write: uapi.I915_GEM_DOMAIN_GTT })).toBe('EINVAL');
    expect(withReloc({ read: uapi.I915_GEM_DOMAIN_GTT })).toBe('EINVAL');
    expect(withReloc({ offset: 4096 })).toBe('EINVAL');
    expect(withReloc({ offset: 2 })).toBe('EINVAL');
    expect(withReloc({ offset: 4096 - 8 })).toBe('');
    expect(withReloc({ offset: 4096 - 4 })).toBe(gen >= 8 ? 'EINVAL' : '');
    // The target is looked up before the domains are checked.
    expect(withReloc({ target: 999, write: 3 })).toBe('ENOENT');
    // A presumed offset that is already right skips the bounds checks, not the domain checks.
    const s = c.exec([{ handle: t }, { handle: bb }]);
    const at = c.execOffset(s, 0);
    expect(withReloc({ offset: 4097, presumed: at })).toBe('');
    expect(withReloc({ offset: 4097, presumed: at, read: uapi.I915_GEM_DOMAIN_CPU })).toBe('EINVAL');
    // A relocation that writes into the batch makes it self-modifying.
    expect(withReloc({ target: bb, write: RENDER })).toBe('EINVAL');
    expect(c.execCode([{ handle: t }, { handle: bb, flags: uapi.EXEC_OBJECT_WRITE }])).toBe('EINVAL');
    c.wait(bb);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('rejects bad exec lists and arguments with the 3.16 errno', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const bb = upload(c, c.batch().end());
    const ok: ExecObj[] = [{ handle: t }, { handle: bb }];
    expect(c.execCode(ok)).toBe('');
    expect(c.execCode([])).toBe('EINVAL');
    expect(c.execCode(ok, { buffer_count: 0 })).toBe('EINVAL');
    expect(c.execCode(ok, { buffer_count: Math.floor(0xffffffff / 56) + 1 })).toBe('EINVAL');
    expect(c.execCode(ok, { buffers_ptr: 0 })).toBe('EFAULT');
    expect(c.execCode(ok, { buffers_ptr: 0x7ffffffff000 - 56 })).toBe('EFAULT');
    expect(c.execCode(ok, { buffers_ptr: -4096 })).toBe('EFAULT');
    // Handles: unknown, duplicate; the first problem in list order decides.
    expect(c.execCode([{ handle: 77 }, { handle: bb }])).toBe('ENOENT');
    expect(c.execCode([{ handle: t }, { handle: t }, { handle: bb }])).toBe('EINVAL');
    expect(c.execCode([{ handle: t }, { handle: t }, { handle: 77 }, { handle: bb }])).toBe('EINVAL');
    expect(c.execCode([{ handle: 77 }, { handle: t }, { handle: t }, { handle: bb }])).toBe('ENOENT');
    // Flags: unknown exec flags, unaligned batch, unknown object flags.
    expect(c.execCode(ok, { flags: 1 << 13 })).toBe('EINVAL');
    expect(c.execCode(ok, { flags: 1n << 40n })).toBe('EINVAL');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_FENCE_OUT })).toBe('EINVAL');
    expect(c.execCode(ok, { flags: 8 })).toBe(''); // bits 3-5 lie outside 3.16's ring mask
    expect(c.execCode(ok, { batch_start_offset: 4 })).toBe('EINVAL');
    expect(c.execCode(ok, { batch_len: 12 })).toBe('EINVAL');
    for (const bad of [uapi.EXEC_OBJECT_SUPPORTS_48B_ADDRESS, uapi.EXEC_OBJECT_PINNED, 1n << 63n]) {
      expect(c.execCode([{ handle: t, flags: bad }, { handle: bb }])).toBe('EINVAL');
    }
    expect(
      c.execCode([
        { handle: t, flags: uapi.EXEC_OBJECT_NEEDS_FENCE | uapi.EXEC_OBJECT_NEEDS_GTT },
        { handle: bb },
      ]),
    ).toBe('');
    // Relocation arrays: unmapped, too many in total, beyond 2 GiB.
    expect(c.execCode([{ handle: t }, { handle: bb, relocation_count: 1, relocs_ptr: 0x1000 }])).toBe(
      'EFAULT',
    );
    expect(
      c.execCode([{ handle: t }, { handle: bb, relocation_count: 0x08000000, relocs_ptr: 0x1000 }]),
    ).toBe('EINVAL');
    expect(
      c.execCode([{ handle: t }, { handle: bb, relocation_count: 0x04000000, relocs_ptr: 0x1000 }]),
    ).toBe('EFAULT');
    // Rings: only render and blitter exist.
    for (const ring of [uapi.I915_EXEC_BSD, uapi.I915_EXEC_VEBOX, 5, 6, 7])
      expect(c.execCode(ok, { flags: ring })).toBe('EINVAL');
    // Constants mode: REL_SURFACE is refused on gen6+'s render ring, mode 3 everywhere.
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_CONSTANTS_REL_SURFACE })).toBe('EINVAL');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_CONSTANTS_REL_SURFACE | BLT })).toBe('');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_CONSTANTS_MASK | BLT })).toBe('EINVAL');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_CONSTANTS_ABSOLUTE })).toBe('');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_CONSTANTS_ABSOLUTE })).toBe('');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_CONSTANTS_REL_GENERAL })).toBe('');
    // Cliprects are for gen2-4; contexts other than the default one do not exist.
    expect(c.execCode(ok, { num_cliprects: 1 })).toBe('EINVAL');
    expect(c.execCode(ok, { rsvd1: 1 })).toBe('ENOENT');
    expect(c.execCode(ok, { rsvd1: 1, flags: BLT })).toBe('EINVAL');
    expect(c.execCode(ok, { rsvd1: 1n << 32n })).toBe(''); // only the low 32 bits are the id
    // SECURE needs master and root; SOL reset is for gen7's render ring.
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_SECURE })).toBe('EPERM');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_GEN7_SOL_RESET })).toBe(gen === 7 ? '' : 'EINVAL');
    expect(c.execCode(ok, { flags: uapi.I915_EXEC_GEN7_SOL_RESET | BLT })).toBe('EINVAL');
    c.wait(bb);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('accepts SECURE batches from the master when root', () => {
    const m = Machine.boot({ seed: 3, gpu: { gen } });
    const p = m.spawn({ uid: 0 });
    const c = new Client(m, p, p.open('/dev/dri/card0'), gen);
    const t = c.create(4096);
    run(c, c.batch().store(t, 0, 42), [t], uapi.I915_EXEC_SECURE | BLT);
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([42]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('HANDLE_LUT: relocation targets are indices into the exec list', () => {
    const c = Client.boot(gen);
    const a = c.create(4096);
    const b = c.create(4096);
    const batch = c.batch().store(1, 0, 0xb0b0b0b0).store(0, 4, 0xa0a0a0a0);
    const bytes = batch.end();
    const bb = upload(c, bytes);
    const s = c.exec([{ handle: a }, { handle: b }, { handle: bb, relocs: batch.relocs }], {
      flags: BLT | uapi.I915_EXEC_HANDLE_LUT,
    });
    c.wait(bb);
    expect(dwords(gemRead(c, a, 0, 8))).toEqual([0, 0xa0a0a0a0]);
    expect(dwords(gemRead(c, b, 0, 8))).toEqual([0xb0b0b0b0, 0]);
    expect(c.presumed(s, 2, 0)).toBe(c.execOffset(s, 1));
    expect(c.presumed(s, 2, 1)).toBe(c.execOffset(s, 0));
    // Without the flag, the same list names handles 1 and 0: 0 is no handle.
    expect(
      c.execCode([{ handle: a }, { handle: b }, { handle: bb, relocs: batch.relocs }], { flags: BLT }),
    ).toBe('ENOENT');
    expect(m_shutdown(c)).toEqual([]);
  });

  it('NO_RELOC skips every relocation when no object moved, and none when one did', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const b = c.batch().store(t, 0, 1);
    const bb = upload(c, b.end());
    const first = c.exec([{ handle: t }, { handle: bb, relocs: b.relocs }], { flags: BLT });
    c.wait(bb);
    const tOff = c.execOffset(first, 0);
    const bbOff = c.execOffset(first, 1);
    // Right offsets + NO_RELOC: the (broken) relocation is never looked at.
    const broken: Reloc[] = [{ offset: 4097, target: t, presumed: 0x1000, write: RENDER }];
    const objs = (toff: bigint): ExecObj[] => [
      { handle: t, offset: toff },
      { handle: bb, offset: bbOff, relocs: broken },
    ];
    expect(c.execCode(objs(tOff), { flags: BLT | uapi.I915_EXEC_NO_RELOC })).toBe('');
    // Without NO_RELOC, or with a stale offset for any object, all lists are processed.
    expect(c.execCode(objs(tOff), { flags: BLT })).toBe('EINVAL');
    expect(c.execCode(objs(tOff + 4096n), { flags: BLT | uapi.I915_EXEC_NO_RELOC })).toBe('EINVAL');
    c.wait(bb);
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([1]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('honours exec_object2.alignment, rebinding a misplaced object', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const filler = c.create(4096);
    const bb = upload(c, c.batch().end());
    const s1 = c.exec([{ handle: filler }, { handle: t }, { handle: bb }]);
    expect(Number(c.execOffset(s1, 1)) % MiB).not.toBe(0);
    const s2 = c.exec([{ handle: t, alignment: MiB }, { handle: bb }]);
    expect(Number(c.execOffset(s2, 0)) % MiB).toBe(0);
    c.wait(bb);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('ignores batch_len (gen6+ dispatch has no length) and starts at batch_start_offset', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const b = c.batch().store(t, 0, 0x5eed);
    const bytes = b.end();
    // Garbage that would hang the GPU in front of the batch.
    const bb = upload(c, bytes, 4096, 64);
    gemWrite(c, bb, 0, le32(Array(16).fill(0x7a000003)));
    const relocs = b.relocs.map((r) => ({ ...r, offset: r.offset + 64 }));
    c.exec([{ handle: t }, { handle: bb, relocs }], { flags: BLT, batch_start_offset: 64, batch_len: 8 });
    c.wait(bb);
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([0x5eed]);
    expect(c.m.gpuErrorState()).toBeNull();
    expect(m_shutdown(c)).toEqual([]);
  });

  it('EXECBUFFER2_WR behaves as EXECBUFFER2 and leaves rsvd2 alone', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const b = c.batch().store(t, 0, 7);
    const bb = upload(c, b.end());
    const s = c.exec([{ handle: t }, { handle: bb, relocs: b.relocs }], {
      flags: BLT,
      rsvd2: 0x1234_5678_9abcn,
      request: uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2_WR,
    });
    expect(uapi.drm_i915_gem_execbuffer2.decode(s.args).rsvd2).toBe(0x1234_5678_9abcn);
    c.wait(bb);
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([7]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('a blit on the render ring hangs it; on the blitter ring it works', () => {
    const c = Client.boot(gen);
    const src = c.create(SURFACE);
    const dst = c.create(SURFACE);
    run(c, c.batch().fill(src, 2048, 0, 0, 512, 512, 0x77777777), [src]);
    const { batch, relocs } = referenceBlit(gen, dst, src);
    const bb = upload(c, batch);
    expect(
      c.execCode([{ handle: dst }, { handle: src }, { handle: bb, relocs }], {
        flags: uapi.I915_EXEC_DEFAULT,
      }),
    ).toBe('');
    expect(code(() => c.wait(bb))).toBe('EIO');
    expect(c.m.gpuErrorState()).toContain('blitter command on the render ring');
    expect(dwords(gemRead(c, dst, 0, 8))).toEqual([0, 0]);
    c.exec([{ handle: dst }, { handle: src }, { handle: bb, relocs }], { flags: BLT, retry: true });
    c.wait(bb);
    expect(firstDiff(gemRead(c, dst, 0, SURFACE), gemRead(c, src, 0, SURFACE))).toBe(-1);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('captures a GPU hang, fails the request with EIO, resets, and runs the next batch', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const b = c.batch().store(t, 0, 0x1111).raw(0x7a000003, 0, 0, 0);
    const bytes = b.end();
    const bb = upload(c, bytes);
    const s = c.exec([{ handle: t }, { handle: bb, relocs: b.relocs }], { flags: BLT });
    expect(code(() => c.wait(bb))).toBe('EIO');
    expect(code(() => c.wait(t))).toBe('EIO');
    const err = c.m.gpuErrorState()!;
    const bbOff = Number(c.execOffset(s, 1));
    const tOff = Number(c.execOffset(s, 0));
    const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
    expect(err).toContain('blitter ring command stream:');
    expect(err).toContain(`blitter ring --- gtt_offset = 0x${hex8(bbOff)}`);
    expect(err).toMatch(/7a000003 {2}<-- hung here/);
    expect(err).toContain(hex8(uapi.MI_STORE_DWORD_IMM));
    expect(err).toMatch(/Active \[2\]:/);
    expect(err).toContain(`    ${hex8(tOff)}     4096 `);
    expect(err).toContain(`    ${hex8(bbOff)}     4096 `);
    // The store before the bad command landed.
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([0x1111]);
    // After the reset the GPU works again.
    const good = c.batch().store(t, 4, 0x2222);
    const gbb = upload(c, good.end());
    c.exec([{ handle: t }, { handle: gbb, relocs: good.relocs }], { flags: BLT, retry: true });
    c.wait(gbb);
    expect(dwords(gemRead(c, t, 0, 8))).toEqual([0x1111, 0x2222]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('BUSY while a long blit runs, idle after WAIT; WAIT with a short timeout says ETIME', () => {
    const c = Client.boot(gen);
    const big = 16 * MiB;
    const src = c.create(big);
    const dst = c.create(big);
    const b = c.batch();
    for (let k = 0; k < 4; k++) b.copy(dst, 16384, src, 16384, 4096, 1024);
    const bb = upload(c, b.end());
    c.exec([{ handle: dst }, { handle: src }, { handle: bb, relocs: b.relocs }], { flags: BLT });
    expect(c.busy(dst)).toBe(1 | (4 << 16));
    expect(c.busy(src)).toBe(1 | (4 << 16));
    const arg = uapi.drm_i915_gem_wait.encode({ bo_handle: dst, timeout_ns: 1000n });
    expect(code(() => c.p.ioctl(c.fd, uapi.DRM_IOCTL_I915_GEM_WAIT, arg))).toBe('ETIME');
    expect(uapi.drm_i915_gem_wait.decode(arg).timeout_ns).toBe(0n);
    expect(c.wait(dst, 10_000_000_000n)).toBeGreaterThan(0n);
    expect(c.busy(dst)).toBe(0);
    expect(c.busy(bb)).toBe(0);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('waits for the other ring before a batch uses an object it is writing', () => {
    const c = Client.boot(gen);
    const t = c.create(16 * MiB);
    const fill = c.batch();
    for (let k = 0; k < 4; k++) fill.fill(t, 16384, 0, 0, 4096, 1024, 0xeeeeeeee);
    const fb = upload(c, fill.end());
    c.exec([{ handle: t }, { handle: fb, relocs: fill.relocs }], { flags: BLT });
    const st = c.batch().store(t, 0, 0x5a5a5a5a);
    const sb = upload(c, st.end());
    c.exec([{ handle: t }, { handle: sb, relocs: st.relocs }], { flags: uapi.I915_EXEC_RENDER });
    c.wait(t);
    expect(dwords(gemRead(c, t, 0, 8))).toEqual([0x5a5a5a5a, 0xeeeeeeee]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('takes the slow path when the relocations cannot be written back in place (after fork)', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const b = c.batch().store(t, 0, 0xf0f0);
    const bb = upload(c, b.end());
    const stale = b.relocs.map((r) => ({ ...r, presumed: 0xdead000 }));
    // On private, written pages the fast path writes the real offsets back.
    const s1 = c.exec([{ handle: t }, { handle: bb, relocs: stale }], { flags: BLT });
    c.wait(bb);
    expect(c.presumed(s1, 1, 0)).toBe(c.execOffset(s1, 0));
    run(c, c.batch().store(t, 0, 0), [t]);
    // After fork the parent's pages are copy-on-write: __copy_to_user_inatomic fails, the slow
    // path relocates from a kernel copy and leaves ~0 in every presumed_offset.
    const relocs = c.p.mmap(0, 4096, RW, ANON);
    c.p.write(relocs, encodeRelocs(stale));
    const child = c.p.fork();
    expect(
      c.execCode([{ handle: t }, { handle: bb, relocation_count: 1, relocs_ptr: relocs }], { flags: BLT }),
    ).toBe('');
    c.wait(bb);
    expect(uapi.drm_i915_gem_relocation_entry.decode(c.p.read(relocs, 32)).presumed_offset).toBe(
      0xffffffffffffffffn,
    );
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([0xf0f0]);
    child.exit();
    expect(m_shutdown(c)).toEqual([]);
  });

  it('relocating into a batch the GPU still uses takes the slow path, which waits for it', () => {
    const c = Client.boot(gen);
    const big = 16 * MiB;
    const src = c.create(big);
    const dst = c.create(big);
    const t = c.create(4096);
    const b = c.batch();
    for (let k = 0; k < 4; k++) b.copy(dst, 16384, src, 16384, 4096, 1024);
    b.store(t, 0, 0xabc);
    const bb = upload(c, b.end());
    const objs: ExecObj[] = [
      { handle: dst },
      { handle: src },
      { handle: t },
      { handle: bb, relocs: b.relocs },
    ];
    const s1 = c.exec(objs, { flags: BLT });
    expect(c.busy(bb)).not.toBe(0);
    // Stale presumed offsets for a batch still on the GPU: the fast path may not wait.
    const stale = b.relocs.map((r) => ({ ...r, presumed: 0xdead000 }));
    const s2 = c.exec([...objs.slice(0, 3), { handle: bb, relocs: stale }], { flags: BLT });
    expect(c.presumed(s1, 3, 0)).toBe(c.execOffset(s1, 0));
    expect(c.presumed(s2, 3, 0)).toBe(0xffffffffffffffffn);
    expect(c.execOffset(s2, 0)).toBe(c.execOffset(s1, 0));
    c.wait(bb);
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([0xabc]);
    expect(m_shutdown(c)).toEqual([]);
  });

  it('gives EFAULT when the relocations are read-only and must be written back', () => {
    const c = Client.boot(gen);
    const t = c.create(4096);
    const b = c.batch().store(t, 0, 1);
    const bb = upload(c, b.end());
    const ro = c.p.mmap(0, 4096, RW, ANON);
    c.p.write(ro, encodeRelocs(b.relocs.map((r) => ({ ...r, presumed: 0xdead000 }))));
    c.p.mprotect(ro, 4096, uapi.PROT_READ);
    const objs: ExecObj[] = [{ handle: t }, { handle: bb, relocation_count: 1, relocs_ptr: ro }];
    expect(c.execCode(objs, { flags: BLT })).toBe('EFAULT');
    // A presumed offset that is right needs no write-back: read-only is fine then.
    const s = c.exec([{ handle: t }, { handle: bb, relocs: b.relocs }], { flags: BLT });
    c.wait(bb);
    const ro2 = c.p.mmap(0, 4096, RW, ANON);
    c.p.write(ro2, encodeRelocs(b.relocs.map((r) => ({ ...r, presumed: c.execOffset(s, 0) }))));
    c.p.mprotect(ro2, 4096, uapi.PROT_READ);
    expect(
      c.execCode([{ handle: t }, { handle: bb, relocation_count: 1, relocs_ptr: ro2 }], { flags: BLT }),
    ).toBe('');
    c.wait(bb);
    expect(dwords(gemRead(c, t, 0, 4))).toEqual([1]);
    expect(m_shutdown(c)).toEqual([]);
  });
});

describe.each(GENS)('execbuffer2 under a small GTT on gen%i', (gen) => {
  const cfg = { gpu: { gttBytes: MiB, mappableBytes: MiB } };
  const QUARTER = 256 * 1024;

  it('evicts idle and busy objects to make room, keeping every result', () => {
    const c = Client.boot(gen, cfg);
    const objs = Array.from({ length: 6 }, () => c.create(QUARTER));
    const colors = objs.map((_, i) => 0x10101010 * (i + 1));
    // Three surfaces per batch: 768 KiB + the batch fit; the next three force evictions.
    for (const group of [objs.slice(0, 3), objs.slice(3, 6)]) {
      const b = c.batch();
      for (const h of group) b.fill(h, 1024, 0, 0, 256, 256, colors[objs.indexOf(h)]!);
      const bb = upload(c, b.end());
      c.exec([...group.map((handle) => ({ handle })), { handle: bb, relocs: b.relocs }], { flags: BLT });
    }
    // Copy 0 -> 5 while 3 and 4 still hold the GTT (busy or idle).
    run(c, c.batch().copy(objs[5]!, 1024, objs[0]!, 1024, 256, 256), [objs[5]!, objs[0]!]);
    for (let i = 0; i < 6; i++) c.wait(objs[i]!);
    for (let i = 0; i < 5; i++) {
      expect(new Set(dwords(gemRead(c, objs[i]!, 0, QUARTER)))).toEqual(new Set([colors[i]]));
    }
    expect(new Set(dwords(gemRead(c, objs[5]!, 0, QUARTER)))).toEqual(new Set([colors[0]]));
    expect(m_shutdown(c)).toEqual([]);
  });

  it('ENOSPC when one call needs more than the GTT; E2BIG for an object larger than it', () => {
    const c = Client.boot(gen, cfg);
    const objs = Array.from({ length: 4 }, () => c.create(QUARTER));
    const bb = upload(c, c.batch().end());
    expect(c.execCode([...objs.map((handle) => ({ handle })), { handle: bb }])).toBe('ENOSPC');
    const huge = c.create(2 * MiB);
    expect(c.execCode([{ handle: huge }, { handle: bb }])).toBe('E2BIG');
    // Nothing stayed pinned: three of them fit.
    expect(c.execCode([...objs.slice(1).map((handle) => ({ handle })), { handle: bb }])).toBe('');
    c.wait(bb);
    expect(m_shutdown(c)).toEqual([]);
  });
});

describe.each(GENS)('lifetimes on gen%i', (gen) => {
  function longBlit(c: Client): number[] {
    const src = c.create(16 * MiB);
    const dst = c.create(16 * MiB);
    const b = c.batch();
    for (let k = 0; k < 4; k++) b.copy(dst, 16384, src, 16384, 4096, 1024);
    const bb = upload(c, b.end());
    c.exec([{ handle: dst }, { handle: src }, { handle: bb, relocs: b.relocs }], { flags: BLT });
    return [src, dst, bb];
  }

  it('closing the handles and the file while the GPU is busy leaks nothing', () => {
    const c = Client.boot(gen);
    const hs = longBlit(c);
    expect(c.busy(hs[1]!)).not.toBe(0);
    for (const h of hs) c.close(h);
    c.p.close(c.fd);
    expect(c.m.shutdown()).toEqual([]);
    expect(c.m.meminfo().freePages).toBe(c.m.meminfo().totalPages);
  });

  it('exiting the process while the GPU is busy leaks nothing', () => {
    const c = Client.boot(gen);
    const hs = longBlit(c);
    expect(c.busy(hs[0]!)).not.toBe(0);
    c.p.exit(0);
    c.m.run();
    expect(c.m.shutdown()).toEqual([]);
    expect(c.m.meminfo().freePages).toBe(c.m.meminfo().totalPages);
  });
});

/** Every test ends here: a clean shutdown with all memory back. */
function m_shutdown(c: Client): ReturnType<Machine['shutdown']> {
  const f = c.m.shutdown();
  expect(c.m.meminfo().freePages).toBe(c.m.meminfo().totalPages);
  return f;
}
