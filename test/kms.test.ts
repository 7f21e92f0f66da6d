import { describe, expect, it } from 'vitest';
import { Machine, type MachineConfig, type Process, uapi } from '../src/index.js';

/**
 * The legacy KMS slice through the public ABI only: real request numbers, struct bytes, user
 * pointers into the process's memory. Discovery (GETRESOURCES / GETCONNECTOR / GETENCODER /
 * GETCRTC), framebuffers (ADDFB, ADDFB2, RMFB), SETCRTC and the scanout pin it takes, the errors
 * of each, and the unpinning at disable, RMFB and file close. Every test ends with a clean
 * shutdown.
 */

const SEED = Number(process.env.SEED ?? 1);
const RW = uapi.PROT_READ | uapi.PROT_WRITE;
const ANON = uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;
const PAGE = 4096;
const FB_BYTES = 1024 * 768 * 4;

const errno = (code: string): unknown => expect.objectContaining({ code });

function boot(cfg: MachineConfig = {}): { m: Machine; p: Process; fd: number } {
  const m = Machine.boot({ seed: SEED, ...cfg });
  const p = m.spawn();
  const fd = p.open('/dev/dri/card0');
  return { m, p, fd };
}

function scratch(p: Process, bytes = PAGE): number {
  return p.mmap(0, bytes, RW, ANON);
}

function u32s(p: Process, addr: number, n: number): number[] {
  const b = p.read(addr, 4 * n);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: n }, (_, i) => dv.getUint32(4 * i, true));
}

function cstring(bytes: readonly number[]): string {
  const end = bytes.indexOf(0);
  return String.fromCharCode(...(end < 0 ? bytes : bytes.slice(0, end)));
}

interface Resources {
  res: uapi.drm_mode_card_res;
  fbs: number[];
  crtcs: number[];
  encoders: number[];
  connectors: number[];
}

/** drmModeGetResources(): ask for the counts, then for the arrays. */
function getResources(p: Process, fd: number): Resources {
  const b = uapi.drm_mode_card_res.encode({});
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETRESOURCES, b);
  const counts = uapi.drm_mode_card_res.decode(b);
  const mem = scratch(p);
  const at = (i: number): number => mem + i * 256;
  uapi.drm_mode_card_res.encode(
    {
      ...counts,
      fb_id_ptr: at(0),
      crtc_id_ptr: at(1),
      connector_id_ptr: at(2),
      encoder_id_ptr: at(3),
    },
    b,
  );
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETRESOURCES, b);
  const res = uapi.drm_mode_card_res.decode(b);
  const out = {
    res,
    fbs: u32s(p, at(0), res.count_fbs),
    crtcs: u32s(p, at(1), res.count_crtcs),
    connectors: u32s(p, at(2), res.count_connectors),
    encoders: u32s(p, at(3), res.count_encoders),
  };
  p.munmap(mem, PAGE);
  return out;
}

/** DRM_IOCTL_I915_GEM_MMAP_GTT: the struct with the fake offset to mmap. */
function mmapGtt(p: Process, fd: number, handle: number): Uint8Array {
  const b = uapi.drm_i915_gem_mmap_gtt.encode({ handle });
  p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_MMAP_GTT, b);
  return b;
}

/** drmModeGetConnector(): probe with count_modes 0, then fetch modes and encoders. */
function getConnector(
  p: Process,
  fd: number,
  connector_id: number,
): { conn: uapi.drm_mode_get_connector; modes: uapi.drm_mode_modeinfo[]; encoders: number[] } {
  const b = uapi.drm_mode_get_connector.encode({ connector_id });
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETCONNECTOR, b);
  const first = uapi.drm_mode_get_connector.decode(b);
  const mem = scratch(p);
  uapi.drm_mode_get_connector.encode(
    { ...first, modes_ptr: mem, encoders_ptr: mem + 2048, props_ptr: 0, prop_values_ptr: 0 },
    b,
  );
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETCONNECTOR, b);
  const conn = uapi.drm_mode_get_connector.decode(b);
  const modes = uapi.drm_mode_modeinfo.decodeArray(p.read(mem, 68 * conn.count_modes), conn.count_modes);
  const encoders = u32s(p, mem + 2048, conn.count_encoders);
  p.munmap(mem, PAGE);
  return { conn, modes, encoders };
}

function getEncoder(p: Process, fd: number, encoder_id: number): uapi.drm_mode_get_encoder {
  const b = uapi.drm_mode_get_encoder.encode({ encoder_id });
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETENCODER, b);
  return uapi.drm_mode_get_encoder.decode(b);
}

function getCrtc(p: Process, fd: number, crtc_id: number): uapi.drm_mode_crtc {
  const b = uapi.drm_mode_crtc.encode({ crtc_id });
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETCRTC, b);
  return uapi.drm_mode_crtc.decode(b);
}

interface FbArgs {
  handle: number;
  width?: number;
  height?: number;
  pitch?: number;
  format?: number;
  flags?: number;
  offset?: number;
  /** Send the 68-byte struct of 3.16's headers instead of the current 104-byte one. */
  v1?: boolean;
}

/** ADDFB2 of a one-plane framebuffer (1024x768 XRGB8888, pitch 4096 unless told). */
function addfb2(p: Process, fd: number, a: FbArgs): number {
  const fields = {
    width: a.width ?? 1024,
    height: a.height ?? 768,
    pixel_format: a.format ?? uapi.DRM_FORMAT_XRGB8888,
    flags: a.flags ?? 0,
    handles: [a.handle],
    pitches: [a.pitch ?? 4096],
    offsets: [a.offset ?? 0],
  };
  if (a.v1) {
    const b = uapi.drm_mode_fb_cmd2_v1.encode(fields);
    p.ioctl(fd, uapi.DRM_IOCTL_MODE_ADDFB2_V1, b);
    return uapi.drm_mode_fb_cmd2_v1.decode(b).fb_id;
  }
  const b = uapi.drm_mode_fb_cmd2.encode(fields);
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_ADDFB2, b);
  return uapi.drm_mode_fb_cmd2.decode(b).fb_id;
}

function rmfb(p: Process, fd: number, fb_id: number): void {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, fb_id, true);
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_RMFB, b);
}

interface SetArgs {
  crtc: number;
  fb: number;
  connectors: number[];
  mode: uapi.drm_mode_modeinfo | null;
  x?: number;
  y?: number;
  /** A connector-array pointer to use instead of one in the caller's memory. */
  connectorsPtr?: number;
  count?: number;
}

/** drmModeSetCrtc(): the connector ids go in the caller's memory. */
function setCrtc(p: Process, fd: number, a: SetArgs, retry = false): void {
  const mem = scratch(p);
  const ids = new Uint8Array(4 * Math.max(1, a.connectors.length));
  const dv = new DataView(ids.buffer);
  a.connectors.forEach((id, i) => {
    dv.setUint32(4 * i, id, true);
  });
  p.write(mem, ids);
  const b = uapi.drm_mode_crtc.encode({
    crtc_id: a.crtc,
    fb_id: a.fb,
    x: a.x ?? 0,
    y: a.y ?? 0,
    set_connectors_ptr: a.connectorsPtr ?? mem,
    count_connectors: a.count ?? a.connectors.length,
    mode_valid: a.mode ? 1 : 0,
    ...(a.mode ? { mode: a.mode } : {}),
  });
  try {
    if (retry) p.drmIoctl(fd, uapi.DRM_IOCTL_MODE_SETCRTC, b);
    else p.ioctl(fd, uapi.DRM_IOCTL_MODE_SETCRTC, b);
  } finally {
    p.munmap(mem, PAGE);
  }
}

function gemCreate(p: Process, fd: number, size: number): number {
  const b = uapi.drm_i915_gem_create.encode({ size });
  p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_CREATE, b);
  return uapi.drm_i915_gem_create.decode(b).handle;
}

function available(p: Process, fd: number): number {
  const b = uapi.drm_i915_gem_get_aperture.encode({});
  p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_GET_APERTURE, b);
  return Number(uapi.drm_i915_gem_get_aperture.decode(b).aper_available_size);
}

function madvise(p: Process, fd: number, handle: number, madv: number): void {
  p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_MADVISE, uapi.drm_i915_gem_madvise.encode({ handle, madv }));
}

function caching(p: Process, fd: number, handle: number): number {
  const b = uapi.drm_i915_gem_caching.encode({ handle });
  p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_GET_CACHING, b);
  return uapi.drm_i915_gem_caching.decode(b).caching;
}

function setTiling(p: Process, fd: number, handle: number, tiling_mode: number, stride: number): void {
  p.ioctl(
    fd,
    uapi.DRM_IOCTL_I915_GEM_SET_TILING,
    uapi.drm_i915_gem_set_tiling.encode({ handle, tiling_mode, stride }),
  );
}

/** The display as a client finds it: its CRTC, connector and the connector's mode. */
function discover(p: Process, fd: number): { crtc: number; connector: number; mode: uapi.drm_mode_modeinfo } {
  const r = getResources(p, fd);
  const { modes } = getConnector(p, fd, r.connectors[0]!);
  return { crtc: r.crtcs[0]!, connector: r.connectors[0]!, mode: modes[0]! };
}

describe(`KMS discovery (seed ${SEED})`, () => {
  it('GETRESOURCES, GETCONNECTOR, GETENCODER and GETCRTC describe one pipe, off, with one HDMI monitor', () => {
    const { m, p, fd } = boot();
    const r = getResources(p, fd);
    expect(r.res).toMatchObject({ count_fbs: 0, count_crtcs: 1, count_encoders: 1, count_connectors: 1 });
    expect(r.res).toMatchObject({ min_width: 0, max_width: 8192, min_height: 0, max_height: 8192 });
    expect(new Set([...r.crtcs, ...r.encoders, ...r.connectors]).size).toBe(3);

    const { conn, modes, encoders } = getConnector(p, fd, r.connectors[0]!);
    expect(conn).toMatchObject({
      connector_id: r.connectors[0],
      connector_type: uapi.DRM_MODE_CONNECTOR_HDMIA,
      connector_type_id: 1,
      connection: uapi.DRM_MODE_CONNECTED,
      count_modes: 1,
      count_props: 0,
      count_encoders: 1,
      encoder_id: 0,
      mm_width: 304,
      mm_height: 228,
    });
    expect(encoders).toEqual(r.encoders);
    expect(modes).toHaveLength(1);
    expect(cstring(modes[0]!.name)).toBe('1024x768');
    expect(modes[0]).toMatchObject({
      clock: 65000,
      hdisplay: 1024,
      vdisplay: 768,
      vrefresh: 60,
      htotal: 1344,
    });
    expect(modes[0]!.type & uapi.DRM_MODE_TYPE_PREFERRED).toBeTruthy();

    expect(getEncoder(p, fd, r.encoders[0]!)).toEqual({
      encoder_id: r.encoders[0],
      encoder_type: uapi.DRM_MODE_ENCODER_TMDS,
      crtc_id: 0,
      possible_crtcs: 1,
      possible_clones: 1,
    });
    const c = getCrtc(p, fd, r.crtcs[0]!);
    expect(c).toMatchObject({ crtc_id: r.crtcs[0], fb_id: 0, mode_valid: 0, gamma_size: 256, x: 0, y: 0 });

    // GET_CAP's display hints are i915's (3.16 intel_modeset_init).
    const cap = uapi.drm_get_cap.encode({ capability: uapi.DRM_CAP_DUMB_PREFERRED_DEPTH });
    p.ioctl(fd, uapi.DRM_IOCTL_GET_CAP, cap);
    expect(uapi.drm_get_cap.decode(cap).value).toBe(24n);
    expect(m.shutdown()).toEqual([]);
  });

  it('fills an array only when its count is large enough, and reports the real counts', () => {
    const { m, p, fd } = boot();
    const h = gemCreate(p, fd, FB_BYTES);
    const fb1 = addfb2(p, fd, { handle: h });
    const fb2 = addfb2(p, fd, { handle: h });
    const mem = scratch(p);
    p.write(mem, new Uint8Array(16).fill(0xee));
    const b = uapi.drm_mode_card_res.encode({
      count_fbs: 1,
      fb_id_ptr: mem,
      count_crtcs: 1,
      crtc_id_ptr: mem + 8,
    });
    p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETRESOURCES, b);
    expect(uapi.drm_mode_card_res.decode(b)).toMatchObject({ count_fbs: 2, count_crtcs: 1 });
    expect(u32s(p, mem, 2)).toEqual([0xeeeeeeee, 0xeeeeeeee]); // 1 < 2: not filled
    // Newest first, as 3.16's list_add puts them.
    expect(getResources(p, fd).fbs).toEqual([fb2, fb1]);
    // A bad array pointer is -EFAULT.
    const bad = uapi.drm_mode_card_res.encode({ count_crtcs: 1, crtc_id_ptr: 0x10 });
    expect(() => p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETRESOURCES, bad)).toThrow(errno('EFAULT'));
    expect(m.shutdown()).toEqual([]);
  });

  it('answers -ENOENT for unknown object ids, also for an id of another object type', () => {
    const { m, p, fd } = boot();
    const r = getResources(p, fd);
    expect(() => getCrtc(p, fd, 99)).toThrow(errno('ENOENT'));
    expect(() => getCrtc(p, fd, r.connectors[0]!)).toThrow(errno('ENOENT'));
    expect(() => getEncoder(p, fd, r.crtcs[0]!)).toThrow(errno('ENOENT'));
    const b = uapi.drm_mode_get_connector.encode({ connector_id: 0 });
    expect(() => p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETCONNECTOR, b)).toThrow(errno('ENOENT'));
    expect(m.shutdown()).toEqual([]);
  });

  it('is refused on the render node (-EACCES)', () => {
    const { m, p } = boot();
    const rfd = p.open('/dev/dri/renderD128');
    expect(() => p.ioctl(rfd, uapi.DRM_IOCTL_MODE_GETRESOURCES, uapi.drm_mode_card_res.encode({}))).toThrow(
      errno('EACCES'),
    );
    const h = gemCreate(p, rfd, FB_BYTES);
    expect(() => addfb2(p, rfd, { handle: h })).toThrow(errno('EACCES'));
    expect(() => getCrtc(p, rfd, 1)).toThrow(errno('EACCES'));
    expect(m.shutdown()).toEqual([]);
  });
});

describe(`framebuffers and scanout (seed ${SEED})`, () => {
  it('ADDFB2 + SETCRTC pins a GEM object for scanout; switching the CRTC off unpins it', () => {
    const { m, p, fd } = boot();
    const d = discover(p, fd);
    const h = gemCreate(p, fd, FB_BYTES);
    const fb = addfb2(p, fd, { handle: h });
    expect(getResources(p, fd).fbs).toEqual([fb]);
    const before = available(p, fd);

    setCrtc(p, fd, { crtc: d.crtc, fb, connectors: [d.connector], mode: d.mode });
    // The scanout pin shows: less aperture available, no purging, uncached PTEs, fixed tiling.
    expect(available(p, fd)).toBe(before - FB_BYTES);
    expect(() => madvise(p, fd, h, uapi.I915_MADV_DONTNEED)).toThrow(errno('EINVAL'));
    expect(caching(p, fd, h)).toBe(uapi.I915_CACHING_NONE);
    expect(() => setTiling(p, fd, h, uapi.I915_TILING_X, 4096)).toThrow(errno('EBUSY'));
    const c = getCrtc(p, fd, d.crtc);
    expect(c).toMatchObject({ fb_id: fb, mode_valid: 1, x: 0, y: 0 });
    expect(cstring(c.mode.name)).toBe('1024x768');
    expect(c.mode.hdisplay).toBe(1024);
    const r = getResources(p, fd);
    expect(getEncoder(p, fd, r.encoders[0]!).crtc_id).toBe(d.crtc);
    expect(getConnector(p, fd, d.connector).conn.encoder_id).toBe(r.encoders[0]);
    p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_SW_FINISH, uapi.drm_i915_gem_sw_finish.encode({ handle: h }));

    // Off: mode_valid 0, no fb, no connectors.
    setCrtc(p, fd, { crtc: d.crtc, fb: 0, connectors: [], mode: null });
    expect(available(p, fd)).toBe(before);
    expect(getCrtc(p, fd, d.crtc)).toMatchObject({ fb_id: 0, mode_valid: 0 });
    expect(getEncoder(p, fd, r.encoders[0]!).crtc_id).toBe(0);
    madvise(p, fd, h, uapi.I915_MADV_WILLNEED);
    rmfb(p, fd, fb);
    expect(() => rmfb(p, fd, fb)).toThrow(errno('ENOENT'));
    expect(getResources(p, fd).fbs).toEqual([]);
    // The fb held its own object reference; the handle still works.
    setTiling(p, fd, h, uapi.I915_TILING_X, 4096);
    expect(m.shutdown()).toEqual([]);
  });

  it('ADDFB (bpp/depth) and the 68-byte ADDFB2 of 3.16 headers work too; fb -1 keeps the current fb', () => {
    const { m, p, fd } = boot();
    const d = discover(p, fd);
    const h = gemCreate(p, fd, FB_BYTES);
    const b = uapi.drm_mode_fb_cmd.encode({
      width: 1024,
      height: 768,
      pitch: 4096,
      bpp: 32,
      depth: 24,
      handle: h,
    });
    p.ioctl(fd, uapi.DRM_IOCTL_MODE_ADDFB, b);
    const fb1 = uapi.drm_mode_fb_cmd.decode(b).fb_id;
    const fb2 = addfb2(p, fd, { handle: h, v1: true });
    expect(fb1).not.toBe(fb2);
    setCrtc(p, fd, { crtc: d.crtc, fb: fb1, connectors: [d.connector], mode: d.mode });
    setCrtc(p, fd, { crtc: d.crtc, fb: 0xffffffff, connectors: [d.connector], mode: d.mode });
    expect(getCrtc(p, fd, d.crtc).fb_id).toBe(fb1);
    // Both fbs wrap one object: switching between them keeps exactly one scanout pin.
    const pinned = available(p, fd);
    setCrtc(p, fd, { crtc: d.crtc, fb: fb2, connectors: [d.connector], mode: d.mode });
    expect(available(p, fd)).toBe(pinned);
    expect(m.shutdown()).toEqual([]);
  });

  it('switching to another buffer moves the pin; RMFB of the scanout fb switches the CRTC off', () => {
    const { m, p, fd } = boot();
    const d = discover(p, fd);
    const before = available(p, fd);
    const h1 = gemCreate(p, fd, FB_BYTES);
    const h2 = gemCreate(p, fd, FB_BYTES);
    const fb1 = addfb2(p, fd, { handle: h1 });
    const fb2 = addfb2(p, fd, { handle: h2 });
    setCrtc(p, fd, { crtc: d.crtc, fb: fb1, connectors: [d.connector], mode: d.mode });
    setCrtc(p, fd, { crtc: d.crtc, fb: fb2, connectors: [d.connector], mode: d.mode });
    expect(available(p, fd)).toBe(before - FB_BYTES);
    madvise(p, fd, h1, uapi.I915_MADV_WILLNEED); // h1 is no longer pinned
    expect(() => madvise(p, fd, h2, uapi.I915_MADV_WILLNEED)).toThrow(errno('EINVAL'));
    // The fb outlives its handle: closing the handle does not stop the scanout.
    p.ioctl(fd, uapi.DRM_IOCTL_GEM_CLOSE, uapi.drm_gem_close.encode({ handle: h2 }));
    expect(getCrtc(p, fd, d.crtc).fb_id).toBe(fb2);
    rmfb(p, fd, fb2);
    expect(getCrtc(p, fd, d.crtc)).toMatchObject({ fb_id: 0, mode_valid: 0 });
    expect(available(p, fd)).toBe(before);
    expect(m.shutdown()).toEqual([]);
  });

  it("closing the file that created the scanout fb switches the master's CRTC off", () => {
    const { m, p: master, fd: mfd } = boot();
    const d = discover(master, mfd);
    const client = m.spawn();
    const cfd = client.open('/dev/dri/card0');
    const before = available(master, mfd);
    const h = gemCreate(client, cfd, FB_BYTES);
    const fb = addfb2(client, cfd, { handle: h }); // ADDFB needs no master
    // Framebuffer ids are global: the master scans out the client's buffer.
    setCrtc(master, mfd, { crtc: d.crtc, fb, connectors: [d.connector], mode: d.mode });
    expect(available(master, mfd)).toBe(before - FB_BYTES);
    // Only the creating file may remove it.
    expect(() => rmfb(master, mfd, fb)).toThrow(errno('ENOENT'));
    client.close(cfd);
    expect(getCrtc(master, mfd, d.crtc)).toMatchObject({ fb_id: 0, mode_valid: 0 });
    expect(available(master, mfd)).toBe(before);
    expect(getResources(master, mfd).fbs).toEqual([]);
    expect(m.shutdown()).toEqual([]);
  });

  it('a file whose last reference is a GTT mapping is released after munmap, not under mmap_sem', () => {
    // The client's fb list is locked at release, and GETRESOURCES copies to user memory under the
    // mode config lock, faulting (mode lock → mmap_sem). Releasing the file inside munmap (under
    // mmap_sem) would close a lockdep cycle Linux never has: its last fput runs as task work.
    const { m, p: master, fd: mfd } = boot();
    const d = discover(master, mfd);
    const client = m.spawn();
    const cfd = client.open('/dev/dri/card0');
    const h = gemCreate(client, cfd, FB_BYTES);
    const fb = addfb2(client, cfd, { handle: h });
    expect(getResources(client, cfd).fbs).toEqual([fb]); // copies into untouched pages
    setCrtc(master, mfd, { crtc: d.crtc, fb, connectors: [d.connector], mode: d.mode });
    const offset = uapi.drm_i915_gem_mmap_gtt.decode(mmapGtt(client, cfd, h)).offset;
    const gtt = client.mmap(0, PAGE, RW, uapi.MAP_SHARED, cfd, Number(offset));
    client.write(gtt, [1]);
    client.close(cfd); // the mapping still holds the file, so its fb stays on screen
    expect(getCrtc(master, mfd, d.crtc)).toMatchObject({ fb_id: fb });
    client.munmap(gtt, PAGE); // the last reference: drm_release and drm_fb_release run now
    expect(getCrtc(master, mfd, d.crtc)).toMatchObject({ fb_id: 0, mode_valid: 0 });
    expect(m.findings()).toEqual([]);
    expect(m.shutdown()).toEqual([]);
  });

  it('unpins at exit: the scanout buffer of a process that dies is released', () => {
    const { m, p, fd } = boot();
    const d = discover(p, fd);
    const free = m.meminfo().freePages;
    const h = gemCreate(p, fd, FB_BYTES);
    const fb = addfb2(p, fd, { handle: h });
    setCrtc(p, fd, { crtc: d.crtc, fb, connectors: [d.connector], mode: d.mode });
    expect(m.meminfo().freePages).toBeLessThan(free);
    p.exit();
    expect(m.shutdown()).toEqual([]);
  });
});

describe(`framebuffer and SETCRTC errors (seed ${SEED})`, () => {
  it('ADDFB2: bad handle -ENOENT; the core and i915 checks -EINVAL / -ERANGE', () => {
    const { m, p, fd } = boot();
    const h = gemCreate(p, fd, FB_BYTES);
    const small = gemCreate(p, fd, PAGE);
    const y = gemCreate(p, fd, FB_BYTES);
    setTiling(p, fd, y, uapi.I915_TILING_Y, 4096);
    expect(() => addfb2(p, fd, { handle: 99 })).toThrow(errno('ENOENT'));
    expect(() => addfb2(p, fd, { handle: 0 })).toThrow(errno('EINVAL')); // no handle for plane 0
    expect(() => addfb2(p, fd, { handle: h, flags: 4 })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: h, flags: uapi.DRM_MODE_FB_MODIFIERS })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: h, width: 0 })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: h, width: 8193, pitch: 32768 })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: h, format: 0x12345678 })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: h, pitch: 4092 })).toThrow(errno('EINVAL')); // < width * 4
    expect(() => addfb2(p, fd, { handle: h, height: 2, pitch: 0xffffffc0 })).toThrow(errno('ERANGE'));
    // i915: pitch alignment and limit, Y tiling, a format the plane cannot scan, offsets, size.
    expect(() => addfb2(p, fd, { handle: h, pitch: 4100 })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: h, pitch: 32768 + 64, height: 10 })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: y })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: h, format: uapi.DRM_FORMAT_XRGB1555, pitch: 2048 })).toThrow(
      errno('EINVAL'),
    );
    expect(() => addfb2(p, fd, { handle: h, offset: 4096 })).toThrow(errno('EINVAL'));
    expect(() => addfb2(p, fd, { handle: small })).toThrow(errno('EINVAL'));
    expect(getResources(p, fd).fbs).toEqual([]);
    // X tiling: the pitch must be the tiling stride.
    setTiling(p, fd, h, uapi.I915_TILING_X, 8192);
    expect(() => addfb2(p, fd, { handle: h })).toThrow(errno('EINVAL'));
    expect(addfb2(p, fd, { handle: h, pitch: 8192, height: 384 })).toBeGreaterThan(0);
    expect(m.shutdown()).toEqual([]);
  });

  it('SETCRTC: unknown ids -ENOENT, inconsistent requests -EINVAL, a small fb -ENOSPC, huge x -ERANGE', () => {
    const { m, p, fd } = boot();
    const d = discover(p, fd);
    const h = gemCreate(p, fd, FB_BYTES);
    const fb = addfb2(p, fd, { handle: h });
    const smallFb = addfb2(p, fd, { handle: h, width: 800, height: 600 });
    const on = { crtc: d.crtc, fb, connectors: [d.connector], mode: d.mode };
    expect(() => setCrtc(p, fd, { ...on, crtc: 99 })).toThrow(errno('ENOENT'));
    expect(() => setCrtc(p, fd, { ...on, fb: 99 })).toThrow(errno('ENOENT'));
    expect(() => setCrtc(p, fd, { ...on, connectors: [d.crtc] })).toThrow(errno('ENOENT'));
    expect(() => setCrtc(p, fd, { ...on, fb: 0xffffffff })).toThrow(errno('EINVAL')); // no current fb
    expect(() => setCrtc(p, fd, { ...on, connectors: [] })).toThrow(errno('EINVAL'));
    expect(() => setCrtc(p, fd, { ...on, mode: null })).toThrow(errno('EINVAL'));
    expect(() => setCrtc(p, fd, { ...on, count: 2, connectors: [d.connector, d.connector] })).toThrow(
      errno('EINVAL'),
    );
    expect(() => setCrtc(p, fd, { ...on, connectorsPtr: 0x10 })).toThrow(errno('EFAULT'));
    expect(() => setCrtc(p, fd, { ...on, fb: smallFb })).toThrow(errno('ENOSPC'));
    expect(() => setCrtc(p, fd, { ...on, x: 1 })).toThrow(errno('ENOSPC'));
    expect(() => setCrtc(p, fd, { ...on, x: 0x80000000 })).toThrow(errno('ERANGE'));
    // i915's pipe configuration: a clock the HDMI port cannot drive, no front porch.
    expect(() => setCrtc(p, fd, { ...on, mode: { ...d.mode, clock: 400000 } })).toThrow(errno('EINVAL'));
    expect(() => setCrtc(p, fd, { ...on, mode: { ...d.mode, hsync_start: 1024 } })).toThrow(errno('EINVAL'));
    // Nothing of that changed the CRTC or pinned anything.
    expect(getCrtc(p, fd, d.crtc)).toMatchObject({ fb_id: 0, mode_valid: 0 });
    madvise(p, fd, h, uapi.I915_MADV_WILLNEED);
    setCrtc(p, fd, on);
    expect(m.shutdown()).toEqual([]);
  });

  it('SETCRTC needs the master (-EACCES); GETRESOURCES, ADDFB2 and RMFB do not', () => {
    const { m, p: master, fd: mfd } = boot();
    const d = discover(master, mfd);
    const other = m.spawn();
    const ofd = other.open('/dev/dri/card0');
    expect(getResources(other, ofd).crtcs).toEqual([d.crtc]);
    const h = gemCreate(other, ofd, FB_BYTES);
    const fb = addfb2(other, ofd, { handle: h });
    expect(() => setCrtc(other, ofd, { crtc: d.crtc, fb, connectors: [d.connector], mode: d.mode })).toThrow(
      errno('EACCES'),
    );
    rmfb(other, ofd, fb);
    // When the master closes, the next primary opener becomes master.
    master.close(mfd);
    const fb2 = addfb2(other, ofd, { handle: h });
    expect(() =>
      setCrtc(other, ofd, { crtc: d.crtc, fb: fb2, connectors: [d.connector], mode: d.mode }),
    ).toThrow(errno('EACCES'));
    const again = other.open('/dev/dri/card0');
    setCrtc(other, again, { crtc: d.crtc, fb: fb2, connectors: [d.connector], mode: d.mode });
    expect(m.shutdown()).toEqual([]);
  });
});
