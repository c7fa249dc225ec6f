/**
 * Typed errors shared by every component. A server maps them to HTTP status codes in one place
 * (its error middleware); `expose` says whether the message may be shown to the client (koa's
 * convention: internal 5xx messages never leak).
 */
export class StoreError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  /** Extra headers the server should send with the error answer (e.g. X-Backend-Timestamp). */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { cause?: unknown; expose?: boolean; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.expose = options.expose ?? status < 500;
    this.headers = options.headers ?? {};
  }
}

/** 400: the request is malformed; the message names the bad value. */
export class BadRequestError extends StoreError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(400, 'BadRequest', message, options);
  }
}

export class NotFoundError extends StoreError {
  constructor(message = 'Not Found', options: { headers?: Record<string, string> } = {}) {
    super(404, 'NotFound', message, options);
  }
}

/** 409: the write is older than (or as old as) what is stored. */
export class ConflictError extends StoreError {
  constructor(message = 'Conflict', options: { headers?: Record<string, string> } = {}) {
    super(409, 'Conflict', message, options);
  }
}

export class PreconditionFailedError extends StoreError {
  constructor(message = 'Precondition Failed') {
    super(412, 'PreconditionFailed', message);
  }
}

/** 507: the device is missing, unmounted, or full. */
export class InsufficientStorageError extends StoreError {
  constructor(message = 'Insufficient Storage') {
    super(507, 'InsufficientStorage', message, { expose: true });
  }
}

/** 499: the client went away before its body was complete (Swift's non-standard code). */
export class ClientDisconnectError extends StoreError {
  constructor(message = 'Client Disconnect') {
    super(499, 'ClientDisconnect', message, { expose: true });
  }
}

/** 503: not enough nodes answered (no quorum), or an unknown storage policy. */
export class ServiceUnavailableError extends StoreError {
  constructor(message = 'Service Unavailable') {
    super(503, 'ServiceUnavailable', message, { expose: true });
  }
}

/** A configuration problem found at start-up; the message names the file and key. */
export class ConfigError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConfigError';
  }
}
