/**
 * A TCP proxy in front of PostgreSQL (node:net, 127.0.0.1 only) that can blackhole a
 * connection: stop forwarding in both directions without closing either side, so the
 * client sees a half-open connection (pg-boss `halfOpenProxy` style) — its statements
 * neither answer nor fail. After the hole's duration both sockets are destroyed (the
 * partition ends with a reset), so a client with no timeouts of its own is not stuck forever —
 * unless asked to leave it half-open for good (`blackhole(…, forever)`, `holeAll()`).
 * Used by the chaos campaign (chaos/) and by test/half-open.test.ts.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

interface Pair {
  client: Socket;
  server: Socket;
  holed: boolean;
  lastActive: number;
}

export class PgProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<Pair>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<number> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(0, "127.0.0.1", () => resolve());
    });
    const addr = this.server.address();
    this.port = typeof addr === "object" && addr ? addr.port : 0;
    return this.port;
  }

  private accept(client: Socket): void {
    const server = connect(this.targetPort, "127.0.0.1");
    const pair: Pair = { client, server, holed: false, lastActive: Date.now() };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on("data", (chunk) => {
        if (pair.holed) return; // blackholed: swallowed, no answer, no close
        pair.lastActive = Date.now();
        to.write(chunk);
      });
      from.on("error", () => {});
      from.on("close", () => {
        if (pair.holed) return; // half-open: the other side is not told
        this.pairs.delete(pair);
        to.destroy();
      });
    };
    forward(client, server);
    forward(server, client);
  }

  /** Open connections (not blackholed). */
  get open(): number {
    return [...this.pairs].filter((p) => !p.holed).length;
  }

  /**
   * Blackholes one connection, preferring one active in the last second (an idle pooled
   * one might never be used while the hole lasts); `pick` in [0, 1) chooses among them.
   * Resolves after `ms`, once the connection is destroyed (with `forever`, it stays half-open
   * until resetHoles()). false: no connection to pick.
   */
  async blackhole(pick: number, ms: number, forever = false): Promise<boolean> {
    const live = [...this.pairs].filter((p) => !p.holed);
    const recent = live.filter((p) => Date.now() - p.lastActive < 1000);
    const from = recent.length > 0 ? recent : live;
    const pair = from[Math.floor(pick * from.length)];
    if (!pair) return false;
    pair.holed = true;
    await new Promise((r) => setTimeout(r, ms));
    if (forever) return true;
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.server.destroy();
    return true;
  }

  /**
   * Leaves every connection open right now half-open for good (until resetHoles() or
   * stop()); connections made later are forwarded as usual. Returns how many.
   */
  holeAll(): number {
    let n = 0;
    for (const p of this.pairs)
      if (!p.holed) {
        p.holed = true;
        n++;
      }
    return n;
  }

  /** Ends every half-open connection left by `blackhole(…, forever)`. */
  resetHoles(): void {
    for (const p of this.pairs)
      if (p.holed) {
        this.pairs.delete(p);
        p.client.destroy();
        p.server.destroy();
      }
  }

  async stop(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.server.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
