/**
 * JSON for the dashboard's answers. Actor inputs, outputs and journal results are user data
 * decoded by troupe's codec, so they may hold what JSON cannot: BigInt (JSON.stringify
 * throws), bytes, Map, Set, typed arrays. Those become tagged objects a person can read:
 * `{ $bigint: "12" }`, `{ $bytes: "<base64>" }`, `{ $map: [[k, v], …] }`, `{ $set: […] }`,
 * `{ $typedArray: "Float64Array", values: […] }`.
 *
 * The text is also made inert as HTML: `<`, `>`, `&`, U+2028 and U+2029 are written as
 * \u escapes (still the same JSON), so no browser can read an answer as markup.
 */
function replacer(this: unknown, key: string, value: unknown): unknown {
  // `value` has been through toJSON already (a Buffer would be { type, data }): look at the original.
  const raw = (this as Record<string, unknown>)[key];
  if (typeof raw === "bigint") return { $bigint: raw.toString() };
  if (raw instanceof Uint8Array)
    return { $bytes: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64") };
  if (ArrayBuffer.isView(raw) && !(raw instanceof DataView))
    return {
      $typedArray: raw.constructor.name,
      values: Array.from(raw as unknown as ArrayLike<number | bigint>, (x) =>
        typeof x === "bigint" ? x.toString() : x,
      ),
    };
  if (raw instanceof ArrayBuffer) return { $bytes: Buffer.from(raw).toString("base64") };
  if (raw instanceof Map) return { $map: [...raw.entries()] };
  if (raw instanceof Set) return { $set: [...raw.values()] };
  return value;
}

const UNSAFE = /[<>&\u2028\u2029]/g;
const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `value` as JSON text that is safe to serve (see above). */
export function toJson(value: unknown): string {
  return (JSON.stringify(value, replacer) ?? "null").replace(UNSAFE, escapeChar);
}
