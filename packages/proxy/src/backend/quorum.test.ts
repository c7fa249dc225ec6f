import { describe, expect, it } from 'vitest';
import { bestResponseIndex, haveQuorum, quorumSize } from './quorum.js';

describe('quorum arithmetic (Swift: ceil(R/2))', () => {
  it('quorum_size is (n + 1) // 2', () => {
    expect([1, 2, 3, 4, 5, 6].map(quorumSize)).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('have_quorum needs that many statuses of one class, never 5xx', () => {
    expect(haveQuorum([201, 201], 3)).toBe(true);
    expect(haveQuorum([201, 503], 3)).toBe(false);
    expect(haveQuorum([201, 202], 3)).toBe(true); // same class
    expect(haveQuorum([404, 409], 3)).toBe(true);
    expect(haveQuorum([503, 503, 503], 3)).toBe(false);
    expect(haveQuorum([201], 2)).toBe(true);
  });

  it('best_response: first class with a quorum, highest code in it; none -> undefined (503)', () => {
    expect(bestResponseIndex([201, 201, 503], 3)).toBe(0);
    expect(bestResponseIndex([204, 404, 404], 3)).toBe(1);
    expect(bestResponseIndex([201, 503, 503], 3)).toBeUndefined();
    expect(bestResponseIndex([201], 3)).toBeUndefined(); // missing answers count as 503
    const i = bestResponseIndex([201, 202, 404], 3);
    expect(i).toBe(1);
    expect(bestResponseIndex([404, 204, 204, 404], 4)).toBe(1); // 2xx before 4xx
  });
});
