import { StoreError } from '@swiftlet/common';

/** 422: the body received does not match the ETag the client announced. */
export class UnprocessableEntityError extends StoreError {
  constructor(message = 'Unprocessable Entity') {
    super(422, 'UnprocessableEntity', message);
  }
}

/** A file whose trailer or metadata cannot be parsed, or whose size disagrees with them. */
export class CorruptFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptFileError';
  }
}
