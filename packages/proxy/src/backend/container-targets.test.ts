import { describe, expect, it } from 'vitest';
import { pairContainerTargets } from './container-targets.js';
import { quorumSize } from './quorum.js';

const at = (ip: string, device: string) => ({ ip, device });

describe('pairContainerTargets', () => {
  it('gives each slot the container replica on its own device (all-in-one: one ip, a device per node)', () => {
    const objects = [at('127.0.0.1', 'd3'), at('127.0.0.1', 'd1'), at('127.0.0.1', 'd4')];
    const containers = [at('127.0.0.1', 'd1'), at('127.0.0.1', 'd4'), at('127.0.0.1', 'd3')];
    expect(pairContainerTargets(objects, containers)).toEqual([[2], [0], [1]]);
  });

  it('pairs by node when devices differ, and deals the rest in ring order', () => {
    const objects = [at('10.0.0.1', 'sdb'), at('10.0.0.2', 'sdb'), at('10.0.0.3', 'sdb')];
    const containers = [at('10.0.0.4', 'sdc'), at('10.0.0.3', 'sdc'), at('10.0.0.9', 'sdc')];
    expect(pairContainerTargets(objects, containers)).toEqual([[0], [2], [1]]);
  });

  it("is Swift's dealing when no replica shares a node", () => {
    const objects = [at('10.0.0.1', 'a'), at('10.0.0.2', 'a'), at('10.0.0.3', 'a')];
    const containers = [at('10.0.1.1', 'a'), at('10.0.1.2', 'a'), at('10.0.1.3', 'a')];
    expect(pairContainerTargets(objects, containers)).toEqual([[0], [1], [2]]);
  });

  it('names every container replica once, and enough for a container quorum behind an object quorum', () => {
    for (const [slots, replicas] of [[3, 3], [3, 5], [5, 3], [2, 3], [1, 3], [4, 2]] as const) {
      const objects = Array.from({ length: slots }, (_, i) => at('127.0.0.1', `d${i}`));
      const containers = Array.from({ length: replicas }, (_, i) => at('127.0.0.1', `d${(i * 2) % 7}`));
      const pairs = pairContainerTargets(objects, containers);
      const named = pairs.flat();
      for (let c = 0; c < replicas; c++) expect(named).toContain(c);
      expect(named.length).toBe(Math.max(quorumSize(replicas) + slots - quorumSize(slots), replicas));
      for (const p of pairs) expect(new Set(p).size).toBe(p.length);
    }
  });

  it('names nothing without slots or container replicas', () => {
    expect(pairContainerTargets([], [at('a', 'b')])).toEqual([]);
    expect(pairContainerTargets([at('a', 'b')], [])).toEqual([[]]);
  });
});
