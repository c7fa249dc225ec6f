export { RingBuilder, NONE, MAX_BALANCE, MAX_DEV_ID, MAX_REPLICAS } from './ring-builder.js';
export type {
  BuilderDevice,
  NewDevice,
  DevInfoChange,
  RebalanceOptions,
  RebalanceResult,
  TierDispersion,
  DispersionReport,
  BuilderState,
} from './ring-builder.js';
export { RingBuilderError, BuilderArgumentError, RingValidationError, DuplicateDeviceError, UnknownDeviceError, BuilderFileError } from './errors.js';
export { parseSearchValue, normalizeIp, normalizeAddress } from './search-value.js';
export type { SearchValues } from './search-value.js';
export { builderToBuffer, builderFromBuffer, BUILDER_FORMAT, BUILDER_FORMAT_VERSION } from './builder-file.js';
export { Prng } from './prng.js';
