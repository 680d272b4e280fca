/**
 * What the operator tools (`troupe serve`, the dashboard, the `troupe` command) need from a
 * started Troupe beyond its messaging and query methods: a readiness probe, a relay on the
 * Troupe's own outbox, and the dashboard's read models. The Troupe's methods under
 * `// ---- operations (tools)` delegate here, so no tool reaches into its storage.
 */
import { optionsArg } from "../arguments.js";
import { checkChannelName } from "../channels.js";
import { ValidationError } from "../api/errors.js";
import type { ChannelSummary, ChannelsOptions, WorkerSummary } from "../api/types.js";
import type { Storage } from "../storage/storage.js";

/**
 * Channels (those subscribed to at least once) by name with their subscribers, waiting
 * receivers and backlog, a page at a time.
 */
export function channels(
  storage: Storage,
  options: ChannelsOptions | undefined,
): Promise<{ items: ChannelSummary[]; nextCursor?: string }> {
  const opts = optionsArg(options, "channels options");
  const limit = opts.limit ?? 200;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new ValidationError("limit must be an integer from 1 to 1000");
  // The cursor is the last channel name of the previous page.
  const after = opts.cursor === undefined ? undefined : checkChannelName(opts.cursor, "cursor");
  return storage.readModels.channels({ limit, after });
}

/** The worker registry with the current leader. */
export function workers(storage: Storage): Promise<WorkerSummary[]> {
  return storage.readModels.workers();
}
