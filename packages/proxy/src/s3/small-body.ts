/**
 * Request documents (CreateBucketConfiguration, Delete): read whole, bounded, through the same
 * verification as uploads (aws-chunked decoding, signed SHA-256).
 */
import { AwsChunkedDecoder } from './aws-chunked.js';
import { collectThrough } from './collect-body.js';
import { PayloadVerifier } from './payload-verifier.js';
import { S3Error } from './s3-error.js';
import type { S3Request } from './s3-request.js';
import { ChunkSignatureChain } from './sigv4.js';

export async function readSmallBody(r: S3Request, maxBytes: number): Promise<Buffer> {
  const mode = r.auth.mode;
  const chunked = mode.startsWith('streaming') || /aws-chunked/i.test(r.headers['content-encoding'] ?? '');
  const declared = Number(r.headers[chunked ? 'x-amz-decoded-content-length' : 'content-length'] ?? 'NaN');
  if (Number.isFinite(declared) && declared > maxBytes) throw new S3Error('MalformedXML', 'The XML you provided was too large');
  const stages = [];
  if (chunked) {
    const signed = mode === 'streaming-signed' || mode === 'streaming-signed-trailer';
    stages.push(new AwsChunkedDecoder({ ...(signed ? { chain: new ChunkSignatureChain(r.auth.chunkSigning) } : {}), signedTrailer: mode === 'streaming-signed-trailer' }));
  }
  const verifier = new PayloadVerifier({
    ...(Number.isFinite(declared) ? { expectedLength: declared } : {}),
    ...(mode === 'sha256' && r.auth.payloadSha256 ? { sha256Hex: r.auth.payloadSha256 } : {}),
  });
  const tooLarge = (): S3Error => new S3Error('MalformedXML', 'The XML you provided was too large');
  try {
    return await collectThrough(r.req, [...stages, verifier], { maxBytes, tooLarge });
  } catch (err) {
    if (err instanceof S3Error) throw err;
    throw verifier.failure ?? new S3Error('IncompleteBody', 'The request body terminated unexpectedly', { cause: err });
  }
}
