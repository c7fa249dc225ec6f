/**
 * The proxy's Prometheus metrics (`GET /metrics`, text format 0.0.4): S3 requests by method and
 * status class, their durations, bytes in and out, and the data path's counters.
 */

export interface RequestSample {
  method: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

/** Upper bounds of the request duration histogram, in seconds. */
const BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ProxyMetrics {
  private readonly requests = new Map<string, number>();
  private readonly histogram = new Map<string, { buckets: number[]; sum: number; count: number }>();
  private bytesIn = 0;
  private bytesOut = 0;
  private readonly startedS = Date.now() / 1000;

  observe(s: RequestSample): void {
    const klass = `${Math.floor(s.status / 100)}xx`;
    const key = `${s.method}\u0000${klass}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.histogram.get(s.method);
    if (!h) {
      h = { buckets: BUCKETS_S.map(() => 0), sum: 0, count: 0 };
      this.histogram.set(s.method, h);
    }
    const seconds = s.durationMs / 1000;
    BUCKETS_S.forEach((le, i) => {
      if (seconds <= le) h.buckets[i]! += 1;
    });
    h.sum += seconds;
    h.count += 1;
    this.bytesIn += s.bytesIn;
    this.bytesOut += s.bytesOut;
  }

  render(backend: Record<string, number> = {}): string {
    const out: string[] = [];
    out.push('# HELP swiftlet_proxy_requests_total S3 requests answered, by method and status class.');
    out.push('# TYPE swiftlet_proxy_requests_total counter');
    for (const [key, n] of [...this.requests].sort()) {
      const [method, klass] = key.split('\u0000') as [string, string];
      out.push(`swiftlet_proxy_requests_total{method="${method}",status="${klass}"} ${n}`);
    }
    out.push('# HELP swiftlet_proxy_request_duration_seconds Time from request to the end of the answer.');
    out.push('# TYPE swiftlet_proxy_request_duration_seconds histogram');
    for (const [method, h] of [...this.histogram].sort()) {
      BUCKETS_S.forEach((le, i) => out.push(`swiftlet_proxy_request_duration_seconds_bucket{method="${method}",le="${le}"} ${h.buckets[i]}`));
      out.push(`swiftlet_proxy_request_duration_seconds_bucket{method="${method}",le="+Inf"} ${h.count}`);
      out.push(`swiftlet_proxy_request_duration_seconds_sum{method="${method}"} ${h.sum}`);
      out.push(`swiftlet_proxy_request_duration_seconds_count{method="${method}"} ${h.count}`);
    }
    out.push('# HELP swiftlet_proxy_received_bytes_total Object bytes received in uploads (decoded).');
    out.push('# TYPE swiftlet_proxy_received_bytes_total counter');
    out.push(`swiftlet_proxy_received_bytes_total ${this.bytesIn}`);
    out.push('# HELP swiftlet_proxy_sent_bytes_total Body bytes of answers.');
    out.push('# TYPE swiftlet_proxy_sent_bytes_total counter');
    out.push(`swiftlet_proxy_sent_bytes_total ${this.bytesOut}`);
    for (const [name, value] of Object.entries(backend).sort()) {
      const metric = `swiftlet_proxy_backend_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`;
      out.push(`# TYPE ${metric} counter`);
      out.push(`${metric} ${value}`);
    }
    out.push('# HELP swiftlet_proxy_start_time_seconds When this process started.');
    out.push('# TYPE swiftlet_proxy_start_time_seconds gauge');
    out.push(`swiftlet_proxy_start_time_seconds ${this.startedS}`);
    // Prometheus' standard process metrics: what the proxy holds, and where (V8 heap or buffers).
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const processMetrics: Array<[string, 'counter' | 'gauge', string, number]> = [
      ['process_cpu_seconds_total', 'counter', 'User and system CPU time spent.', (cpu.user + cpu.system) / 1e6],
      ['process_resident_memory_bytes', 'gauge', 'Resident memory size.', mem.rss],
      ['nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use.', mem.heapUsed],
      ['nodejs_heap_size_total_bytes', 'gauge', 'V8 heap reserved.', mem.heapTotal],
      ['nodejs_external_memory_bytes', 'gauge', 'Memory outside the V8 heap held by JS objects (buffers).', mem.external],
    ];
    for (const [name, type, help, value] of processMetrics) out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    out.push('# TYPE swiftlet_build_info gauge');
    out.push('swiftlet_build_info{component="proxy-server",version="0.1.0"} 1');
    return `${out.join('\n')}\n`;
  }
}
