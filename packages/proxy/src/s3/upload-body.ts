/**
 * Turns an upload's request stream into the verified object body for the backend: decodes
 * aws-chunked bodies (checking every chunk signature), and runs the PayloadVerifier (length,
 * signed SHA-256, Content-MD5, x-amz-checksum-*). Small bodies are read and verified whole before
 * the backend sees a byte; larger ones stream, with the verifier holding back the last piece so
 * that a failed check leaves the backend PUT short and nothing is stored.
 */
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AwsChunkedDecoder } from './aws-chunked.js';
import { collectThrough } from './collect-body.js';
import { checksumAlgorithmOfHeader, checksumFromHeaders, type ChecksumAlgorithm, CHECKSUM_ALGORITHMS } from './checksums.js';
import { PayloadVerifier, type PayloadChecks, type PayloadResult } from './payload-verifier.js';
import { S3Error } from './s3-error.js';
import type { S3Request } from './s3-request.js';
import { ChunkSignatureChain } from './sigv4.js';

export interface UploadBody {
  /** The decoded length the backend PUT declares, or undefined for a chunked body. */
  length: number | undefined;
  /** The checksum to store with the object, when known before the body is sent. */
  storedChecksum?: { algorithm: ChecksumAlgorithm; value: string };
  /** Content-MD5 as hex, to let the object servers check it too. */
  md5Hex?: string;
  /** The body to hand to the backend: a stream, or the whole body read and verified first (small bodies). */
  data: Readable | Buffer;
  /** Resolves when the body has been fully read and verified (rejects with the S3Error). */
  done: Promise<PayloadResult>;
  /** The failure to answer, if any check failed (also after the backend answered). */
  failure(): S3Error | undefined;
  /** Stops reading (backend answered before consuming the body). */
  abort(): void;
}

function parseLength(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text.trim())) throw new S3Error('InvalidArgument', `${name} must be a non-negative integer`, { extra: { ArgumentName: name, ArgumentValue: text } });
  return Number(text.trim());
}

export async function openUploadBody(r: S3Request, opts: { maxObjectSizeBytes: number; verifyBufferBytes: number }): Promise<UploadBody> {
  const h = r.headers;
  const mode = r.auth.mode;
  const streaming = mode === 'streaming-signed' || mode === 'streaming-signed-trailer' || mode === 'streaming-unsigned-trailer';
  const encodings = (h['content-encoding'] ?? '').split(',').map((s) => s.trim().toLowerCase());
  const chunked = streaming || encodings.includes('aws-chunked');

  let length: number | undefined;
  if (chunked) {
    length = parseLength(h['x-amz-decoded-content-length'], 'x-amz-decoded-content-length');
    if (length === undefined) throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
  } else {
    length = parseLength(h['content-length'], 'Content-Length');
    if (length === undefined && !/chunked/i.test(h['transfer-encoding'] ?? '')) {
      throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
    }
  }
  if (length !== undefined && length > opts.maxObjectSizeBytes) {
    throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', {
      extra: { ProposedSize: String(length), MaxSizeAllowed: String(opts.maxObjectSizeBytes) },
    });
  }

  const checks: PayloadChecks = {};
  if (length !== undefined) checks.expectedLength = length;
  if (mode === 'sha256' && r.auth.payloadSha256) checks.sha256Hex = r.auth.payloadSha256;
  const md5 = h['content-md5'];
  let md5Hex: string | undefined;
  if (md5 !== undefined) {
    const raw = Buffer.from(md5, 'base64');
    if (raw.length !== 16 || raw.toString('base64') !== md5.trim()) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
    checks.md5Base64 = md5.trim();
    md5Hex = raw.toString('hex');
  }
  const headerChecksum = checksumFromHeaders(h);
  const trailerNames = (h['x-amz-trailer'] ?? '').split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  let trailerChecksum: ChecksumAlgorithm | undefined;
  for (const name of trailerNames) {
    const alg = checksumAlgorithmOfHeader(name);
    if (!alg) throw new S3Error('InvalidRequest', `The value specified in the x-amz-trailer header is not supported: ${name}`);
    if (trailerChecksum || headerChecksum) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    trailerChecksum = alg;
  }
  if (trailerNames.length > 0 && !chunked) throw new S3Error('InvalidRequest', 'The x-amz-trailer header needs an aws-chunked body.');
  if (headerChecksum) checks.checksum = { algorithm: headerChecksum.algorithm, expected: headerChecksum.value };
  else if (trailerChecksum) checks.checksum = { algorithm: trailerChecksum, fromTrailer: true };
  else {
    // Only the algorithm named: S3 computes the checksum and keeps it.
    const named = h['x-amz-sdk-checksum-algorithm']?.toLowerCase();
    if (named !== undefined) {
      if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(named)) {
        throw new S3Error('InvalidRequest', 'Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]');
      }
      checks.checksum = { algorithm: named as ChecksumAlgorithm };
    }
  }

  const stages: Transform[] = [];
  let decoder: AwsChunkedDecoder | undefined;
  if (chunked) {
    const signed = mode === 'streaming-signed' || mode === 'streaming-signed-trailer';
    decoder = new AwsChunkedDecoder({
      ...(signed ? { chain: new ChunkSignatureChain(r.auth.chunkSigning) } : {}),
      signedTrailer: mode === 'streaming-signed-trailer',
    });
    const d = decoder;
    checks.trailers = () => d.trailers;
    stages.push(decoder);
  }
  const verifier = new PayloadVerifier(checks);
  stages.push(verifier);

  const incomplete = (cause: unknown): S3Error => new S3Error('IncompleteBody', 'The request body terminated unexpectedly', { cause });

  if (length !== undefined && length <= opts.verifyBufferBytes) {
    // Read and verify the whole (small) body first: the backend then gets a body already known good.
    let body: Buffer;
    try {
      body = await collectThrough(r.req, stages);
    } catch (err) {
      throw err instanceof S3Error ? err : (verifier.failure ?? incomplete(err));
    }
    const result = verifier.result as PayloadResult;
    return {
      length,
      ...(result.checksum ? { storedChecksum: result.checksum } : {}),
      ...(md5Hex ? { md5Hex } : {}),
      data: body,
      done: Promise.resolve(result),
      failure: () => undefined,
      abort: () => undefined,
    };
  }

  let pipeError: unknown;
  const done = (pipeline as (...streams: unknown[]) => Promise<void>)(r.req, ...stages)
    .catch((err: unknown) => {
      pipeError = err;
    })
    .then(() => {
      if (verifier.failure) throw verifier.failure;
      if (!verifier.result) throw incomplete(pipeError);
      return verifier.result;
    });
  done.catch(() => undefined);
  return {
    length,
    ...(headerChecksum ? { storedChecksum: { algorithm: headerChecksum.algorithm, value: headerChecksum.value } } : {}),
    ...(md5Hex ? { md5Hex } : {}),
    data: verifier,
    done,
    failure: () => verifier.failure,
    abort: () => {
      r.req.unpipe();
      verifier.destroy();
    },
  };
}
