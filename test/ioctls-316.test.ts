import { describe, expect, it } from 'vitest';
import {
  DRM_AUTH,
  DRM_MASTER,
  DRM_RENDER_ALLOW,
  DRM_ROOT_ONLY,
  DRM_UNLOCKED,
  drm_core_ioctls,
} from '../src/drm/drm_ioctl.js';
import { type Chooser, Machine, type MachineConfig, type Process, uapi, user } from '../src/index.js';
import { _IOC_NR } from '../src/uapi/ioctl.js';
import { code } from './support/userptr.js';

/**
 * The 3.16 ioctls real clients (X, Mesa i965, libdrm) make besides GEM and userptr, through the
 * public ABI only (real request numbers, struct bytes, user pointers): GET_MAGIC / AUTH_MAGIC,
 * SET_MASTER / DROP_MASTER, I915_GEM_THROTTLE, I915_GEM_CONTEXT_CREATE / DESTROY with
 * execbuffer's context check, and I915_GET_RESET_STATS with the hang statistics a reset charges.
 * Every success and every errno path, and a clean shutdown at the end of every test.
 */

const SEED = Number(process.env.SEED ?? 1);
const PAGE = 4096;
const MiB = 1 << 20;
const CARD = '/dev/dri/card0';
const RENDER = '/dev/dri/renderD128';

const errno = (code: string): unknown => expect.objectContaining({ code });

/**
 * Runs user tasks whenever one is runnable: the GPU, workers and resets progress only while the
 * program blocks (a wait) or backs off (after drmIoctl's retry yields, everything else runs until
 * it is idle or blocked). Submissions then queue up before the GPU starts, which makes hang and
 * throttle timings exact.
 */
class UserFirst implements Chooser {
  private backoff = false;
  choose(runnable: Parameters<Chooser['choose']>[0]): number {
    if (this.backoff) {
      const j = runnable.findIndex((t) => t.kind !== 'user');
      if (j >= 0) return j;
      this.backoff = false;
    }
    const i = runnable.findIndex((t) => t.kind === 'user');
    return i >= 0 ? i : 0;
  }
  pick(): number {
    return 0;
  }
  onYield(): void {
    this.backoff = true;
  }
}

function boot(cfg: MachineConfig = {}, uid = 1000): { m: Machine; p: Process; fd: number } {
  const m = Machine.boot({ seed: SEED, ...cfg });
  const p = m.spawn({ uid });
  const fd = p.open(CARD);
  return { m, p, fd };
}

// --- authentication and mastership ----------------------------------------------------------------

describe(`GET_MAGIC / AUTH_MAGIC (seed ${SEED})`, () => {
  it('GET_MAGIC gives each primary file a non-zero token that never changes', () => {
    const { m, p, fd } = boot();
    const q = m.spawn();
    const qfd = q.open(CARD);
    const a = user.drm_get_magic(p, fd);
    expect(a).not.toBe(0);
    expect(user.drm_get_magic(p, fd)).toBe(a);
    const b = user.drm_get_magic(q, qfd);
    expect(b).not.toBe(0);
    expect(b).not.toBe(a);
    // A second open of the node is another file, with another token; a fork shares the file.
    const fd2 = p.open(CARD);
    expect(user.drm_get_magic(p, fd2)).not.toBe(a);
    expect(user.drm_get_magic(p.fork(), fd)).toBe(a);
    // Through a user pointer as well (an _IOR request: written back).
    const mem = p.mmap(0, PAGE, uapi.PROT_READ | uapi.PROT_WRITE, uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS);
    p.ioctl(fd, uapi.DRM_IOCTL_GET_MAGIC, mem);
    expect(uapi.drm_auth.decode(p.read(mem, 4)).magic).toBe(a);
    expect(m.shutdown()).toEqual([]);
  });

  it('GET_MAGIC is not render-allowed: EACCES on renderD128, even for root', () => {
    const m = Machine.boot({ seed: SEED });
    for (const uid of [1000, 0]) {
      const p = m.spawn({ uid });
      const fd = p.open(RENDER);
      expect(code(() => user.drm_get_magic(p, fd))).toBe('EACCES');
      expect(code(() => user.drm_auth_magic(p, fd, 1))).toBe('EACCES');
    }
    expect(m.shutdown()).toEqual([]);
  });

  it("the master authenticates another client's magic once; unknown magics are EINVAL", () => {
    const { m, p: server, fd: sfd } = boot();
    const client = m.spawn();
    const cfd = client.open(CARD);
    const magic = user.drm_get_magic(client, cfd);
    expect(code(() => user.drm_auth_magic(server, sfd, magic))).toBe('OK');
    // The token is consumed; the file keeps it.
    expect(code(() => user.drm_auth_magic(server, sfd, magic))).toBe('EINVAL');
    expect(user.drm_get_magic(client, cfd)).toBe(magic);
    expect(code(() => user.drm_auth_magic(server, sfd, 0))).toBe('EINVAL');
    expect(code(() => user.drm_auth_magic(server, sfd, magic + 1000))).toBe('EINVAL');
    // The master may authenticate itself too.
    expect(code(() => user.drm_auth_magic(server, sfd, user.drm_get_magic(server, sfd)))).toBe('OK');
    // The client is authenticated (as the model has every primary client): DRM_AUTH ioctls work.
    const h = user.gem_create(client, cfd, PAGE);
    expect(user.gem_flink(client, cfd, h)).toBeGreaterThan(0);
    expect(m.shutdown()).toEqual([]);
  });

  it('AUTH_MAGIC needs the master (EACCES otherwise); a closed file takes its magic along', () => {
    const { m, p: server, fd: sfd } = boot();
    const a = m.spawn();
    const afd = a.open(CARD);
    const b = m.spawn();
    const bfd = b.open(CARD);
    const bm = user.drm_get_magic(b, bfd);
    expect(code(() => user.drm_auth_magic(a, afd, bm))).toBe('EACCES');
    b.close(bfd);
    expect(code(() => user.drm_auth_magic(server, sfd, bm))).toBe('EINVAL');
    expect(m.shutdown()).toEqual([]);
  });
});

describe(`SET_MASTER / DROP_MASTER (seed ${SEED})`, () => {
  it('are root-only (EACCES) and not render-allowed (EACCES for root on renderD128)', () => {
    const { m, p, fd } = boot();
    expect(code(() => user.drm_drop_master(p, fd))).toBe('EACCES');
    expect(code(() => user.drm_set_master(p, fd))).toBe('EACCES');
    const r = m.spawn({ uid: 0 });
    const rfd = r.open(RENDER);
    expect(code(() => user.drm_drop_master(r, rfd))).toBe('EACCES');
    expect(code(() => user.drm_set_master(r, rfd))).toBe('EACCES');
    // A root process that dropped to a user uid loses them too.
    const x = m.spawn({ uid: 0 });
    const xfd = x.open(CARD);
    x.setuid(1000);
    expect(code(() => user.drm_drop_master(x, xfd))).toBe('EACCES');
    expect(m.shutdown()).toEqual([]);
  });

  it('the master drops and retakes the node; SET_MASTER of the master is a no-op, DROP of a non-master EINVAL', () => {
    const { m, p, fd } = boot({}, 0);
    const other = m.spawn();
    const ofd = other.open(CARD);
    const om = user.drm_get_magic(other, ofd);
    expect(code(() => user.drm_set_master(p, fd))).toBe('OK');
    expect(code(() => user.drm_drop_master(p, fd))).toBe('OK');
    // No longer the master: DRM_MASTER ioctls are refused, a second DROP is EINVAL.
    expect(code(() => user.drm_auth_magic(p, fd, om))).toBe('EACCES');
    expect(code(() => user.drm_drop_master(p, fd))).toBe('EINVAL');
    expect(code(() => user.drm_set_master(p, fd))).toBe('OK');
    expect(code(() => user.drm_auth_magic(p, fd, om))).toBe('OK');
    expect(m.shutdown()).toEqual([]);
  });

  it('one master at a time: SET_MASTER is EINVAL while another file is master', () => {
    const { m, p: a, fd: afd } = boot({}, 0);
    const b = m.spawn({ uid: 0 });
    const bfd = b.open(CARD);
    expect(code(() => user.drm_drop_master(b, bfd))).toBe('EINVAL');
    expect(code(() => user.drm_set_master(b, bfd))).toBe('EINVAL');
    user.drm_drop_master(a, afd);
    expect(code(() => user.drm_set_master(b, bfd))).toBe('OK');
    expect(code(() => user.drm_set_master(a, afd))).toBe('EINVAL');
    // The master's close frees the node: the next opener becomes master.
    b.close(bfd);
    const c = m.spawn({ uid: 0 });
    const cfd = c.open(CARD);
    expect(code(() => user.drm_auth_magic(c, cfd, user.drm_get_magic(c, cfd)))).toBe('OK');
    expect(code(() => user.drm_set_master(a, afd))).toBe('EINVAL');
    expect(m.shutdown()).toEqual([]);
  });

  it("a magic lives in the table of the master its file opened under (3.16's per-master tables)", () => {
    const { m, p: a, fd: afd } = boot({}, 0);
    const client = m.spawn();
    const cfd = client.open(CARD);
    const magic = user.drm_get_magic(client, cfd);
    user.drm_drop_master(a, afd);
    // A new master on the free node does not know the client's magic...
    const c = m.spawn({ uid: 0 });
    const cfd2 = c.open(CARD);
    expect(code(() => user.drm_auth_magic(c, cfd2, magic))).toBe('EINVAL');
    c.close(cfd2);
    // ...the client's own master, current again, does.
    user.drm_set_master(a, afd);
    expect(code(() => user.drm_auth_magic(a, afd, magic))).toBe('OK');
    expect(m.shutdown()).toEqual([]);
  });
});

// --- execbuffer helpers ---------------------------------------------------------------------------

/** EXECBUFFER2 once, without retries: 'OK' or the errno code. */
function execCode(p: Process, fd: number, opts: user.ExecbufOptions): string {
  const layout = user.build_execbuf(p, opts);
  try {
    return code(() => p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_EXECBUFFER2, layout.execbuffer));
  } finally {
    p.munmap(layout.addr, layout.size);
  }
}

/** A batch object holding `b`. */
function upload(p: Process, fd: number, b: user.BlitBatch): number {
  const bb = user.gem_create(p, fd, Math.max(PAGE, b.length));
  user.gem_write(p, fd, bb, 0, b.bytes());
  return bb;
}

/** MI_STORE_DWORD_IMM of `value` at byte 0 of `target`: a batch the render ring executes. */
function storeOpts(
  p: Process,
  fd: number,
  gen: 7 | 8,
  target: number,
  value: number,
  ring: user.Ring,
  context = 0,
): user.ExecbufOptions & { bb: number } {
  const b = new user.BlitBatch(gen).storeDword(target, 0, value).end();
  const bb = upload(p, fd, b);
  return {
    objects: [{ handle: target }],
    batch: { handle: bb, len: 0, relocs: b.relocs },
    ring,
    context,
    bb,
  };
}

/** An XY_COLOR_BLT into `target` on the render ring: an unknown command there, so the ring hangs. */
function hangOpts(
  p: Process,
  fd: number,
  target: number,
  context = 0,
  ring: user.Ring = 'render',
): user.ExecbufOptions {
  const b = new user.BlitBatch(7).fill({ dst: target, color: 0x11111111, x2: 16, y2: 16, pitch: 64 }).end();
  const bb = upload(p, fd, b);
  return { objects: [{ handle: target }], batch: { handle: bb, len: 0, relocs: b.relocs }, ring, context };
}

function readDword(p: Process, fd: number, handle: number): number {
  const b = user.gem_read(p, fd, handle, 0, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

// --- THROTTLE ---------------------------------------------------------------------------------------

/** A blitter batch of about 40 ms of (virtual) GPU time: 40 fills of 16 MiB. */
function longBatch(p: Process, fd: number): { dst: number; bb: number; opts: user.ExecbufOptions } {
  const dst = user.gem_create(p, fd, 16 * MiB);
  const b = new user.BlitBatch(7);
  for (let k = 0; k < 40; k++) b.fill({ dst, color: k, x2: 4096, y2: 1024, pitch: 16384 });
  b.end();
  const bb = upload(p, fd, b);
  return {
    dst,
    bb,
    opts: { objects: [{ handle: dst }], batch: { handle: bb, len: 0, relocs: b.relocs }, ring: 'blt' },
  };
}

describe(`I915_GEM_THROTTLE (seed ${SEED})`, () => {
  it('returns at once without requests, on both nodes', () => {
    const { m, p, fd } = boot();
    expect(code(() => user.gem_throttle(p, fd))).toBe('OK');
    const rfd = p.open(RENDER);
    expect(code(() => user.gem_throttle(p, rfd))).toBe('OK');
    expect(m.shutdown()).toEqual([]);
  });

  it("waits for the file's requests older than 20 ms, not for younger ones nor other files'", () => {
    const { m, p, fd } = boot({ chooser: new UserFirst() });
    const q = m.spawn();
    const qfd = q.open(CARD);
    const long = longBatch(p, fd);
    expect(execCode(p, fd, long.opts)).toBe('OK');
    // Just submitted: younger than 20 ms, not waited for.
    user.gem_throttle(p, fd);
    expect(user.gem_busy(p, fd, long.dst)).toBe(true);
    // 25 ms later it still runs.
    expect(code(() => user.gem_wait(p, fd, long.dst, 25_000_000n))).toBe('ETIME');
    expect(user.gem_busy(p, fd, long.dst)).toBe(true);
    // Another file has nothing old: its THROTTLE does not wait for this one's batch.
    user.gem_throttle(q, qfd);
    expect(user.gem_busy(p, fd, long.dst)).toBe(true);
    // Now the request is old enough: THROTTLE returns when it completed.
    user.gem_throttle(p, fd);
    expect(user.gem_busy(p, fd, long.dst)).toBe(false);
    expect(m.shutdown()).toEqual([]);
  });

  it('waits only for the newest old request: a young one behind it keeps running', () => {
    const { m, p, fd } = boot({ chooser: new UserFirst() });
    const long = longBatch(p, fd);
    execCode(p, fd, long.opts);
    expect(code(() => user.gem_wait(p, fd, long.dst, 25_000_000n))).toBe('ETIME');
    const young = longBatch(p, fd);
    execCode(p, fd, young.opts);
    user.gem_throttle(p, fd);
    expect(user.gem_busy(p, fd, long.dst)).toBe(false);
    expect(user.gem_busy(p, fd, young.dst)).toBe(true);
    expect(m.shutdown()).toEqual([]);
  });

  it('a wedged GPU: EIO; a request the GPU hung on does not fail it', () => {
    const { m, p, fd } = boot({ chooser: new UserFirst() });
    const t = user.gem_create(p, fd, PAGE);
    expect(execCode(p, fd, hangOpts(p, fd, t))).toBe('OK');
    expect(code(() => user.gem_wait(p, fd, t, 30_000_000n))).toBe('EIO');
    expect(code(() => user.gem_throttle(p, fd))).toBe('OK');
    m.i915.gpu_error.wedged = true;
    expect(code(() => user.gem_throttle(p, fd))).toBe('EIO');
    m.i915.gpu_error.wedged = false;
    expect(code(() => user.gem_throttle(p, fd))).toBe('OK');
    expect(m.shutdown()).toEqual([]);
  });
});

// --- contexts -----------------------------------------------------------------------------------------

describe(`I915_GEM_CONTEXT_CREATE / DESTROY (seed ${SEED})`, () => {
  it('ids start at 1 per file, lowest free first; 0 and unknown ids cannot be destroyed (ENOENT)', () => {
    const { m, p, fd } = boot();
    expect([
      user.gem_context_create(p, fd),
      user.gem_context_create(p, fd),
      user.gem_context_create(p, fd),
    ]).toEqual([1, 2, 3]);
    const fd2 = p.open(CARD);
    expect(user.gem_context_create(p, fd2)).toBe(1);
    expect(code(() => user.gem_context_destroy(p, fd, 2))).toBe('OK');
    expect(code(() => user.gem_context_destroy(p, fd, 2))).toBe('ENOENT');
    expect(user.gem_context_create(p, fd)).toBe(2);
    expect(user.gem_context_create(p, fd)).toBe(4);
    expect(code(() => user.gem_context_destroy(p, fd, 0))).toBe('ENOENT');
    expect(code(() => user.gem_context_destroy(p, fd, 99))).toBe('ENOENT');
    expect(code(() => user.gem_context_destroy(p, fd, 0xffffffff))).toBe('ENOENT');
    // Another file's context is not this file's.
    expect(code(() => user.gem_context_destroy(p, fd2, 3))).toBe('ENOENT');
    expect(m.shutdown()).toEqual([]);
  });

  it('are render-allowed, need no authentication, and work on gen 8 too', () => {
    const m = Machine.boot({ seed: SEED, gpu: { gen: 8 } });
    const p = m.spawn();
    const fd = p.open(RENDER);
    expect(user.gem_context_create(p, fd)).toBe(1);
    expect(code(() => user.gem_context_destroy(p, fd, 1))).toBe('OK');
    expect(m.shutdown()).toEqual([]);
  });

  it('a wedged GPU does not stop them (3.16 creates no GPU work for a context)', () => {
    const { m, p, fd } = boot();
    m.i915.gpu_error.wedged = true;
    expect(user.gem_context_create(p, fd)).toBe(1);
    expect(code(() => user.gem_context_destroy(p, fd, 1))).toBe('OK');
    m.i915.gpu_error.wedged = false;
    expect(m.shutdown()).toEqual([]);
  });

  for (const gen of [7, 8] as const) {
    it(`gen ${gen} execbuffer: a created context runs on the render ring; BCS with a context EINVAL; a destroyed one ENOENT`, () => {
      const { m, p, fd } = boot({ gpu: { gen } });
      const t = user.gem_create(p, fd, PAGE);
      const ctx = user.gem_context_create(p, fd);
      const run = storeOpts(p, fd, gen, t, 0xc0ffee, 'render', ctx);
      user.execbuf(p, fd, run);
      user.gem_wait(p, fd, run.bb);
      expect(readDword(p, fd, t)).toBe(0xc0ffee);
      // The default ring is the render ring.
      const dflt = storeOpts(p, fd, gen, t, 0xd00d, 'default', ctx);
      user.execbuf(p, fd, dflt);
      user.gem_wait(p, fd, dflt.bb);
      expect(readDword(p, fd, t)).toBe(0xd00d);
      // Only the render ring switches contexts.
      expect(execCode(p, fd, storeOpts(p, fd, gen, t, 1, 'blt', ctx))).toBe('EINVAL');
      // The default context (0) runs anywhere.
      const blt = storeOpts(p, fd, gen, t, 0xb17, 'blt', 0);
      user.execbuf(p, fd, blt);
      user.gem_wait(p, fd, blt.bb);
      expect(readDword(p, fd, t)).toBe(0xb17);
      // Never created, another file's, destroyed: ENOENT.
      expect(execCode(p, fd, storeOpts(p, fd, gen, t, 2, 'render', ctx + 1))).toBe('ENOENT');
      const fd2 = p.open(CARD);
      expect(execCode(p, fd2, storeOpts(p, fd2, gen, user.gem_create(p, fd2, PAGE), 3, 'render', ctx))).toBe(
        'ENOENT',
      );
      user.gem_context_destroy(p, fd, ctx);
      expect(execCode(p, fd, storeOpts(p, fd, gen, t, 4, 'render', ctx))).toBe('ENOENT');
      // The ring check comes first: a destroyed id on the blitter is EINVAL.
      expect(execCode(p, fd, storeOpts(p, fd, gen, t, 5, 'blt', ctx))).toBe('EINVAL');
      expect(readDword(p, fd, t)).toBe(0xb17);
      expect(m.shutdown()).toEqual([]);
    });
  }

  it('a context destroyed, or its file closed, while its batch is in flight: the batch completes', () => {
    const { m, p, fd } = boot({ chooser: new UserFirst() });
    const t = user.gem_create(p, fd, PAGE);
    const ctx = user.gem_context_create(p, fd);
    const run = storeOpts(p, fd, 7, t, 0x5a5a, 'render', ctx);
    expect(execCode(p, fd, run)).toBe('OK');
    user.gem_context_destroy(p, fd, ctx);
    user.gem_wait(p, fd, run.bb);
    expect(readDword(p, fd, t)).toBe(0x5a5a);
    const q = m.spawn();
    const qfd = q.open(CARD);
    const u = user.gem_create(q, qfd, PAGE);
    const qctx = user.gem_context_create(q, qfd);
    expect(execCode(q, qfd, storeOpts(q, qfd, 7, u, 1, 'render', qctx))).toBe('OK');
    q.close(qfd);
    m.run();
    expect(m.shutdown()).toEqual([]);
  });
});

// --- GET_RESET_STATS --------------------------------------------------------------------------------

describe(`I915_GET_RESET_STATS (seed ${SEED})`, () => {
  it('EINVAL for flags or pad (checked first), EPERM for context 0 without root, ENOENT for unknown ids', () => {
    const { m, p, fd } = boot();
    const ctx = user.gem_context_create(p, fd);
    expect(code(() => user.gem_reset_stats(p, fd, ctx, 1))).toBe('EINVAL');
    expect(code(() => user.gem_reset_stats(p, fd, ctx, 0, 1))).toBe('EINVAL');
    expect(code(() => user.gem_reset_stats(p, fd, 0, 1))).toBe('EINVAL');
    expect(code(() => user.gem_reset_stats(p, fd, 0))).toBe('EPERM');
    expect(code(() => user.gem_reset_stats(p, fd, 7))).toBe('ENOENT');
    user.gem_context_destroy(p, fd, ctx);
    expect(code(() => user.gem_reset_stats(p, fd, ctx))).toBe('ENOENT');
    const r = m.spawn({ uid: 0 });
    const rfd = r.open(RENDER);
    expect(user.gem_reset_stats(r, rfd, 0)).toEqual({ reset_count: 0, batch_active: 0, batch_pending: 0 });
    expect(code(() => user.gem_reset_stats(r, rfd, 1))).toBe('ENOENT');
    expect(m.shutdown()).toEqual([]);
  });

  it('a hang charges the guilty batch as active and the batches queued behind it as pending', () => {
    const { m, p, fd } = boot({ chooser: new UserFirst() }, 0);
    const a = user.gem_context_create(p, fd);
    const b = user.gem_context_create(p, fd);
    const t = user.gem_create(p, fd, PAGE);
    const u = user.gem_create(p, fd, PAGE);
    // Both queue before the GPU starts: the blit hangs the render ring, the store behind it is lost.
    expect(execCode(p, fd, hangOpts(p, fd, t, a))).toBe('OK');
    const lost = storeOpts(p, fd, 7, u, 0x1234, 'render', b);
    expect(execCode(p, fd, lost)).toBe('OK');
    expect(code(() => user.gem_wait(p, fd, lost.bb))).toBe('EIO');
    expect(readDword(p, fd, u)).toBe(0);
    expect(user.gem_reset_stats(p, fd, a)).toEqual({ reset_count: 1, batch_active: 1, batch_pending: 0 });
    expect(user.gem_reset_stats(p, fd, b)).toEqual({ reset_count: 1, batch_active: 0, batch_pending: 1 });
    expect(user.gem_reset_stats(p, fd, 0)).toEqual({ reset_count: 1, batch_active: 0, batch_pending: 0 });
    // Without root the device's reset count reads 0; another file's contexts saw nothing.
    const q = m.spawn();
    const qfd = q.open(CARD);
    expect(user.gem_reset_stats(q, qfd, user.gem_context_create(q, qfd))).toEqual({
      reset_count: 0,
      batch_active: 0,
      batch_pending: 0,
    });
    // A hang on the blitter in the default context is charged to context 0.
    const v = user.gem_create(p, fd, PAGE);
    const bad = new user.BlitBatch(7).emit(0x7a000003, 0, 0, 0).end();
    const bbad = upload(p, fd, bad);
    expect(execCode(p, fd, { objects: [{ handle: v }], batch: { handle: bbad, len: 0 }, ring: 'blt' })).toBe(
      'OK',
    );
    expect(code(() => user.gem_wait(p, fd, bbad))).toBe('EIO');
    expect(user.gem_reset_stats(p, fd, 0)).toEqual({ reset_count: 2, batch_active: 1, batch_pending: 0 });
    expect(m.gpuErrorState()).not.toBeNull();
    expect(m.shutdown()).toEqual([]);
  });

  it('a created context guilty twice within 12 s is banned (EIO); pending batches and context 0 are not', () => {
    const { m, p, fd } = boot({ chooser: new UserFirst() }, 0);
    const a = user.gem_context_create(p, fd);
    const b = user.gem_context_create(p, fd);
    const t = user.gem_create(p, fd, PAGE);
    for (let i = 0; i < 2; i++) {
      expect(execCode(p, fd, hangOpts(p, fd, t, a))).toBe('OK');
      const behind = storeOpts(p, fd, 7, t, 1, 'render', b);
      expect(execCode(p, fd, behind)).toBe('OK');
      expect(code(() => user.gem_wait(p, fd, behind.bb))).toBe('EIO');
    }
    expect(user.gem_reset_stats(p, fd, a)).toEqual({ reset_count: 2, batch_active: 2, batch_pending: 0 });
    expect(user.gem_reset_stats(p, fd, b)).toEqual({ reset_count: 2, batch_active: 0, batch_pending: 2 });
    // Banned: even a good batch is refused.
    expect(execCode(p, fd, storeOpts(p, fd, 7, t, 2, 'render', a))).toBe('EIO');
    // Its victim and the default context still run.
    for (const ctx of [b, 0]) {
      const ok = storeOpts(p, fd, 7, t, 0x600d + ctx, 'render', ctx);
      expect(execCode(p, fd, ok)).toBe('OK');
      user.gem_wait(p, fd, ok.bb);
      expect(readDword(p, fd, t)).toBe(0x600d + ctx);
    }
    // The default context is never banned.
    for (let i = 0; i < 2; i++) {
      const h = hangOpts(p, fd, t, 0);
      expect(execCode(p, fd, h)).toBe('OK');
      expect(code(() => user.gem_wait(p, fd, h.batch.handle))).toBe('EIO');
    }
    expect(user.gem_reset_stats(p, fd, 0).batch_active).toBe(2);
    const ok = storeOpts(p, fd, 7, t, 0x700d, 'render', 0);
    expect(execCode(p, fd, ok)).toBe('OK');
    user.gem_wait(p, fd, ok.bb);
    expect(readDword(p, fd, t)).toBe(0x700d);
    expect(m.shutdown()).toEqual([]);
  });
});

describe('the ioctl tables carry 3.16 flags', () => {
  it('GET_MAGIC 0, AUTH_MAGIC AUTH|MASTER, SET/DROP_MASTER ROOT_ONLY; the i915 ones UNLOCKED|RENDER_ALLOW', () => {
    const { m, p } = boot();
    const core = drm_core_ioctls();
    const nr = (req: number): number => _IOC_NR(req);
    expect(core.get(nr(uapi.DRM_IOCTL_GET_MAGIC))?.flags).toBe(0);
    expect(core.get(nr(uapi.DRM_IOCTL_AUTH_MAGIC))?.flags).toBe(DRM_AUTH | DRM_MASTER);
    expect(core.get(nr(uapi.DRM_IOCTL_SET_MASTER))?.flags).toBe(DRM_ROOT_ONLY);
    expect(core.get(nr(uapi.DRM_IOCTL_DROP_MASTER))?.flags).toBe(DRM_ROOT_ONLY);
    const drv = m.i915.dev.driver.ioctls;
    expect(drv.get(nr(uapi.DRM_IOCTL_I915_GEM_THROTTLE))?.flags).toBe(
      DRM_AUTH | DRM_UNLOCKED | DRM_RENDER_ALLOW,
    );
    for (const req of [
      uapi.DRM_IOCTL_I915_GEM_CONTEXT_CREATE,
      uapi.DRM_IOCTL_I915_GEM_CONTEXT_DESTROY,
      uapi.DRM_IOCTL_I915_GET_RESET_STATS,
    ]) {
      expect(drv.get(nr(req))?.flags).toBe(DRM_UNLOCKED | DRM_RENDER_ALLOW);
      expect(drv.get(nr(req))?.cmd).toBe(req >>> 0);
    }
    // As a client sees them on renderD128: the render-allowed ones reach their handlers.
    const rfd = p.open(RENDER);
    expect(code(() => user.gem_throttle(p, rfd))).toBe('OK');
    expect(code(() => user.gem_reset_stats(p, rfd, 0))).toBe('EPERM');
    expect(code(() => user.gem_context_destroy(p, rfd, 0))).toBe('ENOENT');
    expect(() => user.drm_get_magic(p, rfd)).toThrow(errno('EACCES'));
    expect(m.shutdown()).toEqual([]);
  });
});

// --- REG_READ -------------------------------------------------------------------------------------

describe(`I915_REG_READ (seed ${SEED})`, () => {
  it('reads the render timestamp in 80 ns ticks of virtual time, on every node; any other offset is EINVAL', () => {
    for (const gen of [7, 8] as const) {
      const m = Machine.boot({ seed: SEED, gpu: { gen } });
      const p = m.spawn();
      const card = p.open(CARD);
      const render = p.open(RENDER);
      const read = (fd: number, offset: bigint): bigint => {
        const b = uapi.drm_i915_reg_read.encode({ offset, val: 0n });
        p.ioctl(fd, uapi.DRM_IOCTL_I915_REG_READ, b);
        return uapi.drm_i915_reg_read.decode(b).val;
      };
      const t0 = read(card, 0x2358n);
      expect(t0).toBe(BigInt(Math.floor(m.sched.now / 80)));
      // A blit of 16 MiB takes virtual time: the counter moves on.
      const dst = user.gem_create(p, render, 16 * MiB);
      const b = new user.BlitBatch(gen).fill({ dst, color: 1, x2: 1024, y2: 4096, pitch: 4096 }).end();
      const bb = user.gem_create(p, render, PAGE);
      user.gem_write(p, render, bb, 0, b.bytes());
      user.execbuf(p, render, {
        objects: [{ handle: dst }],
        batch: { handle: bb, len: 0, relocs: b.relocs },
        ring: 'blt',
      });
      user.gem_wait(p, render, dst);
      expect(read(render, 0x2358n)).toBeGreaterThan(t0);
      for (const offset of [0n, 0x2354n, 0x235cn, 0x2358n + (1n << 32n)])
        expect(code(() => read(card, offset))).toBe('EINVAL');
      expect(m.shutdown()).toEqual([]);
    }
  });
});
