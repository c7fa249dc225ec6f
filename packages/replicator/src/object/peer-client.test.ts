import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { BandwidthLimiter } from './bandwidth-limit.js';
import { isPushableFile, PeerClient, PeerUnavailableError } from './peer-client.js';

const HASH = 'd41d8cd98f00b204e9800998ecf8e' + 'abc';

describe('isPushableFile', () => {
  it('accepts only <suffix>/<hash>/<timestamp>.(data|ts|meta)', () => {
    expect(isPushableFile(`abc/${HASH}/1700000000.00000.data`)).toBe(true);
    expect(isPushableFile(`abc/${HASH}/1700000000.00000_000000000000000a.meta`)).toBe(true);
    expect(isPushableFile(`abc/${HASH}/1700000000.00000.ts`)).toBe(true);
    expect(isPushableFile(`abc/${HASH}/.1700000000.00000.data.Ab12Cd`)).toBe(false);
    expect(isPushableFile(`abc/${HASH}/.1700000000.00000.data.123.abcdef.tmp`)).toBe(false);
    expect(isPushableFile(`abd/${HASH}/1700000000.00000.data`)).toBe(false);
    expect(isPushableFile(`abc/${HASH}/../1700000000.00000.data`)).toBe(false);
    expect(isPushableFile(`abc/${HASH}/hashes.pkl`)).toBe(false);
  });
});

describe('BandwidthLimiter', () => {
  it('spaces chunks so that the rate stays under the limit', () => {
    const l = new BandwidthLimiter(1000);
    expect(l.reserve(500)).toBe(0);
    const wait = l.reserve(500);
    expect(wait).toBeGreaterThan(400);
    expect(wait).toBeLessThanOrEqual(500);
  });
});

describe('PeerClient against a receiving HTTP server', () => {
  let server: Server;
  let port = 0;
  let dir = '';
  const received: Record<string, string> = {};
  let mode: 'ok' | '507' | 'hang' = 'ok';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'peer-client-'));
    await mkdir(join(dir, 'abc', HASH), { recursive: true });
    await writeFile(join(dir, 'abc', HASH, '1700000000.00000.data'), Buffer.alloc(300_000, 7));
    await writeFile(join(dir, 'abc', HASH, '1700000001.00000.meta'), '');
    server = createServer((req, res) => {
      if (mode === 'hang') return; // never answers
      if (mode === '507') {
        res.writeHead(507).end('Insufficient Storage');
        return;
      }
      if (req.url?.startsWith('/_replicate/')) {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ abc: 'x' }));
        return;
      }
      if (req.url?.endsWith('/missing')) {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const offered = (JSON.parse(body) as { offered: string[] }).offered;
          res.writeHead(200).end(JSON.stringify({ wanted: [...offered, 'abc/not/offered'] }));
        });
        return;
      }
      const extract = tar.extract();
      let n = 0;
      extract.on('entry', (header, stream, next) => {
        let size = 0;
        stream.on('data', (c: unknown) => (size += (c as Buffer).length));
        stream.on('end', () => {
          received[header.name] = `${size}`;
          n++;
          next();
        });
      });
      extract.on('finish', () => res.writeHead(200).end(JSON.stringify({ received: n, skipped: 0, gzip: req.headers['content-encoding'] === 'gzip' })));
      if (req.headers['content-encoding'] === 'gzip') req.pipe(createGunzip()).pipe(extract);
      else req.pipe(extract);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    port = typeof a === 'object' && a ? a.port : 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const timeouts = { connTimeoutMs: 500, httpTimeoutMs: 400, nodeTimeoutMs: 400, syncTimeoutMs: 5000 };
  const peer = (): { ip: string; port: number; device: string } => ({ ip: '127.0.0.1', port, device: 'd1' });

  it('asks for hashes, filters the wanted list to what was offered, and streams a tar of the wanted files', async () => {
    mode = 'ok';
    const c = new PeerClient(timeouts);
    const signal = new AbortController().signal;
    expect(await c.replicate(peer(), 3, 0, undefined, signal)).toEqual({ abc: 'x' });
    const offered = [`abc/${HASH}/1700000000.00000.data`, `abc/${HASH}/1700000001.00000.meta`, `abc/${HASH}/1700000002.00000.ts`];
    const wanted = await c.missing(peer(), 3, 0, offered, signal);
    expect(wanted).toEqual(offered);
    let progressBytes = 0;
    const r = await c.push(peer(), 3, 0, dir, wanted, signal, (b) => (progressBytes += b));
    // The .ts does not exist on disk (cleaned up meanwhile): skipped, not counted as sent.
    expect(r.sent).toEqual(offered.slice(0, 2));
    expect(r.received).toBe(2);
    expect(received).toEqual({ [offered[0] as string]: '300000', [offered[1] as string]: '0' });
    expect(progressBytes).toBe(r.bytes);
    expect(r.bytes).toBeGreaterThan(300_000);
  });

  it('gzips the tar when asked: the same files arrive, fewer bytes travel', async () => {
    mode = 'ok';
    const c = new PeerClient(timeouts);
    const files = [`abc/${HASH}/1700000000.00000.data`, `abc/${HASH}/1700000001.00000.meta`];
    const r = await c.push(peer(), 3, 0, dir, files, new AbortController().signal, () => undefined, { compress: true });
    expect(r.sent).toEqual(files);
    expect(r.received).toBe(2);
    expect(r.bytes).toBeLessThan(10_000); // 300 kB of one repeated byte
  });

  it('honours the bandwidth limit', async () => {
    mode = 'ok';
    const c = new PeerClient(timeouts, new BandwidthLimiter(1_000_000));
    const t0 = Date.now();
    await c.push(peer(), 3, 0, dir, [`abc/${HASH}/1700000000.00000.data`], new AbortController().signal, () => undefined);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200); // 300 kB at 1 MB/s, the first chunk free
  });

  it('reports 507 as PeerUnavailableError and a silent peer as a timeout', async () => {
    const c = new PeerClient(timeouts);
    mode = '507';
    await expect(c.replicate(peer(), 3, 0, undefined, new AbortController().signal)).rejects.toBeInstanceOf(PeerUnavailableError);
    mode = 'hang';
    const t0 = Date.now();
    await expect(c.replicate(peer(), 3, 0, undefined, new AbortController().signal)).rejects.toThrow(/no answer within 400 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
