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
    db: Database,
    readonly schema: string,
  ) {
    this.schemaDb = new SchemaDb(db, schema);
    schemaDbs.set(this, this.schemaDb);
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
    return migrate(this.schemaDb.db, this.schema);
  }

  checkSchema() {
    return checkSchema(this.schemaDb.db, this.schema);
  }

  /** One round trip (SELECT 1): resolves when the database answers. */
  async ping(): Promise<void> {
    await this.schemaDb.db.query("SELECT 1");
  }

  /** The random id made once per installation (database + schema): scopes shared transports. */
  async installationId(): Promise<string> {
    const { rows } = await this.schemaDb.db.query<{ id: string }>(
      this.schemaDb.sql("SELECT id FROM {schema}.installation"),
    );
    if (!rows[0]) throw new Error(`schema "${this.schema}" has no installation id (migration 0004 missing)`);
    return rows[0].id;
  }

  close() {
    return this.schemaDb.db.close();
  }
}

/** Each Storage's database: kept off the class, so code with a Storage sees only its operations. */
const schemaDbs = new WeakMap<Storage, SchemaDb>();

/**
 * The database and `{schema}` binder under `storage`: for src/internal/storage-access.ts
 * only (the tests' raw reads and seeded rows). Everything else asks a store for an operation.
 */
export function schemaDbOf(storage: Storage): SchemaDb {
  return schemaDbs.get(storage)!;
}
