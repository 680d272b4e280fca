import type { PGlite } from "@electric-sql/pglite";
import type { Database, QueryResult, SqlClient } from "./database.js";
import { openPGlite } from "./pglite-open.js";

/** Embedded Postgres (WASM). One connection: PGlite serialises queries and transactions itself. */
export class PGliteDatabase implements Database {
  readonly kind = "pglite" as const;
  private constructor(private readonly db: PGlite) {}

  static async open(dataDir: string | undefined): Promise<PGliteDatabase> {
    return new PGliteDatabase(await openPGlite(dataDir));
  }

  async query<R>(text: string, params?: unknown[]): Promise<QueryResult<R>> {
    const res = await this.db.query<R>(text, params as unknown[]);
    return { rows: res.rows, rowCount: Math.max(res.affectedRows ?? 0, res.rows.length) };
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return this.db.transaction(async (t) => {
      const tx: SqlClient = {
        query: async <R>(text: string, params?: unknown[]) => {
          const res = await t.query<R>(text, params as unknown[]);
          return { rows: res.rows, rowCount: Math.max(res.affectedRows ?? 0, res.rows.length) };
        },
        exec: async (script: string) => {
          await t.exec(script);
        },
      };
      return fn(tx);
    });
  }

  async close(): Promise<void> {
    if (!this.db.closed) await this.db.close();
  }
}
