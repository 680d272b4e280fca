import { ActorStore } from "./actor-store.js";
import { ChannelStore } from "./channel-store.js";
import { StoreContext } from "./context.js";
import type { Database } from "./database.js";
import { DeliveryStore } from "./delivery-store.js";
import { GroupStore } from "./group-store.js";
import { JournalStore } from "./journal-store.js";
import { CancellationStore } from "./cancellation-store.js";
import { LeaderLockStore } from "./leader-lock-store.js";
import { MessageStore } from "./message-store.js";
import { OutboxStore } from "./outbox-store.js";
import { ReadModelStore } from "./read-model-store.js";
import { SagaStore } from "./saga-store.js";
import { ScheduleStore } from "./schedule-store.js";
import { checkSchema, migrate } from "./migrate.js";
import { ProjectionStore } from "./projection-store.js";
import { StatsStore } from "./stats-store.js";
import { StreamStore } from "./stream-store.js";
import { SubscriptionStore } from "./subscription-store.js";
import { TimerStore } from "./timer-store.js";
import { WorkerRegistryStore } from "./worker-registry-store.js";

/**
 * troupe's storage, grouped by concern. Every operation is named for what it means
 * (claim, append, park, fire …); the SQL lives beside it. One Postgres dialect
 * serves both the real server and embedded PGlite.
 */
export class Storage {
  readonly actors: ActorStore;
  readonly journal: JournalStore;
  readonly timers: TimerStore;
  readonly leaderLock: LeaderLockStore;
  readonly workers: WorkerRegistryStore;
  readonly channels: ChannelStore;
  readonly messages: MessageStore;
  readonly subscriptions: SubscriptionStore;
  readonly delivery: DeliveryStore;
  readonly groups: GroupStore;
  readonly outbox: OutboxStore;
  readonly sagas: SagaStore;
  readonly cancellation: CancellationStore;
  readonly schedules: ScheduleStore;
  readonly stats: StatsStore;
  readonly stream: StreamStore;
  readonly projections: ProjectionStore;
  /** The operator tools' views (dashboard, readiness). */
  readonly readModels: ReadModelStore;
  private readonly ctx: StoreContext;

  constructor(
    readonly db: Database,
    readonly schema: string,
  ) {
    this.ctx = new StoreContext(db, schema);
    this.actors = new ActorStore(this.ctx);
    this.journal = new JournalStore(this.ctx, this.actors);
    this.timers = new TimerStore(this.ctx);
    this.leaderLock = new LeaderLockStore(this.ctx);
    this.workers = new WorkerRegistryStore(this.ctx);
    this.messages = new MessageStore(this.ctx);
    this.delivery = new DeliveryStore(this.ctx);
    this.channels = new ChannelStore(this.ctx);
    this.subscriptions = new SubscriptionStore(this.ctx, this.actors, this.channels);
    this.groups = new GroupStore(this.ctx, this.actors);
    this.outbox = new OutboxStore(this.ctx);
    this.sagas = new SagaStore(this.ctx, this.actors);
    this.cancellation = new CancellationStore(this.ctx, this.actors);
    this.schedules = new ScheduleStore(this.ctx);
    this.stats = new StatsStore(this.ctx);
    this.stream = new StreamStore(this.ctx);
    this.projections = new ProjectionStore(this.ctx);
    this.readModels = new ReadModelStore(this.ctx);
  }

  migrate() {
    return migrate(this.db, this.schema);
  }

  checkSchema() {
    return checkSchema(this.db, this.schema);
  }

  /** One round trip (SELECT 1): resolves when the database answers. */
  async ping(): Promise<void> {
    await this.db.query("SELECT 1");
  }

  /** The random id made once per installation (database + schema): scopes shared transports. */
  async installationId(): Promise<string> {
    const { rows } = await this.db.query<{ id: string }>(
      this.ctx.sql("SELECT id FROM {schema}.installation"),
    );
    if (!rows[0]) throw new Error(`schema "${this.schema}" has no installation id (migration 0004 missing)`);
    return rows[0].id;
  }

  /**
   * Raw SQL bound to the schema: for src/internal/ (the tests' door) only. Code outside
   * storage/ asks a store for an operation instead (as `db`, this goes once no caller is left).
   */
  sql(text: string): string {
    return this.ctx.sql(text);
  }

  close() {
    return this.db.close();
  }
}
