import { describe, expect, it } from 'vitest';
import { BuilderArgumentError, normalizeAddress, parseSearchValue } from '../index.js';

describe("Swift's search-value syntax", () => {
  it('parses every part, in any combination', () => {
    expect(parseSearchValue('d74r4z1-1.2.3.4:5678R5.6.7.8:9999/sdb1_snet: 5.6.7.8')).toEqual({
      id: 74, region: 4, zone: 1, ip: '1.2.3.4', port: 5678,
      replicationIp: '5.6.7.8', replicationPort: 9999, device: 'sdb1', meta: 'snet: 5.6.7.8',
    });
    expect(parseSearchValue('z1')).toEqual({ zone: 1 });
    expect(parseSearchValue('1.2.3.4')).toEqual({ ip: '1.2.3.4' });
    expect(parseSearchValue(':5678')).toEqual({ port: 5678 });
    expect(parseSearchValue('R:5678')).toEqual({ replicationPort: 5678 });
    expect(parseSearchValue('/sdb1')).toEqual({ device: 'sdb1' });
    expect(parseSearchValue('_shiny')).toEqual({ meta: 'shiny' });
    expect(parseSearchValue('z1-[::1]:5678')).toEqual({ zone: 1, ip: '0000:0000:0000:0000:0000:0000:0000:0001', port: 5678 });
  });

  it('refuses what is left unparsed, quoting the value', () => {
    expect(() => parseSearchValue('x1')).toThrow(new BuilderArgumentError('Invalid <search-value>: "x1"'));
    expect(() => parseSearchValue('')).toThrow(BuilderArgumentError);
    expect(() => parseSearchValue('z')).toThrow('Invalid <search-value>: "z"');
  });

  it('normalises addresses like Swift', () => {
    expect(normalizeAddress('Storage-1.Example.COM')).toBe('storage-1.example.com');
    expect(normalizeAddress('[2001:db8::1]')).toBe('2001:0db8:0000:0000:0000:0000:0000:0001');
    expect(() => normalizeAddress('1.2.3.256')).toThrow('Invalid address "1.2.3.256"');
  });
});
