import { describe, expect, it } from 'vitest';
import { Timestamp } from '@swiftlet/common';
import { ReadResolver } from './read-resolver.js';

const ts = (s: number): Timestamp => Timestamp.fromSeconds(s);

describe('read resolution by timestamp', () => {
  it('uses the first good answer when nothing newer was seen', () => {
    const r = new ReadResolver(3);
    expect(r.offer({ status: 200, primary: true, timestamp: ts(100) })).toBe('use');
  });

  it('a tombstone newer than the data seen later means absent (stale handoff never served)', () => {
    const r = new ReadResolver(3);
    expect(r.offer({ status: 404, primary: true, timestamp: ts(200) })).toBe('next');
    expect(r.offer({ status: 503, primary: true })).toBe('next');
    expect(r.offer({ status: 200, primary: false, timestamp: ts(100) })).toBe('next');
    expect(r.staleSkipped).toBe(1);
    expect(r.final()).toEqual({ status: 404, headers: { 'x-backend-timestamp': ts(200).internal } });
  });

  it('data newer than a tombstone wins', () => {
    const r = new ReadResolver(3);
    r.offer({ status: 404, primary: true, timestamp: ts(100) });
    expect(r.offer({ status: 200, primary: true, timestamp: ts(200) })).toBe('use');
  });

  it('handoff 404s without a timestamp are ignored; all primaries down -> 503', () => {
    const r = new ReadResolver(3);
    for (let i = 0; i < 3; i++) r.offer({ status: 503, primary: true });
    for (let i = 0; i < 3; i++) expect(r.offer({ status: 404, primary: false })).toBe('next');
    expect(r.final().status).toBe(503);
  });

  it('a tombstone on a handoff with all primaries down -> 404', () => {
    const r = new ReadResolver(3);
    for (let i = 0; i < 3; i++) r.offer({ status: 503, primary: true });
    r.offer({ status: 404, primary: false, timestamp: ts(5) });
    expect(r.final().status).toBe(404);
  });

  it('404 needs a quorum of primaries: two say absent -> 404, one -> 503', () => {
    const a = new ReadResolver(3);
    a.offer({ status: 404, primary: true });
    a.offer({ status: 404, primary: true });
    a.offer({ status: 503, primary: true });
    expect(a.final().status).toBe(404);
    const b = new ReadResolver(3);
    b.offer({ status: 404, primary: true });
    b.offer({ status: 503, primary: true });
    b.offer({ status: 503, primary: true });
    b.offer({ status: 404, primary: false });
    expect(b.final().status).toBe(503);
  });

  it('a newer version seen by a probe makes older good answers stale; equal or newer ones are used', () => {
    const r = new ReadResolver(3);
    r.sawVersion(ts(200));
    r.sawVersion(ts(150));
    expect(r.isOlderThanSeen(ts(199))).toBe(true);
    expect(r.offer({ status: 200, primary: true, timestamp: ts(100) })).toBe('next');
    expect(r.staleSkipped).toBe(1);
    expect(r.offer({ status: 200, primary: true, timestamp: ts(200) })).toBe('use');
    expect(r.offer({ status: 304, primary: true, timestamp: ts(300) })).toBe('use');
  });
});
