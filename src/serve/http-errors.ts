/** TroupeError codes → HTTP status, shared by `troupe serve` and the dashboard. */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  VALIDATION: 400,
  INVALID_MESSAGE: 400,
  NOT_SERIALIZABLE: 400,
  CHANNEL_MODE_CONFLICT: 409,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  NOT_STARTED: 503,
  SCHEMA_MISSING: 503,
  DATABASE_UNAVAILABLE: 503, // retryable: the sender should try again
};

/** The JSON error body both servers answer with. */
export const errorBody = (code: string, message: string) => ({ error: { code, message } });
