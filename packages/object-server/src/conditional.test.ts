import { describe, expect, it } from 'vitest';
import { evaluateConditions, parseRange } from './conditional.js';

describe('parseRange', () => {
  it('single, open, suffix and multiple ranges', () => {
    expect(parseRange('bytes=0-4', 10)).toEqual([{ start: 0, end: 4 }]);
    expect(parseRange('bytes=5-', 10)).toEqual([{ start: 5, end: 9 }]);
    expect(parseRange('bytes=-3', 10)).toEqual([{ start: 7, end: 9 }]);
    expect(parseRange('bytes=-30', 10)).toEqual([{ start: 0, end: 9 }]);
    expect(parseRange('bytes=8-20', 10)).toEqual([{ start: 8, end: 9 }]);
    expect(parseRange('bytes=0-0,5-6', 10)).toEqual([{ start: 0, end: 0 }, { start: 5, end: 6 }]);
  });
  it('unsatisfiable -> [] (416); malformed -> undefined (ignored, 200)', () => {
    expect(parseRange('bytes=10-', 10)).toEqual([]);
    expect(parseRange('bytes=-0', 10)).toEqual([]);
    expect(parseRange('bytes=0-0', 0)).toEqual([]);
    expect(parseRange('bytes=-5', 0)).toBeUndefined();
    expect(parseRange('bytes=5-2', 10)).toBeUndefined();
    expect(parseRange('items=0-1', 10)).toBeUndefined();
    expect(parseRange('bytes=a-b', 10)).toBeUndefined();
    expect(parseRange(undefined, 10)).toBeUndefined();
  });
});

describe('evaluateConditions', () => {
  const lm = 1_700_000_000;
  const date = (s: number): string => new Date(s * 1000).toUTCString();
  it('If-Match / If-None-Match compare unquoted etags, * matches anything', () => {
    expect(evaluateConditions({ 'if-match': '"abc"' }, 'abc', lm)).toBe(200);
    expect(evaluateConditions({ 'if-match': '"x", "abc"' }, 'abc', lm)).toBe(200);
    expect(evaluateConditions({ 'if-match': '"x"' }, 'abc', lm)).toBe(412);
    expect(evaluateConditions({ 'if-none-match': '*' }, 'abc', lm)).toBe(304);
    expect(evaluateConditions({ 'if-none-match': 'abc' }, 'abc', lm)).toBe(304);
    expect(evaluateConditions({ 'if-none-match': '"x"' }, 'abc', lm)).toBe(200);
  });
  it('dates: IMS ignored with If-None-Match, IUS ignored with If-Match', () => {
    expect(evaluateConditions({ 'if-modified-since': date(lm) }, 'abc', lm)).toBe(304);
    expect(evaluateConditions({ 'if-modified-since': date(lm - 1) }, 'abc', lm)).toBe(200);
    expect(evaluateConditions({ 'if-modified-since': date(lm), 'if-none-match': '"x"' }, 'abc', lm)).toBe(200);
    expect(evaluateConditions({ 'if-unmodified-since': date(lm - 1) }, 'abc', lm)).toBe(412);
    expect(evaluateConditions({ 'if-unmodified-since': date(lm - 1), 'if-match': '*' }, 'abc', lm)).toBe(200);
    expect(evaluateConditions({ 'if-modified-since': 'garbage' }, 'abc', lm)).toBe(200);
  });
});
