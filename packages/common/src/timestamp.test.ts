import { describe, expect, it } from 'vitest';
import { Timestamp } from './timestamp.js';

describe('Timestamp', () => {
  it('normalizes as Swift does', () => {
    expect(Timestamp.parse('1700000000').normal).toBe('1700000000.00000');
    expect(Timestamp.parse('1700000000.5').normal).toBe('1700000000.50000');
    expect(Timestamp.parse('1700000000.123456').normal).toBe('1700000000.12346');
    expect(Timestamp.parse('5').normal).toBe('0000000005.00000');
    expect(Timestamp.parse('1700000000.00000_000000000000000a').internal).toBe('1700000000.00000_000000000000000a');
    expect(Timestamp.parse('1700000000.00000_a').internal).toBe('1700000000.00000_000000000000000a');
    expect(Timestamp.parse('1700000000.00000_0').internal).toBe('1700000000.00000');
  });

  it('orders by time, then offset, and the internal forms sort lexically the same way', () => {
    const forms = ['1700000000.00001', '1700000000.00000_0000000000000001', '1700000000.00000', '0999999999.99999'];
    const sorted = forms.map((f) => Timestamp.parse(f)).sort(Timestamp.compare).map((t) => t.internal);
    expect(sorted).toEqual([...forms].sort());
  });

  it('refuses malformed values with the value in the message', () => {
    for (const bad of ['', 'abc', '-1', '1.2.3', '17e8', '10000000000', '1_xyz', '1_00000000000000000']) {
      expect(() => Timestamp.parse(bad)).toThrow(/invalid timestamp|out of range/);
    }
  });

  it('now() is monotone enough and in range', () => {
    const a = Timestamp.now();
    expect(Math.abs(a.seconds - Date.now() / 1000)).toBeLessThan(2);
    expect(a.normal).toMatch(/^\d{10}\.\d{5}$/);
  });
});
