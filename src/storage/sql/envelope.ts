import { TAG_JSON, TAG_MESSAGE } from "../../codec.js";

/*
 * Values encoded by SQL in the codec's format (src/codec.ts), so a statement can return or
 * store them without a round trip through JS: the tag byte, then the payload.
 */

/** The codec's tag byte as a bytea literal. */
const tag = (t: number) => `'\\x${t.toString(16).padStart(2, "0")}'::bytea`;

/**
 * A tag-3 message envelope from a messages row `m` and the user-facing channel name
 * expression `ch`: [u32 header length][header JSON][data, itself encoded].
 */
export function messageEnvelopeSql(m: string, ch: string): string {
  const header = `convert_to(json_build_object('id', ${m}.id::text, 'channel', ${ch}, 'metadata', ${m}.metadata, 'sender', ${m}.sender, 'context', ${m}.context, 'publishedAt', floor(extract(epoch from ${m}.published_at) * 1000))::text, 'UTF8')`;
  return `(${tag(TAG_MESSAGE)} || int4send(octet_length(${header})) || ${header} || ${m}.data)`;
}

/** A JSON-encoded (tag-1) value from a SQL json expression: a journal entry's result. */
export const jsonResultSql = (expr: string) => `(${tag(TAG_JSON)} || convert_to((${expr})::text, 'UTF8'))`;
