import { describe, expect, it } from 'vitest';
import { LoopTurnLines } from './logger.js';

function recorder(): { writes: string[]; syncs: number; out: { write(data: string): boolean; flushSync(): void } } {
  const rec = {
    writes: [] as string[],
    syncs: 0,
    out: {
      write: (data: string) => {
        rec.writes.push(data);
        return true;
      },
      flushSync: () => {
        rec.syncs++;
      },
    },
  };
  return rec;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('LoopTurnLines', () => {
  it('writes the lines of one turn of the event loop with one write, at the end of that turn', async () => {
    const rec = recorder();
    const lines = new LoopTurnLines(rec.out);
    lines.write('a\n');
    lines.write('b\n');
    lines.write('c\n');
    expect(rec.writes).toEqual([]);
    await nextTurn();
    expect(rec.writes).toEqual(['a\nb\nc\n']);
    lines.write('d\n');
    await nextTurn();
    expect(rec.writes).toEqual(['a\nb\nc\n', 'd\n']);
  });

  it('writes at once past 64 KiB held, and on flush', async () => {
    const rec = recorder();
    const lines = new LoopTurnLines(rec.out);
    const big = `${'x'.repeat(40 * 1024)}\n`;
    lines.write(big);
    expect(rec.writes).toEqual([]);
    lines.write(big);
    expect(rec.writes).toEqual([big + big]);
    lines.write('tail\n');
    let flushed = false;
    lines.flush(() => {
      flushed = true;
    });
    expect([rec.writes.at(-1), flushed, rec.syncs]).toEqual(['tail\n', true, 1]);
    await nextTurn();
    expect(rec.writes).toHaveLength(2);
  });
});
