// Multipart uploads over static manifests: handlers, the manifest reader, the janitor.
export {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listParts,
  removeUpload,
  uploadPart,
  MIN_PART_BYTES,
  MAX_PARTS,
} from './upload-handlers.js';
export { listMultipartUploads } from './list-uploads.js';
export { readManifestObject, assembledSource } from './manifest-reader.js';
export { isManifest, multipartEtag } from './manifest.js';
export { MultipartJanitor, rememberSegmentsContainer, DEFAULT_ABANDONED_UPLOAD_EXPIRY_S } from './janitor.js';
export type { JanitorEnv, SweepStats } from './janitor.js';
export { segmentsContainer, SEGMENTS_SUFFIX } from './names.js';
