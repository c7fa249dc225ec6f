// The S3 gateway: SigV4, the S3 operations over the proxy backend, XML, the credentials store.
export { createS3App, toS3Error } from './s3-app.js';
export type { S3AppOptions } from './s3-app.js';
export { s3ConfigFromSection, DEFAULT_S3_CONFIG } from './s3-config.js';
export type { S3Config } from './s3-config.js';
export { CredentialStore, parseCredentials } from './credentials.js';
export { BucketRegistry, REGISTRY_CONTAINER } from './bucket-registry.js';
export { S3Error, S3_ERROR_STATUS } from './s3-error.js';
export {
  verifyRequest,
  signingKey,
  canonicalRequest,
  canonicalUri,
  canonicalQuery,
  uriEncode,
  ChunkSignatureChain,
  MAX_PRESIGN_EXPIRES_S,
} from './sigv4.js';
export type { Credential, AuthResult, PayloadMode, SignableRequest } from './sigv4.js';
export { AwsChunkedDecoder } from './aws-chunked.js';
export { createChecksum, CHECKSUM_ALGORITHMS } from './checksums.js';
export type { ChecksumAlgorithm } from './checksums.js';
export { isValidBucketName, bucketNameProblem } from './bucket-name.js';
export { escapeXml, xmlDocument, parseXml } from './xml.js';
export type { S3Storage } from './storage.js';
