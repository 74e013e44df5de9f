/**
 * Errors with a stable code and a cause. Everything the product throws on purpose is an AppError;
 * the HTTP server and each adapter turn them into a response (or an apology with a reference) in one place.
 */
export type ErrorCode =
  | 'config_invalid'
  | 'bad_request'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'not_found'
  | 'conflict'
  | 'precondition_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'school_not_registered'
  | 'validation_failed'
  | 'store_unavailable'
  | 'policy_parse_failed'
  | 'internal';

const httpStatusByCode: Record<ErrorCode, number> = {
  config_invalid: 500,
  bad_request: 400,
  unsupported_media_type: 415,
  payload_too_large: 413,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  unauthorized: 401,
  forbidden: 403,
  school_not_registered: 403,
  validation_failed: 400,
  store_unavailable: 503,
  policy_parse_failed: 400,
  internal: 500,
};

export class AppError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
  }
  get httpStatus(): number {
    return httpStatusByCode[this.code];
  }
}

/** Wraps anything thrown into an AppError, keeping the original as the cause. */
export function asAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new AppError('internal', message, { cause: error });
}

export function isAppError(error: unknown, code?: ErrorCode): error is AppError {
  return error instanceof AppError && (code === undefined || error.code === code);
}

/** The first few `at ...` lines of a stack: where it failed, without the (possibly multi-line) message. */
export function stackFrames(error: Error, count = 6): string | undefined {
  return error.stack
    ?.split('\n')
    .filter((line) => /^\s+at /.test(line))
    .slice(0, count)
    .join('\n');
}
