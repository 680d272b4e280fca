import { ERROR_REGISTRY, httpStatus, type ErrorCode } from "../api/errors.js";

export { httpStatus };

/**
 * The codes `troupe serve` and the dashboard answer with their own status, code and message,
 * read from the error registry (src/api/errors.ts). A code absent here (registry status 500,
 * or not troupe's) is not the caller's to see: the servers answer INTERNAL and log it.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = Object.fromEntries(
  (Object.keys(ERROR_REGISTRY) as ErrorCode[])
    .map((code) => [code, httpStatus(code)] as const)
    .filter(([, status]) => status !== 500),
);

/** The JSON error body both servers answer with. */
export const errorBody = (code: string, message: string) => ({ error: { code, message } });
