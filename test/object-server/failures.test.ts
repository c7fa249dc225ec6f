/**
 * Failure paths against a real swiftlet-object-server: quarantine of flipped bytes, a client
 * that goes away mid-PUT, `Expect: 100-continue` early answers, fallocate_reserve, mount_check,
 * and a clean SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, readdir } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { waitFor } from '@swiftlet/cluster';
import { listFiles, put, rawRequest, removeDir, request, startObjectServer, ts, type TestServer } from './helpers.js';

let srv: TestServer;
let port: number;

beforeAll(async () => {
  srv = await startObjectServer();
  port = srv.port;
});
afterAll(async () => {
  await srv?.stop();
  if (srv) await removeDir(srv.dir);
});

describe('quarantine', () => {
  // 200,000 bytes are read from the file as they are sent; 4,000 were read whole when the object
  // was opened (metadata-file.ts, SMALL_READ_BYTES) and are sent from that buffer.
  it.each([
    { size: 200_000, part: 5, name: 'flip' },
    { size: 4000, part: 7, name: 'flip-small' },
  ])('a .data whose bytes were flipped ($size bytes): the client sees a cut connection, then 404; the file sits in quarantined/', async ({ size, part, name }) => {
    const body = Buffer.alloc(size, 'a');
    const path = `/sda/${part}/a/c/${name}`;
    const partDir = join(srv.devices, 'sda', 'objects', String(part));
    expect((await put(port, path, body)).status).toBe(201);
    const data = (await listFiles(partDir)).find((f) => f.endsWith('.data')) as string;
    const fh = await open(join(partDir, data), 'r+');
    await fh.write(Buffer.from('b'), 0, 1, size / 2);
    await fh.close();
    const quarantinedBefore = await readdir(join(srv.devices, 'sda', 'quarantined', 'objects')).catch(() => [] as string[]);
    const outcome = await new Promise<{ status: number; bytes: number; aborted: boolean }>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, aborted: false }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, aborted: true }));
        res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes, aborted: true }));
      });
      req.on('error', () => resolve({ status: 0, bytes: 0, aborted: true }));
    });
    // Either the 200 headers and part of the body, or nothing at all, then the connection is cut:
    // never a complete, clean answer.
    expect(outcome.aborted).toBe(true);
    expect([0, 200]).toContain(outcome.status);
    expect(outcome.bytes).toBeLessThan(body.length);
    expect((await request(port, 'GET', path)).status).toBe(404);
    expect(await listFiles(partDir)).not.toContain(data);
    const q = await readdir(join(srv.devices, 'sda', 'quarantined', 'objects'));
    expect(q.length).toBe(quarantinedBefore.length + 1);
    expect(JSON.parse((await request(port, 'GET', '/recon/quarantined')).text).objects).toBe(q.length);
  });
});

describe('client disconnect mid-PUT', () => {
  it('is logged as 499 and leaves nothing behind', async () => {
    const txId = `tx-disconnect-${Date.now()}`;
    await new Promise<void>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write(
          `PUT /sda/6/a/c/cut HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: text/plain\r\n` +
            `Content-Length: 2000000\r\nX-Trans-Id: ${txId}\r\n\r\n`,
        );
        sock.write(Buffer.alloc(300_000, 'x'), () => {
          sock.destroy();
          resolve();
        });
      });
    });
    const line = await waitFor(async () => (await srv.log()).find((l) => l['log'] === 'access' && l['txId'] === txId), { what: 'access log line' });
    expect(line['status']).toBe(499);
    expect((await listFiles(join(srv.devices, 'sda', 'objects', '6'))).filter((f) => !f.startsWith('hashes'))).toEqual([]);
    expect(await listFiles(join(srv.devices, 'sda', 'tmp'))).toEqual([]);
    expect((await request(port, 'HEAD', '/sda/6/a/c/cut')).status).toBe(404);
  });

  it('a body shorter than Content-Length (connection half-closed) -> 499, nothing stored', async () => {
    const text = await rawRequest(
      port,
      `PUT /sda/6/a/c/short HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc`,
      500,
    );
    // The server cannot answer a client whose body never completes; it must not store anything.
    expect(text === '' || /^HTTP\/1\.1 (499|408)/.test(text)).toBe(true);
    await waitFor(async () => (await srv.log()).some((l) => l['log'] === 'access' && l['path'] === '/sda/6/a/c/short'), { what: 'access log' });
    expect((await request(port, 'HEAD', '/sda/6/a/c/short')).status).toBe(404);
    expect(await listFiles(join(srv.devices, 'sda', 'tmp'))).toEqual([]);
  });
});

describe('client_timeout', () => {
  it('a client that stalls mid-body gets 408 after client_timeout; nothing stored', async () => {
    const slow = await startObjectServer({ server: { client_timeout: 1 } });
    try {
      const started = Date.now();
      const text = await new Promise<string>((resolve, reject) => {
        let out = '';
        const sock = net.connect(slow.port, '127.0.0.1', () =>
          sock.write(`PUT /sda/1/a/c/stall HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: a/b\r\nContent-Length: 10\r\n\r\nabc`),
        );
        sock.on('data', (d) => (out += d.toString()));
        sock.on('close', () => resolve(out));
        sock.on('error', reject);
        setTimeout(() => sock.destroy(), 10_000);
      });
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect((await request(slow.port, 'HEAD', '/sda/1/a/c/stall')).status).toBe(404);
      expect(await listFiles(join(slow.devices, 'sda', 'tmp'))).toEqual([]);
    } finally {
      await slow.stop();
      await removeDir(slow.dir);
    }
  });
});

/** Sends the headers of a PUT with Expect: 100-continue and returns the first answer, body unsent. */
async function expectContinue(path: string, headers: Record<string, string>): Promise<string> {
  const head = Object.entries({ Host: 'x', 'Content-Type': 'text/plain', 'Content-Length': '5', Expect: '100-continue', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(`PUT ${path} HTTP/1.1\r\n${head}\r\n`));
    let out = '';
    sock.on('data', (d) => {
      out += d.toString('latin1');
      if (/\r\n\r\n/.test(out)) {
        sock.destroy();
        resolve(out);
      }
    });
    sock.on('error', reject);
  });
}

describe('Expect: 100-continue', () => {
  it('answers 400, 409, 412, 507 before any body is sent; 100 Continue otherwise', async () => {
    const t1 = ts();
    expect((await put(port, '/sda/7/a/c/exists', 'hello', { 'X-Timestamp': t1 })).status).toBe(201);
    expect(await expectContinue('/sda/7/a/c/exists', { 'X-Timestamp': 'nope' })).toMatch(/^HTTP\/1\.1 400 /);
    const conflict = await expectContinue('/sda/7/a/c/exists', { 'X-Timestamp': t1 });
    expect(conflict).toMatch(/^HTTP\/1\.1 409 /);
    expect(conflict).toMatch(new RegExp(`X-Backend-Timestamp: ${t1.replace('.', '\\.')}`));
    expect(await expectContinue('/sda/7/a/c/exists', { 'X-Timestamp': ts(), 'If-None-Match': '*' })).toMatch(/^HTTP\/1\.1 412 /);
    expect(await expectContinue('/nodev/7/a/c/x', { 'X-Timestamp': ts() })).toMatch(/^HTTP\/1\.1 507 /);
    expect(await expectContinue('/sda/7/a/c/new', { 'X-Timestamp': ts() })).toMatch(/^HTTP\/1\.1 100 Continue/);
    // And a full 100-continue upload works.
    const full = await rawRequest(
      port,
      `PUT /sda/7/a/c/full HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello`,
    );
    expect(full).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 201 /);
    expect((await request(port, 'GET', '/sda/7/a/c/full')).text).toBe('hello');
  });
});

describe('fallocate_reserve and mount_check', () => {
  it('PUT -> 507 under fallocate_reserve (also before 100-continue); DELETE still writes its tombstone', async () => {
    const full = await startObjectServer({ server: { fallocate_reserve: '100%' } });
    try {
      const r = await put(full.port, '/sda/1/a/c/o', 'x');
      expect(r.status).toBe(507);
      expect(r.text).toMatch(/fallocate_reserve/);
      const early = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(full.port, '127.0.0.1', () =>
          sock.write(`PUT /sda/1/a/c/o HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: a/b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`),
        );
        let out = '';
        sock.on('data', (d) => {
          out += d.toString();
          if (out.includes('\r\n\r\n')) {
            sock.destroy();
            resolve(out);
          }
        });
        sock.on('error', reject);
      });
      expect(early).toMatch(/^HTTP\/1\.1 507 /);
      const t = ts();
      expect((await request(full.port, 'DELETE', '/sda/1/a/c/o', { 'X-Timestamp': t })).status).toBe(404);
      expect((await listFiles(join(full.devices, 'sda', 'objects', '1'))).some((f) => f.endsWith(`${t}.ts`))).toBe(true);
      expect((await listFiles(join(full.devices, 'sda', 'objects', '1'))).some((f) => f.endsWith('.data'))).toBe(false);
    } finally {
      await full.stop();
      await removeDir(full.dir);
    }
  });

  it('mount_check = true: a device folder that is not a mount point -> 507, listed by recon unmounted', async () => {
    const mc = await startObjectServer({ server: { mount_check: 'true' } });
    try {
      expect((await put(mc.port, '/sda/1/a/c/o', 'x')).status).toBe(507);
      expect((await request(mc.port, 'GET', '/sda/1/a/c/o')).status).toBe(507);
      expect(JSON.parse((await request(mc.port, 'GET', '/recon/unmounted')).text)).toEqual([{ device: 'sda', mounted: false }]);
      expect(await listFiles(join(mc.devices, 'sda'))).toEqual([]);
    } finally {
      await mc.stop();
      await removeDir(mc.dir);
    }
  });
});

describe('shutdown', () => {
  it('SIGTERM: exits 0 after finishing the request in flight', async () => {
    const s = await startObjectServer();
    try {
      // A slow upload is in flight when SIGTERM arrives; it completes, then the process exits 0.
      // Its body is larger than the object server holds in memory, so it has a tmp file to see.
      const sock = net.connect(s.port, '127.0.0.1');
      await new Promise<void>((r) => sock.once('connect', () => r()));
      const size = 256 * 1024;
      sock.write(`PUT /sda/1/a/c/slow HTTP/1.1\r\nHost: x\r\nX-Timestamp: ${ts()}\r\nContent-Type: a/b\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
      sock.write(Buffer.alloc(size - 2, 97));
      let answer = '';
      sock.on('data', (d) => (answer += d.toString()));
      await waitFor(async () => (await listFiles(join(s.devices, 'sda', 'tmp'))).length > 0, { what: 'upload in flight' });
      s.proc.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      sock.write('cd');
      const code = await s.proc.exited;
      expect(code).toBe(0);
      expect(answer).toMatch(/^HTTP\/1\.1 201 /);
    } finally {
      await s.stop();
      await removeDir(s.dir);
    }
  });
});
