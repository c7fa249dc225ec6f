import { PassThrough, Readable, Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { collectThrough } from './collect-body.js';

const upper = (): Transform =>
  new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(null, Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1'));
    },
  });

describe('collectThrough', () => {
  it('reads the source whole through every stage, in order', async () => {
    const got = await collectThrough(Readable.from([Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')]), [upper(), new PassThrough()]);
    expect(got.toString()).toBe('ABCDEF');
  });

  it('reads an empty body and a body without stages', async () => {
    expect((await collectThrough(Readable.from([]), [])).length).toBe(0);
    expect((await collectThrough(Readable.from([Buffer.from('x')]), [])).toString()).toBe('x');
  });

  it("fails with a stage's error and destroys every stream", async () => {
    const source = new PassThrough();
    const failing = new Transform({
      transform(_chunk, _enc, cb) {
        cb(new Error('bad digest'));
      },
    });
    const p = collectThrough(source, [failing]);
    source.write('abc');
    await expect(p).rejects.toThrow('bad digest');
    expect(source.destroyed).toBe(true);
    expect(failing.destroyed).toBe(true);
  });

  it('fails past the byte limit with the caller’s error', async () => {
    const p = collectThrough(Readable.from([Buffer.alloc(10), Buffer.alloc(10)]), [], { maxBytes: 15, tooLarge: () => new Error('too large') });
    await expect(p).rejects.toThrow('too large');
  });

  it('fails at once for a source destroyed before the read began, and destroys the stages', async () => {
    const source = new PassThrough();
    source.write('partial');
    source.destroy();
    const stage = new PassThrough();
    await expect(collectThrough(source, [stage])).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(stage.destroyed).toBe(true);
  });

  it('fails when the source closes before its end (client gone)', async () => {
    const source = new PassThrough();
    const p = collectThrough(source, [new PassThrough()]);
    source.write('partial');
    source.destroy();
    await expect(p).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });
});
