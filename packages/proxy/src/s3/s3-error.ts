/**
 * The S3 error model: every failure the gateway answers is an `S3Error` with the code, status and
 * message AWS uses, rendered as S3's XML error document. The gateway alone maps internal errors
 * (`StoreError` from the data path, anything unexpected) to S3 codes; internal 5xx messages never
 * reach the client.
 */
import { xmlDocument } from './xml.js';

/** AWS's HTTP status for each error code the gateway answers. */
export const S3_ERROR_STATUS: Readonly<Record<string, number>> = Object.freeze({
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidEncryptionAlgorithmError: 400,
  InvalidLocationConstraint: 400,
  InvalidPartNumber: 416,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidStorageClass: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  NotModified: 304,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  RequestTimeout: 400,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
  InvalidChunkSizeError: 403,
});

export class S3Error extends Error {
  readonly code: string;
  readonly status: number;
  /** Extra elements of the error document (Key, BucketName, ExpectedDigest ...), in order. */
  readonly extra: Record<string, string>;
  /** Extra response headers (e.g. Allow for MethodNotAllowed). */
  readonly headers: Record<string, string>;
  resource: string | undefined;

  constructor(
    code: string,
    message: string,
    opts: { status?: number; extra?: Record<string, string>; headers?: Record<string, string>; cause?: unknown; resource?: string } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'S3Error';
    this.code = code;
    this.status = opts.status ?? S3_ERROR_STATUS[code] ?? 400;
    this.extra = opts.extra ?? {};
    this.headers = opts.headers ?? {};
    this.resource = opts.resource;
  }

  toXML(requestId: string, resource?: string): string {
    const children: [string, string][] = [
      ['Code', this.code],
      ['Message', this.message],
    ];
    for (const [k, v] of Object.entries(this.extra)) children.push([k, v]);
    const res = this.resource ?? resource;
    if (res !== undefined) children.push(['Resource', res]);
    children.push(['RequestId', requestId]);
    return xmlDocument({ Error: Object.fromEntries(children) });
  }
}

/** Shorthands for the errors the handlers throw most. */
export const s3Errors = {
  accessDenied: (msg = 'Access Denied') => new S3Error('AccessDenied', msg),
  noSuchBucket: (bucket: string) =>
    new S3Error('NoSuchBucket', 'The specified bucket does not exist', { extra: { BucketName: bucket } }),
  noSuchKey: (key: string) => new S3Error('NoSuchKey', 'The specified key does not exist.', { extra: { Key: key } }),
  malformedXML: () =>
    new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema'),
  notImplemented: (what = 'A header or query you provided implies functionality that is not implemented') =>
    new S3Error('NotImplemented', what),
  invalidArgument: (msg: string, name?: string, value?: string) =>
    new S3Error('InvalidArgument', msg, {
      extra: name === undefined ? {} : { ArgumentName: name, ArgumentValue: value ?? '' },
    }),
  internal: (cause?: unknown) =>
    new S3Error('InternalError', 'We encountered an internal error. Please try again.', { cause }),
  serviceUnavailable: (cause?: unknown) =>
    new S3Error('ServiceUnavailable', 'Please reduce your request rate.', { cause }),
};
