/** The diagnostics' own connection to the benchmark database, beside troupe's pool. */
import pg from "pg";
import { waitingSubscribersSql } from "../fanout.js";
import { PG_URL } from "../lib/env.js";

export type Row = Record<string, unknown>;

export class Side {
  readonly pool: pg.Pool;

  constructor(max = 2) {
    this.pool = new pg.Pool({ connectionString: PG_URL, max });
    this.pool.on("error", () => {}); // a dropped idle connection must not crash a diagnostic
  }

  async rows<R extends pg.QueryResultRow = Row>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  /** The first row's `n` (count(*) arrives as a string) as a number. */
  async count(sql: string, params: unknown[] = []): Promise<number> {
    return Number((await this.rows<{ n: string | number }>(sql, params))[0]?.n ?? 0);
  }

  /** Fan-out subscribers waiting in a receive (fanout.ts's fanSubscriber). */
  waiting(schema: string): Promise<number> {
    return this.count(waitingSubscribersSql(schema));
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
