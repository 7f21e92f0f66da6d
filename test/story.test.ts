import { describe, expect, it } from 'vitest';
import { story } from '../src/cli/story.js';

describe('npm start: the scripted story', () => {
  it('runs clean and shows the notifier ranges of fork, COW break, mprotect and munmap', () => {
    const lines: string[] = [];
    expect(story(1, (l) => lines.push(l))).toBe(0);
    const text = lines.join('\n');
    const heard = lines.filter((l) => l.includes('notifier: invalidate_range_start'));
    expect(heard).toHaveLength(4);
    expect(heard[0]).toContain('4 page(s), mmap_sem held for write'); // fork
    expect(heard[1]).toContain('1 page(s), mmap_sem held for read'); // COW break fault
    expect(heard[2]).toContain('1 page(s), mmap_sem held for write'); // mprotect
    expect(heard[3]).toContain('4 page(s), mmap_sem held for write'); // munmap
    expect(text).toContain('parent page 0 reads "parent0", child page 0 reads "child0"');
    expect(text).toContain('parent page 1 reads "PARENT1", child page 1 reads "parent1"');
    expect(text).toContain('findings: none');
  });

  it('is deterministic for a seed', () => {
    const a: string[] = [];
    const b: string[] = [];
    story(5, (l) => a.push(l));
    story(5, (l) => b.push(l));
    expect(a).toEqual(b);
  });
});
