import { describe, expect, it } from 'vitest';
import { silentLogger } from '@swiftlet/common';
import { DEFAULT_PROXY_BACKEND_CONFIG } from './config.js';
import { BackendContext, newMetrics } from './context.js';
import { ErrorLimiter } from './error-limiter.js';
import { NodeTimings } from './node-iter.js';
import { decide } from './write-path.js';

const ctx = (): BackendContext =>
  new BackendContext({ ...DEFAULT_PROXY_BACKEND_CONFIG }, new ErrorLimiter(10, 60), new NodeTimings(300), newMetrics(), silentLogger());

describe('the client answer of a write (best_response + PUT checks)', () => {
  it('two successes of three replicas are a success, one is 503', () => {
    const c = ctx();
    expect(decide(c, [{ status: 201, headers: { etag: 'a' } }, { status: 201, headers: { etag: 'a' } }], 3, 3, true).status).toBe(201);
    expect(decide(c, [{ status: 201, headers: { etag: 'a' } }, { status: 503, headers: {} }], 3, 3, true).status).toBe(503);
    expect(c.metrics.quorumFailures).toBe(1);
  });

  it('backends disagreeing on the ETag -> 500', () => {
    const answers = [
      { status: 201, headers: { etag: 'aaaa' } },
      { status: 201, headers: { etag: '"bbbb"' } },
      { status: 201, headers: { etag: 'aaaa' } },
    ];
    expect(decide(ctx(), answers, 3, 3, true).status).toBe(500);
  });

  it('every replica refusing an old timestamp (409) -> 202 for a PUT; DELETE quorum of 404 -> 404', () => {
    expect(decide(ctx(), [{ status: 409, headers: {} }, { status: 409, headers: {} }], 3, 3, true).status).toBe(202);
    expect(decide(ctx(), [{ status: 404, headers: {} }, { status: 404, headers: {} }, { status: 204, headers: {} }], 3, 3, false).status).toBe(404);
    expect(decide(ctx(), [{ status: 204, headers: {} }, { status: 404, headers: {} }, { status: 204, headers: {} }], 3, 3, false).status).toBe(204);
  });
});
