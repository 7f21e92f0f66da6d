import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrnoError, Machine, SegfaultError, uapi } from '../src/index.js';

const SEED = Number(process.env.SEED ?? 17);

/** Every request number a 2014 client could send, plus some that do not exist. */
const REQUESTS = Object.entries(uapi)
  .filter(([k, v]) => k.startsWith('DRM_IOCTL_') && typeof v === 'number')
  .map(([, v]) => v as number);

describe(`bad input never breaks the kernel (seed ${SEED})`, () => {
  it('random ioctls with random bytes and pointers: errno or success, never a JS exception or a BUG', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            req: fc.oneof(fc.constantFrom(...REQUESTS), fc.integer({ min: 0, max: 0xffffffff })),
            bytes: fc.uint8Array({ minLength: 0, maxLength: 72 }),
            small: fc.boolean(),
            handle: fc.integer({ min: 0, max: 4 }),
            asPointer: fc.boolean(),
          }),
          { maxLength: 25 },
        ),
        (calls) => {
          const m = Machine.boot({ seed: SEED });
          const p = m.spawn();
          const fd = p.open('/dev/dri/card0');
          // Some live objects to aim at.
          for (let i = 0; i < 2; i++) {
            p.ioctl(fd, uapi.DRM_IOCTL_I915_GEM_CREATE, uapi.drm_i915_gem_create.encode({ size: 8192n }));
          }
          const scratch = p.mmap(
            0,
            65536,
            uapi.PROT_READ | uapi.PROT_WRITE,
            uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS,
          );
          for (const c of calls) {
            const b = c.bytes.slice();
            // Small numbers in the first word make handles and params plausible.
            if (c.small && b.length >= 4) new DataView(b.buffer).setUint32(0, c.handle, true);
            let arg: number | Uint8Array = b;
            if (c.asPointer) {
              p.write(scratch, b);
              arg = scratch;
            }
            try {
              p.drmIoctl(fd, c.req, arg);
            } catch (e) {
              if (!(e instanceof ErrnoError) && !(e instanceof SegfaultError)) throw e;
            }
          }
          // A correct kernel ends clean whatever the program did.
          expect(m.shutdown()).toEqual([]);
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });
});
