import { describe, expect, it } from 'vitest';
import { ErrorLimiter } from './error-limiter.js';
import { NodeIter, NodeTimings, sortPrimaries, type PlacedNode } from './node-iter.js';

const node = (i: number): PlacedNode => ({ ip: '127.0.0.1', port: 6000 + i, device: `d${i}`, id: i });

function fakeClock(start = 1_000_000): { now: () => number; advance: (s: number) => void } {
  let t = start;
  return { now: () => t, advance: (s) => (t += s) };
}

describe('error limiting (limit 10 within 60 s)', () => {
  it('skips a node after more than `limit` errors until the interval passes without a new one', () => {
    const clock = fakeClock();
    const lim = new ErrorLimiter(10, 60, undefined, clock.now);
    const n = node(1);
    for (let i = 0; i < 10; i++) lim.error(n, 'boom');
    expect(lim.isLimited(n)).toBe(false);
    lim.error(n, 'boom');
    expect(lim.isLimited(n)).toBe(true);
    expect(lim.suppressions).toBe(1);
    expect(lim.limitedNodes()).toEqual(['127.0.0.1:6001/d1']);
    clock.advance(59);
    expect(lim.isLimited(n)).toBe(true);
    clock.advance(2);
    expect(lim.isLimited(n)).toBe(false);
    expect(lim.errorCount(n)).toBe(0);
  });

  it('errors spread beyond the interval are forgotten', () => {
    const clock = fakeClock();
    const lim = new ErrorLimiter(2, 10, undefined, clock.now);
    const n = node(1);
    lim.error(n, 'x');
    lim.error(n, 'x');
    clock.advance(11);
    lim.error(n, 'x');
    expect(lim.errorCount(n)).toBe(1);
    expect(lim.isLimited(n)).toBe(false);
  });

  it('a 507 limits the node at once; other nodes are unaffected', () => {
    const clock = fakeClock();
    const lim = new ErrorLimiter(10, 60, undefined, clock.now);
    lim.limitNow(node(2), '507');
    expect(lim.isLimited(node(2))).toBe(true);
    expect(lim.isLimited(node(3))).toBe(false);
    clock.advance(61);
    expect(lim.isLimited(node(2))).toBe(false);
  });
});

describe('node iteration', () => {
  it('primaries, then handoffs in ring order, skipping limited nodes, at most maxNodes', () => {
    const lim = new ErrorLimiter(10, 60, undefined, fakeClock().now);
    lim.limitNow(node(2), '507');
    lim.limitNow(node(11), '507');
    const handoffs = [node(10), node(11), node(12), node(13), node(14)];
    const it = new NodeIter([node(1), node(2), node(3)], handoffs[Symbol.iterator](), lim, 6);
    const seen = [...it].map((v) => [v.node.id, v.primary]);
    expect(seen).toEqual([
      [1, true],
      [3, true],
      [10, false],
      [12, false],
      [13, false],
      [14, false],
    ]);
    expect(it.skippedPrimaries.map((n) => n.id)).toEqual([2]);
    const capped = new NodeIter([node(1), node(3)], handoffs[Symbol.iterator](), lim, 3);
    expect([...capped].map((v) => v.node.id)).toEqual([1, 3, 10]);
  });

  it('timing: fastest measured primary first, unknown ones before measured; entries expire', () => {
    const clock = fakeClock();
    const timings = new NodeTimings(300, clock.now);
    timings.record(node(1), 0.3);
    timings.record(node(2), 0.01);
    timings.record(node(3), 0.1);
    for (let k = 0; k < 20; k++) {
      expect(sortPrimaries([node(1), node(2), node(3)], 'timing', timings).map((n) => n.id)).toEqual([2, 3, 1]);
    }
    expect(sortPrimaries([node(1), node(2), node(4)], 'timing', timings).map((n) => n.id)).toEqual([4, 2, 1]);
    clock.advance(301);
    expect(timings.get(node(2))).toBe(-1);
  });

  it('shuffle: every primary comes first sometimes (deterministic random source)', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const firsts = new Set<number | undefined>();
    for (let k = 0; k < 60; k++) firsts.add(sortPrimaries([node(1), node(2), node(3)], 'shuffle', undefined, rand)[0]?.id);
    expect(firsts).toEqual(new Set([1, 2, 3]));
  });
});
