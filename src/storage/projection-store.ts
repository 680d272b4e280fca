import type { SchemaDb } from "./schema-db.js";

const LOAD = "SELECT cursor FROM {schema}.stream_positions WHERE name = $1";
/** Never moves back: a concurrent runner of the same projection that got further wins. */
const SAVE = `
  INSERT INTO {schema}.stream_positions AS p (name, cursor, updated_at) VALUES ($1, $2, now())
  ON CONFLICT (name) DO UPDATE
     SET cursor = GREATEST(p.cursor COLLATE "C", excluded.cursor COLLATE "C"), updated_at = now()
  RETURNING cursor`;
const RESET = `
  INSERT INTO {schema}.stream_positions (name, cursor, updated_at) VALUES ($1, $2, now())
  ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = now()`;

/**
 * The stored stream positions of projections (`stream_positions`). Positions are opaque
 * strings here; stream/position.ts checks them. They compare byte-wise (COLLATE "C").
 */
export class ProjectionStore {
  constructor(private readonly c: SchemaDb) {}

  /** The stored position of a projection, or null when it never stored one. */
  async position(name: string): Promise<string | null> {
    const { rows } = await this.c.db.query<{ cursor: string }>(this.c.sql(LOAD), [name]);
    return rows[0] ? rows[0].cursor : null;
  }

  /** Stores `position` unless a greater one is stored already; returns the stored one. */
  async advance(name: string, position: string): Promise<string> {
    const { rows } = await this.c.db.query<{ cursor: string }>(this.c.sql(SAVE), [name, position]);
    return rows[0]!.cursor;
  }

  /** Sets the position, backwards too. */
  async reset(name: string, position: string): Promise<void> {
    await this.c.db.query(this.c.sql(RESET), [name, position]);
  }
}
