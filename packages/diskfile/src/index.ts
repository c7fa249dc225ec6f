export type { DiskFileManagerOptions, ObjectState, ObjectStateObject, ReadChecksum, SuffixFiles } from './types.js';
export { DiskFileManager, removeStaleTmp } from './manager.js';
export { DiskFile } from './disk-file.js';
export { UnprocessableEntityError } from './errors.js';
export { BODY_CRC32_KEY, encodeTrailer, formatCrc32, parseCrc32, readFully, readMetadataFile, TRAILER_MAGIC } from './metadata-file.js';
export { parseFallocateReserve } from './config.js';
export { nativeAddonUnavailable } from './native.js';
