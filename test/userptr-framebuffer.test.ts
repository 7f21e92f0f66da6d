import { describe, expect, it } from 'vitest';
import { ErrnoError, type Finding, KernelBugError, Machine, type Process, uapi } from '../src/index.js';
import { ANON, RW, drmUserptr, kinds } from './support/userptr.js';

/**
 * §8.7, pinned objects cannot be invalidated, through its one 3.16 pin source: display scanout.
 * With 'userptr-framebuffer' (3.16 as merged) a userptr object may back a framebuffer; SETCRTC
 * pins it into the GGTT, and a later munmap's invalidate_range_start can neither unbind it
 * (-EBUSY) nor release its pages: both WARN_ONs of cancel_userptr fire and the object keeps
 * pages the process no longer maps (I-COVER). Off (4.4's fix), the framebuffer is refused with
 * -EINVAL and the same program ends clean.
 */

const SEED = Number(process.env.SEED ?? 2);
const FB_BYTES = 1024 * 768 * 4;
const ID = 'userptr-framebuffer';

function addfb2(p: Process, fd: number, handle: number): number {
  const b = uapi.drm_mode_fb_cmd2.encode({
    width: 1024,
    height: 768,
    pixel_format: uapi.DRM_FORMAT_XRGB8888,
    handles: [handle],
    pitches: [4096],
  });
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_ADDFB2, b);
  return uapi.drm_mode_fb_cmd2.decode(b).fb_id;
}

/** The first CRTC and connector, and the connector's first mode (after a probe). */
function display(p: Process, fd: number): { crtc: number; connector: number; mode: uapi.drm_mode_modeinfo } {
  const mem = p.mmap(0, 4096, RW, ANON);
  const res = uapi.drm_mode_card_res.encode({
    count_crtcs: 1,
    crtc_id_ptr: mem,
    count_connectors: 1,
    connector_id_ptr: mem + 4,
  });
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETRESOURCES, res);
  const ids = new DataView(p.read(mem, 8).buffer);
  const connector = ids.getUint32(4, true);
  const probe = uapi.drm_mode_get_connector.encode({ connector_id: connector });
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETCONNECTOR, probe);
  const conn = uapi.drm_mode_get_connector.encode({
    connector_id: connector,
    count_modes: 1,
    modes_ptr: mem + 64,
  });
  p.ioctl(fd, uapi.DRM_IOCTL_MODE_GETCONNECTOR, conn);
  const mode = uapi.drm_mode_modeinfo.decode(p.read(mem + 64, 68));
  p.munmap(mem, 4096);
  return { crtc: ids.getUint32(0, true), connector, mode };
}

/** SETCRTC through drmIoctl (a userptr pinned from a foreign mm answers -EAGAIN first). */
function scanout(p: Process, fd: number, fb: number, d: ReturnType<typeof display>, retry = true): void {
  const mem = p.mmap(0, 4096, RW, ANON);
  p.write(mem, new Uint8Array(new Uint32Array([d.connector]).buffer));
  const b = uapi.drm_mode_crtc.encode({
    crtc_id: d.crtc,
    fb_id: fb,
    set_connectors_ptr: mem,
    count_connectors: 1,
    mode_valid: 1,
    mode: d.mode,
  });
  try {
    if (retry) p.drmIoctl(fd, uapi.DRM_IOCTL_MODE_SETCRTC, b);
    else p.ioctl(fd, uapi.DRM_IOCTL_MODE_SETCRTC, b);
  } finally {
    p.munmap(mem, 4096);
  }
}

/** Runs `scenario` with and without the switch; returns the findings of each. */
function both(scenario: (m: Machine) => void): { on: Finding[]; off: Finding[] } {
  const run = (bugs: string[]): Finding[] => {
    const m = Machine.boot({ seed: SEED, bugs });
    try {
      scenario(m);
    } catch (e) {
      if (!(e instanceof KernelBugError)) throw e;
    }
    return m.shutdown();
  };
  return { on: run([ID]), off: run([]) };
}

describe(`${ID} (§8.7, seed ${SEED})`, () => {
  it('a userptr scanout buffer survives munmap: unbind and put_pages fail (WARN), pages stay (I-COVER)', () => {
    const refused: number[] = [];
    const { on, off } = both((m) => {
      const p = m.spawn();
      const fd = p.open('/dev/dri/card0');
      const d = display(p, fd);
      const a = p.mmap(0, FB_BYTES, RW, ANON);
      p.write(a, new Uint8Array(FB_BYTES).fill(0x80));
      const h = drmUserptr(p, fd, a, FB_BYTES);
      let fb: number;
      try {
        fb = addfb2(p, fd, h);
      } catch (e) {
        if (!(e instanceof ErrnoError)) throw e;
        refused.push(e.errno);
        p.munmap(a, FB_BYTES);
        return;
      }
      scanout(p, fd, fb, d);
      p.munmap(a, FB_BYTES);
    });
    expect(kinds(on)).toEqual(['WARN: cancel_userptr', 'WARN: cancel_userptr', 'coherence: I-COVER']);
    expect(on[0]!.message).toContain('unbind');
    expect(on[0]!.message).toContain('-16');
    expect(on[1]!.message).toContain('put_pages');
    expect(on[2]!.message).toContain('still is bound in the GTT');
    // The switch on accepted the framebuffer; off, 4.4's check refused it.
    expect(refused).toEqual([22]);
    expect(off).toEqual([]);
  });

  it('the display server pinning a client userptr goes through the worker (-EAGAIN, then success)', () => {
    const eagain: boolean[] = [];
    const { on, off } = both((m) => {
      // The display server opens first: it is the master.
      const server = m.spawn();
      const sfd = server.open('/dev/dri/card0');
      const d = display(server, sfd);
      const client = m.spawn();
      const cfd = client.open('/dev/dri/card0');
      const a = client.mmap(0, FB_BYTES, RW, ANON);
      client.write(a, new Uint8Array(FB_BYTES));
      const h = drmUserptr(client, cfd, a, FB_BYTES);
      let fb: number;
      try {
        fb = addfb2(client, cfd, h);
      } catch (e) {
        if (!(e instanceof ErrnoError)) throw e;
        return;
      }
      // The server's mm is not the object's: the pages come from a worker.
      try {
        scanout(server, sfd, fb, d, false);
      } catch (e) {
        if (!(e instanceof ErrnoError)) throw e;
        eagain.push(e.code === 'EAGAIN');
      }
      scanout(server, sfd, fb, d);
      // The client remaps its buffer while the server still scans it out.
      client.munmap(a, FB_BYTES);
    });
    expect(eagain).toEqual([true]);
    expect(kinds(on)).toContain('WARN: cancel_userptr');
    expect(kinds(on)).toContain('coherence: I-COVER');
    expect(off).toEqual([]);
  });

  it('switch on, the same scanout without a munmap is clean: the pin alone breaks nothing', () => {
    const m = Machine.boot({ seed: SEED, bugs: [ID] });
    const p = m.spawn();
    const fd = p.open('/dev/dri/card0');
    const d = display(p, fd);
    const a = p.mmap(0, FB_BYTES, RW, ANON);
    const h = drmUserptr(p, fd, a, FB_BYTES);
    scanout(p, fd, addfb2(p, fd, h), d);
    p.close(fd); // the fb goes, the CRTC goes off, the object is unpinned and freed
    p.munmap(a, FB_BYTES);
    expect(m.shutdown()).toEqual([]);
  });
});
