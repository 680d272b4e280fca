// The errors module is src/api/ (issue 11); this file keeps the existing `./errors.js` imports working.
export * from "./api/errors.js";
export * from "./api/recorded-errors.js";
