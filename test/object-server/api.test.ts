/**
 * The object server's backend API against a real swiftlet-object-server process: status codes,
 * ordering by timestamp, tombstones, .meta merging, conditionals, ranges, policies, bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutgoingHttpHeaders } from 'node:http';
import { listFiles, put, rawRequest, removeDir, request, startObjectServer, ts, type Answer, type TestServer } from './helpers.js';

let srv: TestServer;
let port: number;

beforeAll(async () => {
  srv = await startObjectServer({ devices: ['sda', 'sdb'] });
  port = srv.port;
});
afterAll(async () => {
  await srv?.stop();
  if (srv) await removeDir(srv.dir);
});

const md5 = async (s: string): Promise<string> => (await import('node:crypto')).createHash('md5').update(s).digest('hex');

describe('PUT', () => {
  it('stores an object: 201 with the quoted ETag, data file at objects/<part>/<sfx>/<hash>/<ts>.data', async () => {
    const t = ts();
    const r = await put(port, '/sda/3/a/c/put1', 'hello', { 'X-Timestamp': t, 'X-Object-Meta-Color': 'blue' });
    expect(r.status).toBe(201);
    expect(r.headers['etag']).toBe(`"${await md5('hello')}"`);
    const files = await listFiles(join(srv.devices, 'sda', 'objects', '3'));
    expect(files.some((f) => new RegExp(`^[0-9a-f]{3}/[0-9a-f]{32}/${t.replace('.', '\\.')}\\.data$`).test(f))).toBe(true);
    const g = await request(port, 'GET', '/sda/3/a/c/put1');
    expect(g.status).toBe(200);
    expect(g.text).toBe('hello');
    expect(g.headers['x-object-meta-color']).toBe('blue');
    expect(g.headers['x-timestamp']).toBe(t);
    expect(g.headers['content-type']).toBe('application/octet-stream');
  });

  it('accepts a chunked body', async () => {
    const r = await request(port, 'PUT', '/sda/3/a/c/chunked', { 'X-Timestamp': ts(), 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' }, 'abc');
    expect(r.status).toBe(201);
    expect((await request(port, 'GET', '/sda/3/a/c/chunked')).text).toBe('abc');
  });

  it('409 with X-Backend-Timestamp when not newer; newest timestamp wins regardless of arrival order', async () => {
    const t1 = ts();
    const t2 = ts();
    expect((await put(port, '/sda/3/a/c/order', 'second', { 'X-Timestamp': t2 })).status).toBe(201);
    const older = await put(port, '/sda/3/a/c/order', 'first', { 'X-Timestamp': t1 });
    expect(older.status).toBe(409);
    expect(older.headers['x-backend-timestamp']).toBe(t2);
    const same = await put(port, '/sda/3/a/c/order', 'again', { 'X-Timestamp': t2 });
    expect(same.status).toBe(409);
    expect((await request(port, 'GET', '/sda/3/a/c/order')).text).toBe('second');
    const t3 = ts();
    expect((await put(port, '/sda/3/a/c/order', 'third', { 'X-Timestamp': t3 })).status).toBe(201);
    expect((await request(port, 'GET', '/sda/3/a/c/order')).text).toBe('third');
    // The older .data is gone from disk.
    const datas = (await listFiles(join(srv.devices, 'sda', 'objects', '3'))).filter((f) => f.endsWith('.data'));
    expect(datas.filter((f) => f.includes(t2))).toEqual([]);
  });

  it('409 against a newer tombstone', async () => {
    const t1 = ts();
    const t2 = ts();
    expect((await request(port, 'DELETE', '/sda/3/a/c/tomb-first', { 'X-Timestamp': t2 })).status).toBe(404);
    const r = await put(port, '/sda/3/a/c/tomb-first', 'x', { 'X-Timestamp': t1 });
    expect(r.status).toBe(409);
    expect(r.headers['x-backend-timestamp']).toBe(t2);
  });

  it('422 on an ETag mismatch (nothing stored); matching ETag accepted', async () => {
    const r = await put(port, '/sda/3/a/c/etag', 'body', { ETag: 'd41d8cd98f00b204e9800998ecf8427e' });
    expect(r.status).toBe(422);
    expect((await request(port, 'GET', '/sda/3/a/c/etag')).status).toBe(404);
    const upper = await put(port, '/sda/3/a/c/etag', 'body', { ETag: (await md5('body')).toUpperCase() });
    expect(upper.status).toBe(422);
    expect((await request(port, 'GET', '/sda/3/a/c/etag')).status).toBe(404);
    expect((await put(port, '/sda/3/a/c/etag', 'body', { ETag: await md5('body') })).status).toBe(201);
  });

  it('If-None-Match: * -> 412 on an existing object, accepted over a tombstone', async () => {
    expect((await put(port, '/sda/3/a/c/inm', 'one')).status).toBe(201);
    const r = await put(port, '/sda/3/a/c/inm', 'two', { 'If-None-Match': '*' });
    expect(r.status).toBe(412);
    expect((await request(port, 'DELETE', '/sda/3/a/c/inm', { 'X-Timestamp': ts() })).status).toBe(204);
    expect((await put(port, '/sda/3/a/c/inm', 'three', { 'If-None-Match': '*' })).status).toBe(201);
    expect((await request(port, 'GET', '/sda/3/a/c/inm')).text).toBe('three');
  });

  it('411 without Content-Length and not chunked', async () => {
    const text = await rawRequest(port, `PUT /sda/3/a/c/len HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 411 /);
    expect(text).toMatch(/Missing Content-Length or Transfer-Encoding: chunked\n$/);
    expect((await request(port, 'HEAD', '/sda/3/a/c/len')).status).toBe(404);
  });

  it('stores the allowed headers and sysmeta, drops others; X-Delete-At returned', async () => {
    const at = Math.floor(Date.now() / 1000) + 3600;
    const r = await put(port, '/sda/3/a/c/hdrs', 'x', {
      'Content-Disposition': 'attachment',
      'Content-Encoding': 'gzip',
      'Cache-Control': 'no-cache',
      Expires: 'Wed, 21 Oct 2037 07:28:00 GMT',
      'X-Object-Sysmeta-S3-Checksum-Crc32': 'abcd',
      'X-Delete-At': String(at),
      'X-Not-Kept': 'nope',
    });
    expect(r.status).toBe(201);
    const h = (await request(port, 'HEAD', '/sda/3/a/c/hdrs')).headers;
    expect(h['content-disposition']).toBe('attachment');
    expect(h['content-encoding']).toBe('gzip');
    expect(h['cache-control']).toBe('no-cache');
    expect(h['expires']).toBe('Wed, 21 Oct 2037 07:28:00 GMT');
    expect(h['x-object-sysmeta-s3-checksum-crc32']).toBe('abcd');
    expect(h['x-delete-at']).toBe(String(at));
    expect(h['x-not-kept']).toBeUndefined();
  });

  it('X-Delete-After is stored as X-Delete-At; an expired object reads as absent', async () => {
    const r = await put(port, '/sda/3/a/c/expiring-later', 'later', { 'X-Delete-After': '100' });
    expect(r.status).toBe(201);
    const h = await request(port, 'HEAD', '/sda/3/a/c/expiring-later');
    expect(h.status).toBe(200);
    const at = Number(h.headers['x-delete-at']);
    expect(Math.abs(at - (Date.now() / 1000 + 100))).toBeLessThan(5);
    const soon = Math.floor(Date.now() / 1000) + 2;
    expect((await put(port, '/sda/3/a/c/expiring', 'soon', { 'X-Delete-At': String(soon) })).status).toBe(201);
    const deadline = Date.now() + 8000;
    let got = await request(port, 'GET', '/sda/3/a/c/expiring');
    while (got.status === 200 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 100));
      got = await request(port, 'GET', '/sda/3/a/c/expiring');
    }
    expect(got.status).toBe(404);
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(soon);
    expect(got.headers['x-backend-timestamp']).toBeDefined();
  });

  it('UTF-8 metadata and names round-trip', async () => {
    const name = encodeURIComponent('obj-ü-✓');
    const value = Buffer.from('grün', 'utf8').toString('latin1');
    expect((await put(port, `/sda/3/a/c/${name}`, 'x', { 'X-Object-Meta-Word': value })).status).toBe(201);
    const g = await request(port, 'GET', `/sda/3/a/c/${name}`);
    expect(g.status).toBe(200);
    expect(Buffer.from(g.headers['x-object-meta-word'] as string, 'latin1').toString('utf8')).toBe('grün');
  });
});

describe('bad input -> 400 with a one-line reason, nothing written', () => {
  const cases: [string, string, Record<string, string>, number, RegExp][] = [
    ['path without object', '/sda/3/a/c', {}, 400, /^Invalid path/],
    ['path without object (trailing slash)', '/sda/3/a/c/', {}, 400, /^Invalid path/],
    ['device ..', '/../3/a/c/o', {}, 400, /^Invalid device/],
    ['device with encoded slash', '/sd%2Fa/3/a/c/o', {}, 400, /^Invalid path/],
    ['partition not a number', '/sda/x1/a/c/o', {}, 400, /^Invalid partition/],
    ['negative partition', '/sda/-1/a/c/o', {}, 400, /^Invalid partition/],
    ['object name of 1025 chars', `/sda/3/a/c/${'o'.repeat(1025)}`, {}, 400, /^Object name length of 1025 longer than 1024/],
    ['missing X-Timestamp', '/sda/3/a/c/o', { 'X-Timestamp': '' }, 400, /^Missing X-Timestamp/],
    ['malformed X-Timestamp', '/sda/3/a/c/o', { 'X-Timestamp': 'yesterday' }, 400, /^X-Timestamp should be a UNIX timestamp/],
    ['no Content-Type', '/sda/3/a/c/o', { 'Content-Type': '' }, 400, /^No content type/],
    ['metadata name too long', '/sda/3/a/c/o', { [`X-Object-Meta-${'n'.repeat(129)}`]: 'v' }, 400, /^Metadata name too long/],
    ['metadata value too long', '/sda/3/a/c/o', { 'X-Object-Meta-K': 'v'.repeat(257) }, 400, /^Metadata value longer than 256/],
    ['X-Delete-At in the past', '/sda/3/a/c/o', { 'X-Delete-At': '1000' }, 400, /^X-Delete-At in past/],
    ['X-Delete-At not a number', '/sda/3/a/c/o', { 'X-Delete-At': 'soon' }, 400, /^Non-integer X-Delete-At/],
  ];
  for (const [what, path, headers, status, reason] of cases) {
    it(what, async () => {
      const h: Record<string, string | number> = { 'X-Timestamp': ts(), 'Content-Type': 'text/plain', 'Content-Length': 1, ...headers };
      for (const [k, v] of Object.entries(h)) if (v === '') delete h[k];
      const r = await request(port, 'PUT', path, h, 'x');
      expect(r.status).toBe(status);
      expect(r.text).toMatch(reason);
      expect(r.text.trim().split('\n')).toHaveLength(1);
      expect(await listFiles(join(srv.devices, 'sda', 'objects', '3')).then((f) => f.filter((x) => /\/[0-9a-f]{32}\/.*\.data$/.test(x) && x.includes('/o/')))).toEqual([]);
    });
  }

  it('too many metadata items and too much metadata', async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 91; i++) many[`X-Object-Meta-K${i}`] = 'v';
    const r = await put(port, '/sda/3/a/c/many', 'x', many);
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/^Too many metadata items; max 90/);
    const big: Record<string, string> = {};
    for (let i = 0; i < 20; i++) big[`X-Object-Meta-K${i}`] = 'v'.repeat(250);
    const r2 = await put(port, '/sda/3/a/c/big', 'x', big);
    expect(r2.status).toBe(400);
    expect(r2.text).toMatch(/^Total metadata too large; max 4096/);
    expect((await request(port, 'HEAD', '/sda/3/a/c/many')).status).toBe(404);
    expect((await request(port, 'HEAD', '/sda/3/a/c/big')).status).toBe(404);
  });

  it('a Content-Length that is not a number -> 400 Invalid Content-Length', async () => {
    const net = await import('node:net');
    const text = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write(`PUT /sda/3/a/c/badlen HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: text/plain\r\nContent-Length: abc\r\n\r\nx`);
      });
      let out = '';
      sock.on('data', (d) => (out += d.toString()));
      sock.on('end', () => resolve(out));
      sock.on('error', reject);
    });
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toMatch(/\r\n\r\nInvalid Content-Length\n$/);
    expect((await request(port, 'HEAD', '/sda/3/a/c/badlen')).status).toBe(404);
  });

  it('unknown storage policy -> 503; policy 1 lives in objects-1', async () => {
    const r = await put(port, '/sda/3/a/c/pol', 'x', { 'X-Backend-Storage-Policy-Index': '7' });
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/No policy with index 7/);
    expect((await put(port, '/sda/3/a/c/pol', 'one', { 'X-Backend-Storage-Policy-Index': '1' })).status).toBe(201);
    expect((await listFiles(join(srv.devices, 'sda', 'objects-1', '3'))).some((f) => f.endsWith('.data'))).toBe(true);
    expect((await request(port, 'GET', '/sda/3/a/c/pol')).status).toBe(404);
    expect((await request(port, 'GET', '/sda/3/a/c/pol', { 'X-Backend-Storage-Policy-Index': '1' })).text).toBe('one');
  });

  it('a missing device -> 507 for every method', async () => {
    expect((await put(port, '/nodev/3/a/c/o', 'x')).status).toBe(507);
    expect((await request(port, 'GET', '/nodev/3/a/c/o')).status).toBe(507);
    expect((await request(port, 'HEAD', '/nodev/3/a/c/o')).status).toBe(507);
    expect((await request(port, 'DELETE', '/nodev/3/a/c/o', { 'X-Timestamp': ts() })).status).toBe(507);
    expect((await request(port, 'POST', '/nodev/3/a/c/o', { 'X-Timestamp': ts() })).status).toBe(507);
    expect((await request(port, 'POST', '/_replicate/nodev/3')).status).toBe(507);
  });

  it('an unknown method -> 405', async () => {
    expect((await request(port, 'PATCH', '/sda/3/a/c/o', { 'X-Timestamp': ts() })).status).toBe(405);
  });
});

describe('PUT with the checksums in a trailer (X-Backend-Checksum-Trailer, sent by our proxy)', () => {
  const crc32Hex = async (b: Buffer): Promise<string> => (await import('node:zlib')).crc32(b).toString(16).padStart(8, '0');

  /** A chunked PUT whose trailer carries `trailers` (none when undefined). */
  const putTrailer = (path: string, body: Buffer, trailers: Record<string, string> | undefined, headers: OutgoingHttpHeaders = {}): Promise<Answer> =>
    request(
      port,
      'PUT',
      path,
      {
        'X-Timestamp': ts(),
        'Content-Type': 'application/octet-stream',
        'Transfer-Encoding': 'chunked',
        'X-Backend-Checksum-Trailer': 'md5,crc32',
        Trailer: 'X-Backend-Etag, X-Backend-Body-Crc32',
        ...headers,
      },
      body,
      trailers ?? {},
    );

  const body = Buffer.from('a body whose MD5 the proxy computed');
  const nothingStored = async (path: string): Promise<void> => {
    expect((await request(port, 'HEAD', path)).status).toBe(404);
    expect(await listFiles(join(srv.devices, 'sda', 'tmp'))).toEqual([]);
  };

  it('stores the trailer MD5 as the ETag once the CRC-32 matches; X-Backend-Obj-Content-Length is the length', async () => {
    const etag = await md5(body.toString());
    const r = await putTrailer('/sda/3/a/c/trailer-ok', body, { 'X-Backend-Etag': etag, 'X-Backend-Body-Crc32': await crc32Hex(body) }, { 'X-Backend-Obj-Content-Length': String(body.length) });
    expect(r.status).toBe(201);
    expect(r.headers['etag']).toBe(`"${etag}"`);
    const g = await request(port, 'GET', '/sda/3/a/c/trailer-ok');
    expect(g.status).toBe(200);
    expect(g.text).toBe(body.toString());
    expect(g.headers['etag']).toBe(`"${etag}"`);
    expect(g.headers['content-length']).toBe(String(body.length));
  });

  it('422 when the bytes received do not match the sender CRC-32, nothing stored', async () => {
    const r = await putTrailer('/sda/3/a/c/trailer-crc', body, { 'X-Backend-Etag': await md5(body.toString()), 'X-Backend-Body-Crc32': '00000000' });
    expect(r.status).toBe(422);
    expect(r.text).toMatch(/body CRC-32 [0-9a-f]{8} does not match the sender's 00000000/);
    await nothingStored('/sda/3/a/c/trailer-crc');
  });

  it('422 when the trailer MD5 is not the ETag the client asked for', async () => {
    const r = await putTrailer('/sda/3/a/c/trailer-etag', body, { 'X-Backend-Etag': await md5(body.toString()), 'X-Backend-Body-Crc32': await crc32Hex(body) }, { ETag: await md5('something else') });
    expect(r.status).toBe(422);
    await nothingStored('/sda/3/a/c/trailer-etag');
  });

  it('400 without the trailer, or with a malformed one, nothing stored', async () => {
    const none = await putTrailer('/sda/3/a/c/trailer-none', body, undefined);
    expect(none.status).toBe(400);
    expect(none.text).toBe('Missing or malformed X-Backend-Etag trailer\n');
    const badCrc = await putTrailer('/sda/3/a/c/trailer-none', body, { 'X-Backend-Etag': await md5(body.toString()), 'X-Backend-Body-Crc32': 'xyz' });
    expect(badCrc.status).toBe(400);
    expect(badCrc.text).toBe('Missing or malformed X-Backend-Body-Crc32 trailer\n');
    await nothingStored('/sda/3/a/c/trailer-none');
  });

  it('400 before the body for an unknown checksum list or a body that is not chunked', async () => {
    const unknown = await putTrailer('/sda/3/a/c/trailer-hdr', body, undefined, { 'X-Backend-Checksum-Trailer': 'sha1' });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toBe('X-Backend-Checksum-Trailer "sha1": expected md5,crc32\n');
    const plain = await put(port, '/sda/3/a/c/trailer-hdr', body, { 'X-Backend-Checksum-Trailer': 'md5,crc32' });
    expect(plain.status).toBe(400);
    expect(plain.text).toBe('X-Backend-Checksum-Trailer needs a chunked body\n');
    await nothingStored('/sda/3/a/c/trailer-hdr');
  });

  it('a chunked body shorter than X-Backend-Obj-Content-Length is 499, longer is 400; nothing stored', async () => {
    const trailers = { 'X-Backend-Etag': await md5(body.toString()), 'X-Backend-Body-Crc32': await crc32Hex(body) };
    const short = await putTrailer('/sda/3/a/c/trailer-len', body, trailers, { 'X-Backend-Obj-Content-Length': String(body.length + 1) });
    expect(short.status).toBe(499);
    const long = await putTrailer('/sda/3/a/c/trailer-len', body, trailers, { 'X-Backend-Obj-Content-Length': String(body.length - 1) });
    expect(long.status).toBe(400);
    const bad = await putTrailer('/sda/3/a/c/trailer-len', body, trailers, { 'X-Backend-Obj-Content-Length': 'ten' });
    expect(bad.status).toBe(400);
    expect(bad.text).toBe('Invalid X-Backend-Obj-Content-Length: "ten"\n');
    await nothingStored('/sda/3/a/c/trailer-len');
  });
});

describe('GET / HEAD', () => {
  it('404 without X-Backend-Timestamp for a never-written object; with it after DELETE', async () => {
    const r = await request(port, 'GET', '/sda/3/a/c/never');
    expect(r.status).toBe(404);
    expect(r.headers['x-backend-timestamp']).toBeUndefined();
    expect((await put(port, '/sda/3/a/c/gone', 'x')).status).toBe(201);
    const t = ts();
    expect((await request(port, 'DELETE', '/sda/3/a/c/gone', { 'X-Timestamp': t })).status).toBe(204);
    const g = await request(port, 'GET', '/sda/3/a/c/gone');
    expect(g.status).toBe(404);
    expect(g.headers['x-backend-timestamp']).toBe(t);
    const h = await request(port, 'HEAD', '/sda/3/a/c/gone');
    expect(h.status).toBe(404);
    expect(h.headers['x-backend-timestamp']).toBe(t);
  });

  it('conditionals: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since', async () => {
    expect((await put(port, '/sda/3/a/c/cond', 'abc')).status).toBe(201);
    const etag = await md5('abc');
    const get = (h: Record<string, string>) => request(port, 'GET', '/sda/3/a/c/cond', h);
    expect((await get({ 'If-Match': `"${etag}"` })).status).toBe(200);
    expect((await get({ 'If-Match': '"nope"' })).status).toBe(412);
    expect((await get({ 'If-Match': '*' })).status).toBe(200);
    const inm = await get({ 'If-None-Match': `"${etag}"` });
    expect(inm.status).toBe(304);
    expect(inm.headers['etag']).toBe(`"${etag}"`);
    expect((await get({ 'If-None-Match': '"other"' })).status).toBe(200);
    const future = new Date(Date.now() + 3600_000).toUTCString();
    const past = new Date(Date.now() - 3600_000).toUTCString();
    expect((await get({ 'If-Modified-Since': future })).status).toBe(304);
    expect((await get({ 'If-Modified-Since': past })).status).toBe(200);
    expect((await get({ 'If-Unmodified-Since': past })).status).toBe(412);
    expect((await get({ 'If-Unmodified-Since': future })).status).toBe(200);
    // On a missing object: If-Match: * -> 412, If-None-Match: * -> 404.
    expect((await request(port, 'GET', '/sda/3/a/c/nocond', { 'If-Match': '*' })).status).toBe(412);
    expect((await request(port, 'GET', '/sda/3/a/c/nocond', { 'If-None-Match': '*' })).status).toBe(404);
  });

  it('ranges: 206 single, multipart/byteranges for several, 416 unsatisfiable, HEAD ignores Range', async () => {
    const body = '0123456789abcdefghij';
    expect((await put(port, '/sda/3/a/c/range', body, { 'Content-Type': 'text/plain' })).status).toBe(201);
    const one = await request(port, 'GET', '/sda/3/a/c/range', { Range: 'bytes=2-5' });
    expect(one.status).toBe(206);
    expect(one.text).toBe('2345');
    expect(one.headers['content-range']).toBe('bytes 2-5/20');
    const suffix = await request(port, 'GET', '/sda/3/a/c/range', { Range: 'bytes=-3' });
    expect(suffix.text).toBe('hij');
    const open = await request(port, 'GET', '/sda/3/a/c/range', { Range: 'bytes=18-' });
    expect(open.text).toBe('ij');
    const multi = await request(port, 'GET', '/sda/3/a/c/range', { Range: 'bytes=0-1,10-12' });
    expect(multi.status).toBe(206);
    const m = /^multipart\/byteranges;\s*boundary=(\S+)$/.exec(multi.headers['content-type'] as string);
    expect(m).not.toBeNull();
    const boundary = (m as RegExpExecArray)[1];
    expect(multi.text).toBe(
      `--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/20\r\n\r\n01\r\n` +
        `--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-12/20\r\n\r\nabc\r\n--${boundary}--`,
    );
    expect(Number(multi.headers['content-length'])).toBe(multi.body.length);
    const bad = await request(port, 'GET', '/sda/3/a/c/range', { Range: 'bytes=30-40' });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe('bytes */20');
    expect((await request(port, 'GET', '/sda/3/a/c/range', { Range: 'bytes=-0' })).status).toBe(416);
    const head = await request(port, 'HEAD', '/sda/3/a/c/range', { Range: 'bytes=2-5' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('20');
  });
});

describe('bodies stay whole while the server frees each chunk once it has left', () => {
  it('concurrent PUTs and full and ranged GETs of small, medium and streamed bodies give the stored bytes', async () => {
    const { randomBytes } = await import('node:crypto');
    // 7000 B and 100 KiB are read whole at open; 3 MiB streams in 512 KiB reads.
    const bodies = [7000, 100 * 1024, 3 * 1024 * 1024].map((n, i) => ({ path: `/sda/5/a/c/freed-${i}`, body: randomBytes(n) }));
    for (const b of bodies) expect((await put(port, b.path, b.body)).status).toBe(201);
    for (let round = 0; round < 3; round++) {
      const work: Promise<void>[] = [];
      for (let i = 0; i < 8; i++) {
        for (const b of bodies) {
          work.push(
            request(port, 'GET', b.path).then((g) => {
              expect(g.status).toBe(200);
              expect(g.body.equals(b.body)).toBe(true);
            }),
          );
          const start = (i * 997) % (b.body.length - 10);
          work.push(
            request(port, 'GET', b.path, { Range: `bytes=${start}-` }).then((g) => {
              expect(g.status).toBe(206);
              expect(g.body.equals(b.body.subarray(start))).toBe(true);
            }),
          );
        }
        const fresh = randomBytes(200 * 1024 + i);
        const path = `/sda/5/a/c/freed-put-${round}-${i}`;
        work.push(
          put(port, path, fresh).then(async (r) => {
            expect(r.status).toBe(201);
            expect((await request(port, 'GET', path)).body.equals(fresh)).toBe(true);
          }),
        );
      }
      await Promise.all(work);
    }
  });
});

describe('DELETE', () => {
  it('missing object -> 404 and a tombstone is written', async () => {
    const t = ts();
    const r = await request(port, 'DELETE', '/sda/3/a/c/del-missing', { 'X-Timestamp': t });
    expect(r.status).toBe(404);
    expect(r.headers['x-backend-timestamp']).toBe(t);
    expect((await listFiles(join(srv.devices, 'sda', 'objects', '3'))).some((f) => f.endsWith(`/${t}.ts`))).toBe(true);
  });

  it('older than the data -> 409; newer -> 204; missing X-Timestamp -> 400', async () => {
    const t0 = ts();
    const t1 = ts();
    expect((await put(port, '/sda/3/a/c/del', 'x', { 'X-Timestamp': t1 })).status).toBe(201);
    const old = await request(port, 'DELETE', '/sda/3/a/c/del', { 'X-Timestamp': t0 });
    expect(old.status).toBe(409);
    expect(old.headers['x-backend-timestamp']).toBe(t1);
    expect((await request(port, 'GET', '/sda/3/a/c/del')).status).toBe(200);
    expect((await request(port, 'DELETE', '/sda/3/a/c/del')).status).toBe(400);
    expect((await request(port, 'DELETE', '/sda/3/a/c/del', { 'X-Timestamp': ts() })).status).toBe(204);
    const files = (await listFiles(join(srv.devices, 'sda', 'objects', '3'))).filter((f) => f.includes(t1));
    expect(files).toEqual([]);
  });
});

describe('POST (.meta)', () => {
  it('404 on missing and tombstoned objects', async () => {
    expect((await request(port, 'POST', '/sda/3/a/c/post-missing', { 'X-Timestamp': ts() })).status).toBe(404);
    expect((await put(port, '/sda/3/a/c/post-del', 'x')).status).toBe(201);
    expect((await request(port, 'DELETE', '/sda/3/a/c/post-del', { 'X-Timestamp': ts() })).status).toBe(204);
    const r = await request(port, 'POST', '/sda/3/a/c/post-del', { 'X-Timestamp': ts() });
    expect(r.status).toBe(404);
    expect(r.headers['x-backend-timestamp']).toBeDefined();
  });

  it('202, writes a .meta that replaces user metadata and keeps sysmeta; older POST -> 409', async () => {
    expect((await put(port, '/sda/3/a/c/post', 'data', { 'X-Object-Meta-A': '1', 'X-Object-Meta-B': '2', 'X-Object-Sysmeta-Keep': 'k' })).status).toBe(201);
    const older = ts();
    const t = ts();
    const r = await request(port, 'POST', '/sda/3/a/c/post', { 'X-Timestamp': t, 'X-Object-Meta-C': '3' });
    expect(r.status).toBe(202);
    expect((await listFiles(join(srv.devices, 'sda', 'objects', '3'))).some((f) => f.endsWith(`/${t}.meta`))).toBe(true);
    const g = await request(port, 'GET', '/sda/3/a/c/post');
    expect(g.text).toBe('data');
    expect(g.headers['x-object-meta-a']).toBeUndefined();
    expect(g.headers['x-object-meta-b']).toBeUndefined();
    expect(g.headers['x-object-meta-c']).toBe('3');
    expect(g.headers['x-object-sysmeta-keep']).toBe('k');
    expect(g.headers['x-timestamp']).toBe(t);
    const stale = await request(port, 'POST', '/sda/3/a/c/post', { 'X-Timestamp': older, 'X-Object-Meta-D': '4' });
    expect(stale.status).toBe(409);
    expect(stale.headers['x-backend-timestamp']).toBe(t);
    expect((await request(port, 'POST', '/sda/3/a/c/post')).status).toBe(400);
  });
});

describe('service endpoints', () => {
  it('healthcheck, recon, metrics', async () => {
    const h = await request(port, 'GET', '/healthcheck');
    expect(h.status).toBe(200);
    expect(h.text).toBe('OK');
    // The launcher tells its own server from another one on the same port by this pid.
    expect(h.headers['x-swiftlet-server-pid']).toBe(String(srv.proc.pid));
    const du = JSON.parse((await request(port, 'GET', '/recon/diskusage')).text) as { device: string; size: number; avail: number; used: number }[];
    expect(du.map((d) => d.device)).toEqual(['sda', 'sdb']);
    expect(du[0]?.size).toBeGreaterThan(0);
    expect(JSON.parse((await request(port, 'GET', '/recon/unmounted')).text)).toEqual([]);
    expect(JSON.parse((await request(port, 'GET', '/recon/async')).text)).toEqual({ async_pending: 0 });
    expect(JSON.parse((await request(port, 'GET', '/recon/quarantined')).text)).toMatchObject({ objects: expect.any(Number) });
    expect(JSON.parse((await request(port, 'GET', '/recon/replication')).text)).toEqual({});
    await mkdir(join(srv.dir, 'recon'), { recursive: true });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(srv.dir, 'recon', 'object.recon'), JSON.stringify({ replication_last: 123 }));
    expect(JSON.parse((await request(port, 'GET', '/recon/replication')).text)).toEqual({ replication_last: 123 });
    expect(JSON.parse((await request(port, 'GET', '/recon/time')).text).time).toBeGreaterThan(1e9);
    expect((await request(port, 'GET', '/recon/bogus')).status).toBe(404);
    const m = await request(port, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/swiftlet_object_server_requests_total\{method="PUT",status="201"\} \d+/);
    expect(m.text).toMatch(/swiftlet_object_server_request_duration_seconds_bucket/);
  });

  it('one access log line per request with method, path, status, bytes, duration, txId', async () => {
    const r = await request(port, 'GET', '/sda/3/a/c/logged', { 'X-Trans-Id': 'tx-test-123' });
    expect(r.headers['x-trans-id']).toBe('tx-test-123');
    const gen = await request(port, 'GET', '/sda/3/a/c/logged2');
    expect(gen.headers['x-trans-id']).toMatch(/^tx[0-9a-f]{21}-[0-9a-f]{10}$/);
    const { waitFor } = await import('@swiftlet/cluster');
    const line = await waitFor(async () => (await srv.log()).find((l) => l['log'] === 'access' && l['txId'] === 'tx-test-123'));
    expect(line).toMatchObject({ method: 'GET', path: '/sda/3/a/c/logged', status: 404, bytes: expect.any(Number), durationMs: expect.any(Number) });
  });
});
