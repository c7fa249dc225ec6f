/** `GET /metrics`: Prometheus counters and latencies of the object server's requests. */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ObjectServerMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'swiftlet_object_server_requests_total',
    help: 'Requests answered, by method and status',
    labelNames: ['method', 'status'] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'swiftlet_object_server_request_duration_seconds',
    help: 'Time from request start to the last byte of the answer, by method and status',
    labelNames: ['method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [this.registry],
  });
  readonly asyncPendingsWritten = new Counter({
    name: 'swiftlet_object_server_async_pendings_written_total',
    help: 'Container updates that failed and were saved as async pendings',
    registers: [this.registry],
  });

  constructor() {
    // The event-loop delay is sampled every 100 ms, not prom-client's default 10 ms: that timer woke
    // every idle server 100 times a second (105 context switches/s each, measured), for a metric
    // whose percentiles need no finer grain.
    collectDefaultMetrics({ register: this.registry, prefix: 'swiftlet_object_server_', eventLoopMonitoringPrecision: 100 });
  }

  observe(method: string, status: number, seconds: number): void {
    const labels = { method, status: String(status) };
    this.requests.inc(labels);
    this.duration.observe(labels, seconds);
  }
}
