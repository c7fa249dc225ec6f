/**
 * Typed errors of the ring builder. Every message quotes the value that was refused, so a CLI
 * can print it as is.
 */
export class RingBuilderError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad argument (part power, replicas, weight, device field, search value...). */
export class BuilderArgumentError extends RingBuilderError {
  constructor(message: string) {
    super('BadArgument', message);
  }
}

/** The ring cannot be built or is inconsistent (too few devices, validate() failures). */
export class RingValidationError extends RingBuilderError {
  constructor(message: string) {
    super('RingValidation', message);
  }
}

/** Same device id, or same ip:port/device, as an existing device. */
export class DuplicateDeviceError extends RingBuilderError {
  constructor(message: string) {
    super('DuplicateDevice', message);
  }
}

/** No device with that id. */
export class UnknownDeviceError extends RingBuilderError {
  constructor(id: number) {
    super('UnknownDevice', `No device with id ${id}`);
  }
}

/** A builder file is missing, unreadable or corrupt; the message names the file. */
export class BuilderFileError extends RingBuilderError {
  readonly file: string;
  constructor(file: string, message: string, options: { cause?: unknown } = {}) {
    super('BuilderFile', `${file}: ${message}`, options);
    this.file = file;
  }
}
