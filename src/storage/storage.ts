import { ActorStore } from "./actor-store.js";
import { ChannelStore } from "./channel-store.js";
import { SchemaDb } from "./schema-db.js";
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
  private readonly schemaDb: SchemaDb;

  constructor(
    readonly db: Database,
    readonly schema: string,
  ) {
    this.schemaDb = new SchemaDb(db, schema);
    this.actors = new ActorStore(this.schemaDb);
    this.journal = new JournalStore(this.schemaDb, this.actors);
    this.timers = new TimerStore(this.schemaDb);
    this.leaderLock = new LeaderLockStore(this.schemaDb);
    this.workers = new WorkerRegistryStore(this.schemaDb);
    this.messages = new MessageStore(this.schemaDb);
    this.delivery = new DeliveryStore(this.schemaDb);
    this.channels = new ChannelStore(this.schemaDb);
    this.subscriptions = new SubscriptionStore(this.schemaDb, this.actors, this.channels);
    this.groups = new GroupStore(this.schemaDb, this.actors);
    this.outbox = new OutboxStore(this.schemaDb);
    this.sagas = new SagaStore(this.schemaDb, this.actors);
    this.cancellation = new CancellationStore(this.schemaDb, this.actors);
    this.schedules = new ScheduleStore(this.schemaDb);
    this.stats = new StatsStore(this.schemaDb);
    this.stream = new StreamStore(this.schemaDb);
    this.projections = new ProjectionStore(this.schemaDb);
    this.readModels = new ReadModelStore(this.schemaDb);
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
      this.schemaDb.sql("SELECT id FROM {schema}.installation"),
    );
    if (!rows[0]) throw new Error(`schema "${this.schema}" has no installation id (migration 0004 missing)`);
    return rows[0].id;
  }

  /**
   * Raw SQL bound to the schema: for src/internal/ (the tests' door) only. Code outside
   * storage/ asks a store for an operation instead (as `db`, this goes once no caller is left).
   */
  sql(text: string): string {
    return this.schemaDb.sql(text);
  }

  close() {
    return this.db.close();
  }
}
